//! ControllerPublish and ControllerUnpublish for LINSTOR: make-available on the node (a
//! diskless replica where it holds none), and the bookkeeping for KubeVirt live migration.
//!
//! The resource definition carries the nodes the volume is published to and the diskless
//! replicas a publish created. Unpublish removes only those temporary replicas, never one that
//! placement made. While a multi-writer block volume is published to exactly two nodes,
//! `allow-two-primaries` and protocol C are set; with one node left they are removed again; a
//! third node is refused. A single-writer volume published elsewhere is refused (the
//! Multi-Attach case) until the CO unpublishes it there.

use std::collections::HashMap;

use super::backend::{found, gone_ok, is_ours, LinstorBackend};
use super::client::{MakeAvailable, ResourceDefinitionModify};
use super::names::{self, props};
use crate::backend::PublishSpec;
use crate::CsiError;

/// The publish-context key of the device path the node waits for.
pub const DEVICE_PATH_KEY: &str = "hearth.dev/device-path";

fn join(nodes: &[String]) -> String {
    nodes.join(",")
}

impl LinstorBackend {
    pub(super) async fn attach_to(
        &self,
        spec: &PublishSpec,
    ) -> Result<HashMap<String, String>, CsiError> {
        let (id, node) = (spec.volume_id.as_str(), spec.node_id.as_str());
        let rd = match names::is_linstor_name(id) {
            true => found(self.client.get_resource_definition(id).await)?.filter(is_ours),
            false => None,
        }
        .ok_or_else(|| CsiError::NotFound(format!("volume {id} does not exist")))?;
        if found(self.client.get_node(node).await)?.is_none() {
            return Err(CsiError::NotFound(format!(
                "node {node} is not a LINSTOR node"
            )));
        }
        let mut attached = names::node_list(rd.props.get(props::ATTACHED));
        let mut temp = names::node_list(rd.props.get(props::TEMP_DISKLESS));
        if !attached.iter().any(|n| n == node) {
            if !attached.is_empty() && !spec.multi_writer {
                return Err(CsiError::FailedPrecondition(format!(
                    "volume {id} is published on {}; a single-node volume cannot attach to {node} too",
                    join(&attached)
                )));
            }
            if attached.len() >= 2 {
                return Err(CsiError::FailedPrecondition(format!(
                    "volume {id} is already attached on {}; refusing a third attachment",
                    join(&attached)
                )));
            }
            attached.push(node.to_owned());
        }
        let has_replica = found(self.client.get_resource(id, node).await)?.is_some();
        if !has_replica {
            if rd.props.get(props::REMOTE_ACCESS).map(String::as_str) == Some("false") {
                return Err(CsiError::FailedPrecondition(format!(
                    "volume {id} has no replica on {node} and its StorageClass forbids remote access"
                )));
            }
            if !temp.iter().any(|n| n == node) {
                temp.push(node.to_owned());
            }
        }
        let mut modify = ResourceDefinitionModify::default();
        modify
            .override_props
            .insert(props::ATTACHED.to_owned(), join(&attached));
        modify
            .override_props
            .insert(props::TEMP_DISKLESS.to_owned(), join(&temp));
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
        let leaving: Vec<String> = if node.is_empty() {
            attached.iter().chain(&temp).cloned().collect()
        } else {
            vec![node.to_owned()]
        };
        for n in &leaving {
            if temp.contains(n) {
                match self.client.delete_resource(id, n).await {
                    Ok(_) => {}
                    Err(e) if e.is_not_found() => {}
                    Err(e) if e.is_in_use() => {
                        return Err(CsiError::FailedPrecondition(format!(
                            "volume {id} is still in use on {n}; unstage it there first"
                        )))
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
        attached.retain(|n| !leaving.contains(n));
        temp.retain(|n| !leaving.contains(n));
        let mut modify = ResourceDefinitionModify::default();
        modify
            .override_props
            .insert(props::ATTACHED.to_owned(), join(&attached));
        modify
            .override_props
            .insert(props::TEMP_DISKLESS.to_owned(), join(&temp));
        if attached.len() < 2 && rd.props.contains_key(props::TWO_PRIMARIES) {
            modify.delete_props = vec![props::TWO_PRIMARIES.to_owned(), props::PROTOCOL.to_owned()];
        }
        gone_ok(self.client.modify_resource_definition(id, &modify).await)?;
        Ok(())
    }
}
