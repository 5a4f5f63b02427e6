//! Leader election over one `coordination.k8s.io/v1` Lease, the way client-go's leaderelection
//! does it: whoever holds an unexpired lease leads; every write carries the lease's
//! resourceVersion, so two contenders racing on one expired lease cannot both win.

use std::time::{Duration, SystemTime};

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
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

/// Whether the lease is free for anyone at `now`: no holder, or not renewed within its duration.
fn expired(spec: &LeaseSpec, now: Timestamp) -> bool {
    let holder = spec.holder_identity.as_deref().unwrap_or_default();
    let (Some(renewed), Some(seconds)) = (&spec.renew_time, spec.lease_duration_seconds) else {
        return true;
    };
    holder.is_empty() || renewed.0 + SignedDuration::from_secs(i64::from(seconds)) <= now
}

/// Takes or renews the lease `name` for `holder` at `now`. `Ok(false)` while another holder's
/// lease is valid, and when a contender's write lands first (409).
pub(super) async fn lead(
    api: &Api<Lease>,
    name: &str,
    holder: &str,
    ttl: Duration,
    now: SystemTime,
) -> Result<bool, StoreError> {
    let now = Timestamp::try_from(now)
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
                acquire_time: Some(MicroTime(now)),
                renew_time: Some(MicroTime(now)),
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            }),
        };
        return match api.create(&PostParams::default(), &lease).await {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(status)) if status.is_already_exists() => Ok(false),
            Err(e) => Err(kube_err(&step("create"), e)),
        };
    };
    let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
    let ours = spec.holder_identity.as_deref() == Some(holder);
    if !ours && !expired(spec, now) {
        return Ok(false);
    }
    if !ours {
        spec.holder_identity = Some(holder.to_owned());
        spec.acquire_time = Some(MicroTime(now));
        spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0).saturating_add(1));
    }
    spec.renew_time = Some(MicroTime(now));
    spec.lease_duration_seconds = Some(duration_seconds(ttl));
    // `lease` still carries the resourceVersion it was read with: the compare in the swap.
    match api.replace(name, &PostParams::default(), &lease).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(status)) if status.is_conflict() => Ok(false),
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
