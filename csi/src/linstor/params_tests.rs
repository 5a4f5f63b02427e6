use super::*;
use crate::linstor::remote_access::RemoteAccess;
use serde::Deserialize;

/// The reference StorageClasses (`../shared/reference/samples/*.yaml`), or None (printing
/// why) when that checkout is absent.
fn reference_yaml() -> Option<Vec<(std::path::PathBuf, String)>> {
    let dir =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/reference/samples");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        println!("skipped: no reference samples at {}", dir.display());
        return None;
    };
    let mut out: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .filter_map(|p| std::fs::read_to_string(&p).ok().map(|t| (p, t)))
        .collect();
    out.sort();
    Some(out)
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn refused_naming(params: &[(&str, &str)], key: &str) {
    match StorageClassParams::parse(&map(params)) {
        Err(CsiError::InvalidArgument(m)) => assert!(m.contains(key), "{m} should name {key}"),
        other => panic!("{params:?}: expected INVALID_ARGUMENT naming {key}, got {other:?}"),
    }
}

#[test]
fn cozystack_replicated_class_parses() {
    let p = StorageClassParams::parse(&map(&[
        ("linstor.csi.linbit.com/storagePool", "data"),
        ("linstor.csi.linbit.com/autoPlace", "3"),
        ("linstor.csi.linbit.com/layerList", "drbd storage"),
        ("linstor.csi.linbit.com/allowRemoteVolumeAccess", "true"),
        (
            "property.linstor.csi.linbit.com/DrbdOptions/auto-quorum",
            "suspend-io",
        ),
        ("csi.storage.k8s.io/pvc/name", "ignored"),
    ]))
    .unwrap();
    assert_eq!(p.place_count, 3);
    assert_eq!(p.storage_pools, ["data"]);
    assert_eq!(p.layer_list, ["DRBD", "STORAGE"]);
    assert_eq!(
        p.properties
            .get("DrbdOptions/auto-quorum")
            .map(String::as_str),
        Some("suspend-io")
    );
    let name = p.resource_group_name();
    assert!(name.starts_with("hearth-") && name.len() == 23, "{name}");
    assert_eq!(
        name,
        StorageClassParams::parse(&map(&[
            ("autoPlace", "3"),
            ("storagePool", "data"),
            ("layerList", "drbd,storage"),
            ("property.hearth.dev/DrbdOptions/auto-quorum", "suspend-io"),
        ]))
        .unwrap()
        .resource_group_name(),
        "the same class in other spellings is the same group"
    );
}

#[test]
fn keys_match_case_insensitively_in_the_linstor_prefix() {
    let spellings = ["StoragePool", "storagepool", "storagePool", "STORAGEPOOL"];
    for k in spellings {
        for prefix in ["linstor.csi.linbit.com/", "hearth.dev/", ""] {
            let key = format!("{prefix}{k}");
            let p = StorageClassParams::parse(&map(&[(&key, "data")])).unwrap();
            assert_eq!(p.storage_pools, ["data"], "{key}");
        }
    }
    let p =
        StorageClassParams::parse(&map(&[("PlacementCount", "2"), ("AutoPlace", "2")])).unwrap();
    assert_eq!(p.place_count, 2);
}

#[test]
fn drbd_options_are_linstor_properties_and_foreign_keys_are_ignored() {
    // linstor-csi's TestNewParameters "legacy" and "generalProps" inputs.
    let expected = map(&[
        ("DrbdOptions/auto-quorum", "suspend-io"),
        ("DrbdOptions/Net/protocol", "C"),
    ]);
    let legacy = StorageClassParams::parse(&expected).unwrap();
    assert_eq!(legacy.properties, expected);
    let general = StorageClassParams::parse(&map(&[
        (
            "property.linstor.csi.linbit.com/DrbdOptions/auto-quorum",
            "suspend-io",
        ),
        (
            "property.linstor.csi.linbit.com/DrbdOptions/Net/protocol",
            "C",
        ),
    ]))
    .unwrap();
    assert_eq!(general.properties, expected);
    let foreign = StorageClassParams::parse(&map(&[
        ("example.com/whatever", "x"),
        ("qos.linbit.com/read-iops", "1000"),
        ("csi.storage.k8s.io/fstype", "xfs"),
    ]))
    .unwrap();
    assert!(foreign.properties.is_empty());
}

#[test]
fn linstor_csi_resource_group_inputs() {
    // TestNewParameters: empty, "resourcegroup", and with the namespace.
    let empty = StorageClassParams::parse(&BTreeMap::new()).unwrap();
    assert!(!empty.resource_group_name().is_empty());
    for key in ["resourcegroup", "linstor.csi.linbit.com/resourcegroup"] {
        let p = StorageClassParams::parse(&map(&[(key, "rg1")])).unwrap();
        assert_eq!(p.resource_group_name(), "rg1");
    }
}

#[test]
fn reference_storage_classes_parse() {
    let Some(samples) = reference_yaml() else {
        return;
    };
    let mut classes = 0;
    for (path, text) in &samples {
        for doc in serde_yaml_ng::Deserializer::from_str(text) {
            let Ok(v) = serde_yaml_ng::Value::deserialize(doc) else {
                continue;
            };
            if v.get("kind").and_then(|k| k.as_str()) != Some("StorageClass") {
                continue;
            }
            let params: BTreeMap<String, String> = v
                .get("parameters")
                .and_then(|p| serde_yaml_ng::from_value(p.clone()).ok())
                .unwrap_or_default();
            let p = StorageClassParams::parse(&params)
                .unwrap_or_else(|e| panic!("{}: {params:?}: {e}", path.display()));
            classes += 1;
            if params
                .get("linstor.csi.linbit.com/layerList")
                .map(String::as_str)
                == Some("storage")
            {
                assert_eq!(p.remote_access, RemoteAccess::LocalOnly);
            }
            if params.contains_key("resourceGroup") {
                assert_eq!(p.resource_group_name(), "kubevirt");
                assert_eq!(
                    (p.place_count, p.storage_pools.clone()),
                    (2, vec!["lvm-thin".to_owned()])
                );
            }
        }
    }
    assert!(
        classes >= 3,
        "expected Cozystack's two classes and linstor-csi's kubevirt one"
    );
}

#[test]
fn piraeus_documented_parameters_parse() {
    // The parameters piraeus' and linstor-csi's docs show for StorageClasses.
    let p = StorageClassParams::parse(&map(&[
        ("linstor.csi.linbit.com/storagePool", "pool1 pool2"),
        ("linstor.csi.linbit.com/placementCount", "2"),
        (
            "linstor.csi.linbit.com/disklessStoragePool",
            "DfltDisklessStorPool",
        ),
        (
            "linstor.csi.linbit.com/replicasOnSame",
            "topology.kubernetes.io/zone",
        ),
        (
            "linstor.csi.linbit.com/replicasOnDifferent",
            "topology.kubernetes.io/rack",
        ),
        (
            "linstor.csi.linbit.com/xReplicasOnDifferent",
            "topology.kubernetes.io/zone: 2",
        ),
        ("linstor.csi.linbit.com/doNotPlaceWithRegex", "tainted.*"),
        ("linstor.csi.linbit.com/disklessOnRemaining", "false"),
        ("linstor.csi.linbit.com/encryption", "true"),
        ("linstor.csi.linbit.com/usePvcName", "true"),
        ("linstor.csi.linbit.com/overProvision", "2.0"),
        (
            "linstor.csi.linbit.com/placementPolicy",
            "AutoPlaceTopology",
        ),
        ("linstor.csi.linbit.com/sizeKiB", "4096"),
        (
            "linstor.csi.linbit.com/allowRemoteVolumeAccess",
            "- fromSame:\n  - topology.kubernetes.io/zone\n",
        ),
        ("DrbdOptions/Net/rr-conflict", "retry-connect"),
        (
            "property.linstor.csi.linbit.com/StorDriver/LvcreateOptions",
            "-i 2",
        ),
    ]))
    .unwrap();
    assert_eq!(p.storage_pools, ["pool1", "pool2"]);
    assert_eq!(p.replicas_on_same, ["Aux/topology.kubernetes.io/zone"]);
    assert_eq!(p.replicas_on_different, ["Aux/topology.kubernetes.io/rack"]);
    assert_eq!(
        p.x_replicas_on_different
            .get("Aux/topology.kubernetes.io/zone"),
        Some(&2)
    );
    assert_eq!(
        p.layer_list,
        ["DRBD", "LUKS", "STORAGE"],
        "encryption adds LUKS"
    );
    assert!(matches!(p.remote_access, RemoteAccess::FromSame(_)));
    assert!(p.over_provision.is_some());
    assert!(!p.placer_may_choose());
    let manual = StorageClassParams::parse(&map(&[
        ("nodeList", "node-a node-b"),
        ("clientList", "node-c"),
        ("replicasOnSame", "zone"),
    ]))
    .unwrap();
    assert_eq!(manual.client_list, ["node-c"]);
    assert!(
        manual.replicas_on_same.is_empty(),
        "manual placement drops autoplace rules"
    );
}

#[test]
fn remote_access_defaults_follow_the_layers() {
    let p = StorageClassParams::parse(&map(&[("layerList", "storage")])).unwrap();
    assert_eq!(p.remote_access, RemoteAccess::LocalOnly);
    let p = StorageClassParams::parse(&map(&[("layerList", "drbd storage")])).unwrap();
    assert_eq!(p.remote_access, RemoteAccess::Anywhere);
    let p = StorageClassParams::parse(&map(&[("layerList", "nvme storage")])).unwrap();
    assert_eq!(p.remote_access, RemoteAccess::Anywhere);
    let p = StorageClassParams::parse(&BTreeMap::new()).unwrap();
    assert_eq!(
        p.remote_access,
        RemoteAccess::Anywhere,
        "LINSTOR's default stack has DRBD"
    );
}

#[test]
fn refuses_unknown_and_malformed_naming_the_key() {
    refused_naming(&[("replicas", "3")], "replicas");
    refused_naming(
        &[("linstor.csi.linbit.com/bogus", "1")],
        "linstor.csi.linbit.com/bogus",
    );
    refused_naming(&[("hearth.dev/Bogus", "1")], "hearth.dev/Bogus");
    refused_naming(&[("fsOpts", "-L x;reboot")], "fsOpts");
    refused_naming(
        &[("linstor.csi.linbit.com/FSOPTS", "-d /etc")],
        "linstor.csi.linbit.com/FSOPTS",
    );
    refused_naming(&[("mountOpts", "bind")], "mountOpts");
    refused_naming(
        &[("linstor.csi.linbit.com/postMountXfsOpts", "pwrite 0 1m")],
        "linstor.csi.linbit.com/postMountXfsOpts",
    );
    for bad in [
        map(&[("autoPlace", "0")]),
        map(&[("autoPlace", "many")]),
        map(&[("layerList", "drbd zfs")]),
        map(&[("layerList", "storage drbd")]),
        map(&[("allowRemoteVolumeAccess", "maybe: [")]),
        map(&[("resourceGroup", "../x")]),
        map(&[("storagePool", "a;b")]),
        map(&[("property.hearth.dev/", "x")]),
        map(&[("overProvision", "-1")]),
        map(&[("placementPolicy", "Random")]),
        map(&[("xReplicasOnDifferent", "zone: many")]),
    ] {
        assert!(
            matches!(
                StorageClassParams::parse(&bad),
                Err(CsiError::InvalidArgument(_))
            ),
            "{bad:?}"
        );
    }
}

#[test]
fn filesystem_options_reach_the_node_through_the_volume_context() {
    use crate::node::context::*;
    let p = StorageClassParams::parse(&map(&[
        ("linstor.csi.linbit.com/fsOpts", "-m crc=1 -L data"),
        ("MountOpts", "noatime,discard"),
        ("hearth.dev/postmountxfsopts", "extsize 2m"),
    ]))
    .unwrap();
    let plain = StorageClassParams::parse(&BTreeMap::new()).unwrap();
    assert_eq!(
        p.digest(),
        plain.digest(),
        "node-side options keep the resource group"
    );
    let ctx = p.node_context(false);
    assert_eq!(ctx[FS_OPTIONS_CONTEXT], "-m crc=1 -L data");
    assert_eq!(ctx[MOUNT_OPTIONS_CONTEXT], "noatime,discard");
    assert_eq!(ctx[POST_MOUNT_XFS_CONTEXT], "extsize 2m");
    assert!(!ctx.contains_key(XFS_NOUUID_CONTEXT));
    assert_eq!(plain.node_context(true)[XFS_NOUUID_CONTEXT], "true");
    assert!(plain.node_context(false).is_empty());
}
