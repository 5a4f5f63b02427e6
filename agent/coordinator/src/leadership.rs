//! The leader's proof that it leads, on its own monotonic clock.
//!
//! Each renewal of the store's leadership is an attempt started at some instant `t`; when it
//! succeeds, this coordinator leads until `t + renew_deadline`, never longer, however late the
//! answer came. `renew_deadline` is shorter than the leadership TTL that a contender waits
//! (on its own clock, from when it last saw the record change) before it takes over, so the
//! old leader has stopped acting before the new one starts, whatever happened in between: a
//! hung request, a partition from the API server, a pause of the process. Leases granted to
//! nodes are cut to end by the same instant, so no node holds a lease of a leader that no
//! longer leads.
//!
//! Every leadership carries a term from the store (the Lease's `leaseTransitions`, or the
//! SQLite counter bumped under the lock); it grows with each change of leader. Nodes refuse an
//! older term than one they have seen, and the store refuses state written in an older term.

use std::time::Duration;

use tokio::time::Instant;

/// How the renewals are paced, from the leadership TTL (client-go's 15 s / 10 s / 2 s, scaled).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pace {
    /// How long a successful renewal lets this coordinator lead, from the attempt's start.
    pub renew_deadline: Duration,
    /// How often renewals are tried, and how long one attempt may take.
    pub retry: Duration,
}

impl Pace {
    /// The pace for a leadership TTL: lead for 2/3 of it past each renewal, retry every 1/6.
    pub fn for_ttl(ttl: Duration) -> Self {
        Self {
            renew_deadline: ttl * 2 / 3,
            retry: (ttl / 6).max(Duration::from_millis(10)),
        }
    }
}

/// A held leadership.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lead {
    /// Since when (the first successful renewal of this term).
    pub since: Instant,
    /// Until when at most, unless renewed.
    pub until: Instant,
    /// The store's term.
    pub term: u64,
}

/// What a renewal changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Still leading in the same term.
    Renewed,
    /// Started leading (or leads again, in a new term).
    Started,
    /// Stopped leading (lost, or the deadline passed).
    Stopped,
    /// Was not leading and still is not.
    Idle,
}

/// The leadership clock.
#[derive(Debug, Clone)]
pub struct LeaderClock {
    pace: Pace,
    lead: Option<Lead>,
}

impl LeaderClock {
    /// A clock that does not lead yet.
    pub fn new(pace: Pace) -> Self {
        Self { pace, lead: None }
    }

    /// The pace.
    pub fn pace(&self) -> Pace {
        self.pace
    }

    /// A renewal that was started at `started` succeeded with `term`, and its answer came at
    /// `now`. An answer that came after its own deadline proves nothing any more.
    pub fn renewed(&mut self, started: Instant, term: u64, now: Instant) -> Change {
        let until = started + self.pace.renew_deadline;
        if now >= until {
            return self.expire(now);
        }
        match self.lead {
            Some(l) if l.term == term && now < l.until => {
                self.lead = Some(Lead {
                    until: until.max(l.until),
                    ..l
                });
                Change::Renewed
            }
            _ => {
                self.lead = Some(Lead {
                    since: now,
                    until,
                    term,
                });
                Change::Started
            }
        }
    }

    /// The store said another holder leads.
    pub fn lost(&mut self) -> Change {
        match self.lead.take() {
            Some(_) => Change::Stopped,
            None => Change::Idle,
        }
    }

    /// Forgets a leadership whose deadline has passed at `now`.
    pub fn expire(&mut self, now: Instant) -> Change {
        match self.lead {
            Some(l) if now >= l.until => {
                self.lead = None;
                Change::Stopped
            }
            Some(_) => Change::Renewed,
            None => Change::Idle,
        }
    }

    /// The leadership held at `now`, if any.
    pub fn at(&self, now: Instant) -> Option<Lead> {
        self.lead.filter(|l| now < l.until)
    }

    /// How long a lease granted to a node at `now` may last: `lease`, cut to end when this
    /// leadership may end; `None` when it does not lead.
    pub fn grant(&self, now: Instant, lease: Duration) -> Option<Duration> {
        self.at(now).map(|l| lease.min(l.until - now))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tokio::time::Instant;

    use super::{Change, LeaderClock, Pace};

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn clock() -> LeaderClock {
        LeaderClock::new(Pace::for_ttl(ms(900)))
    }

    #[test]
    fn the_pace_follows_client_go() {
        let p = Pace::for_ttl(Duration::from_secs(15));
        assert_eq!(p.renew_deadline, Duration::from_secs(10));
        assert_eq!(p.retry, Duration::from_millis(2500));
    }

    #[test]
    fn leads_until_the_deadline_from_the_attempts_start() {
        let t0 = Instant::now();
        let mut c = clock();
        assert_eq!(c.at(t0), None);
        // Attempt started at t0, answered 200 ms later: leads until t0 + 600, not t0 + 800.
        assert_eq!(c.renewed(t0, 3, t0 + ms(200)), Change::Started);
        let l = c.at(t0 + ms(599)).unwrap();
        assert_eq!((l.since, l.until, l.term), (t0 + ms(200), t0 + ms(600), 3));
        assert_eq!(c.at(t0 + ms(600)), None);
    }

    #[test]
    fn a_renewal_extends_and_a_late_answer_proves_nothing() {
        let t0 = Instant::now();
        let mut c = clock();
        c.renewed(t0, 1, t0);
        assert_eq!(c.renewed(t0 + ms(150), 1, t0 + ms(160)), Change::Renewed);
        assert_eq!(c.at(t0).unwrap().until, t0 + ms(750));
        // An attempt that hung past its own deadline (a stuck apiserver request).
        assert_eq!(c.renewed(t0 + ms(300), 1, t0 + ms(900)), Change::Stopped);
        assert_eq!(c.at(t0 + ms(900)), None);
        // An old attempt answering after a newer one does not shorten the lead.
        c.renewed(t0 + ms(1000), 1, t0 + ms(1001));
        c.renewed(t0 + ms(1100), 1, t0 + ms(1101));
        c.renewed(t0 + ms(1000), 1, t0 + ms(1150));
        assert_eq!(c.at(t0 + ms(1150)).unwrap().until, t0 + ms(1700));
    }

    #[test]
    fn a_pause_longer_than_the_deadline_ends_the_lead() {
        let t0 = Instant::now();
        let mut c = clock();
        c.renewed(t0, 1, t0);
        // Frozen for 5 s: nothing ran; on resume the clock says it does not lead.
        let resumed = t0 + ms(5000);
        assert_eq!(c.at(resumed), None);
        assert_eq!(c.grant(resumed, ms(350)), None);
        assert_eq!(c.expire(resumed), Change::Stopped);
        // The next successful renewal starts a new lead.
        assert_eq!(c.renewed(resumed, 1, resumed), Change::Started);
    }

    #[test]
    fn a_new_term_is_a_new_lead() {
        let t0 = Instant::now();
        let mut c = clock();
        c.renewed(t0, 1, t0);
        assert_eq!(c.renewed(t0 + ms(100), 2, t0 + ms(100)), Change::Started);
        assert_eq!(c.at(t0 + ms(100)).unwrap().since, t0 + ms(100));
        assert_eq!(c.lost(), Change::Stopped);
        assert_eq!(c.lost(), Change::Idle);
    }

    #[test]
    fn grants_never_outlive_the_lead() {
        let t0 = Instant::now();
        let mut c = clock();
        c.renewed(t0, 1, t0);
        assert_eq!(c.grant(t0 + ms(100), ms(350)), Some(ms(350)));
        assert_eq!(c.grant(t0 + ms(500), ms(350)), Some(ms(100)));
        assert_eq!(c.grant(t0 + ms(600), ms(350)), None);
    }
}
