//! [`KubeStore`]: the coordinator's state as custom resources (see [`crd`]) and leadership as
//! a `coordination.k8s.io/v1` Lease (see [`lease`]).
//!
//! Each write is one apiserver request, atomic per object, and no write overwrites what it did
//! not read: a replace carries the resourceVersion it was read with, and a 409 is answered by
//! refusing (`Conflict`), never by reading again and overwriting. A floating IP's state is its
//! object's status. Where uniqueness matters, objects are created once: one
//! `FloatingIPClaim` per address ([`claims`]) and one `HearthVolume` per volume, so two
//! writers (two coordinators that both believe they lead) cannot give one address to two
//! floating IPs or place one volume twice. This module owns the `hearth.io` objects and the
//! one Lease it is given; it touches nothing else in the cluster.

#[cfg(test)]
mod apiserver_tests;
mod claims;
pub mod crd;
mod lease;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, DeleteParams, ListParams, PostParams, Preconditions};
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde::Serialize;

pub use crd::{
    claim_object_name, crds, crds_yaml, volume_object_name, FloatingIP, FloatingIPClaim,
    FloatingIPPool, FloatingIpStatus, HearthVolume,
};

use super::{
    validate, FloatingIp, FloatingIpPool, FloatingIpState, Store, StoreError, VolumeLocation,
};

/// The monotonic time source of lease expiry (observed time); tests inject their own.
pub type Clock = Arc<dyn Fn() -> Instant + Send + Sync>;

/// How long one apiserver request may take before it is given up (a dead connection that
/// never answers must not hold the coordinator; the leader's own renewal deadline is shorter).
pub const REQUEST_TIMEOUT: Duration = crate::kube_client::REQUEST_TIMEOUT;

/// The Kubernetes store.
#[derive(Clone)]
pub struct KubeStore {
    pools: Api<FloatingIPPool>,
    fips: Api<FloatingIP>,
    claims: Api<FloatingIPClaim>,
    volumes: Api<HearthVolume>,
    leases: Api<Lease>,
    lease_name: String,
    clock: Clock,
    /// What leader election last saw of the Lease.
    seen: Arc<std::sync::Mutex<Option<lease::Observed>>>,
}

impl fmt::Debug for KubeStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KubeStore")
            .field("lease_name", &self.lease_name)
            .finish_non_exhaustive()
    }
}

/// A kube error at `step`: 404 is NotFound, 409 Conflict, 400 and 422 Invalid.
pub(super) fn kube_err(step: &str, err: kube::Error) -> StoreError {
    match &err {
        kube::Error::Api(status) => match status.code {
            404 => StoreError::NotFound(format!("{step}: {}", status.message)),
            409 => StoreError::Conflict(format!("{step}: {}", status.message)),
            400 | 422 => StoreError::Invalid(format!("{step}: {}", status.message)),
            _ => StoreError::Backend(format!("{step}: {err}")),
        },
        _ => StoreError::Backend(format!("{step}: {err}")),
    }
}

/// Delete options that act only on the object of this uid (not one recreated under its name).
pub(super) fn only_if_uid(uid: Option<String>) -> DeleteParams {
    DeleteParams {
        preconditions: Some(Preconditions {
            uid,
            resource_version: None,
        }),
        ..DeleteParams::default()
    }
}

pub(super) fn is_status(err: &kube::Error, code: u16) -> bool {
    matches!(err, kube::Error::Api(status) if status.code == code)
}

impl KubeStore {
    /// A store over `client`; leadership is the Lease `lease_name` in `lease_namespace`.
    pub fn new(client: Client, lease_namespace: &str, lease_name: &str) -> Self {
        Self {
            pools: Api::all(client.clone()),
            fips: Api::all(client.clone()),
            claims: Api::all(client.clone()),
            volumes: Api::all(client.clone()),
            leases: Api::namespaced(client, lease_namespace),
            lease_name: lease_name.to_owned(),
            clock: Arc::new(Instant::now),
            seen: Arc::new(std::sync::Mutex::new(None)),
        }
    }

    /// A store over the in-cluster or kubeconfig client.
    pub async fn connect(lease_namespace: &str, lease_name: &str) -> Result<Self, StoreError> {
        // Bounded requests and TCP keepalives (kube's defaults have neither): a request on a
        // connection that died silently would otherwise wait for minutes. Each request here is
        // short (no watches).
        let client = crate::kube_client::connect()
            .await
            .map_err(StoreError::Backend)?;
        Ok(Self::new(client, lease_namespace, lease_name))
    }

    /// Replaces the monotonic clock that lease expiry is judged by.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }
}

/// Creates `desired`, or replaces the object of that name with `desired`'s spec, carrying the
/// read resourceVersion and keeping the status. A 409
/// (another writer created or changed the object between the read and the write) is refused
/// as `Conflict`: the other writer's object stands, the caller may read and decide again.
async fn upsert<K>(api: &Api<K>, what: &str, desired: K) -> Result<(), StoreError>
where
    K: Resource + Clone + fmt::Debug + Serialize + DeserializeOwned,
    K: kube::core::object::HasSpec,
    K::Spec: Clone,
{
    let name = desired.name_any();
    let step = |op: &str| format!("{op} {what} {name}");
    let result = match api
        .get_opt(&name)
        .await
        .map_err(|e| kube_err(&step("get"), e))?
    {
        None => api.create(&PostParams::default(), &desired).await.map(drop),
        Some(mut existing) => {
            *existing.spec_mut() = desired.spec().clone();
            api.replace(&name, &PostParams::default(), &existing)
                .await
                .map(drop)
        }
    };
    result.map_err(|e| match is_status(&e, 409) {
        true => StoreError::Conflict(format!(
            "{}: another writer changed it since it was read",
            step("write")
        )),
        false => kube_err(&step("write"), e),
    })
}

/// Deletes `name`; absent is fine.
async fn delete<K>(
    api: &Api<K>,
    what: &str,
    name: &str,
    dp: &DeleteParams,
) -> Result<(), StoreError>
where
    K: Resource + Clone + fmt::Debug + DeserializeOwned,
{
    match api.delete(name, dp).await {
        Ok(_) => Ok(()),
        Err(e) if is_status(&e, 404) => Ok(()),
        Err(e) => Err(kube_err(&format!("delete {what} {name}"), e)),
    }
}

#[async_trait]
impl Store for KubeStore {
    async fn pools(&self) -> Result<Vec<FloatingIpPool>, StoreError> {
        let list = self
            .pools
            .list(&ListParams::default())
            .await
            .map_err(|e| kube_err("list pools", e))?;
        Ok(list.items.iter().map(FloatingIPPool::to_record).collect())
    }

    async fn put_pool(&self, pool: &FloatingIpPool) -> Result<(), StoreError> {
        validate::pool(pool)?;
        upsert(&self.pools, "pool", FloatingIPPool::from_record(pool)).await
    }

    async fn delete_pool(&self, name: &str) -> Result<(), StoreError> {
        validate::pool_name(name)?;
        delete(&self.pools, "pool", name, &DeleteParams::default()).await
    }

    async fn floating_ips(&self) -> Result<Vec<FloatingIp>, StoreError> {
        let list = self
            .fips
            .list(&ListParams::default())
            .await
            .map_err(|e| kube_err("list floating IPs", e))?;
        Ok(list.items.iter().map(FloatingIP::to_record).collect())
    }

    async fn put_floating_ip(&self, fip: &FloatingIp) -> Result<(), StoreError> {
        validate::floating_ip(fip)?;
        upsert(&self.fips, "floating IP", FloatingIP::from_record(fip)).await
    }

    async fn delete_floating_ip(&self, name: &str) -> Result<(), StoreError> {
        validate::floating_ip_name(name)?;
        let existing = self
            .fips
            .get_opt(name)
            .await
            .map_err(|e| kube_err(&format!("get floating IP {name}"), e))?;
        let Some(existing) = existing else {
            return Ok(());
        };
        // Delete the object that was read, then release its address's claim (a crash in
        // between leaves a claim of a gone floating IP: stale, taken over when needed).
        let dp = only_if_uid(existing.uid());
        delete(&self.fips, "floating IP", name, &dp).await?;
        match (&existing.status, existing.uid()) {
            (Some(status), Some(uid)) => {
                claims::release(&self.claims, status.address, name, &uid).await
            }
            _ => Ok(()),
        }
    }

    async fn floating_ip_states(&self) -> Result<Vec<FloatingIpState>, StoreError> {
        let list = self
            .fips
            .list(&ListParams::default())
            .await
            .map_err(|e| kube_err("list floating IPs", e))?;
        Ok(list.items.iter().filter_map(FloatingIP::to_state).collect())
    }

    async fn swap_floating_ip_state(
        &self,
        expected_epoch: u64,
        state: &FloatingIpState,
    ) -> Result<(), StoreError> {
        validate::state(expected_epoch, state)?;
        let name = &state.name;
        let step = |op: &str| format!("{op} floating IP {name}");
        let Some(mut fip) = self
            .fips
            .get_opt(name)
            .await
            .map_err(|e| kube_err(&step("get"), e))?
        else {
            return Err(StoreError::NotFound(format!("floating IP {name}")));
        };
        let current = fip.status.as_ref().map_or(0, |s| s.epoch);
        if current != expected_epoch {
            return Err(StoreError::Conflict(format!(
                "floating IP {name}: epoch is {current}, expected {expected_epoch}"
            )));
        }
        let written = fip.status.as_ref().map_or(0, |s| s.term);
        if written > state.term {
            return Err(StoreError::Conflict(format!(
                "floating IP {name}: written in term {written}, this write is of older term {}",
                state.term
            )));
        }
        if let Some(stored) = fip.status.as_ref().filter(|s| s.address != state.address) {
            return Err(StoreError::Conflict(format!(
                "floating IP {name}: has address {}, not {} (addresses never move)",
                stored.address, state.address
            )));
        }
        // The claim decides between two writers; the list below still refuses an address
        // that a state written before claims existed holds.
        claims::claim(&self.claims, &self.fips, state.address, &fip).await?;
        let all = self
            .fips
            .list(&ListParams::default())
            .await
            .map_err(|e| kube_err(&step("list for"), e))?;
        let holder = all.items.iter().find(|other| {
            other.name_any() != *name
                && other
                    .status
                    .as_ref()
                    .is_some_and(|s| s.address == state.address)
        });
        if let Some(holder) = holder {
            return Err(StoreError::Conflict(format!(
                "floating IP {name}: address {} is held by floating IP {}",
                state.address,
                holder.name_any()
            )));
        }
        fip.status = Some(FloatingIpStatus {
            address: state.address,
            node: state.node.clone(),
            epoch: state.epoch,
            term: state.term,
        });
        // `fip` carries the resourceVersion it was read with: a 409 means someone wrote since.
        self.fips
            .replace_status(name, &PostParams::default(), &fip)
            .await
            .map(drop)
            .map_err(|e| kube_err(&step("replace status of"), e))
    }

    async fn volumes(&self) -> Result<Vec<VolumeLocation>, StoreError> {
        let list = self
            .volumes
            .list(&ListParams::default())
            .await
            .map_err(|e| kube_err("list volumes", e))?;
        Ok(list.items.iter().map(HearthVolume::to_record).collect())
    }

    async fn update_volume(
        &self,
        expected: &VolumeLocation,
        volume: &VolumeLocation,
    ) -> Result<(), StoreError> {
        validate::volume_update(expected, volume)?;
        let id = &volume.id;
        let name = volume_object_name(id);
        let step = |op: &str| format!("{op} volume {id}");
        let existing = self
            .volumes
            .get_opt(&name)
            .await
            .map_err(|e| kube_err(&step("get"), e))?;
        let Some(mut existing) = existing.filter(|v| v.spec.volume_id == *id) else {
            return Err(StoreError::NotFound(format!("volume {id}")));
        };
        if existing.to_record() != *expected {
            return Err(StoreError::Conflict(format!(
                "volume {id} changed since it was read"
            )));
        }
        existing.spec = HearthVolume::from_record(volume).spec;
        // The object carries the resourceVersion it was read with: a 409 is a lost race.
        match self
            .volumes
            .replace(&name, &PostParams::default(), &existing)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_status(&e, 409) => Err(StoreError::Conflict(format!(
                "volume {id} changed since it was read"
            ))),
            Err(e) => Err(kube_err(&step("replace"), e)),
        }
    }

    async fn create_volume(&self, volume: &VolumeLocation) -> Result<(), StoreError> {
        validate::volume(volume)?;
        // A create, never a replace: of two writers, the apiserver lets exactly one in.
        match self
            .volumes
            .create(&PostParams::default(), &HearthVolume::from_record(volume))
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_status(&e, 409) => Err(StoreError::Conflict(format!(
                "volume {} is recorded already",
                volume.id
            ))),
            Err(e) => Err(kube_err(&format!("create volume {}", volume.id), e)),
        }
    }

    async fn delete_volume(&self, id: &str) -> Result<(), StoreError> {
        validate::volume_id(id)?;
        let name = volume_object_name(id);
        let existing = self
            .volumes
            .get_opt(&name)
            .await
            .map_err(|e| kube_err(&format!("get volume {id}"), e))?;
        let Some(existing) = existing.filter(|v| v.spec.volume_id == id) else {
            return Ok(());
        };
        // Delete the object that was checked, not one recreated under the name since.
        let dp = only_if_uid(existing.uid());
        delete(&self.volumes, "volume", &name, &dp).await
    }

    async fn lead(&self, holder: &str, ttl: Duration) -> Result<Option<u64>, StoreError> {
        lease::lead(
            &self.leases,
            &self.lease_name,
            holder,
            ttl,
            SystemTime::now(),
            (self.clock)(),
            &self.seen,
        )
        .await
    }
}

#[cfg(test)]
mod tests;
