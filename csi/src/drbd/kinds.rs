//! The state words DRBD prints: roles, disk, connection and replication states.
//!
//! This module owns the spelling of those words, shared by the events2 and the status JSON
//! parsers. A word this version does not know is kept verbatim in an `Other` variant, so a
//! newer DRBD never makes a parser fail. It must not interpret the states (that is
//! `health.rs`'s job).

use std::fmt;

/// Defines a DRBD state word: the known variants with their spelling, plus `Other`.
macro_rules! state_word {
    (
        $(#[$meta:meta])*
        $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )*
            /// A word this version of Hearth does not know, kept verbatim.
            Other(String),
        }

        impl $name {
            /// Parses the word as drbdsetup prints it; an unknown word becomes `Other`.
            pub fn parse(text: &str) -> Self {
                match text {
                    $( $text => Self::$variant, )*
                    other => Self::Other(other.to_owned()),
                }
            }

            /// The word as drbdsetup prints it.
            pub fn as_str(&self) -> &str {
                match self {
                    $( Self::$variant => $text, )*
                    Self::Other(text) => text,
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

state_word! {
    /// The role of a resource on a node (`role:` in events2, `role`/`peer-role` in JSON).
    Role {
        /// The node may write; at most one Primary unless allow-two-primaries is set.
        Primary = "Primary",
        /// The node replicates but does not serve I/O.
        Secondary = "Secondary",
        /// Not known, e.g. the role of a peer that is not connected.
        Unknown = "Unknown",
    }
}

state_word! {
    /// The state of a local disk (`disk:`) or a peer's disk (`peer-disk:`).
    DiskState {
        /// No backing disk: a diskless client, or a disk that was detached.
        Diskless = "Diskless",
        /// Attaching the backing disk.
        Attaching = "Attaching",
        /// Detaching the backing disk.
        Detaching = "Detaching",
        /// The backing disk failed with an I/O error.
        Failed = "Failed",
        /// Deciding whether the data is current.
        Negotiating = "Negotiating",
        /// The data is partially current, e.g. during a resync as target.
        Inconsistent = "Inconsistent",
        /// The data is consistent but known to be older than a peer's.
        Outdated = "Outdated",
        /// The peer's disk state is not known (no connection).
        DUnknown = "DUnknown",
        /// Consistent, but whether it is current is not yet known.
        Consistent = "Consistent",
        /// The data is current.
        UpToDate = "UpToDate",
    }
}

state_word! {
    /// The state of a connection to one peer (`connection:` / `connection-state`).
    ConnectionState {
        /// Not trying to connect.
        StandAlone = "StandAlone",
        /// Shutting the connection down.
        Disconnecting = "Disconnecting",
        /// About to try to connect.
        Unconnected = "Unconnected",
        /// The peer did not answer in time.
        Timeout = "Timeout",
        /// The connection broke.
        BrokenPipe = "BrokenPipe",
        /// The network failed.
        NetworkFailure = "NetworkFailure",
        /// The peer spoke an unexpected protocol.
        ProtocolError = "ProtocolError",
        /// Tearing the connection down.
        TearDown = "TearDown",
        /// Trying to connect.
        Connecting = "Connecting",
        /// Connected.
        Connected = "Connected",
    }
}

state_word! {
    /// The replication state of one volume towards one peer (`replication:`).
    ReplicationState {
        /// Not replicating (not connected).
        Off = "Off",
        /// Replicating normally.
        Established = "Established",
        /// About to start a full sync as source.
        StartingSyncS = "StartingSyncS",
        /// About to start a full sync as target.
        StartingSyncT = "StartingSyncT",
        /// Exchanging the bitmap, this node the source.
        WFBitMapS = "WFBitMapS",
        /// Exchanging the bitmap, this node the target.
        WFBitMapT = "WFBitMapT",
        /// Waiting for the sync UUID, this node the target.
        WFSyncUUID = "WFSyncUUID",
        /// Resyncing to the peer.
        SyncSource = "SyncSource",
        /// Resyncing from the peer.
        SyncTarget = "SyncTarget",
        /// Online verify, this node the source.
        VerifyS = "VerifyS",
        /// Online verify, this node the target.
        VerifyT = "VerifyT",
        /// A resync as source, paused.
        PausedSyncS = "PausedSyncS",
        /// A resync as target, paused.
        PausedSyncT = "PausedSyncT",
        /// Replication suspended because of congestion; this node is ahead.
        Ahead = "Ahead",
        /// Replication suspended because of congestion; this node is behind.
        Behind = "Behind",
    }
}

state_word! {
    /// The verb that starts an events2 line: what happened to the object.
    Verb {
        /// The object existed when events2 started (the initial state dump).
        Exists = "exists",
        /// The object was created.
        Create = "create",
        /// Some of the object's fields changed; only those may be printed.
        Change = "change",
        /// The object was destroyed.
        Destroy = "destroy",
        /// The resource was renamed (`new_name:`).
        Rename = "rename",
        /// The kernel called a user-mode helper.
        Call = "call",
        /// A user-mode helper returned.
        Response = "response",
    }
}

impl ReplicationState {
    /// True when this node receives a resync from the peer (or is about to).
    pub fn is_sync_target(&self) -> bool {
        matches!(
            self,
            Self::StartingSyncT
                | Self::WFBitMapT
                | Self::WFSyncUUID
                | Self::SyncTarget
                | Self::PausedSyncT
        )
    }

    /// True while a resync runs or is about to run towards or from the peer.
    pub fn is_resync(&self) -> bool {
        self.is_sync_target()
            || matches!(
                self,
                Self::StartingSyncS | Self::WFBitMapS | Self::SyncSource | Self::PausedSyncS
            )
    }
}

/// Defaults for model fields that DRBD has not reported yet.
macro_rules! default_word {
    ($($name:ident => $variant:ident),* $(,)?) => {
        $(
            impl Default for $name {
                fn default() -> Self {
                    Self::$variant
                }
            }
        )*
    };
}

default_word! {
    Role => Unknown,
    DiskState => DUnknown,
    ConnectionState => Unconnected,
    ReplicationState => Off,
}

/// Parses a drbdsetup yes/no flag; `None` for any other word.
pub(crate) fn parse_flag(text: &str) -> Option<bool> {
    match text {
        "yes" | "true" => Some(true),
        "no" | "false" => Some(false),
        _ => None,
    }
}

/// Spells a flag as drbdsetup does.
pub(crate) fn flag_word(value: bool) -> &'static str {
    if value {
        "yes"
    } else {
        "no"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_words_round_trip() {
        for word in ["UpToDate", "Diskless", "DUnknown", "Inconsistent"] {
            assert_eq!(DiskState::parse(word).as_str(), word);
            assert!(!matches!(DiskState::parse(word), DiskState::Other(_)));
        }
        assert_eq!(Role::parse("Primary"), Role::Primary);
        assert_eq!(
            ConnectionState::parse("Connected"),
            ConnectionState::Connected
        );
        assert_eq!(
            ReplicationState::parse("PausedSyncT"),
            ReplicationState::PausedSyncT
        );
    }

    #[test]
    fn unknown_words_are_kept() {
        let state = DiskState::parse("Quantum");
        assert_eq!(state, DiskState::Other("Quantum".into()));
        assert_eq!(state.to_string(), "Quantum");
    }

    #[test]
    fn sync_target_states() {
        assert!(ReplicationState::SyncTarget.is_sync_target());
        assert!(ReplicationState::PausedSyncT.is_sync_target());
        assert!(!ReplicationState::SyncSource.is_sync_target());
        assert!(!ReplicationState::Established.is_sync_target());
    }

    #[test]
    fn flags() {
        assert_eq!(parse_flag("yes"), Some(true));
        assert_eq!(parse_flag("no"), Some(false));
        assert_eq!(parse_flag("user"), None);
        assert_eq!(flag_word(true), "yes");
    }
}
