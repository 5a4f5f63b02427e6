//! The engine's side of node sessions: each session's outbox and what was last sent on it,
//! and the messages the leader sends (Welcome, Lease, Assignments, VolumeCall). Sends never
//! block: a full outbox is retried on the next pass, a closed one ends the session.

use hearth_proto::hearth::v1::{
    coordinator_message, volume_call, Assignments, CoordinatorMessage, FloatingIpAssignment, Lease,
    VolumeCall, Welcome,
};
use tokio::sync::mpsc;
use tonic::Status;

use super::decide::Timing;

/// The message channel to one node's session.
pub type Outbox = mpsc::Sender<Result<CoordinatorMessage, Status>>;

/// One open session.
#[derive(Debug)]
pub struct Session {
    /// Its number (a newer session of the same node replaces it).
    pub id: u64,
    tx: Outbox,
    /// The floating IPs last sent; `None` until the first Assignments of the session.
    sent: Option<Vec<FloatingIpAssignment>>,
}

/// What became of an Assignments send.
#[derive(Debug, PartialEq, Eq)]
pub enum Pushed {
    /// Already sent, nothing to do.
    Unchanged,
    /// Sent.
    Sent,
    /// The outbox is full; retried on the next pass.
    Full,
    /// The session's stream is gone.
    Closed,
}

fn msg(m: coordinator_message::Msg) -> Result<CoordinatorMessage, Status> {
    Ok(CoordinatorMessage { msg: Some(m) })
}

/// Milliseconds, saturating.
pub fn ms(d: std::time::Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}

impl Session {
    /// Opens session `id` on `tx` by sending its Welcome.
    pub fn open(
        id: u64,
        tx: Outbox,
        coordinator_id: &str,
        timing: &Timing,
        term: u64,
    ) -> Result<Self, Status> {
        let welcome = Welcome {
            coordinator_id: coordinator_id.to_owned(),
            report_interval_ms: ms(timing.report_interval),
            lease_ms: ms(timing.lease),
            term,
            answer_ms: ms(timing.answer.min(timing.lease)),
        };
        tx.try_send(msg(coordinator_message::Msg::Welcome(welcome)))
            .map_err(|_| Status::unavailable("session closed"))?;
        Ok(Self { id, tx, sent: None })
    }

    /// Whether the session got its first assignments (only then are leases granted).
    pub fn assigned(&self) -> bool {
        self.sent.is_some()
    }

    /// Sends a lease of `term` for report `seq`; whether it went out.
    pub fn grant(&self, seq: u64, valid: std::time::Duration, term: u64) -> bool {
        let lease = Lease {
            seq,
            valid_ms: ms(valid),
            term,
        };
        self.tx
            .try_send(msg(coordinator_message::Msg::Lease(lease)))
            .is_ok()
    }

    /// Sends the whole assignment set if it differs from the last one sent.
    pub fn push(&mut self, want: Vec<FloatingIpAssignment>, term: u64) -> Pushed {
        if self.sent.as_ref() == Some(&want) {
            return Pushed::Unchanged;
        }
        let m = msg(coordinator_message::Msg::Assignments(Assignments {
            floating_ips: want.clone(),
            volumes: Vec::new(),
            term,
        }));
        match self.tx.try_send(m) {
            Ok(()) => {
                self.sent = Some(want);
                Pushed::Sent
            }
            Err(mpsc::error::TrySendError::Full(_)) => Pushed::Full,
            Err(mpsc::error::TrySendError::Closed(_)) => Pushed::Closed,
        }
    }

    /// Sends a volume call; whether it went out.
    pub fn call(&self, call_id: u64, op: volume_call::Op) -> bool {
        let call = VolumeCall {
            call_id,
            op: Some(op),
        };
        self.tx
            .try_send(msg(coordinator_message::Msg::VolumeCall(call)))
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use hearth_proto::hearth::v1::{coordinator_message::Msg, FloatingIpAssignment};
    use tokio::sync::mpsc;

    use super::{Pushed, Session, Timing};

    fn fip(epoch: u64) -> FloatingIpAssignment {
        FloatingIpAssignment {
            name: "ip".into(),
            address: "10.0.0.1".into(),
            interface: "eth0".into(),
            epoch,
            ip: vec![10, 0, 0, 1],
        }
    }

    #[test]
    fn welcome_then_assignments_once_per_change() {
        let (tx, mut rx) = mpsc::channel(1);
        let mut s = Session::open(1, tx, "c", &Timing::default(), 4).unwrap();
        assert!(
            matches!(rx.try_recv().unwrap().unwrap().msg, Some(Msg::Welcome(w)) if w.lease_ms == 350 && w.term == 4)
        );
        assert!(!s.assigned());
        assert_eq!(s.push(vec![fip(1)], 4), Pushed::Sent);
        assert!(s.assigned());
        assert_eq!(s.push(vec![fip(1)], 4), Pushed::Unchanged);
        assert_eq!(
            s.push(vec![fip(2)], 4),
            Pushed::Full,
            "capacity 1, nothing read"
        );
        rx.try_recv().unwrap().unwrap();
        assert_eq!(s.push(vec![fip(2)], 4), Pushed::Sent);
        drop(rx);
        assert_eq!(s.push(vec![], 4), Pushed::Closed);
        assert!(!s.grant(1, std::time::Duration::from_millis(1), 4));
    }
}
