//! The LINSTOR VolumeBackend: volumes are LINSTOR resource definitions (DRBD over LVM or ZFS),
//! created in a resource group per StorageClass.
//!
//! Every call is idempotent by construction: the resource definition's name is a pure function
//! of the CSI name ([`names`]), Hearth's properties on it say which CSI name, parameters and
//! source it was made for, and LINSTOR's exact "already exists" codes turn a replayed step into
//! a no-op. A create that fails deletes the resource definition it made, so a failure never
//! leaks one. Hearth never deletes a resource definition it did not create.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

use super::client::{LinstorClient, LinstorError, ResourceDefinition, ViewFilter};
use super::names::{self, props};
use super::params::StorageClassParams;
use super::remote_access::{NodeProps, RemoteAccess};
use crate::attach::Condition;
use crate::backend::{
    BackendFeatures, ContentSource, PoolCapacity, PublishSpec, Snapshot, Volume, VolumeBackend,
    VolumeSpec,
};
use crate::{CsiError, TOPOLOGY_NODE_KEY};

/// Treats "already exists" as success: the step was done before (by a retry or a replay).
pub(super) fn existing_ok<T>(r: Result<T, LinstorError>) -> Result<(), LinstorError> {
    match r {
        Ok(_) => Ok(()),
        Err(e) if e.is_already_exists() => Ok(()),
        Err(e) => Err(e),
    }
}

/// Treats "not found" as success: the object is gone already.
pub(super) fn gone_ok<T>(r: Result<T, LinstorError>) -> Result<(), LinstorError> {
    match r {
        Ok(_) => Ok(()),
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => Err(e),
    }
}

/// Turns "not found" into None.
pub(super) fn found<T>(r: Result<T, LinstorError>) -> Result<Option<T>, LinstorError> {
    match r {
        Ok(v) => Ok(Some(v)),
        Err(e) if e.is_not_found() => Ok(None),
        Err(e) => Err(e),
    }
}

/// The LINSTOR backend.
#[derive(Debug, Clone)]
pub struct LinstorBackend {
    pub(super) client: LinstorClient,
    /// Resource groups known to exist, to save a REST call per CreateVolume.
    pub(super) groups: Arc<Mutex<HashSet<String>>>,
    /// Chooses replica nodes instead of LINSTOR's autoplacer, when set.
    pub(super) placer: Option<Arc<dyn super::placement::ReplicaPlacer>>,
}

pub(super) fn source_prop(source: Option<&ContentSource>) -> String {
    match source {
        None => String::new(),
        Some(ContentSource::Snapshot(id)) => format!("snapshot:{id}"),
        Some(ContentSource::Volume(id)) => format!("volume:{id}"),
    }
}

fn parse_source(prop: Option<&String>) -> Option<ContentSource> {
    let (kind, id) = prop?.split_once(':')?;
    match kind {
        "snapshot" => Some(ContentSource::Snapshot(id.to_owned())),
        "volume" => Some(ContentSource::Volume(id.to_owned())),
        _ => None,
    }
}

/// True when Hearth created this resource definition.
pub(super) fn is_ours(rd: &ResourceDefinition) -> bool {
    rd.props.contains_key(props::CSI_NAME)
}

/// True for a live volume of Hearth's: not one deleted while its snapshots keep it.
pub(super) fn is_live(rd: &ResourceDefinition) -> bool {
    is_ours(rd) && !rd.props.contains_key(props::DELETED)
}

impl LinstorBackend {
    /// A backend over a connected client.
    pub fn new(client: LinstorClient) -> Self {
        Self {
            client,
            groups: Arc::default(),
            placer: None,
        }
    }

    /// Places new volumes' replicas with `placer` (the coordinator's placement) when the
    /// StorageClass leaves the choice open; LINSTOR's autoplacer otherwise.
    pub fn with_placer(mut self, placer: Arc<dyn super::placement::ReplicaPlacer>) -> Self {
        self.placer = Some(placer);
        self
    }

    /// The REST calls the client has sent (for benchmarks).
    pub fn rest_calls(&self) -> u64 {
        self.client.calls()
    }
    /// The volume as CSI sees it: size from the volume definition, topology from the replicas.
    pub(super) async fn volume_of(&self, rd: &ResourceDefinition) -> Result<Volume, CsiError> {
        let vd = self.client.get_volume_definition(&rd.name, 0).await?;
        let policy = RemoteAccess::from_prop(rd.props.get(props::REMOTE_ACCESS));
        let topology = if policy == RemoteAccess::Anywhere {
            // Any node can attach it disklessly: no constraint.
            Vec::new()
        } else {
            let nodes = self.accessible_nodes(&rd.name, &policy, None).await?.1;
            nodes
                .into_iter()
                .map(|n| BTreeMap::from([(TOPOLOGY_NODE_KEY.to_owned(), n)]))
                .collect()
        };
        Ok(Volume {
            id: rd.name.clone(),
            name: rd.props.get(props::CSI_NAME).cloned().unwrap_or_default(),
            capacity_bytes: vd.size_kib.saturating_mul(1024),
            parameters: BTreeMap::new(),
            source: parse_source(rd.props.get(props::SOURCE)),
            topology,
            context: BTreeMap::new(),
        })
    }
    /// The nodes holding a disk of `rd`, and the nodes `policy` lets attach it (all of them
    /// when `only` is None, else whether `only` may).
    pub(super) async fn accessible_nodes(
        &self,
        rd: &str,
        policy: &RemoteAccess,
        only: Option<&str>,
    ) -> Result<(Vec<String>, Vec<String>), CsiError> {
        let replicas: Vec<String> = self
            .client
            .list_resources(rd)
            .await?
            .into_iter()
            .filter(|r| !r.is_diskless())
            .map(|r| r.node_name)
            .collect();
        let allowed = match policy {
            RemoteAccess::Anywhere => match only {
                Some(n) => vec![n.to_owned()],
                None => self
                    .client
                    .list_nodes()
                    .await?
                    .into_iter()
                    .map(|n| n.name)
                    .collect(),
            },
            RemoteAccess::LocalOnly => replicas
                .iter()
                .filter(|r| only.is_none_or(|n| n == r.as_str()))
                .cloned()
                .collect(),
            RemoteAccess::FromSame(_) => {
                let nodes = self.client.list_nodes().await?;
                let props: NodeProps<'_> =
                    nodes.iter().map(|n| (n.name.as_str(), &n.props)).collect();
                nodes
                    .iter()
                    .filter(|n| only.is_none_or(|o| o == n.name))
                    .filter(|n| policy.allows(&n.name, &replicas, &props))
                    .map(|n| n.name.clone())
                    .collect()
            }
        };
        Ok((replicas, allowed))
    }

    async fn delete(&self, id: &str) -> Result<(), CsiError> {
        if !names::is_linstor_name(id) {
            return Ok(());
        }
        let Some(rd) = found(self.client.get_resource_definition(id).await)? else {
            return Ok(());
        };
        if !is_ours(&rd) {
            return Err(CsiError::FailedPrecondition(format!(
                "resource definition {id} was not created by Hearth; refusing to delete it"
            )));
        }
        let resources = self.client.list_resources(id).await?;
        if let Some(busy) = resources.iter().find(|r| r.in_use()) {
            return Err(CsiError::FailedPrecondition(format!(
                "volume {id} is in use on {}; unpublish it first",
                busy.node_name
            )));
        }
        let group = rd.resource_group_name.as_deref();
        match self.client.delete_resource_definition(id).await {
            Ok(_) => {
                self.drop_group_if_unused(group).await;
                Ok(())
            }
            Err(e) if e.is_not_found() => Ok(()),
            // LINSTOR refuses with FAIL_EXISTS_SNAPSHOT_DFN while snapshots of it exist
            // (CtrlRscDfnDeleteApiCallHandler).
            Err(e) if e.is_already_exists() => self.delete_keeping_snapshots(id).await,
            Err(e) => Err(e.into()),
        }
    }

    /// DeleteVolume of a volume with snapshots, as linstor-csi does it: the resources and
    /// volume definitions go, the resource definition stays (marked deleted, so no CSI call
    /// sees the volume again) while its snapshots exist; the last DeleteSnapshot removes it.
    async fn delete_keeping_snapshots(&self, id: &str) -> Result<(), CsiError> {
        let mut mark = super::client::ResourceDefinitionModify::default();
        mark.override_props
            .insert(props::DELETED.to_owned(), "true".to_owned());
        gone_ok(self.client.modify_resource_definition(id, &mark).await)?;
        let mut resources = self.client.list_resources(id).await?;
        // Diskless replicas first: LINSTOR keeps the last diskful one while any is left.
        resources.sort_by_key(|r| !r.is_diskless());
        for r in &resources {
            if let Err(e) = gone_ok(self.client.delete_resource(id, &r.node_name).await) {
                // The definition is marked; the last DeleteSnapshot takes the rest with it.
                tracing::warn!(volume = %id, node = %r.node_name, "replica kept until the snapshots go: {e}");
                return Ok(());
            }
        }
        for vd in self.client.list_volume_definitions(id).await? {
            if let Err(e) = gone_ok(
                self.client
                    .delete_volume_definition(id, vd.volume_number.unwrap_or(0))
                    .await,
            ) {
                tracing::warn!(volume = %id, "volume definition kept until the snapshots go: {e}");
            }
        }
        tracing::info!(volume = %id, "deleted; the resource definition stays for its snapshots");
        Ok(())
    }

    /// DeleteSnapshot; the last snapshot of a deleted volume takes its definition along.
    async fn remove_snapshot(&self, rd: &str, snap: &str) -> Result<(), CsiError> {
        gone_ok(self.client.delete_snapshot(rd, snap).await)?;
        let Some(def) = found(self.client.get_resource_definition(rd).await)? else {
            return Ok(());
        };
        if is_ours(&def)
            && def.props.contains_key(props::DELETED)
            && self.client.list_snapshots(rd).await?.is_empty()
        {
            gone_ok(self.client.delete_resource_definition(rd).await)?;
            self.drop_group_if_unused(def.resource_group_name.as_deref())
                .await;
        }
        Ok(())
    }

    async fn condition(&self, id: &str) -> Result<Condition, CsiError> {
        let filter = ViewFilter {
            resources: vec![id.to_owned()],
            ..Default::default()
        };
        let resources = self.client.resource_view(&filter).await?;
        if resources.is_empty() {
            return Err(CsiError::NotFound(format!("volume {id} does not exist")));
        }
        let states: Vec<String> = resources
            .iter()
            .map(|r| {
                let disk = r
                    .volumes
                    .first()
                    .and_then(|v| v.disk_state())
                    .unwrap_or("unknown");
                format!("{}:{disk}", r.node_name)
            })
            .collect();
        let up_to_date = resources
            .iter()
            .any(|r| r.volumes.first().and_then(|v| v.disk_state()) == Some("UpToDate"));
        Ok(if up_to_date {
            Condition::healthy(format!("replicas {}", states.join(" ")))
        } else {
            Condition::abnormal(format!("no replica is UpToDate: {}", states.join(" ")))
        })
    }

    async fn capacity(
        &self,
        p: &StorageClassParams,
        segment: Option<&BTreeMap<String, String>>,
    ) -> Result<u64, CsiError> {
        let mut filter = ViewFilter {
            storage_pools: p.storage_pools.clone(),
            ..Default::default()
        };
        if let Some(node) = segment.and_then(|s| s.get(TOPOLOGY_NODE_KEY)) {
            filter.nodes.push(node.clone());
        }
        let pools = self.client.storage_pool_view(&filter).await?;
        let mut free_per_node: BTreeMap<String, u64> = BTreeMap::new();
        for pool in pools.iter().filter(|s| !s.is_diskless()) {
            let free_kib = match (&p.over_provision, pool.total_capacity) {
                // overProvision (linstor-csi): total × factor − what is used.
                (Some(op), Some(total)) => {
                    let used = total.saturating_sub(pool.free_capacity.unwrap_or(0));
                    ((total as f64 * op.factor()) as u64).saturating_sub(used)
                }
                _ => pool.free_capacity.unwrap_or(0),
            };
            let free = free_kib.saturating_mul(1024);
            let e = free_per_node.entry(pool.node_name.clone()).or_default();
            *e = (*e).max(free);
        }
        let mut frees: Vec<u64> = free_per_node.into_values().collect();
        frees.sort_unstable_by(|a, b| b.cmp(a));
        // A new volume needs `place_count` nodes with room; a topology segment asks about one.
        let needed = if segment.is_some() {
            1
        } else {
            p.place_count as usize
        };
        Ok(frees.get(needed.saturating_sub(1)).copied().unwrap_or(0))
    }
}

#[async_trait::async_trait]
impl VolumeBackend for LinstorBackend {
    fn features(&self) -> BackendFeatures {
        BackendFeatures {
            snapshots: true,
            clones: true,
            expansion: true,
            publish: true,
            multi_node: true,
        }
    }

    fn validate_parameters(&self, parameters: &BTreeMap<String, String>) -> Result<(), CsiError> {
        StorageClassParams::parse(parameters).map(drop)
    }

    async fn create_volume(&self, spec: &VolumeSpec) -> Result<Volume, CsiError> {
        let p = StorageClassParams::parse(&spec.parameters)?;
        let rd = names::resource_definition(&spec.name);
        let mut volume = self.create(spec, &p, &rd).await?;
        volume.parameters = spec.parameters.clone();
        volume.context = p.node_context(spec.source.is_some());
        Ok(volume)
    }

    async fn delete_volume(&self, volume_id: &str) -> Result<(), CsiError> {
        self.delete(volume_id).await
    }

    async fn get_volume(&self, volume_id: &str) -> Result<Option<Volume>, CsiError> {
        if !names::is_linstor_name(volume_id) {
            return Ok(None);
        }
        match found(self.client.get_resource_definition(volume_id).await)? {
            Some(rd) if is_live(&rd) => Ok(Some(self.volume_of(&rd).await?)),
            _ => Ok(None),
        }
    }

    async fn list_volumes(&self) -> Result<Vec<Volume>, CsiError> {
        let mut out = Vec::new();
        for rd in self
            .client
            .list_resource_definitions(false)
            .await?
            .iter()
            .filter(|rd| is_live(rd))
        {
            match self.volume_of(rd).await {
                Ok(v) => out.push(v),
                // Deleted between the list and the read: not a volume any more.
                Err(CsiError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    async fn volume_condition(&self, volume_id: &str) -> Result<Condition, CsiError> {
        self.condition(volume_id).await
    }

    async fn expand_volume(&self, volume_id: &str, capacity_bytes: u64) -> Result<u64, CsiError> {
        if self.get_volume(volume_id).await?.is_none() {
            return Err(CsiError::NotFound(format!(
                "volume {volume_id} does not exist"
            )));
        }
        self.grow_to(volume_id, capacity_bytes).await
    }

    async fn create_snapshot(
        &self,
        name: &str,
        source_volume_id: &str,
    ) -> Result<Snapshot, CsiError> {
        self.snapshot(name, source_volume_id).await
    }

    async fn delete_snapshot(&self, snapshot_id: &str) -> Result<(), CsiError> {
        match names::parse_snapshot_id(snapshot_id) {
            Some((rd, snap)) => self.remove_snapshot(rd, snap).await,
            None => Ok(()),
        }
    }

    async fn list_snapshots(&self) -> Result<Vec<Snapshot>, CsiError> {
        self.snapshots().await
    }

    async fn publish(
        &self,
        spec: &PublishSpec,
    ) -> Result<std::collections::HashMap<String, String>, CsiError> {
        self.attach_to(spec).await
    }

    async fn unpublish(&self, volume_id: &str, node_id: &str) -> Result<(), CsiError> {
        self.detach_from(volume_id, node_id).await
    }

    async fn available_capacity(
        &self,
        parameters: &BTreeMap<String, String>,
        segment: Option<&BTreeMap<String, String>>,
    ) -> Result<u64, CsiError> {
        let p = StorageClassParams::parse(parameters)?;
        self.capacity(&p, segment).await
    }

    async fn pools(&self, node: &str) -> Result<Vec<PoolCapacity>, CsiError> {
        let filter = ViewFilter {
            nodes: vec![node.to_owned()],
            ..Default::default()
        };
        let pools = self.client.storage_pool_view(&filter).await?;
        Ok(pools
            .into_iter()
            // The diskless pseudo-pool has no capacity (LINSTOR reports i64::MAX KiB).
            .filter(|p| !p.is_diskless())
            .map(|p| PoolCapacity {
                name: p.storage_pool_name,
                node: p.node_name,
                kind: p.provider_kind,
                total_bytes: p.total_capacity.map(|k| k.saturating_mul(1024)),
                free_bytes: p.free_capacity.map(|k| k.saturating_mul(1024)),
            })
            .collect())
    }
}
