//! [`FakeAttacher`]: a recording fake of the [`Attacher`], for unit tests of the node service.
//!
//! Each volume the test adds has the device node it attaches as; the fake tracks whether it is
//! attached, its size and its condition, and records attach, detach and refresh calls in order.
//! It pairs with [`crate::mount::fake::FakeMounter`], which must know the same device nodes.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::{Attacher, Attachment, Condition};
use crate::CsiError;

/// A call the fake received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttachCall {
    /// [`Attacher::attach`] of the volume.
    Attach(String),
    /// [`Attacher::detach`] of the volume.
    Detach(String),
    /// [`Attacher::refresh_size`] of the volume.
    RefreshSize(String),
}

/// The fake's operations that a test can make fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachOp {
    /// [`Attacher::attach`].
    Attach,
    /// [`Attacher::detach`].
    Detach,
}

#[derive(Debug, Clone)]
struct FakeVolume {
    device: PathBuf,
    attached: bool,
    size: u64,
    condition: Condition,
}

#[derive(Debug, Default)]
struct State {
    volumes: BTreeMap<String, FakeVolume>,
    calls: Vec<AttachCall>,
    failures: Vec<(AttachOp, CsiError)>,
}

/// A recording fake Attacher.
#[derive(Debug, Default)]
pub struct FakeAttacher {
    state: Mutex<State>,
}

impl FakeAttacher {
    /// A fake that knows no volumes.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a detached volume of `size` bytes that attaches as `device`.
    pub fn add_volume(&self, id: &str, device: &Path, size: u64) {
        self.state().volumes.insert(
            id.to_owned(),
            FakeVolume {
                device: device.to_owned(),
                attached: false,
                size,
                condition: Condition::healthy("fake volume"),
            },
        );
    }

    /// Marks a known volume attached (as if an earlier call or a crashed agent had attached it).
    pub fn set_attached(&self, id: &str, attached: bool) {
        if let Some(v) = self.state().volumes.get_mut(id) {
            v.attached = attached;
        }
    }

    /// Sets a volume's size (what [`Attacher::refresh_size`] reports).
    pub fn set_size(&self, id: &str, size: u64) {
        if let Some(v) = self.state().volumes.get_mut(id) {
            v.size = size;
        }
    }

    /// Sets a volume's condition.
    pub fn set_condition(&self, id: &str, condition: Condition) {
        if let Some(v) = self.state().volumes.get_mut(id) {
            v.condition = condition;
        }
    }

    /// Whether the volume is attached now.
    pub fn is_attached(&self, id: &str) -> bool {
        self.state().volumes.get(id).is_some_and(|v| v.attached)
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<AttachCall> {
        self.state().calls.clone()
    }

    /// Makes the next call of `op` fail with `error` (once).
    pub fn fail_next(&self, op: AttachOp, error: CsiError) {
        self.state().failures.push((op, error));
    }

    fn take_failure(s: &mut State, op: AttachOp) -> Option<CsiError> {
        let i = s.failures.iter().position(|(o, _)| *o == op)?;
        Some(s.failures.remove(i).1)
    }
}

fn unknown(id: &str) -> CsiError {
    CsiError::NotFound(format!("volume {id} does not exist"))
}

#[async_trait::async_trait]
impl Attacher for FakeAttacher {
    async fn attach(
        &self,
        volume_id: &str,
        _publish_context: &HashMap<String, String>,
    ) -> Result<Attachment, CsiError> {
        let mut s = self.state();
        s.calls.push(AttachCall::Attach(volume_id.to_owned()));
        if let Some(e) = Self::take_failure(&mut s, AttachOp::Attach) {
            return Err(e);
        }
        let v = s
            .volumes
            .get_mut(volume_id)
            .ok_or_else(|| unknown(volume_id))?;
        let fresh = !v.attached;
        v.attached = true;
        Ok(Attachment {
            device: v.device.clone(),
            fresh,
        })
    }

    async fn device(&self, volume_id: &str) -> Result<Option<PathBuf>, CsiError> {
        Ok(self
            .state()
            .volumes
            .get(volume_id)
            .filter(|v| v.attached)
            .map(|v| v.device.clone()))
    }

    async fn detach(&self, volume_id: &str) -> Result<(), CsiError> {
        let mut s = self.state();
        s.calls.push(AttachCall::Detach(volume_id.to_owned()));
        if let Some(e) = Self::take_failure(&mut s, AttachOp::Detach) {
            return Err(e);
        }
        if let Some(v) = s.volumes.get_mut(volume_id) {
            v.attached = false;
        }
        Ok(())
    }

    async fn refresh_size(&self, volume_id: &str) -> Result<u64, CsiError> {
        let mut s = self.state();
        s.calls.push(AttachCall::RefreshSize(volume_id.to_owned()));
        match s.volumes.get(volume_id) {
            Some(v) if v.attached => Ok(v.size),
            Some(_) => Err(CsiError::FailedPrecondition(format!(
                "volume {volume_id} is not attached on this node"
            ))),
            None => Err(unknown(volume_id)),
        }
    }

    async fn condition(&self, volume_id: &str) -> Result<Condition, CsiError> {
        self.state()
            .volumes
            .get(volume_id)
            .map(|v| v.condition.clone())
            .ok_or_else(|| unknown(volume_id))
    }
}
