//! `drbdsetup events2` lines as typed events.
//!
//! This module owns the events2 line format: `[timestamp] verb object key:value ...`, one event
//! a line, and the `exists -` marker that ends the initial state dump. Parsing is pure and
//! never panics. Only the structure is strict: an object kind after the verb, `key:value`
//! tokens, and the keys that identify the object (`name`, `volume`, `peer-node-id`). Unknown
//! verbs, objects, keys and words are kept; a value that does not parse is kept in `extra`.
//! It must not apply events to a model (that is `apply.rs`) or run drbdsetup.

mod parse;
mod render;
#[cfg(test)]
mod roundtrip_tests;

pub use parse::{parse, parse_line};

use super::kinds::{ConnectionState, DiskState, ReplicationState, Role, Verb};
use super::state::{DeviceStatistics, PeerDeviceStatistics};

/// `key:value` pairs kept in the order they came: unknown keys, or values that did not parse.
pub type Extra = Vec<(String, String)>;

/// Why an events2 line could not be parsed. Each variant carries the 1-based line number and
/// the start of the line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Events2Error {
    /// The line has a verb but no object kind after it.
    #[error("events2 line {line}: no object after the verb: {text:?}")]
    SplitObject { line: usize, text: String },
    /// The `-` marker came after a verb other than `exists`.
    #[error("events2 line {line}: the end-of-dump marker '-' needs the verb exists: {text:?}")]
    Marker { line: usize, text: String },
    /// A field is not of the form `key:value`.
    #[error("events2 line {line}: field {token:?} is not key:value: {text:?}")]
    SplitField {
        line: usize,
        token: String,
        text: String,
    },
    /// A key that identifies the object is missing.
    #[error("events2 line {line}: {object} event has no {key}: {text:?}")]
    MissingKey {
        line: usize,
        object: &'static str,
        key: &'static str,
        text: String,
    },
    /// A key that identifies the object has a value that is not a number.
    #[error("events2 line {line}: {key}:{value} is not a number: {text:?}")]
    ParseKey {
        line: usize,
        key: &'static str,
        value: String,
        text: String,
    },
}

/// One parsed events2 line.
// Lines are parsed and applied one at a time; boxing the event would cost an allocation per
// line to shrink two variants that carry nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Line {
    /// An event.
    Event(Event),
    /// `exists -`: the initial state has been printed completely.
    EndOfInitialState,
    /// A blank line or a `#` comment (fixtures only; drbdsetup prints neither).
    Ignored,
}

/// One event: what happened to which object.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The timestamp `drbdsetup events2 --timestamps` puts first, verbatim.
    pub timestamp: Option<String>,
    /// What happened.
    pub verb: Verb,
    /// The object it happened to, with the fields printed.
    pub object: Object,
}

/// The object of an event. With `change`, only the fields that changed may be present.
#[derive(Debug, Clone, PartialEq)]
pub enum Object {
    /// A resource (`resource name:...`).
    Resource(ResourceEvent),
    /// A volume's device (`device name:... volume:...`).
    Device(DeviceEvent),
    /// A connection to a peer (`connection name:... peer-node-id:...`).
    Connection(ConnectionEvent),
    /// A volume as seen through a connection.
    PeerDevice(PeerDeviceEvent),
    /// A network path of a connection.
    Path(PathEvent),
    /// A user-mode helper call or response.
    Helper(HelperEvent),
    /// An object kind this version does not know, with its fields.
    Other { kind: String, fields: Extra },
}

/// The fields of a `resource` event.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResourceEvent {
    pub name: String,
    pub role: Option<Role>,
    /// `no`, or why I/O is suspended (comma-separated).
    pub suspended: Option<String>,
    pub write_ordering: Option<String>,
    pub force_io_failures: Option<bool>,
    pub may_promote: Option<bool>,
    pub promotion_score: Option<u64>,
    /// The new name, for `rename`.
    pub new_name: Option<String>,
    pub extra: Extra,
}

/// The fields of a `device` event.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DeviceEvent {
    pub name: String,
    pub volume: u32,
    pub minor: Option<u32>,
    pub disk: Option<DiskState>,
    /// The backing device; `none` for none.
    pub backing_dev: Option<String>,
    pub client: Option<bool>,
    pub open: Option<bool>,
    pub quorum: Option<bool>,
    pub size_kib: Option<u64>,
    pub stats: DeviceStatistics,
    pub extra: Extra,
}

/// The fields of a `connection` event.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ConnectionEvent {
    pub name: String,
    pub peer_node_id: u32,
    pub conn_name: Option<String>,
    pub connection: Option<ConnectionState>,
    /// The peer's role.
    pub role: Option<Role>,
    pub congested: Option<bool>,
    pub ap_in_flight: Option<u64>,
    pub rs_in_flight: Option<u64>,
    pub extra: Extra,
}

/// The fields of a `peer-device` event.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PeerDeviceEvent {
    pub name: String,
    pub peer_node_id: u32,
    pub volume: u32,
    pub conn_name: Option<String>,
    pub replication: Option<ReplicationState>,
    pub peer_disk: Option<DiskState>,
    pub peer_client: Option<bool>,
    pub resync_suspended: Option<String>,
    pub stats: PeerDeviceStatistics,
    pub extra: Extra,
}

/// The fields of a `path` event.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PathEvent {
    pub name: String,
    pub peer_node_id: u32,
    pub conn_name: Option<String>,
    /// `ipv4:1.2.3.4:7789`
    pub local: Option<String>,
    pub peer: Option<String>,
    pub established: Option<bool>,
    pub extra: Extra,
}

/// The fields of a `helper` event (`call` or `response`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HelperEvent {
    pub name: String,
    pub peer_node_id: Option<u32>,
    pub conn_name: Option<String>,
    pub volume: Option<u32>,
    /// The helper, e.g. `before-resync-target`.
    pub helper: Option<String>,
    /// The helper's exit status (`response` only).
    pub status: Option<i64>,
    pub extra: Extra,
}

/// The start of a line, for an error message: outside input is not echoed at any length.
pub(crate) fn excerpt(text: &str) -> String {
    const MAX: usize = 160;
    match text.char_indices().nth(MAX) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text.to_owned(),
    }
}
