//! The engine's two loops: the renewal task (leadership, on its own task, each attempt bounded)
//! and the decision loop (reloads, decision passes), with the heartbeats `/healthz` reads.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::{Change, Engine, Pace, StoreError};

impl Engine {
    /// Why `/healthz` should fail: the decision loop or the renewal task has not gone round
    /// for longer than the leadership TTL plus 5 s (a store call that hangs, a stuck runtime).
    pub fn stalled(&self) -> Option<String> {
        let limit = self.timing.leadership + Duration::from_secs(5);
        let (main, renew) = *self
            .beats
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        [("decision loop", main), ("leadership renewal", renew)]
            .into_iter()
            .find(|(_, at)| at.elapsed() > limit)
            .map(|(what, at)| format!("the {what} has not run for {:?}", at.elapsed()))
    }

    fn beat(&self, renewal: bool) {
        let mut b = self
            .beats
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if renewal {
            b.1 = Instant::now();
        } else {
            b.0 = Instant::now();
        }
    }

    /// Bounds a store call by the renewal pace: a hung call must not stall the loop.
    pub(super) async fn bounded<T>(
        &self,
        what: &str,
        call: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let limit = Pace::for_ttl(self.timing.leadership).retry;
        tokio::time::timeout(limit, call).await.unwrap_or_else(|_| {
            Err(StoreError::Backend(format!(
                "{what}: no answer in {limit:?}"
            )))
        })
    }

    /// Renews the leadership forever, one attempt per pace period, each bounded by it.
    async fn renew(self: Arc<Self>) {
        let pace = Pace::for_ttl(self.timing.leadership);
        loop {
            let started = Instant::now();
            let attempt = self.store.lead(&self.id, self.timing.leadership);
            let result = tokio::time::timeout(pace.retry, attempt).await;
            self.beat(true);
            let now = Instant::now();
            {
                let mut inner = self.lock();
                let change = match result {
                    Ok(Ok(Some(term))) => inner.clock.renewed(started, term, now),
                    Ok(Ok(None)) => inner.clock.lost(),
                    Ok(Err(e)) => {
                        tracing::warn!("leader election: {e}");
                        inner.clock.expire(now)
                    }
                    Err(_) => {
                        tracing::warn!(timeout = ?pace.retry, "leader election: no answer in time");
                        inner.clock.expire(now)
                    }
                };
                match change {
                    Change::Started => {
                        inner.forget();
                        let term = inner.clock.at(now).map_or(0, |l| l.term);
                        tracing::info!(id = %self.id, term, "leading");
                        self.kick.notify_one();
                    }
                    Change::Stopped => {
                        inner.forget();
                        tracing::warn!(id = %self.id, "lost the leadership; sessions closed");
                    }
                    Change::Renewed | Change::Idle => {}
                }
            }
            tokio::time::sleep_until(started + pace.retry).await;
        }
    }

    /// Runs forever: the renewal task, reloads from the store, decision passes on changes, at
    /// lease ends, and every second.
    pub async fn run(self: Arc<Self>) {
        tokio::spawn(Arc::clone(&self).renew());
        let mut last_reload = Instant::now() - Duration::from_secs(3600);
        // The count is the cluster's, not this process's: a standby and a coordinator that has
        // not yet taken the lead after a restart report what the store holds.
        self.load_failovers().await;
        loop {
            self.beat(false);
            let now = Instant::now();
            let (lead, loaded) = {
                let mut inner = self.lock();
                if inner.clock.expire(now) == Change::Stopped {
                    inner.forget();
                    tracing::warn!(id = %self.id, "leadership not renewed in time; sessions closed");
                }
                (inner.clock.at(now), inner.ready(now).is_some())
            };
            let mut due = None;
            if lead.is_some() {
                if !loaded || last_reload.elapsed() >= Duration::from_secs(2) {
                    if !loaded {
                        self.load_failovers().await;
                    }
                    last_reload = Instant::now();
                    if let Err(e) = self.reload().await {
                        tracing::warn!("reading the store: {e}");
                    }
                }
                due = self.tick().await;
            } else if last_reload.elapsed() >= Duration::from_secs(2) {
                last_reload = Instant::now();
                self.load_failovers().await;
            }
            let cap = Instant::now() + Duration::from_secs(1);
            let until = due.map_or(cap, |d| d.min(cap));
            tokio::select! {
                () = self.kick.notified() => {}
                () = tokio::time::sleep_until(until) => {}
            }
        }
    }
}
