//! `allowRemoteVolumeAccess`: which nodes without a replica may attach a volume disklessly.
//! linstor-csi's policy (`pkg/volume/remoteaccess.go`): `true` (anywhere), `false` (only nodes
//! with a replica), or YAML rules `- fromSame: [label, ...]`: a node may attach when, for some
//! rule, it has the same value as a replica's node for each label of the rule (a label the
//! replica's node lacks does not constrain). Labels are LINSTOR node properties in the `Aux/`
//! namespace (`topology.kubernetes.io/zone` is `Aux/topology.kubernetes.io/zone`).
//!
//! Pure: the decision over node properties the caller read.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One rule: the labels a node must share with a replica's node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FromSame {
    /// The node labels.
    #[serde(rename = "fromSame", default)]
    pub from_same: Vec<String>,
}

/// The policy.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum RemoteAccess {
    /// Any node.
    #[default]
    Anywhere,
    /// Only nodes with a replica.
    LocalOnly,
    /// Nodes sharing the labels of one rule with a replica's node.
    FromSame(Vec<FromSame>),
}

/// A node's properties, by node name.
pub type NodeProps<'a> = BTreeMap<&'a str, &'a BTreeMap<String, String>>;

impl RemoteAccess {
    /// Parses a StorageClass value: a boolean, or the YAML rules.
    pub fn parse(value: &str) -> Result<Self, String> {
        match value.trim().to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" | "t" => return Ok(Self::Anywhere),
            "false" | "no" | "0" | "f" => return Ok(Self::LocalOnly),
            _ => {}
        }
        let rules: Vec<FromSame> = serde_yaml_ng::from_str(value).map_err(|e| {
            format!("expected true, false or `- fromSame: [label, ...]` rules ({e})")
        })?;
        Ok(match rules.is_empty() {
            true => Self::LocalOnly,
            false => Self::FromSame(rules),
        })
    }

    /// The property value Hearth keeps on the resource definition.
    pub fn to_prop(&self) -> String {
        match self {
            Self::Anywhere => "true".into(),
            Self::LocalOnly => "false".into(),
            Self::FromSame(rules) => {
                serde_json::to_string(rules).unwrap_or_else(|_| "false".into())
            }
        }
    }

    /// Reads the property back; a missing one (a volume from before the property) is
    /// anywhere, an unreadable one local only.
    pub fn from_prop(value: Option<&String>) -> Self {
        match value.map(String::as_str) {
            None | Some("true") => Self::Anywhere,
            Some("false") => Self::LocalOnly,
            Some(json) => serde_json::from_str(json).map_or(Self::LocalOnly, Self::FromSame),
        }
    }

    /// Whether `node` may attach, given the nodes holding diskful replicas and every node's
    /// properties.
    pub fn allows(&self, node: &str, replicas: &[String], props: &NodeProps<'_>) -> bool {
        if replicas.iter().any(|r| r == node) {
            return true;
        }
        let rules = match self {
            Self::Anywhere => return true,
            Self::LocalOnly => return false,
            Self::FromSame(rules) => rules,
        };
        let label = |n: &str, l: &str| {
            let key = if l.starts_with("Aux/") {
                l.to_owned()
            } else {
                format!("Aux/{l}")
            };
            props.get(n).and_then(|p| p.get(&key)).cloned()
        };
        rules.iter().any(|rule| {
            replicas.iter().any(|r| {
                rule.from_same.iter().all(|l| match label(r, l) {
                    None => true,
                    Some(v) => label(node, l).as_ref() == Some(&v),
                })
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linstor_csi_unmarshal_cases() {
        assert_eq!(RemoteAccess::parse("true"), Ok(RemoteAccess::Anywhere));
        assert_eq!(RemoteAccess::parse("false"), Ok(RemoteAccess::LocalOnly));
        let simple = "\n- fromSame:\n    - topology.kubernetes.io/zone\n    - topology.kubernetes.io/region\n";
        assert_eq!(
            RemoteAccess::parse(simple),
            Ok(RemoteAccess::FromSame(vec![FromSame {
                from_same: vec![
                    "topology.kubernetes.io/zone".into(),
                    "topology.kubernetes.io/region".into()
                ]
            }]))
        );
        let multi = "\n- fromSame:\n    - topology.kubernetes.io/zone\n    - topology.kubernetes.io/region\n- fromSame:\n    - some-other-zone-label\n";
        let RemoteAccess::FromSame(rules) = RemoteAccess::parse(multi).expect("parses") else {
            panic!("rules expected")
        };
        assert_eq!(rules.len(), 2);
        assert!(RemoteAccess::parse("maybe: [").is_err());
    }

    #[test]
    fn the_property_round_trips() {
        for v in ["true", "false", "- fromSame: [topology.kubernetes.io/zone]"] {
            let p = RemoteAccess::parse(v).expect("parses");
            assert_eq!(RemoteAccess::from_prop(Some(&p.to_prop())), p, "{v}");
        }
        assert_eq!(RemoteAccess::from_prop(None), RemoteAccess::Anywhere);
    }

    #[test]
    fn from_same_allows_nodes_sharing_the_label_with_a_replica() {
        let zone = |z: &str| {
            BTreeMap::from([("Aux/topology.kubernetes.io/zone".to_owned(), z.to_owned())])
        };
        let (a, b, c, d) = (zone("z1"), zone("z1"), zone("z2"), BTreeMap::new());
        let props: NodeProps<'_> = BTreeMap::from([("a", &a), ("b", &b), ("c", &c), ("d", &d)]);
        let policy = RemoteAccess::parse("- fromSame: [topology.kubernetes.io/zone]").unwrap();
        let replicas = vec!["a".to_owned()];
        assert!(policy.allows("a", &replicas, &props));
        assert!(policy.allows("b", &replicas, &props));
        assert!(!policy.allows("c", &replicas, &props));
        assert!(!policy.allows("d", &replicas, &props));
        assert!(!RemoteAccess::LocalOnly.allows("b", &replicas, &props));
        assert!(RemoteAccess::Anywhere.allows("d", &replicas, &props));
        // An unknown label on the replica's node does not constrain (linstor-csi's
        // access-unknown-label case).
        let unknown = RemoteAccess::parse("- fromSame: [some-new-label]").unwrap();
        assert!(unknown.allows("c", &replicas, &props));
    }
}
