//! Hearth's CSI driver: the Identity, Controller and Node services.
//!
//! The services are generic over three narrow traits, so every privileged side effect sits
//! behind one of them:
//! - [`backend::VolumeBackend`]: the controller side (create, delete, expand, snapshot, list).
//! - [`attach::Attacher`]: the node side, volume -> local block device.
//! - [`mount::Mounter`]: format, mount, bind, unmount, resize and stats; the only code that mounts.
//!
//! The first backend is [`loopfile`]: sparse files on loop devices, the embedded default.

pub mod attach;
pub mod backend;
pub mod controller;
pub mod drbd;
pub mod error;
pub mod host;
pub mod identity;
pub mod linstor;
pub mod locks;
pub mod loopfile;
pub mod mount;
pub mod node;
pub mod validate;

pub use error::CsiError;

/// The CSI driver name reported by GetPluginInfo and used in the CSIDriver object.
pub const DRIVER_NAME: &str = "csi.hearth.dev";
/// The topology key a node reports in NodeGetInfo and a volume carries as its accessibility.
pub const TOPOLOGY_NODE_KEY: &str = "topology.hearth.dev/node";
/// The volume-context key naming the one node a node-local volume lives on (set by
/// CreateVolume, passed back by kubelet in NodeStage), so staging it elsewhere names the node.
pub const VOLUME_CONTEXT_NODE_KEY: &str = "csi.hearth.dev/node";
