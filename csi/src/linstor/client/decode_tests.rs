//! Decoding tests for the client's JSON shapes: hand-written fixtures in LINSTOR's wire form,
//! the real controller answers in `../shared/reference/samples/` when present, and properties
//! that no JSON value (or byte string) makes a decoder panic.

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{json, Value};

    use super::super::rc::{self, RcKind};
    use super::super::*;

    #[test]
    fn resource_view_item_with_volumes() {
        let v = json!({
            "name": "pvc-1", "node_name": "n1",
            "props": {"StorPoolName": "data"},
            "flags": null,
            "state": {"in_use": false},
            "layer_object": {"type": "DRBD", "children": []},
            "volumes": [{
                "volume_number": 0, "storage_pool_name": "data", "provider_kind": "LVM_THIN",
                "device_path": "/dev/drbd1000", "allocated_size_kib": 1024,
                "usable_size_kib": 1048576, "state": {"disk_state": "UpToDate"},
                "layer_data_list": [{"type": "DRBD", "data": {}}]
            }],
            "create_timestamp": 1_700_000_000_000_i64,
            "uuid": "x"
        });
        let r: Resource = serde_json::from_value(v).unwrap();
        assert!(!r.is_diskless());
        assert!(!r.in_use());
        assert_eq!(r.volumes[0].device_path.as_deref(), Some("/dev/drbd1000"));
        assert_eq!(r.volumes[0].disk_state(), Some("UpToDate"));
        let d: Resource = serde_json::from_value(json!({
            "name": "pvc-1", "node_name": "n3", "flags": ["DISKLESS", "DRBD_DISKLESS"],
            "state": {"in_use": true}
        }))
        .unwrap();
        assert!(d.is_diskless() && d.in_use());
    }

    #[test]
    fn volume_definition_minor_and_pool_capacity() {
        let vd: VolumeDefinition = serde_json::from_value(json!({
            "volume_number": 0, "size_kib": 1048576, "flags": [],
            "layer_data": [{"type": "DRBD", "data": {"volume_number": 0, "minor_number": 1003}},
                           {"type": "STORAGE"}]
        }))
        .unwrap();
        assert_eq!(vd.drbd_minor(), Some(1003));
        let sp: StoragePool = serde_json::from_value(json!({
            "storage_pool_name": "DfltDisklessStorPool", "node_name": "n1",
            "provider_kind": "DISKLESS", "static_traits": {"SupportsSnapshots": "false"}
        }))
        .unwrap();
        assert!(sp.is_diskless() && sp.free_capacity.is_none());
    }

    #[test]
    fn request_bodies_leave_out_empty_fields() {
        let body = serde_json::to_value(ResourceCreate::diskless("pvc-1", "n3")).unwrap();
        assert_eq!(
            body,
            json!({"resource": {"name": "pvc-1", "node_name": "n3", "flags": ["DRBD_DISKLESS"]}})
        );
        let body =
            serde_json::to_value(ResourceCreate::diskful("pvc-1", "n1", Some("data"))).unwrap();
        assert_eq!(body["resource"]["props"]["StorPoolName"], "data");
        let rg = ResourceGroup {
            name: "sc-fast".into(),
            select_filter: AutoSelectFilter {
                place_count: Some(2),
                storage_pool_list: vec!["a".into(), "b".into()],
                ..AutoSelectFilter::default()
            },
            ..ResourceGroup::default()
        };
        assert_eq!(
            serde_json::to_value(&rg).unwrap(),
            json!({"name": "sc-fast", "select_filter": {"place_count": 2, "storage_pool_list": ["a", "b"]}})
        );
        let s3 = S3Remote {
            secret_key: "hunter2".into(),
            ..S3Remote::default()
        };
        assert!(!format!("{s3:?}").contains("hunter2"));
    }

    #[test]
    fn reference_samples_decode() {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/reference/samples");
        let read = |name: &str| -> Option<Value> {
            let text = std::fs::read_to_string(dir.join(name)).ok()?;
            serde_json::from_str::<Value>(&text)
                .ok()?
                .get("body")
                .cloned()
        };
        let Some(rsc) = read("linstor-GET-resource-definitions-rd-resources-node.json") else {
            println!("skipping: {} is absent (no ../shared here)", dir.display());
            return;
        };
        let r: Resource = serde_json::from_value(rsc).unwrap();
        assert_eq!(
            r.props.get("StorPoolName").map(String::as_str),
            Some("thinpool")
        );
        if let Some(item) = read("linstor-GET-view-resources-item.json") {
            let r: Resource = serde_json::from_value(item).unwrap();
            assert!(r.volumes.iter().all(|v| v.device_path.is_some()));
        }
        if let Some(vol) = read("linstor-GET-resources-node-volumes-0.json") {
            let v: Volume = serde_json::from_value(vol).unwrap();
            assert_eq!(v.device_path.as_deref(), Some("/dev/drbd1000"));
            assert_eq!(v.disk_state(), Some("UpToDate"));
        }
    }

    /// Any JSON value, a few levels deep, with LINSTOR-ish keys so that fields get hit.
    fn json_value() -> impl Strategy<Value = Value> {
        let key = prop_oneof![
            Just("ret_code".to_owned()),
            Just("message".to_owned()),
            Just("name".to_owned()),
            Just("flags".to_owned()),
            Just("props".to_owned()),
            Just("volumes".to_owned()),
            Just("state".to_owned()),
            Just("size_kib".to_owned()),
            Just("select_filter".to_owned()),
            Just("layer_data".to_owned()),
            Just("linstor".to_owned()),
            "[a-z_]{1,12}",
        ];
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>()
                .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
            ".{0,12}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 48, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map(key.clone(), inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn decode_all(v: &Value) {
        let bytes = serde_json::to_vec(v).unwrap_or_default();
        if let Ok(rcs) = rc::decode_list(&bytes) {
            for r in &rcs {
                let _ = r.kind();
            }
            for status in [200, 201, 400, 403, 404, 500, 503] {
                if let Err(e) = rc::check("GET /v1/x", status, &rcs) {
                    let _ = (e.to_string(), e.ret_code(), e.is_transient());
                }
            }
        }
        let _ = serde_json::from_value::<Vec<Resource>>(v.clone());
        let _ = serde_json::from_value::<Resource>(v.clone());
        let _ = serde_json::from_value::<Vec<StoragePool>>(v.clone());
        let _ = serde_json::from_value::<Vec<Node>>(v.clone());
        let _ = serde_json::from_value::<ResourceGroup>(v.clone());
        let _ = serde_json::from_value::<ResourceDefinition>(v.clone()).map(|rd| {
            rd.volume_definitions
                .iter()
                .filter_map(VolumeDefinition::drbd_minor)
                .count()
        });
        let _ = serde_json::from_value::<Vec<Snapshot>>(v.clone())
            .map(|s| s.iter().filter_map(Snapshot::created_ms).count());
        let _ = serde_json::from_value::<CloneStarted>(v.clone());
        let _ = serde_json::from_value::<CloneStatus>(v.clone());
        let _ = serde_json::from_value::<ControllerVersion>(v.clone());
        let _ = serde_json::from_value::<BackupList>(v.clone());
        let _ = serde_json::from_value::<RemoteList>(v.clone());
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_json_never_panics(v in json_value()) {
            decode_all(&v);
        }

        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
            if let Ok(rcs) = rc::decode_list(&bytes) {
                let _ = rc::check("POST /v1/x", 500, &rcs);
            }
        }

        #[test]
        fn every_error_code_maps_to_one_kind(code in 0u64..0x8000, obj in 0u64..32, op in 0u64..4) {
            let ret_code = consts::MASK_ERROR | (obj << 18) | (op << 24) | code;
            let r = ApiCallRc { ret_code, ..ApiCallRc::default() };
            let kind = r.kind();
            prop_assert_ne!(kind, RcKind::Success);
            let e = rc::check("POST /v1/x", 500, std::slice::from_ref(&r)).unwrap_err();
            prop_assert_eq!(e.ret_code(), Some(ret_code));
            prop_assert_eq!(kind == RcKind::AlreadyExists, e.is_already_exists());
            prop_assert_eq!(kind == RcKind::NotFound, e.is_not_found());
            prop_assert_eq!(kind == RcKind::InUse, e.is_in_use());
        }
    }
}
