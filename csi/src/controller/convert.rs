//! Conversions from the backend's types to the CSI wire types, and the page tokens of
//! ListVolumes and ListSnapshots (`after/<id>`: resume after that ID in the backend's order).

use hearth_proto::csi::v1::volume_content_source::{self, SnapshotSource, VolumeSource};
use hearth_proto::csi::v1::{self as csi, *};

use crate::attach::Condition;
use crate::backend::{ContentSource, Snapshot, Volume};
use crate::validate;
use crate::CsiError;

const TOKEN_PREFIX: &str = "after/";

/// Pages over `items` (ordered by ID). The token is the last ID of the previous page, so
/// volumes added or deleted between pages neither repeat nor shift the pages.
pub(super) fn paginate<T>(
    items: Vec<T>,
    id: impl Fn(&T) -> &String,
    starting_token: &str,
    max_entries: i32,
) -> Result<(Vec<T>, String), CsiError> {
    let max = usize::try_from(max_entries)
        .map_err(|_| CsiError::InvalidArgument(format!("max_entries {max_entries} is negative")))?;
    let after = if starting_token.is_empty() {
        None
    } else {
        Some(starting_token.strip_prefix(TOKEN_PREFIX).ok_or_else(|| {
            CsiError::Aborted(format!(
                "starting_token {starting_token:?} was not issued by this plugin"
            ))
        })?)
    };
    let mut rest: Vec<T> = items
        .into_iter()
        .filter(|i| after.is_none_or(|a| id(i).as_str() > a))
        .collect();
    if max == 0 || rest.len() <= max {
        return Ok((rest, String::new()));
    }
    rest.truncate(max);
    let next = rest
        .last()
        .map(|l| format!("{TOKEN_PREFIX}{}", id(l)))
        .unwrap_or_default();
    Ok((rest, next))
}

/// The one node all of a volume's topology segments name, if they name one.
fn single_node(topology: &[std::collections::BTreeMap<String, String>]) -> Option<String> {
    let mut nodes = topology.iter().map(|t| t.get(crate::TOPOLOGY_NODE_KEY));
    let first = nodes.next()??;
    nodes.all(|n| n == Some(first)).then(|| first.clone())
}

pub(super) fn to_csi_volume(v: Volume) -> csi::Volume {
    let mut volume_context = validate::volume_context(&v.parameters);
    volume_context.extend(v.context);
    if let Some(n) = single_node(&v.topology) {
        volume_context.insert(crate::VOLUME_CONTEXT_NODE_KEY.to_owned(), n);
    }
    csi::Volume {
        capacity_bytes: crate::validate::to_i64(v.capacity_bytes),
        volume_context,
        volume_id: v.id,
        content_source: v.source.map(|s| VolumeContentSource {
            r#type: Some(match s {
                ContentSource::Snapshot(snapshot_id) => {
                    volume_content_source::Type::Snapshot(SnapshotSource { snapshot_id })
                }
                ContentSource::Volume(volume_id) => {
                    volume_content_source::Type::Volume(VolumeSource { volume_id })
                }
            }),
        }),
        accessible_topology: v
            .topology
            .into_iter()
            .map(|s| Topology {
                segments: s.into_iter().collect(),
            })
            .collect(),
    }
}

pub(super) fn to_csi_snapshot(s: Snapshot) -> csi::Snapshot {
    csi::Snapshot {
        size_bytes: crate::validate::to_i64(s.size_bytes),
        snapshot_id: s.id,
        source_volume_id: s.source_volume_id,
        creation_time: Some(prost_types::Timestamp::from(s.created)),
        ready_to_use: s.ready,
        group_snapshot_id: String::new(),
    }
}

/// Converts a condition to its CSI message.
pub(crate) fn to_csi_condition(c: Condition) -> VolumeCondition {
    VolumeCondition {
        abnormal: c.abnormal,
        message: c.message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pagination_follows_ids_and_rejects_foreign_tokens() {
        let ids: Vec<String> = ["a", "b", "c", "d", "e"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let (p1, t1) = paginate(ids.clone(), |s| s, "", 2).unwrap();
        assert_eq!(p1, ["a", "b"]);
        let (p2, t2) = paginate(ids.clone(), |s| s, &t1, 2).unwrap();
        assert_eq!(p2, ["c", "d"]);
        // "c" deleted between pages: the next page still starts after "d".
        let fewer: Vec<String> = ids.iter().filter(|s| *s != "c").cloned().collect();
        let (p3, t3) = paginate(fewer, |s| s, &t2, 2).unwrap();
        assert_eq!((p3, t3.as_str()), (vec!["e".to_string()], ""));
        assert!(matches!(
            paginate(ids.clone(), |s| s, "invalid-token", 2),
            Err(CsiError::Aborted(_))
        ));
        assert!(matches!(
            paginate(ids, |s| s, "", -1),
            Err(CsiError::InvalidArgument(_))
        ));
    }
}
