//! ControllerPublish and ControllerUnpublish for LINSTOR: make-available on the node (a
//! diskless replica where it holds none), and the bookkeeping for KubeVirt live migration.
//!
//! The resource definition carries the nodes the volume is published to, those published
//! read-only, and the diskless replicas a publish created (or the quorum tiebreaker it turned
//! into a wanted diskless replica). Unpublish re-reads each such replica and deletes it only
//! while it is diskless now (`DrbdOptions/auto-diskful` or an admin's toggle-disk may have
//! given it a disk: then it holds data and stays), with `keep_tiebreaker` so LINSTOR hands a
//! tiebreaker back; LINSTOR's FAIL_IN_USE keeps it too (someone still has it open). This is
//! linstor-csi's `Detach` (pkg/client/linstor.go), with Hearth's record on top so that a
//! replica placement made is never touched.
//!
//! While a multi-writer block volume is published to exactly two nodes,
//! `allow-two-primaries` and protocol C are set; with one node left they are removed again. A
//! third node is refused while two others hold the device open (the live InUse state, as
//! linstor-csi checks it: a stale record does not block). A single-writer volume published
//! elsewhere is refused (the Multi-Attach case) until the CO unpublishes it there. A node
//! LINSTOR reports offline or evicted is refused.

use std::collections::HashMap;

use super::backend::{found, gone_ok, is_ours, LinstorBackend};
use super::client::{MakeAvailable, ResourceDefinitionModify};
use super::names::{self, props};
use super::remote_access::RemoteAccess;
use crate::backend::PublishSpec;
use crate::CsiError;

/// The publish-context key of the device path the node waits for.
pub const DEVICE_PATH_KEY: &str = "hearth.dev/device-path";

fn join(nodes: &[String]) -> String {
    nodes.join(",")
}

/// Node flags that make LINSTOR keep resources off a node.
const UNUSABLE_NODE_FLAGS: &[&str] = &["EVICTED", "EVACUATE", "DELETE", "LOST"];

impl LinstorBackend {
    pub(super) async fn attach_to(
        &self,
        spec: &PublishSpec,
    ) -> Result<HashMap<String, String>, CsiError> {
        let (id, node) = (spec.volume_id.as_str(), spec.node_id.as_str());
        let rd = match names::is_linstor_name(id) {
            true => found(self.client.get_resource_definition(id).await)?
                .filter(|rd| is_ours(rd) && !rd.props.contains_key(props::DELETED)),
            false => None,
        }
        .ok_or_else(|| CsiError::NotFound(format!("volume {id} does not exist")))?;
        let Some(lnode) = found(self.client.get_node(node).await)? else {
            return Err(CsiError::NotFound(format!(
                "node {node} is not a LINSTOR node"
            )));
        };
        if let Some(flag) = lnode
            .flags
            .iter()
            .find(|f| UNUSABLE_NODE_FLAGS.contains(&f.as_str()))
        {
            return Err(CsiError::FailedPrecondition(format!(
                "LINSTOR node {node} is {flag}; it cannot take volume {id}"
            )));
        }
        if !lnode.is_online() {
            return Err(CsiError::Unavailable(format!(
                "LINSTOR node {node} is {}; retry when it is back online",
                lnode
                    .connection_status
                    .as_deref()
                    .unwrap_or("not connected")
            )));
        }
        let mut attached = names::node_list(rd.props.get(props::ATTACHED));
        let mut temp = names::node_list(rd.props.get(props::TEMP_DISKLESS));
        let mut readonly = names::node_list(rd.props.get(props::READONLY));
        if attached.iter().any(|n| n == node) {
            if readonly.iter().any(|n| n == node) != spec.readonly {
                return Err(CsiError::AlreadyExists(format!(
                    "volume {id} is published to {node} {}; unpublish it before publishing it {}",
                    if spec.readonly {
                        "read-write"
                    } else {
                        "read-only"
                    },
                    if spec.readonly {
                        "read-only"
                    } else {
                        "read-write"
                    },
                )));
            }
        } else {
            if !attached.is_empty() && !spec.multi_writer {
                return Err(CsiError::FailedPrecondition(format!(
                    "volume {id} is published on {}; a single-node volume cannot attach to {node} too",
                    join(&attached)
                )));
            }
            if attached.len() >= 2 {
                // The record may be stale: what counts is who holds the device open now.
                let resources = self.client.list_resources(id).await?;
                let open: Vec<String> = resources
                    .iter()
                    .filter(|r| r.node_name != node && r.in_use())
                    .map(|r| r.node_name.clone())
                    .collect();
                if open.len() >= 2 {
                    return Err(CsiError::FailedPrecondition(format!(
                        "volume {id} is in use on {}; refusing a third attachment",
                        join(&open)
                    )));
                }
                tracing::info!(volume = %id, recorded = %join(&attached), open = %join(&open),
                    "dropping recorded attachments that hold the device closed");
                attached.retain(|n| open.contains(n));
            }
            attached.push(node.to_owned());
            if spec.readonly {
                readonly.push(node.to_owned());
            }
        }
        match found(self.client.get_resource(id, node).await)? {
            None => {
                let policy = RemoteAccess::from_prop(rd.props.get(props::REMOTE_ACCESS));
                if policy != RemoteAccess::Anywhere
                    && self
                        .accessible_nodes(id, &policy, Some(node))
                        .await?
                        .1
                        .is_empty()
                {
                    return Err(CsiError::FailedPrecondition(format!(
                        "volume {id} has no replica on {node} and its StorageClass forbids remote access from there"
                    )));
                }
                if !temp.iter().any(|n| n == node) {
                    temp.push(node.to_owned());
                }
            }
            // make-available turns a tiebreaker into a wanted diskless replica; unpublish
            // hands it back.
            Some(r) if r.is_tie_breaker() && !temp.iter().any(|n| n == node) => {
                temp.push(node.to_owned());
            }
            Some(_) => {}
        }
        let mut modify = ResourceDefinitionModify::default();
        modify
            .override_props
            .insert(props::ATTACHED.to_owned(), join(&attached));
        modify
            .override_props
            .insert(props::TEMP_DISKLESS.to_owned(), join(&temp));
        modify
            .override_props
            .insert(props::READONLY.to_owned(), join(&readonly));
        if attached.len() == 2 {
            modify
                .override_props
                .insert(props::TWO_PRIMARIES.to_owned(), "yes".to_owned());
            modify
                .override_props
                .insert(props::PROTOCOL.to_owned(), "C".to_owned());
        }
        // Record first, then act: a crash in between leaves a record that unpublish cleans up.
        self.client.modify_resource_definition(id, &modify).await?;
        self.client
            .make_available(
                id,
                node,
                &MakeAvailable {
                    diskful: false,
                    ..Default::default()
                },
            )
            .await?;
        let volume = self.client.get_resource_volume(id, node, 0).await?;
        let device = volume.device_path.ok_or_else(|| {
            CsiError::Unavailable(format!(
                "LINSTOR has no device path for {id} on {node} yet; retry"
            ))
        })?;
        Ok(HashMap::from([(DEVICE_PATH_KEY.to_owned(), device)]))
    }

    pub(super) async fn detach_from(&self, id: &str, node: &str) -> Result<(), CsiError> {
        if !names::is_linstor_name(id) {
            return Ok(());
        }
        let Some(rd) = found(self.client.get_resource_definition(id).await)?.filter(is_ours) else {
            return Ok(());
        };
        let mut attached = names::node_list(rd.props.get(props::ATTACHED));
        let mut temp = names::node_list(rd.props.get(props::TEMP_DISKLESS));
        let mut readonly = names::node_list(rd.props.get(props::READONLY));
        let leaving: Vec<String> = if node.is_empty() {
            attached.iter().chain(&temp).cloned().collect()
        } else {
            vec![node.to_owned()]
        };
        let mut kept = Vec::new();
        for n in leaving.iter().filter(|n| temp.contains(n)) {
            if !self.remove_temporary(id, n).await? {
                kept.push(n.clone());
            }
        }
        attached.retain(|n| !leaving.contains(n));
        readonly.retain(|n| !leaving.contains(n));
        temp.retain(|n| !leaving.contains(n) || kept.contains(n));
        let mut modify = ResourceDefinitionModify::default();
        modify
            .override_props
            .insert(props::ATTACHED.to_owned(), join(&attached));
        modify
            .override_props
            .insert(props::TEMP_DISKLESS.to_owned(), join(&temp));
        modify
            .override_props
            .insert(props::READONLY.to_owned(), join(&readonly));
        if attached.len() < 2 && rd.props.contains_key(props::TWO_PRIMARIES) {
            modify.delete_props = vec![props::TWO_PRIMARIES.to_owned(), props::PROTOCOL.to_owned()];
        }
        gone_ok(self.client.modify_resource_definition(id, &modify).await)?;
        Ok(())
    }

    /// Deletes the replica a publish made on `node` if it is diskless now; false when it was
    /// kept because someone has it open (it stays on the record for the next unpublish).
    async fn remove_temporary(&self, id: &str, node: &str) -> Result<bool, CsiError> {
        let Some(r) = found(self.client.get_resource(id, node).await)? else {
            return Ok(true);
        };
        if !r.is_diskless() {
            tracing::warn!(volume = %id, %node,
                "the replica a publish made has a disk now (auto-diskful or toggle-disk); keeping it");
            return Ok(true);
        }
        match self.client.delete_resource_with(id, node, true).await {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(true),
            Err(e) if e.is_in_use() => {
                tracing::info!(volume = %id, %node,
                    "the diskless replica is still open there; keeping it until the next unpublish");
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    }
}
