//! The cache of status access outcomes: by the token's SHA-256 (the token itself is never
//! kept) and the path. An allowed outcome lives [`ALLOWED_TTL`], a refusal [`DENIED_TTL`]
//! (a token just granted works soon; a revoked one stops soon); at most [`MAX_ENTRIES`] are
//! kept, so made-up tokens cannot grow it without end. Review failures are never cached.
//! Pure: the caller passes the time.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::Denied;

/// How long an allowed outcome is reused.
pub const ALLOWED_TTL: Duration = Duration::from_secs(60);
/// How long a refusal is reused.
pub const DENIED_TTL: Duration = Duration::from_secs(10);
/// The most outcomes kept.
pub const MAX_ENTRIES: usize = 1024;

/// What an outcome is cached under.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    token: [u8; 32],
    path: String,
}

impl Key {
    /// The key of `token` asking for `path`.
    pub fn new(token: &str, path: &str) -> Self {
        Self {
            token: Sha256::digest(token.as_bytes()).into(),
            path: path.to_owned(),
        }
    }
}

/// The cached outcomes.
#[derive(Debug, Default)]
pub struct Cache {
    entries: HashMap<Key, (Result<String, Denied>, Instant)>,
}

impl Cache {
    /// The outcome for `key`, unless it is older than its lifetime at `now`.
    pub fn get(&self, key: &Key, now: Instant) -> Option<Result<String, Denied>> {
        let (outcome, at) = self.entries.get(key)?;
        (now.saturating_duration_since(*at) < ttl(outcome)).then(|| outcome.clone())
    }

    /// Keeps `outcome` for `key` from `now` (not a review failure). When full, the expired
    /// entries go first, then all of them.
    pub fn put(&mut self, key: Key, outcome: Result<String, Denied>, now: Instant) {
        if matches!(outcome, Err(Denied::Review(_))) {
            return;
        }
        if self.entries.len() >= MAX_ENTRIES && !self.entries.contains_key(&key) {
            self.entries
                .retain(|_, (o, at)| now.saturating_duration_since(*at) < ttl(o));
            if self.entries.len() >= MAX_ENTRIES {
                self.entries.clear();
            }
        }
        self.entries.insert(key, (outcome, now));
    }

    /// Entries kept.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

fn ttl(outcome: &Result<String, Denied>) -> Duration {
    if outcome.is_ok() {
        ALLOWED_TTL
    } else {
        DENIED_TTL
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forbidden() -> Result<String, Denied> {
        Err(Denied::Forbidden {
            user: "u".into(),
            path: "/status".into(),
            reason: String::new(),
        })
    }

    #[test]
    fn allowed_outcomes_live_longer_than_refusals() {
        let t0 = Instant::now();
        let mut c = Cache::default();
        c.put(Key::new("good", "/metrics"), Ok("u".into()), t0);
        c.put(Key::new("bad", "/metrics"), forbidden(), t0);
        let later = t0 + DENIED_TTL;
        assert_eq!(
            c.get(&Key::new("good", "/metrics"), later),
            Some(Ok("u".into()))
        );
        assert_eq!(c.get(&Key::new("bad", "/metrics"), later), None);
        assert_eq!(
            c.get(
                &Key::new("bad", "/metrics"),
                later - Duration::from_millis(1)
            ),
            Some(forbidden())
        );
        assert_eq!(c.get(&Key::new("good", "/metrics"), t0 + ALLOWED_TTL), None);
    }

    #[test]
    fn the_path_is_part_of_the_key_and_the_token_is_not_kept() {
        let t0 = Instant::now();
        let mut c = Cache::default();
        c.put(Key::new("s3cret", "/metrics"), Ok("u".into()), t0);
        assert_eq!(c.get(&Key::new("s3cret", "/status"), t0), None);
        assert!(!format!("{c:?}").contains("s3cret"));
    }

    #[test]
    fn review_failures_are_not_cached() {
        let mut c = Cache::default();
        c.put(
            Key::new("t", "/status"),
            Err(Denied::Review("connection refused".into())),
            Instant::now(),
        );
        assert!(c.is_empty());
    }

    #[test]
    fn made_up_tokens_cannot_grow_it_without_end() {
        let t0 = Instant::now();
        let mut c = Cache::default();
        for i in 0..MAX_ENTRIES {
            c.put(Key::new(&format!("old{i}"), "/status"), forbidden(), t0);
        }
        assert_eq!(c.len(), MAX_ENTRIES);
        // The expired go first.
        let later = t0 + DENIED_TTL;
        c.put(Key::new("fresh", "/status"), Ok("u".into()), later);
        assert_eq!(c.len(), 1);
        // When nothing has expired, everything goes.
        for i in 0..MAX_ENTRIES * 2 {
            c.put(Key::new(&format!("new{i}"), "/status"), forbidden(), later);
            assert!(c.len() <= MAX_ENTRIES);
        }
    }
}
