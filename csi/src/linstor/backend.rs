//! The LINSTOR VolumeBackend: volumes are LINSTOR resource definitions (DRBD over LVM or ZFS),
//! created in a resource group per StorageClass.
//!
//! Every call is idempotent by construction: the resource definition's name is a pure function
//! of the CSI name ([`names`]), Hearth's properties on it say which CSI name, parameters and
//! source it was made for, and LINSTOR's exact "already exists" codes turn a replayed step into
//! a no-op. A create that fails deletes the resource definition it made, so a failure never
//! leaks one. Hearth never deletes a resource definition it did not create.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use super::client::{
    AutoPlaceRequest, AutoSelectFilter, LinstorClient, LinstorError, ResourceCreate,
    ResourceDefinition, ResourceDefinitionCreate, ResourceGroup, ViewFilter,
    VolumeDefinitionCreate, VolumeDefinitionModify,
};
use super::names::{self, kib, props};
use super::params::StorageClassParams;
use crate::attach::Condition;
use crate::backend::{
    BackendFeatures, ContentSource, PublishSpec, Snapshot, Volume, VolumeBackend, VolumeSpec,
};
use crate::{CsiError, TOPOLOGY_NODE_KEY};

/// How long a clone may take before CreateVolume gives up (and rolls back).
const CLONE_TIMEOUT: Duration = Duration::from_secs(600);

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
    groups: Arc<Mutex<HashSet<String>>>,
}

fn source_prop(source: Option<&ContentSource>) -> String {
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

impl LinstorBackend {
    /// A backend over a connected client.
    pub fn new(client: LinstorClient) -> Self {
        Self {
            client,
            groups: Arc::default(),
        }
    }

    /// The REST calls the client has sent (for benchmarks).
    pub fn rest_calls(&self) -> u64 {
        self.client.calls()
    }

    async fn ensure_group(&self, p: &StorageClassParams) -> Result<String, CsiError> {
        let name = p.resource_group_name();
        let known = self
            .groups
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&name);
        if !known && p.resource_group.is_none() {
            let group = ResourceGroup {
                name: name.clone(),
                description: "made by Hearth for a StorageClass".into(),
                props: p.properties.clone(),
                select_filter: select_filter(p),
                ..Default::default()
            };
            existing_ok(self.client.create_resource_group(&group).await)?;
        }
        self.groups
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name.clone());
        Ok(name)
    }

    /// The volume as CSI sees it: size from the volume definition, topology from the replicas.
    pub(super) async fn volume_of(&self, rd: &ResourceDefinition) -> Result<Volume, CsiError> {
        let vd = self.client.get_volume_definition(&rd.name, 0).await?;
        let topology = if rd.props.get(props::REMOTE_ACCESS).map(String::as_str) == Some("true") {
            // Any node can attach it disklessly: no constraint.
            Vec::new()
        } else {
            let resources = self.client.list_resources(&rd.name).await?;
            resources
                .iter()
                .filter(|r| !r.is_diskless())
                .map(|r| BTreeMap::from([(TOPOLOGY_NODE_KEY.to_owned(), r.node_name.clone())]))
                .collect()
        };
        Ok(Volume {
            id: rd.name.clone(),
            name: rd.props.get(props::CSI_NAME).cloned().unwrap_or_default(),
            capacity_bytes: vd.size_kib.saturating_mul(1024),
            parameters: BTreeMap::new(),
            source: parse_source(rd.props.get(props::SOURCE)),
            topology,
        })
    }

    async fn create(
        &self,
        spec: &VolumeSpec,
        p: &StorageClassParams,
        rd_name: &str,
    ) -> Result<Volume, CsiError> {
        let digest = p.digest();
        let source = source_prop(spec.source.as_ref());
        if let Some(rd) = found(self.client.get_resource_definition(rd_name).await)? {
            let same = is_ours(&rd)
                && rd.props.get(props::CSI_NAME) == Some(&spec.name)
                && rd.props.get(props::PARAMS) == Some(&digest)
                && rd
                    .props
                    .get(props::SOURCE)
                    .map(String::as_str)
                    .unwrap_or("")
                    == source;
            if !same {
                return Err(CsiError::AlreadyExists(format!(
                    "resource definition {rd_name} exists with other parameters or source, or was not made by Hearth"
                )));
            }
            if let Some(vd) = found(self.client.get_volume_definition(rd_name, 0).await)? {
                let size = vd.size_kib.saturating_mul(1024);
                if size < spec.capacity_bytes || (spec.limit_bytes != 0 && size > spec.limit_bytes)
                {
                    return Err(CsiError::AlreadyExists(format!(
                        "volume {} exists with {size} bytes, outside the requested range",
                        spec.name
                    )));
                }
            }
        }
        let group = self.ensure_group(p).await?;
        let mut rd_props = BTreeMap::from([
            (props::CSI_NAME.to_owned(), spec.name.clone()),
            (props::PARAMS.to_owned(), digest),
            (
                props::REMOTE_ACCESS.to_owned(),
                p.allow_remote_volume_access.to_string(),
            ),
        ]);
        if !source.is_empty() {
            rd_props.insert(props::SOURCE.to_owned(), source);
        }
        let built = self.build(spec, p, rd_name, &group, rd_props).await;
        if let Err(err) = built {
            tracing::warn!(volume = %rd_name, "create failed, removing the resource definition: {err}");
            if let Err(e) = gone_ok(self.client.delete_resource_definition(rd_name).await) {
                tracing::error!(volume = %rd_name, "rollback failed; a retry will finish it: {e}");
            }
            return Err(err);
        }
        let rd = self.client.get_resource_definition(rd_name).await?;
        self.volume_of(&rd).await
    }

    async fn build(
        &self,
        spec: &VolumeSpec,
        p: &StorageClassParams,
        rd: &str,
        group: &str,
        rd_props: BTreeMap<String, String>,
    ) -> Result<(), CsiError> {
        let size_kib = kib(spec.capacity_bytes);
        match &spec.source {
            Some(ContentSource::Volume(src)) => {
                return self
                    .clone_from(src, rd, group, rd_props, spec.capacity_bytes)
                    .await
            }
            Some(ContentSource::Snapshot(id)) => {
                return self
                    .restore_from(id, rd, group, rd_props, spec.capacity_bytes)
                    .await;
            }
            None => {}
        }
        let mut create = ResourceDefinitionCreate::new(rd, Some(group));
        create.resource_definition.props = rd_props;
        existing_ok(self.client.create_resource_definition(&create).await)?;
        existing_ok(
            self.client
                .create_volume_definition(rd, &VolumeDefinitionCreate::new(0, size_kib))
                .await,
        )?;
        self.place(rd, p, &spec.requisite, &spec.preferred).await
    }

    /// Places replicas: the first on the preferred node when the CO names one (so a
    /// WaitForFirstConsumer pod finds its data local), the rest by LINSTOR's autoplacer.
    async fn place(
        &self,
        rd: &str,
        p: &StorageClassParams,
        requisite: &[BTreeMap<String, String>],
        preferred: &[BTreeMap<String, String>],
    ) -> Result<(), CsiError> {
        if !p.node_list.is_empty() {
            // Explicit placement: exactly these nodes, no autoplacer.
            let pool = p.storage_pools.first().map(String::as_str);
            let replicas: Vec<ResourceCreate> = p
                .node_list
                .iter()
                .map(|n| ResourceCreate::diskful(rd, n, pool))
                .collect();
            existing_ok(self.client.create_resources(rd, &replicas).await)?;
            return Ok(());
        }
        let first = preferred
            .iter()
            .chain(requisite)
            .find_map(|s| s.get(TOPOLOGY_NODE_KEY));
        if let Some(node) = first {
            let replica =
                ResourceCreate::diskful(rd, node, p.storage_pools.first().map(String::as_str));
            match self.client.create_resources(rd, &[replica]).await {
                Ok(_) => {}
                Err(e) if e.is_already_exists() => {}
                // A preferred node without LINSTOR: let the autoplacer choose.
                Err(e) if e.is_not_found() => {
                    tracing::info!(volume = %rd, %node, "preferred node unknown to LINSTOR")
                }
                Err(e) => return Err(e.into()),
            }
        }
        let request = AutoPlaceRequest {
            select_filter: select_filter(p),
            diskless_on_remaining: false,
            layer_list: p.layer_list.clone(),
        };
        existing_ok(self.client.autoplace(rd, &request).await)?;
        Ok(())
    }

    async fn grow_to(&self, rd: &str, bytes: u64) -> Result<u64, CsiError> {
        let vd = self.client.get_volume_definition(rd, 0).await?;
        let size = vd.size_kib.saturating_mul(1024);
        if size >= bytes {
            return Ok(size);
        }
        let modify = VolumeDefinitionModify {
            size_kib: Some(kib(bytes)),
            ..Default::default()
        };
        self.client.modify_volume_definition(rd, 0, &modify).await?;
        Ok(kib(bytes) * 1024)
    }

    async fn clone_from(
        &self,
        src: &str,
        rd: &str,
        group: &str,
        rd_props: BTreeMap<String, String>,
        bytes: u64,
    ) -> Result<(), CsiError> {
        let source = match found(self.client.get_resource_definition(src).await)? {
            Some(s) if names::is_linstor_name(src) && is_ours(&s) => s,
            _ => {
                return Err(CsiError::NotFound(format!(
                    "source volume {src} does not exist"
                )))
            }
        };
        let src_size = self
            .client
            .get_volume_definition(&source.name, 0)
            .await?
            .size_kib
            .saturating_mul(1024);
        if bytes < src_size {
            return Err(CsiError::OutOfRange(format!(
                "the clone ({bytes} bytes) is smaller than its source ({src_size} bytes)"
            )));
        }
        let request = super::client::CloneRequest {
            name: rd.to_owned(),
            resource_group: Some(group.to_owned()),
            override_props: rd_props,
            ..Default::default()
        };
        existing_ok(self.client.clone_resource_definition(src, &request).await)?;
        self.client.wait_clone(src, rd, CLONE_TIMEOUT).await?;
        self.grow_to(rd, bytes).await.map(drop)
    }

    async fn restore_from(
        &self,
        id: &str,
        rd: &str,
        group: &str,
        rd_props: BTreeMap<String, String>,
        bytes: u64,
    ) -> Result<(), CsiError> {
        let missing = || CsiError::NotFound(format!("source snapshot {id} does not exist"));
        let (src, snap) = names::parse_snapshot_id(id).ok_or_else(missing)?;
        let snapshot = found(self.client.get_snapshot(src, snap).await)?.ok_or_else(missing)?;
        let snap_size = snapshot
            .volume_definitions
            .first()
            .map_or(0, |v| v.size_kib.saturating_mul(1024));
        if bytes < snap_size {
            return Err(CsiError::OutOfRange(format!(
                "the restore ({bytes} bytes) is smaller than the snapshot ({snap_size} bytes)"
            )));
        }
        let mut create = ResourceDefinitionCreate::new(rd, Some(group));
        create.resource_definition.props = rd_props;
        existing_ok(self.client.create_resource_definition(&create).await)?;
        let restore = super::client::SnapshotRestore {
            to_resource: rd.to_owned(),
            nodes: Vec::new(),
        };
        existing_ok(
            self.client
                .restore_volume_definitions(src, snap, &restore)
                .await,
        )?;
        self.grow_to(rd, bytes).await?;
        existing_ok(self.client.restore_resources(src, snap, &restore).await)?;
        Ok(())
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
        match self.client.delete_resource_definition(id).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            // LINSTOR refuses with FAIL_EXISTS_SNAPSHOT_DFN while snapshots of it exist.
            Err(e) if e.is_already_exists() => Err(CsiError::FailedPrecondition(format!(
                "volume {id} still has snapshots; delete them first ({e})"
            ))),
            Err(e) => Err(e.into()),
        }
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
            let free = pool.free_capacity.unwrap_or(0).saturating_mul(1024);
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

fn select_filter(p: &StorageClassParams) -> AutoSelectFilter {
    AutoSelectFilter {
        place_count: Some(p.place_count),
        storage_pool_list: p.storage_pools.clone(),
        storage_pool_diskless_list: p.diskless_storage_pool.iter().cloned().collect(),
        replicas_on_same: p.replicas_on_same.clone(),
        replicas_on_different: p.replicas_on_different.clone(),
        not_place_with_rsc_regex: p.do_not_place_with_regex.clone(),
        layer_stack: p.layer_list.clone(),
        ..Default::default()
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
            Some(rd) if is_ours(&rd) => Ok(Some(self.volume_of(&rd).await?)),
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
            .filter(|rd| is_ours(rd))
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
            Some((rd, snap)) => Ok(gone_ok(self.client.delete_snapshot(rd, snap).await)?),
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
}
