//! DRBD state on this node: parsers, the state model, health judgement and the sources.
//!
//! This module owns everything Hearth knows about DRBD's kernel state as `drbdsetup` reports
//! it:
//! - [`events2`]: `drbdsetup events2 [--now] [--statistics]` lines as typed events;
//! - [`status_json`]: `drbdsetup status --json` (DRBD 9.0 and recent 9.x shapes);
//! - [`DrbdState`]: the model both fill, with [`DrbdState::device_by_minor`],
//!   [`DrbdState::readiness`] and [`DrbdState::condition`];
//! - [`DrbdStatusSource`]: the narrow trait the node side reads the state through, with the
//!   real [`DrbdsetupStatus`], the [`follow_events2`] stream follower and a [`FakeStatus`].
//!
//! It only observes: it must not configure DRBD (no `drbdadm`, no `drbdsetup` verb other than
//! `status` and `events2`), promote or demote, or talk to LINSTOR (that is `linstor/`).

mod apply;
pub mod events2;
mod follow;
mod health;
pub mod kinds;
mod source;
mod state;
pub mod status_json;

use std::path::PathBuf;
use std::time::Duration;

pub use events2::Events2Error;
pub use follow::{follow_events2, Events2Follower, FollowConfig};
pub use health::{Readiness, ReadyVia};
pub use kinds::{ConnectionState, DiskState, ReplicationState, Role, Verb};
pub use source::{
    find_drbdsetup, find_tool_in, DrbdStatusSource, DrbdsetupStatus, FakeStatus, WatchedStatus,
    TOOL_DIRS,
};
pub use state::{
    Connection, Device, DeviceStatistics, DrbdState, NetPath, PeerDevice, PeerDeviceStatistics,
    Resource,
};
pub use status_json::StatusJsonError;

/// Why the DRBD state could not be read from this node.
#[derive(Debug, thiserror::Error)]
pub enum DrbdError {
    /// drbdsetup is not installed where Hearth looks for it.
    #[error("drbdsetup not found (looked in {searched}); install drbd-utils on the node")]
    ToolMissing { searched: String },
    /// drbdsetup could not be started.
    #[error("starting {tool}: {source}")]
    Spawn {
        tool: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// drbdsetup ran and failed.
    #[error("{tool} {args} {outcome}: {stderr}")]
    Run {
        tool: PathBuf,
        args: String,
        outcome: String,
        stderr: String,
    },
    /// drbdsetup did not finish in time and was killed.
    #[error("{tool} {args} did not finish within {after:?}")]
    Timeout {
        tool: PathBuf,
        args: String,
        after: Duration,
    },
    /// Reading drbdsetup's output failed.
    #[error("reading the output of {tool} {args}: {source}")]
    ReadOutput {
        tool: PathBuf,
        args: String,
        #[source]
        source: std::io::Error,
    },
    /// drbdsetup printed JSON that is not a status document.
    #[error("parsing the output of {tool} status --json: {source}")]
    ParseStatus {
        tool: PathBuf,
        #[source]
        source: StatusJsonError,
    },
    /// The events2 follower has no complete state (starting, or drbdsetup died).
    #[error("DRBD state not known yet: the events2 follower has no complete dump")]
    NotSynced,
}

#[cfg(test)]
mod test_support;
