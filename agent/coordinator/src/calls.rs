//! Volume calls to node agents: each call gets an id, waits for the VolumeReply with that id,
//! and its answer's gRPC code comes back as the matching [`CsiError`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use hearth_csi::CsiError;
use hearth_proto::hearth::v1::VolumeReply;
use tokio::sync::oneshot;

/// Calls sent to nodes and not yet answered.
#[derive(Debug, Default)]
pub struct Calls {
    waiting: Mutex<HashMap<u64, oneshot::Sender<VolumeReply>>>,
    next: AtomicU64,
}

impl Calls {
    /// A new call: its id and where its answer arrives.
    pub fn open(&self) -> (u64, oneshot::Receiver<VolumeReply>) {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let (tx, rx) = oneshot::channel();
        if let Ok(mut w) = self.waiting.lock() {
            w.insert(id, tx);
        }
        (id, rx)
    }

    /// Gives up on call `id` (not sent, or timed out).
    pub fn forget(&self, id: u64) {
        if let Ok(mut w) = self.waiting.lock() {
            w.remove(&id);
        }
    }

    /// Delivers a node's answer to the waiting call; an answer nobody waits for is dropped.
    pub fn deliver(&self, reply: VolumeReply) {
        let waiting = self
            .waiting
            .lock()
            .ok()
            .and_then(|mut w| w.remove(&reply.call_id));
        if let Some(tx) = waiting {
            let _ = tx.send(reply);
        }
    }

    /// How many calls wait.
    #[cfg(test)]
    fn pending(&self) -> usize {
        self.waiting.lock().map_or(0, |w| w.len())
    }
}

/// A node's answer as a result: OK is the reply, any other code the matching error.
pub fn outcome(node: &str, reply: VolumeReply) -> Result<VolumeReply, CsiError> {
    let message = format!("node {node}: {}", reply.message);
    match tonic::Code::from_i32(reply.code) {
        tonic::Code::Ok => Ok(reply),
        tonic::Code::InvalidArgument => Err(CsiError::InvalidArgument(message)),
        tonic::Code::NotFound => Err(CsiError::NotFound(message)),
        tonic::Code::AlreadyExists => Err(CsiError::AlreadyExists(message)),
        tonic::Code::FailedPrecondition => Err(CsiError::FailedPrecondition(message)),
        tonic::Code::OutOfRange => Err(CsiError::OutOfRange(message)),
        tonic::Code::ResourceExhausted => Err(CsiError::ResourceExhausted(message)),
        tonic::Code::Aborted => Err(CsiError::Aborted(message)),
        tonic::Code::Unimplemented => Err(CsiError::Unimplemented(message)),
        tonic::Code::Unavailable => Err(CsiError::Unavailable(message)),
        _ => Err(CsiError::Internal(message)),
    }
}

#[cfg(test)]
mod tests {
    use hearth_csi::CsiError;
    use hearth_proto::hearth::v1::VolumeReply;

    use super::{outcome, Calls};

    #[tokio::test]
    async fn an_answer_reaches_its_call_and_strays_are_dropped() {
        let calls = Calls::default();
        let (a, rx_a) = calls.open();
        let (b, _rx_b) = calls.open();
        assert_ne!(a, b);
        calls.deliver(VolumeReply {
            call_id: 999,
            ..VolumeReply::default()
        });
        calls.deliver(VolumeReply {
            call_id: a,
            volume_id: "v".into(),
            ..VolumeReply::default()
        });
        assert_eq!(rx_a.await.unwrap().volume_id, "v");
        calls.forget(b);
        assert_eq!(calls.pending(), 0);
    }

    #[test]
    fn codes_map_to_errors() {
        let reply = |code: tonic::Code| VolumeReply {
            code: code as i32,
            message: "m".into(),
            ..VolumeReply::default()
        };
        assert!(outcome("n", reply(tonic::Code::Ok)).is_ok());
        assert!(matches!(
            outcome("n", reply(tonic::Code::ResourceExhausted)),
            Err(CsiError::ResourceExhausted(m)) if m == "node n: m"
        ));
        assert!(matches!(
            outcome("n", reply(tonic::Code::DataLoss)),
            Err(CsiError::Internal(_))
        ));
    }
}
