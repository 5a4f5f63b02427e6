//! Leader election over one `coordination.k8s.io/v1` Lease, the way client-go's leaderelection
//! does it: whoever holds an unexpired lease leads; every write carries the lease's
//! resourceVersion, so two contenders racing on one expired lease cannot both win.
//!
//! Expiry is judged by observed time, not by the holder's `renewTime` against this host's
//! wall clock: a contender notes, on its own monotonic clock, when it last saw the Lease's
//! holder or resourceVersion change, and takes over only when `leaseDurationSeconds` have
//! passed since without a change. Clock offsets between hosts do not matter, only rates.
//! The term is `leaseTransitions`, which grows with every change of holder.

use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use kube::core::ObjectMeta;

use super::kube_err;
use crate::store::StoreError;

/// The lease duration in whole seconds, at least one.
fn duration_seconds(ttl: Duration) -> i32 {
    i32::try_from(
        ttl.as_secs()
            .saturating_add(u64::from(ttl.subsec_nanos() > 0)),
    )
    .unwrap_or(i32::MAX)
    .max(1)
}

/// What this contender last saw of the Lease, and when (its own monotonic clock).
#[derive(Debug, Clone)]
pub(super) struct Observed {
    holder: String,
    version: String,
    at: Instant,
}

/// Notes the Lease as seen at `now`; returns since when it has been unchanged.
fn observe(seen: &Mutex<Option<Observed>>, holder: &str, version: &str, now: Instant) -> Instant {
    let mut seen = seen
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    match seen.as_ref() {
        Some(o) if o.holder == holder && o.version == version => o.at,
        _ => {
            *seen = Some(Observed {
                holder: holder.to_owned(),
                version: version.to_owned(),
                at: now,
            });
            now
        }
    }
}

fn term(spec: &LeaseSpec) -> u64 {
    u64::try_from(spec.lease_transitions.unwrap_or(0)).unwrap_or(0)
}

/// Takes or renews the lease `name` for `holder`: `Some(term)` while it leads, `None` while
/// another holder's lease has changed within its duration (by `now`, this process's monotonic
/// clock), and when a contender's write lands first (409). `wall` is only written, for people.
pub(super) async fn lead(
    api: &Api<Lease>,
    name: &str,
    holder: &str,
    ttl: Duration,
    wall: SystemTime,
    now: Instant,
    seen: &Mutex<Option<Observed>>,
) -> Result<Option<u64>, StoreError> {
    let wall = Timestamp::try_from(wall)
        .map_err(|e| StoreError::Backend(format!("lease {name}: clock: {e}")))?;
    let step = |what: &str| format!("lease {name}: {what}");
    let Some(mut lease) = api
        .get_opt(name)
        .await
        .map_err(|e| kube_err(&step("get"), e))?
    else {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(name.to_owned()),
                ..ObjectMeta::default()
            },
            spec: Some(LeaseSpec {
                holder_identity: Some(holder.to_owned()),
                lease_duration_seconds: Some(duration_seconds(ttl)),
                acquire_time: Some(MicroTime(wall)),
                renew_time: Some(MicroTime(wall)),
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            }),
        };
        return match api.create(&PostParams::default(), &lease).await {
            Ok(_) => Ok(Some(0)),
            Err(kube::Error::Api(status)) if status.is_already_exists() => Ok(None),
            Err(e) => Err(kube_err(&step("create"), e)),
        };
    };
    let version = lease.metadata.resource_version.clone().unwrap_or_default();
    let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
    let current = spec.holder_identity.clone().unwrap_or_default();
    let unchanged_since = observe(seen, &current, &version, now);
    let ours = current == holder;
    if !ours && !current.is_empty() {
        let seconds = spec
            .lease_duration_seconds
            .map_or(ttl, |s| Duration::from_secs(u64::try_from(s).unwrap_or(0)));
        if now < unchanged_since + seconds {
            return Ok(None);
        }
    }
    if !ours {
        spec.holder_identity = Some(holder.to_owned());
        spec.acquire_time = Some(MicroTime(wall));
        spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0).saturating_add(1));
    }
    spec.renew_time = Some(MicroTime(wall));
    spec.lease_duration_seconds = Some(duration_seconds(ttl));
    let term = term(spec);
    // `lease` still carries the resourceVersion it was read with: the compare in the swap.
    match api.replace(name, &PostParams::default(), &lease).await {
        Ok(_) => Ok(Some(term)),
        Err(kube::Error::Api(status)) if status.is_conflict() => Ok(None),
        Err(e) => Err(kube_err(&step("replace"), e)),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::duration_seconds;

    #[test]
    fn durations_round_up_to_whole_seconds() {
        assert_eq!(duration_seconds(Duration::from_millis(1)), 1);
        assert_eq!(duration_seconds(Duration::ZERO), 1);
        assert_eq!(duration_seconds(Duration::from_millis(15_001)), 16);
        assert_eq!(duration_seconds(Duration::from_secs(15)), 15);
        assert_eq!(duration_seconds(Duration::from_secs(u64::MAX)), i32::MAX);
    }
}
