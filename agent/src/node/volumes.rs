//! Volume calls from the coordinator, carried out on this node's own backend (the loopfile
//! images in its state directory): create, delete, expand and get, each answered with the
//! call's ID and a gRPC status code.

use std::collections::BTreeMap;
use std::sync::Arc;

use hearth_csi::backend::{VolumeBackend, VolumeSpec};
use hearth_csi::CsiError;
use hearth_proto::hearth::v1::{volume_call, VolumeCall, VolumeReply};

fn failed(call_id: u64, e: &CsiError) -> VolumeReply {
    VolumeReply {
        call_id,
        code: e.code() as i32,
        message: e.to_string(),
        ..VolumeReply::default()
    }
}

/// Carries out `call` on `backend`.
pub async fn execute(backend: &Arc<dyn VolumeBackend>, call: VolumeCall) -> VolumeReply {
    let id = call.call_id;
    let ok = |volume_id: String, capacity_bytes: u64| VolumeReply {
        call_id: id,
        volume_id,
        capacity_bytes,
        found: true,
        ..VolumeReply::default()
    };
    match call.op {
        Some(volume_call::Op::Create(c)) => {
            let spec = VolumeSpec {
                name: c.name,
                capacity_bytes: c.capacity_bytes,
                limit_bytes: c.limit_bytes,
                parameters: c.parameters.into_iter().collect::<BTreeMap<_, _>>(),
                source: None,
                requisite: Vec::new(),
                preferred: Vec::new(),
            };
            match backend.create_volume(&spec).await {
                Ok(v) => ok(v.id, v.capacity_bytes),
                Err(e) => failed(id, &e),
            }
        }
        Some(volume_call::Op::DeleteVolumeId(v)) => match backend.delete_volume(&v).await {
            Ok(()) => ok(v, 0),
            Err(e) => failed(id, &e),
        },
        Some(volume_call::Op::Expand(x)) => {
            match backend.expand_volume(&x.volume_id, x.capacity_bytes).await {
                Ok(bytes) => ok(x.volume_id, bytes),
                Err(e) => failed(id, &e),
            }
        }
        Some(volume_call::Op::GetVolumeId(v)) => match backend.get_volume(&v).await {
            Ok(Some(vol)) => {
                let condition = backend.volume_condition(&v).await;
                let (abnormal, message) = match condition {
                    Ok(c) => (c.abnormal, c.message),
                    Err(e) => (true, e.to_string()),
                };
                VolumeReply {
                    abnormal,
                    condition: message,
                    ..ok(vol.id, vol.capacity_bytes)
                }
            }
            Ok(None) => VolumeReply {
                call_id: id,
                found: false,
                ..VolumeReply::default()
            },
            Err(e) => failed(id, &e),
        },
        None => failed(
            id,
            &CsiError::InvalidArgument("a volume call without an operation".into()),
        ),
    }
}
