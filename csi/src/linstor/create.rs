//! CreateVolume for LINSTOR: the resource group of the StorageClass, the resource definition
//! named after the CSI name, and its data: a new volume placed by `nodeList`, the preferred
//! node and LINSTOR's autoplacer, a restore of a snapshot, or a clone. A create that fails
//! deletes the resource definition it made; a retry lands on the same definition.

use std::collections::BTreeMap;
use std::time::Duration;

use super::backend::{existing_ok, found, gone_ok, is_ours, source_prop, LinstorBackend};
use super::client::{
    AutoPlaceRequest, AutoSelectFilter, ResourceCreate, ResourceDefinitionCreate,
    VolumeDefinitionCreate, VolumeDefinitionModify,
};
use super::names::{self, kib, props};
use super::params::StorageClassParams;
use super::placement::PlacementInput;
use crate::backend::{ContentSource, Volume, VolumeSpec};
use crate::{CsiError, TOPOLOGY_NODE_KEY};

/// How long one CreateVolume waits for a clone; a longer clone answers ABORTED (operation
/// pending) without a rollback, and the CO's retry waits on.
const CLONE_WAIT: Duration = Duration::from_secs(60);
/// How long one call waits for LINSTOR's satellites to grow the devices after a resize
/// (LINSTOR records the size first, CtrlVlmDfnModifyApiCallHandler); then ABORTED, retried.
const RESIZE_WAIT: Duration = Duration::from_secs(60);
/// How often the resize wait asks.
const RESIZE_POLL: Duration = Duration::from_millis(200);

impl LinstorBackend {
    /// Creates the volume, or checks and finishes the one a retry finds; rolls back on failure.
    pub(super) async fn create(
        &self,
        spec: &VolumeSpec,
        p: &StorageClassParams,
        rd_name: &str,
    ) -> Result<Volume, CsiError> {
        let digest = p.digest();
        let source = source_prop(spec.source.as_ref());
        if let Some(rd) = found(self.client.get_resource_definition(rd_name).await)? {
            // A restore or clone in progress carries the source's properties until it is done;
            // its building marker names it.
            let building = rd.props.get(props::BUILDING) == Some(&spec.name);
            let same = building
                || (is_ours(&rd)
                    && rd.props.get(props::CSI_NAME) == Some(&spec.name)
                    && rd.props.get(props::PARAMS) == Some(&digest)
                    && rd
                        .props
                        .get(props::SOURCE)
                        .map(String::as_str)
                        .unwrap_or("")
                        == source);
            if rd.props.contains_key(props::DELETED) && !building {
                return Err(CsiError::Aborted(format!(
                    "volume {} was deleted and waits for its snapshots to go; retry later",
                    spec.name
                )));
            }
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
            (props::REMOTE_ACCESS.to_owned(), p.remote_access.to_prop()),
        ]);
        if !source.is_empty() {
            rd_props.insert(props::SOURCE.to_owned(), source);
        }
        if p.resource_group.is_some() {
            // The class's properties cannot go on an admin's group: they go on the volume.
            rd_props.extend(p.properties.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        let mut building = rd_props.clone();
        building.insert(props::BUILDING.to_owned(), spec.name.clone());
        let built = match self.build(spec, p, rd_name, &group, building).await {
            Ok(()) => self.finish(rd_name, rd_props).await,
            Err(e) => Err(e),
        };
        if let Err(CsiError::Aborted(m)) = built {
            // Still running in LINSTOR (a clone, a resize): a retry picks it up.
            return Err(CsiError::Aborted(m));
        }
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
                    .clone_from(src, rd, group, rd_props, spec.capacity_bytes, p)
                    .await
            }
            Some(ContentSource::Snapshot(id)) => {
                return self.restore_from(id, rd, group, rd_props, spec, p).await;
            }
            None => {}
        }
        let mut create = ResourceDefinitionCreate::new(rd, Some(group));
        create.resource_definition.props = rd_props;
        self.create_definition(&create, p).await?;
        existing_ok(
            self.client
                .create_volume_definition(rd, &VolumeDefinitionCreate::new(0, size_kib))
                .await,
        )?;
        self.place(rd, p, spec).await
    }

    /// Places replicas: on `nodeList` when given; by the coordinator's placer when set and
    /// the StorageClass has no LINSTOR-specific placement rules; else the first on the
    /// preferred node when the CO names one (so a WaitForFirstConsumer pod finds its data
    /// local) and the rest by LINSTOR's autoplacer.
    async fn place(
        &self,
        rd: &str,
        p: &StorageClassParams,
        spec: &VolumeSpec,
    ) -> Result<(), CsiError> {
        self.place_diskful(rd, p, spec).await?;
        if !p.client_list.is_empty() {
            // clientList: diskless replicas on these nodes from the start.
            let clients: Vec<ResourceCreate> = p
                .client_list
                .iter()
                .map(|n| layered(ResourceCreate::diskless(rd, n), p))
                .collect();
            existing_ok(self.client.create_resources(rd, &clients).await)?;
        }
        Ok(())
    }

    async fn place_diskful(
        &self,
        rd: &str,
        p: &StorageClassParams,
        spec: &VolumeSpec,
    ) -> Result<(), CsiError> {
        let (requisite, preferred) = (&spec.requisite, &spec.preferred);
        if !p.node_list.is_empty() {
            // Explicit placement: exactly these nodes, no autoplacer.
            let pool = p.storage_pools.first().map(String::as_str);
            let replicas: Vec<ResourceCreate> = p
                .node_list
                .iter()
                .map(|n| layered(ResourceCreate::diskful(rd, n, pool), p))
                .collect();
            existing_ok(self.client.create_resources(rd, &replicas).await)?;
            return Ok(());
        }
        if let Some(placer) = self.placer.as_ref().filter(|_| p.placer_may_choose()) {
            let input = PlacementInput {
                volume: rd,
                size_bytes: spec.capacity_bytes,
                replicas: p.place_count,
                pools: &p.storage_pools,
                requisite,
                preferred,
            };
            let chosen = placer.place(&input).await?;
            tracing::info!(volume = %rd, nodes = ?chosen.iter().map(|r| r.node.as_str()).collect::<Vec<_>>(),
                "replicas placed");
            let replicas: Vec<ResourceCreate> = chosen
                .iter()
                .map(|r| layered(ResourceCreate::diskful(rd, &r.node, Some(&r.pool)), p))
                .collect();
            existing_ok(self.client.create_resources(rd, &replicas).await)?;
            return Ok(());
        }
        let first = preferred
            .iter()
            .chain(requisite)
            .find_map(|s| s.get(TOPOLOGY_NODE_KEY));
        if let Some(node) = first {
            let replica = layered(
                ResourceCreate::diskful(rd, node, p.storage_pools.first().map(String::as_str)),
                p,
            );
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
            diskless_on_remaining: p.diskless_on_remaining,
            layer_list: p.layer_list.clone(),
        };
        existing_ok(self.client.autoplace(rd, &request).await)?;
        Ok(())
    }

    /// Grows the volume to `bytes` and waits until every diskful replica's device has that
    /// size: LINSTOR records the new size at once and the satellites resize later, and a
    /// replay of the resize only answers WARN_VLMDFN_RESIZE_SAME_SIZE.
    pub(super) async fn grow_to(&self, rd: &str, bytes: u64) -> Result<u64, CsiError> {
        let vd = self.client.get_volume_definition(rd, 0).await?;
        let target_kib = vd.size_kib.max(kib(bytes));
        if vd.size_kib < kib(bytes) {
            let modify = VolumeDefinitionModify {
                size_kib: Some(kib(bytes)),
                ..Default::default()
            };
            self.client.modify_volume_definition(rd, 0, &modify).await?;
        }
        self.wait_grown(rd, target_kib).await?;
        Ok(target_kib.saturating_mul(1024))
    }

    async fn wait_grown(&self, rd: &str, kib_wanted: u64) -> Result<(), CsiError> {
        let deadline = tokio::time::Instant::now() + RESIZE_WAIT;
        let filter = super::client::ViewFilter {
            resources: vec![rd.to_owned()],
            ..Default::default()
        };
        loop {
            let behind: Vec<String> = self
                .client
                .resource_view(&filter)
                .await?
                .iter()
                .filter(|r| !r.is_diskless())
                .filter(|r| {
                    r.volumes
                        .first()
                        .and_then(|v| v.usable_size_kib)
                        .is_some_and(|k| k < kib_wanted)
                })
                .map(|r| r.node_name.clone())
                .collect();
            if behind.is_empty() {
                return Ok(());
            }
            if tokio::time::Instant::now() + RESIZE_POLL > deadline {
                return Err(CsiError::Aborted(format!(
                    "LINSTOR is still growing {rd} to {kib_wanted} KiB on {}; retry",
                    behind.join(", ")
                )));
            }
            tokio::time::sleep(RESIZE_POLL).await;
        }
    }

    async fn clone_from(
        &self,
        src: &str,
        rd: &str,
        group: &str,
        rd_props: BTreeMap<String, String>,
        bytes: u64,
        p: &StorageClassParams,
    ) -> Result<(), CsiError> {
        let source = match found(self.client.get_resource_definition(src).await)? {
            Some(s) if names::is_linstor_name(src) && super::backend::is_live(&s) => s,
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
        // LINSTOR copies every property of the source into the clone
        // (CtrlRscDfnApiCallHandler.cloneRscDfnInTransaction): Hearth's own are overridden,
        // the source's attachments and live-migration settings deleted.
        let request = super::client::CloneRequest {
            name: rd.to_owned(),
            resource_group: Some(group.to_owned()),
            override_props: rd_props,
            delete_props: transient_to_drop(&source.props),
            ..Default::default()
        };
        self.start_clone(src, &request, p).await?;
        match self.client.wait_clone(src, rd, CLONE_WAIT).await {
            Err(super::client::LinstorError::Timeout { .. }) => {
                return Err(CsiError::Aborted(format!(
                    "LINSTOR is still cloning {src} into {rd}; CreateVolume retries wait on"
                )))
            }
            other => other?,
        }
        self.grow_to(rd, bytes).await.map(drop)
    }

    /// Restores a snapshot: volume definitions, then resources at the snapshot's size (LINSTOR
    /// refuses another size: FAIL_INVLD_VLM_SIZE in CtrlSnapshotRestoreApiCallHandler), on
    /// the snapshot's nodes the class allows, preferred topology first, as many as the class's
    /// count; more replicas come from the autoplacer; then it grows to the requested size.
    async fn restore_from(
        &self,
        id: &str,
        rd: &str,
        group: &str,
        rd_props: BTreeMap<String, String>,
        spec: &VolumeSpec,
        p: &StorageClassParams,
    ) -> Result<(), CsiError> {
        let bytes = spec.capacity_bytes;
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
        self.create_definition(&create, p).await?;
        let nodes = restore_nodes(&snapshot.nodes, spec, p);
        if nodes.is_empty() {
            return Err(CsiError::ResourceExhausted(format!(
                "snapshot {id} is on {}, none of which the StorageClass and topology allow",
                snapshot.nodes.join(", ")
            )));
        }
        let restore = super::client::SnapshotRestore {
            to_resource: rd.to_owned(),
            nodes,
        };
        existing_ok(
            self.client
                .restore_volume_definitions(src, snap, &restore)
                .await,
        )?;
        existing_ok(self.client.restore_resources(src, snap, &restore).await)?;
        if (restore.nodes.len() as u32) < p.place_count {
            let request = AutoPlaceRequest {
                select_filter: select_filter(p),
                diskless_on_remaining: false,
                layer_list: p.layer_list.clone(),
            };
            existing_ok(self.client.autoplace(rd, &request).await)?;
        }
        self.grow_to(rd, bytes).await.map(drop)
    }

    /// Ends a create: Hearth's properties over whatever LINSTOR copied from a source, the
    /// source's transient ones deleted, the building marker removed.
    async fn finish(&self, rd: &str, rd_props: BTreeMap<String, String>) -> Result<(), CsiError> {
        let current = self.client.get_resource_definition(rd).await?;
        let mut modify = super::client::ResourceDefinitionModify {
            delete_props: transient_to_drop(&current.props),
            ..Default::default()
        };
        modify.delete_props.retain(|k| !rd_props.contains_key(k));
        modify.delete_props.push(props::BUILDING.to_owned());
        modify.override_props = rd_props;
        self.client.modify_resource_definition(rd, &modify).await?;
        Ok(())
    }
}

/// The transient Hearth properties `props` has (see [`props::TRANSIENT`]).
fn transient_to_drop(props: &BTreeMap<String, String>) -> Vec<String> {
    props::TRANSIENT
        .iter()
        .filter(|k| props.contains_key(**k))
        .map(|k| (*k).to_owned())
        .collect()
}

/// The nodes to restore on: those holding the snapshot, the CO's preferred then requisite
/// topology first, at most the class's replica count; a node the requisite topology
/// excludes is not used.
fn restore_nodes(
    snapshot_nodes: &[String],
    spec: &VolumeSpec,
    p: &StorageClassParams,
) -> Vec<String> {
    let topo_nodes: Vec<&String> = spec
        .preferred
        .iter()
        .chain(&spec.requisite)
        .filter_map(|s| s.get(TOPOLOGY_NODE_KEY))
        .collect();
    let allowed = |n: &String| {
        let in_requisite = spec.requisite.is_empty()
            || spec
                .requisite
                .iter()
                .any(|s| s.get(TOPOLOGY_NODE_KEY).is_none_or(|t| t == n));
        let in_list = p.node_list.is_empty() || p.node_list.contains(n);
        in_requisite && in_list
    };
    let mut nodes: Vec<String> = Vec::new();
    for n in topo_nodes
        .into_iter()
        .filter(|n| snapshot_nodes.contains(n))
        .chain(snapshot_nodes)
    {
        if allowed(n) && !nodes.contains(n) {
            nodes.push(n.clone());
        }
    }
    nodes.truncate(p.place_count.max(1) as usize);
    nodes
}

/// The class's layer list on a replica created on an explicit node (LINSTOR builds its
/// default stack otherwise).
fn layered(mut create: ResourceCreate, p: &StorageClassParams) -> ResourceCreate {
    create.layer_list.clone_from(&p.layer_list);
    create
}

pub(super) fn select_filter(p: &StorageClassParams) -> AutoSelectFilter {
    AutoSelectFilter {
        place_count: Some(p.place_count),
        storage_pool_list: p.storage_pools.clone(),
        storage_pool_diskless_list: p.diskless_storage_pool.iter().cloned().collect(),
        replicas_on_same: p.replicas_on_same.clone(),
        replicas_on_different: p.replicas_on_different.clone(),
        not_place_with_rsc_regex: p.do_not_place_with_regex.clone(),
        layer_stack: p.layer_list.clone(),
        x_replicas_on_different_map: p.x_replicas_on_different.clone(),
        diskless_on_remaining: p.diskless_on_remaining.then_some(true),
        ..Default::default()
    }
}
