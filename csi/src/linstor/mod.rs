//! The LINSTOR backend: Hearth's volumes as LINSTOR resources (DRBD replication over LVM or
//! ZFS), driven through the controller's REST API.
//!
//! - [`client`] owns the wire: HTTP(S), the version handshake, JSON shapes, ApiCallRc decoding,
//!   retries and timeouts. It knows nothing about CSI.
//! - [`params`] parses StorageClass parameters; [`names`] maps CSI names to LINSTOR names.
//! - [`LinstorBackend`] is the controller side (VolumeBackend), with snapshots,
//!   ControllerPublish and Hearth's resource groups (`groups`) in their own files; [`LinstorAttacher`] is the node side.

mod attacher;
mod backend;
pub mod client;
mod create;
mod errors;
mod groups;
pub mod names;
pub mod params;
pub mod placement;
mod publish;
pub mod remote_access;
mod snapshots;

pub use attacher::{DiskState, DrbdsetupState, LinstorAttacher, LinstorViewState};
pub use backend::LinstorBackend;
pub use publish::DEVICE_PATH_KEY;
