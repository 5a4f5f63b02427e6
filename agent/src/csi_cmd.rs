//! `hearth csi ...`: drive a CSI socket by hand, as kubelet and the sidecars would.
//!
//! Each subcommand is one CSI call. It prints a short summary, or the response as JSON-ish
//! debug output with `--verbose`.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use hearth_proto::csi::v1::volume_capability::{
    access_mode::Mode, AccessMode, AccessType, BlockVolume, MountVolume,
};
use hearth_proto::csi::v1::volume_content_source::{
    SnapshotSource, Type as SourceType, VolumeSource,
};
use hearth_proto::csi::v1::*;

use crate::client;
use crate::error::UsageError;

/// Flags of `hearth csi`.
#[derive(Debug, Args)]
pub struct CsiArgs {
    /// The CSI socket (`unix:///path` or a path). Defaults to STATE_DIR/csi.sock.
    #[arg(long, env = "HEARTH_CSI_ENDPOINT")]
    pub endpoint: Option<String>,
    /// The state directory of `hearth dev`, to find its socket.
    #[arg(long, env = "HEARTH_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// The call.
    #[command(subcommand)]
    pub call: Call,
}

/// How the volume is used.
#[derive(Debug, Args, Clone)]
pub struct Cap {
    /// A raw block volume instead of a filesystem.
    #[arg(long)]
    pub block: bool,
    /// Filesystem type (ext4 or xfs).
    #[arg(long, default_value = "ext4")]
    pub fs: String,
    /// Mount flags, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub mount_flags: Vec<String>,
    /// Access mode.
    #[arg(long, default_value = "SINGLE_NODE_WRITER")]
    pub mode: String,
}

/// The calls.
#[derive(Debug, Subcommand)]
pub enum Call {
    /// GetPluginInfo, capabilities, Probe and NodeGetInfo.
    Info,
    /// CreateVolume; prints `ID BYTES` and `node=NAME` when the volume lives on one node.
    Create {
        /// The volume name.
        name: String,
        /// Size, e.g. 64Mi, 1Gi, 1073741824.
        #[arg(long, default_value = "1Gi")]
        size: String,
        /// Restore this snapshot.
        #[arg(long, conflicts_with = "from_volume")]
        from_snapshot: Option<String>,
        /// Clone this volume.
        #[arg(long)]
        from_volume: Option<String>,
        /// StorageClass parameters, `KEY=VALUE`, repeatable.
        #[arg(long = "param", value_parser = parse_param)]
        params: Vec<(String, String)>,
        /// Capability.
        #[command(flatten)]
        cap: Cap,
    },
    /// DeleteVolume.
    Delete {
        /// The volume ID.
        volume_id: String,
    },
    /// ListVolumes; prints `ID\tBYTES\tCONDITION\tNODE` (`-` when not on one node).
    List,
    /// ControllerExpandVolume, then NodeExpandVolume when --path is given.
    Expand {
        /// The volume ID.
        volume_id: String,
        /// New size.
        #[arg(long)]
        size: String,
        /// A staged or published path, to grow the filesystem there.
        #[arg(long)]
        path: Option<String>,
    },
    /// ControllerPublishVolume: make the volume available on a node (LINSTOR backend).
    Attach {
        /// The volume ID.
        volume_id: String,
        /// The node.
        #[arg(long)]
        node: String,
        /// Capability.
        #[command(flatten)]
        cap: Cap,
    },
    /// ControllerUnpublishVolume.
    Detach {
        /// The volume ID.
        volume_id: String,
        /// The node.
        #[arg(long)]
        node: String,
    },
    /// NodeStageVolume.
    Stage {
        /// The volume ID.
        volume_id: String,
        /// Staging directory.
        #[arg(long)]
        staging: String,
        /// Capability.
        #[command(flatten)]
        cap: Cap,
        /// Volume context as kubelet passes it from the PersistentVolume, `KEY=VALUE`
        /// (repeatable; for example `csi.hearth.dev/node=node-a` from `hearth csi create`).
        #[arg(long = "volume-context", value_name = "KEY=VALUE")]
        volume_context: Vec<String>,
    },
    /// NodeUnstageVolume.
    Unstage {
        /// The volume ID.
        volume_id: String,
        /// Staging directory.
        #[arg(long)]
        staging: String,
    },
    /// NodePublishVolume.
    Publish {
        /// The volume ID.
        volume_id: String,
        /// Staging directory.
        #[arg(long)]
        staging: String,
        /// Target path.
        #[arg(long)]
        target: String,
        /// Publish read-only.
        #[arg(long)]
        readonly: bool,
        /// Capability.
        #[command(flatten)]
        cap: Cap,
    },
    /// NodeUnpublishVolume.
    Unpublish {
        /// The volume ID.
        volume_id: String,
        /// Target path.
        #[arg(long)]
        target: String,
    },
    /// NodeGetVolumeStats.
    Stats {
        /// The volume ID.
        volume_id: String,
        /// A staged or published path.
        #[arg(long)]
        path: String,
    },
    /// CreateSnapshot.
    Snapshot {
        /// The snapshot name.
        name: String,
        /// The source volume ID.
        #[arg(long)]
        volume: String,
    },
    /// ListSnapshots.
    Snapshots,
    /// DeleteSnapshot.
    DeleteSnapshot {
        /// The snapshot ID.
        snapshot_id: String,
    },
}

fn parse_param(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("{s:?} is not KEY=VALUE"))
}

/// Parses a size: plain bytes, or with a suffix K/M/G/T (powers of 1000) or Ki/Mi/Gi/Ti.
pub fn parse_size(s: &str) -> Result<i64, UsageError> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: i64 = num
        .parse()
        .map_err(|_| UsageError(format!("size {s:?} is not a number with an optional unit")))?;
    let mult: i64 = match unit {
        "" => 1,
        "K" | "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "T" => 1_000_000_000_000,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        _ => {
            return Err(UsageError(format!(
                "size {s:?} has an unknown unit {unit:?}"
            )))
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| UsageError(format!("size {s:?} is too large")))
}

fn capability(cap: &Cap) -> Result<VolumeCapability, UsageError> {
    let mode = Mode::from_str_name(&cap.mode)
        .ok_or_else(|| UsageError(format!("unknown access mode {:?}", cap.mode)))?;
    let access_type = if cap.block {
        AccessType::Block(BlockVolume {})
    } else {
        AccessType::Mount(MountVolume {
            fs_type: cap.fs.clone(),
            mount_flags: cap.mount_flags.clone(),
            ..Default::default()
        })
    };
    Ok(VolumeCapability {
        access_mode: Some(AccessMode { mode: mode as i32 }),
        access_type: Some(access_type),
    })
}

fn range(size: &str) -> Result<Option<CapacityRange>, UsageError> {
    Ok(Some(CapacityRange {
        required_bytes: parse_size(size)?,
        limit_bytes: 0,
    }))
}

/// A call the plugin answered with an error: printed as the code's name and the message
/// (`FailedPrecondition: volume … is staged at …`), not tonic's description of the code.
#[derive(Debug, thiserror::Error)]
#[error("{}", describe(.0))]
pub struct CallFailed(pub tonic::Status);

impl CallFailed {
    /// The exit code: 2 when the plugin found the request itself invalid (the person can fix
    /// the command line), 1 for every other refusal.
    pub fn exit_code(&self) -> u8 {
        match self.0.code() {
            tonic::Code::InvalidArgument | tonic::Code::OutOfRange => 2,
            _ => 1,
        }
    }
}

/// `Code: message`, or the code alone when the message is empty. The code's name is the
/// gRPC name in tonic's spelling (`NotFound`, `FailedPrecondition`).
fn describe(status: &tonic::Status) -> String {
    let code = format!("{:?}", status.code());
    match status.message().trim() {
        "" => code,
        message => format!("{code}: {message}"),
    }
}

/// Runs one call; a refusal by the plugin becomes [`CallFailed`].
pub async fn run(args: CsiArgs) -> anyhow::Result<()> {
    call(args)
        .await
        .map_err(|e| match e.downcast::<tonic::Status>() {
            Ok(status) => CallFailed(status).into(),
            Err(other) => other,
        })
}

async fn call(args: CsiArgs) -> anyhow::Result<()> {
    let socket = match (&args.endpoint, &args.state_dir) {
        (Some(e), _) => crate::serve::parse_endpoint(e)?,
        (None, Some(d)) => d.join("csi.sock"),
        (None, None) => return Err(UsageError("give --endpoint or --state-dir".into()).into()),
    };
    let mut c = client::connect(&socket).await?;
    match args.call {
        Call::Info => {
            let info = c
                .identity
                .get_plugin_info(GetPluginInfoRequest {})
                .await?
                .into_inner();
            println!("plugin: {} {}", info.name, info.vendor_version);
            let probe = c.identity.probe(ProbeRequest {}).await?.into_inner();
            println!("ready: {}", probe.ready.unwrap_or(false));
            if let Ok(n) = c.node.node_get_info(NodeGetInfoRequest {}).await {
                let n = n.into_inner();
                println!(
                    "node: {} (max {} volumes) topology {:?}",
                    n.node_id,
                    n.max_volumes_per_node,
                    n.accessible_topology
                        .map(|t| t.segments)
                        .unwrap_or_default()
                );
            }
        }
        Call::Create {
            name,
            size,
            from_snapshot,
            from_volume,
            params,
            cap,
        } => {
            let source = match (from_snapshot, from_volume) {
                (Some(snapshot_id), _) => {
                    Some(SourceType::Snapshot(SnapshotSource { snapshot_id }))
                }
                (None, Some(volume_id)) => Some(SourceType::Volume(VolumeSource { volume_id })),
                (None, None) => None,
            };
            let req = CreateVolumeRequest {
                name,
                capacity_range: range(&size)?,
                volume_capabilities: vec![capability(&cap)?],
                volume_content_source: source.map(|t| VolumeContentSource { r#type: Some(t) }),
                parameters: params.into_iter().collect(),
                ..Default::default()
            };
            let v = c
                .controller
                .create_volume(req)
                .await?
                .into_inner()
                .volume
                .unwrap_or_default();
            match placed_on(&v.accessible_topology) {
                Some(node) => println!("{} {} node={node}", v.volume_id, v.capacity_bytes),
                None => println!("{} {}", v.volume_id, v.capacity_bytes),
            }
        }
        Call::Delete { volume_id } => {
            c.controller
                .delete_volume(DeleteVolumeRequest {
                    volume_id,
                    ..Default::default()
                })
                .await?;
        }
        Call::List => {
            let mut token = String::new();
            loop {
                let resp = c
                    .controller
                    .list_volumes(ListVolumesRequest {
                        max_entries: 100,
                        starting_token: token,
                    })
                    .await?
                    .into_inner();
                for e in resp.entries {
                    let v = e.volume.unwrap_or_default();
                    let cond = e.status.and_then(|s| s.volume_condition).map(|c| {
                        if c.abnormal {
                            c.message
                        } else {
                            "ok".into()
                        }
                    });
                    println!(
                        "{}\t{}\t{}\t{}",
                        v.volume_id,
                        v.capacity_bytes,
                        cond.unwrap_or_default(),
                        placed_on(&v.accessible_topology).unwrap_or("-")
                    );
                }
                if resp.next_token.is_empty() {
                    break;
                }
                token = resp.next_token;
            }
        }
        Call::Expand {
            volume_id,
            size,
            path,
        } => {
            let r = c
                .controller
                .controller_expand_volume(ControllerExpandVolumeRequest {
                    volume_id: volume_id.clone(),
                    capacity_range: range(&size)?,
                    ..Default::default()
                })
                .await?
                .into_inner();
            println!("controller: {} bytes", r.capacity_bytes);
            if let Some(volume_path) = path {
                let n = c
                    .node
                    .node_expand_volume(NodeExpandVolumeRequest {
                        volume_id,
                        volume_path,
                        capacity_range: range(&size)?,
                        ..Default::default()
                    })
                    .await?
                    .into_inner();
                println!("node: {} bytes", n.capacity_bytes);
            }
        }
        Call::Attach {
            volume_id,
            node,
            cap,
        } => {
            let ctx = c
                .controller
                .controller_publish_volume(ControllerPublishVolumeRequest {
                    volume_id,
                    node_id: node,
                    volume_capability: Some(capability(&cap)?),
                    ..Default::default()
                })
                .await?
                .into_inner()
                .publish_context;
            for (k, v) in ctx {
                println!("{k}={v}");
            }
        }
        Call::Detach { volume_id, node } => {
            c.controller
                .controller_unpublish_volume(ControllerUnpublishVolumeRequest {
                    volume_id,
                    node_id: node,
                    ..Default::default()
                })
                .await?;
        }
        Call::Stage {
            volume_id,
            staging,
            cap,
            volume_context,
        } => {
            let volume_context = volume_context
                .iter()
                .map(|kv| {
                    kv.split_once('=')
                        .map(|(k, v)| (k.to_owned(), v.to_owned()))
                        .ok_or_else(|| {
                            UsageError(format!("--volume-context {kv}: expected KEY=VALUE"))
                        })
                })
                .collect::<Result<_, _>>()?;
            c.node
                .node_stage_volume(NodeStageVolumeRequest {
                    volume_id,
                    staging_target_path: staging,
                    volume_capability: Some(capability(&cap)?),
                    volume_context,
                    ..Default::default()
                })
                .await?;
        }
        Call::Unstage { volume_id, staging } => {
            c.node
                .node_unstage_volume(NodeUnstageVolumeRequest {
                    volume_id,
                    staging_target_path: staging,
                })
                .await?;
        }
        Call::Publish {
            volume_id,
            staging,
            target,
            readonly,
            cap,
        } => {
            c.node
                .node_publish_volume(NodePublishVolumeRequest {
                    volume_id,
                    staging_target_path: staging,
                    target_path: target,
                    readonly,
                    volume_capability: Some(capability(&cap)?),
                    ..Default::default()
                })
                .await?;
        }
        Call::Unpublish { volume_id, target } => {
            c.node
                .node_unpublish_volume(NodeUnpublishVolumeRequest {
                    volume_id,
                    target_path: target,
                })
                .await?;
        }
        Call::Stats { volume_id, path } => {
            let s = c
                .node
                .node_get_volume_stats(NodeGetVolumeStatsRequest {
                    volume_id,
                    volume_path: path,
                    staging_target_path: String::new(),
                })
                .await?
                .into_inner();
            for u in s.usage {
                let unit = volume_usage::Unit::try_from(u.unit)
                    .map(|u| u.as_str_name())
                    .unwrap_or("?");
                println!(
                    "{unit}: total {} used {} available {}",
                    u.total, u.used, u.available
                );
            }
            if let Some(cond) = s.volume_condition {
                println!(
                    "condition: {} ({})",
                    if cond.abnormal { "abnormal" } else { "healthy" },
                    cond.message
                );
            }
        }
        Call::Snapshot { name, volume } => {
            let s = c
                .controller
                .create_snapshot(CreateSnapshotRequest {
                    name,
                    source_volume_id: volume,
                    ..Default::default()
                })
                .await?
                .into_inner()
                .snapshot
                .unwrap_or_default();
            println!(
                "{} {} ready={}",
                s.snapshot_id, s.size_bytes, s.ready_to_use
            );
        }
        Call::Snapshots => {
            let resp = c
                .controller
                .list_snapshots(ListSnapshotsRequest::default())
                .await?
                .into_inner();
            for e in resp.entries {
                let s = e.snapshot.unwrap_or_default();
                println!(
                    "{}\t{}\t{}",
                    s.snapshot_id, s.source_volume_id, s.size_bytes
                );
            }
        }
        Call::DeleteSnapshot { snapshot_id } => {
            c.controller
                .delete_snapshot(DeleteSnapshotRequest {
                    snapshot_id,
                    ..Default::default()
                })
                .await?;
        }
    }
    Ok(())
}

/// The node a volume lives on, from its `topology.hearth.dev/node` segment (node-local
/// backends; LINSTOR volumes are reachable from several nodes and name none).
fn placed_on(topology: &[hearth_proto::csi::v1::Topology]) -> Option<&str> {
    let mut nodes = topology
        .iter()
        .filter_map(|t| t.segments.get(hearth_csi::TOPOLOGY_NODE_KEY));
    let first = nodes.next()?;
    nodes.all(|n| n == first).then_some(first.as_str())
}

#[cfg(test)]
#[path = "csi_cmd_tests.rs"]
mod tests;
