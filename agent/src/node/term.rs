//! The highest coordinator term this agent has seen. Every leadership of the coordinator has
//! a term that grows with each change of leader; a Welcome, Lease or Assignments of an older
//! term comes from a coordinator that no longer leads (a paused leader that resumed, a stale
//! replica) and is refused. Kept for the process's lifetime, across sessions.

use std::sync::atomic::{AtomicU64, Ordering};

/// The highest term seen.
#[derive(Debug, Default)]
pub struct TermGuard {
    seen: AtomicU64,
}

impl TermGuard {
    /// Whether `term` may be acted on: not older than any seen. Raises the mark when newer.
    pub fn admit(&self, term: u64) -> bool {
        self.seen.fetch_max(term, Ordering::AcqRel) <= term
    }

    /// The highest term seen.
    pub fn seen(&self) -> u64 {
        self.seen.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::TermGuard;

    #[test]
    fn older_terms_are_refused_equal_and_newer_admitted() {
        let g = TermGuard::default();
        assert!(g.admit(0), "a coordinator without terms");
        assert!(g.admit(3));
        assert!(g.admit(3), "the same leader again");
        assert!(!g.admit(2), "an older leader");
        assert_eq!(g.seen(), 3);
        assert!(g.admit(7));
        assert!(!g.admit(3));
        assert_eq!(g.seen(), 7);
    }
}
