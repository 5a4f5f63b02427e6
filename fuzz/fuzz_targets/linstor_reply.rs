//! Fuzzes the LINSTOR client's decoding of controller answers: `ApiCallRc` lists (with the
//! error mapping) and the JSON shapes of the views and single objects.
#![no_main]

use hearth_csi::linstor::client::{rc, Resource, ResourceDefinition, Snapshot, StoragePool};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(rcs) = rc::decode_list(data) {
        for status in [200, 404, 500] {
            if let Err(e) = rc::check("POST /v1/fuzz", status, &rcs) {
                let _ = (e.to_string(), e.code(), e.is_transient());
            }
        }
    }
    if let Ok(view) = serde_json::from_slice::<Vec<Resource>>(data) {
        for r in &view {
            let _ = (r.is_diskless(), r.in_use(), r.volumes.iter().map(|v| v.disk_state()).count());
        }
    }
    let _ = serde_json::from_slice::<Vec<StoragePool>>(data);
    let _ = serde_json::from_slice::<ResourceDefinition>(data)
        .map(|d| d.volume_definitions.iter().filter_map(|v| v.drbd_minor()).count());
    let _ = serde_json::from_slice::<Vec<Snapshot>>(data).map(|s| s.iter().filter_map(Snapshot::created_ms).count());
});
