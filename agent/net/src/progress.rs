//! What the network reconciler's last pass found, shared with the health collector so
//! `/readyz` can say whether the required network state has converged. The controller writes
//! it after every pass (and when it stops); readers take a copy. Owns no netlink access.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

/// The most problem messages kept from one pass (the counts stay exact).
pub const MAX_PROBLEMS: usize = 8;

/// The outcome of the reconciler's last pass.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NetState {
    /// When the pass ended (seconds since the Unix epoch).
    pub last_pass_unix: f64,
    /// True when the pass left no failure and no conflict: the namespace matches the file.
    pub converged: bool,
    /// Netlink, sysctl and announcement steps that failed (or 1 for a failed dump).
    pub failures: u32,
    /// Desired objects blocked by objects Hearth does not own.
    pub conflicts: u32,
    /// The first [`MAX_PROBLEMS`] failures and conflicts, as the log prints them.
    pub problems: Vec<String>,
    /// The reconciler's resync period: a converged reconciler passes at least this often.
    pub resync: Duration,
    /// Set when the reconciler stopped for good, with why.
    pub stopped: Option<String>,
}

impl NetState {
    /// A pass ending now with these failures and conflicts (messages as the log prints them).
    pub fn pass(failures: &[String], conflicts: &[String], resync: Duration) -> Self {
        let problems = failures
            .iter()
            .chain(conflicts)
            .take(MAX_PROBLEMS)
            .cloned()
            .collect();
        Self {
            last_pass_unix: now_unix(),
            converged: failures.is_empty() && conflicts.is_empty(),
            failures: u32::try_from(failures.len()).unwrap_or(u32::MAX),
            conflicts: u32::try_from(conflicts.len()).unwrap_or(u32::MAX),
            problems,
            resync,
            stopped: None,
        }
    }
}

fn now_unix() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

/// A shared handle on the last [`NetState`]; `None` until the first pass ends.
#[derive(Debug, Clone, Default)]
pub struct NetProgress {
    last: Arc<Mutex<Option<NetState>>>,
}

impl NetProgress {
    /// Records a pass.
    pub fn record(&self, state: NetState) {
        *self.last.lock().unwrap_or_else(PoisonError::into_inner) = Some(state);
    }

    /// Records that the reconciler stopped, keeping the last pass's time.
    pub fn stopped(&self, why: impl Into<String>) {
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        let mut state = last.take().unwrap_or_default();
        state.converged = false;
        state.stopped = Some(why.into());
        *last = Some(state);
    }

    /// A copy of the last state.
    pub fn latest(&self) -> Option<NetState> {
        self.last
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pass_with_a_conflict_has_not_converged_and_problems_are_bounded() {
        let failures: Vec<String> = (0..10).map(|i| format!("f{i}")).collect();
        let s = NetState::pass(&failures, &["c".into()], Duration::from_secs(30));
        assert!(!s.converged);
        assert_eq!((s.failures, s.conflicts), (10, 1));
        assert_eq!(s.problems.len(), MAX_PROBLEMS);
        assert!(NetState::pass(&[], &[], Duration::ZERO).converged);
    }

    #[test]
    fn stopping_keeps_the_last_pass_time() {
        let p = NetProgress::default();
        assert_eq!(p.latest(), None);
        p.record(NetState::pass(&[], &[], Duration::from_secs(30)));
        let at = p.latest().expect("recorded").last_pass_unix;
        p.stopped("netlink socket closed");
        let s = p.latest().expect("still there");
        assert!(!s.converged && s.last_pass_unix == at);
        assert_eq!(s.stopped.as_deref(), Some("netlink socket closed"));
    }
}
