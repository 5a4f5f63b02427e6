//! The DRBD collector: resources, roles, disk states and peers from a followed
//! `drbdsetup events2` stream (`hearth_csi::drbd::follow_events2`). Owns the follower it
//! starts; never runs other drbdsetup commands and never changes DRBD.

use hearth_csi::drbd::{DrbdState, Events2Follower, FollowConfig};
use tokio::sync::watch;

use super::snapshot::{Drbd, DrbdPeer, DrbdResource, Section, SectionState};

/// Reads DRBD state.
pub trait DrbdSource: Send + Sync {
    /// The current picture.
    fn drbd(&self) -> Section<Drbd>;
}

/// The real source: follows events2 when drbdsetup is installed.
pub struct Events2Drbd {
    follower: Option<(Events2Follower, watch::Receiver<DrbdState>)>,
    missing: String,
}

impl Events2Drbd {
    /// Starts following when drbdsetup exists (must run inside a tokio runtime).
    pub fn start() -> Self {
        match hearth_csi::drbd::find_drbdsetup() {
            Ok(tool) => {
                let follower = hearth_csi::drbd::follow_events2(FollowConfig::new(tool));
                let rx = follower.subscribe();
                Self {
                    follower: Some((follower, rx)),
                    missing: String::new(),
                }
            }
            Err(e) => Self {
                follower: None,
                missing: format!("drbdsetup not installed ({e})"),
            },
        }
    }
}

impl DrbdSource for Events2Drbd {
    fn drbd(&self) -> Section<Drbd> {
        match &self.follower {
            None => Section::without(SectionState::Unavailable, self.missing.clone()),
            Some((_, rx)) => {
                let state = rx.borrow();
                if !state.complete {
                    return Section::without(
                        SectionState::Error,
                        "drbdsetup events2 has not delivered its initial dump (restarting?)",
                    );
                }
                Section::ok(convert(&state))
            }
        }
    }
}

/// The snapshot shape of a DRBD state.
pub fn convert(state: &DrbdState) -> Drbd {
    let resources = state
        .resources
        .values()
        .map(|r| DrbdResource {
            name: r.name.clone(),
            role: r.role.as_str().to_owned(),
            disk_states: r
                .devices
                .values()
                .map(|d| d.disk.as_str().to_owned())
                .collect(),
            peers: r
                .connections
                .values()
                .map(|c| DrbdPeer {
                    name: c.peer_label(),
                    connection: c.state.as_str().to_owned(),
                    role: c.peer_role.as_str().to_owned(),
                    replication: c
                        .peer_devices
                        .values()
                        .map(|p| p.replication.as_str().to_owned())
                        .collect(),
                    peer_disk_states: c
                        .peer_devices
                        .values()
                        .map(|p| p.peer_disk.as_str().to_owned())
                        .collect(),
                    out_of_sync_kib: c
                        .peer_devices
                        .values()
                        .filter_map(|p| p.stats.out_of_sync_kib)
                        .sum(),
                })
                .collect(),
        })
        .collect();
    Drbd { resources }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_an_events2_dump() {
        let text = "exists resource name:r0 role:Primary suspended:no\n\
            exists connection name:r0 peer-node-id:1 conn-name:n2 connection:Connected role:Secondary\n\
            exists device name:r0 volume:0 minor:1000 disk:UpToDate\n\
            exists peer-device name:r0 peer-node-id:1 conn-name:n2 volume:0 replication:Established peer-disk:UpToDate out-of-sync:8\n\
            exists -\n";
        let state = DrbdState::from_events2(text).expect("fixture parses");
        let d = convert(&state);
        let r = &d.resources[0];
        assert_eq!((r.name.as_str(), r.role.as_str()), ("r0", "Primary"));
        assert_eq!(r.disk_states, ["UpToDate"]);
        assert_eq!(r.peers[0].name, "n2");
        assert_eq!(r.peers[0].replication, ["Established"]);
        assert_eq!(r.peers[0].out_of_sync_kib, 8);
    }
}
