//! Unit tests of NodeStage's filesystem options and growth, over the recording fakes.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hearth_proto::csi::v1::node_server::Node;
use hearth_proto::csi::v1::volume_capability::access_mode::Mode;
use hearth_proto::csi::v1::volume_capability::{AccessMode, AccessType, MountVolume};
use hearth_proto::csi::v1::*;
use tonic::{Code, Request};

use crate::attach::fake::FakeAttacher;
use crate::mount::fake::{FakeMounter, MountCall};
use crate::mount::{FsType, Probe};
use crate::node::context::*;
use crate::node::{NodeConfig, NodeService};

const MIB: u64 = 1 << 20;
const DEV: &str = "/dev/loop41";

struct Rig {
    _dir: tempfile::TempDir,
    staging: PathBuf,
    mounter: Arc<FakeMounter>,
    node: NodeService<FakeAttacher, FakeMounter>,
}

fn rig() -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    let kubelet = root.join("kubelet");
    std::fs::create_dir_all(&kubelet).unwrap();
    let attacher = Arc::new(FakeAttacher::new());
    let mounter = Arc::new(FakeMounter::new());
    attacher.add_volume("vol", Path::new(DEV), 128 * MIB);
    mounter.add_blank_device(Path::new(DEV), 41, 128 * MIB);
    let config = NodeConfig {
        node_id: "node-a".into(),
        kubelet_dir: kubelet.clone(),
        max_volumes_per_node: 0,
        markers_dir: root.join("formatting"),
        multi_node: true,
    };
    let node = NodeService::new(attacher, Arc::clone(&mounter), config).unwrap();
    Rig {
        _dir: dir,
        staging: kubelet.join("staging/vol"),
        mounter,
        node,
    }
}

impl Rig {
    async fn stage(&self, fs: &str, context: &[(&str, &str)]) -> Result<(), Code> {
        let req = NodeStageVolumeRequest {
            volume_id: "vol".into(),
            staging_target_path: self.staging.to_str().unwrap().into(),
            volume_capability: Some(VolumeCapability {
                access_mode: Some(AccessMode {
                    mode: Mode::SingleNodeWriter as i32,
                }),
                access_type: Some(AccessType::Mount(MountVolume {
                    fs_type: fs.into(),
                    mount_flags: vec!["discard".into()],
                    ..Default::default()
                })),
            }),
            volume_context: context
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<HashMap<_, _>>(),
            ..Default::default()
        };
        self.node
            .node_stage_volume(Request::new(req))
            .await
            .map(drop)
            .map_err(|s| s.code())
    }

    fn calls(&self) -> Vec<MountCall> {
        self.mounter.calls()
    }
}

#[tokio::test]
async fn the_class_options_reach_mkfs_mount_and_xfs_io() {
    let r = rig();
    r.stage(
        "xfs",
        &[
            (FS_OPTIONS_CONTEXT, "-L data"),
            (MOUNT_OPTIONS_CONTEXT, "noatime"),
            (POST_MOUNT_XFS_CONTEXT, "extsize 2m"),
            (XFS_NOUUID_CONTEXT, "true"),
        ],
    )
    .await
    .unwrap();
    let calls = r.calls();
    assert!(
        matches!(
            &calls[0],
            MountCall::Format { fs: FsType::Xfs, args, .. } if args == &["-L", "data"]
        ),
        "{calls:?}"
    );
    assert!(
        matches!(
            &calls[1],
            MountCall::MountDevice { opts, .. } if opts.flags == ["noatime", "nouuid", "discard"]
        ),
        "{calls:?}"
    );
    assert!(
        matches!(
            &calls[2],
            MountCall::PostMountXfs { command, .. } if command == "extsize 2m"
        ),
        "{calls:?}"
    );
    assert_eq!(calls.len(), 3, "a fresh filesystem is not grown: {calls:?}");
}

#[tokio::test]
async fn refused_options_fail_before_anything_is_touched() {
    let r = rig();
    for (k, v) in [
        (FS_OPTIONS_CONTEXT, "-L $(id)"),
        (MOUNT_OPTIONS_CONTEXT, "remount"),
        (POST_MOUNT_XFS_CONTEXT, "truncate 0"),
    ] {
        assert_eq!(r.stage("xfs", &[(k, v)]).await, Err(Code::InvalidArgument));
    }
    // mke2fs would populate the filesystem from a directory.
    assert_eq!(
        r.stage("ext4", &[(FS_OPTIONS_CONTEXT, "-d etc")]).await,
        Err(Code::InvalidArgument)
    );
    assert!(r.calls().is_empty(), "{:?}", r.calls());
}

#[tokio::test]
async fn a_smaller_ext4_grows_before_the_mount() {
    let r = rig();
    let dev = Path::new(DEV);
    r.mounter.set_content(dev, Probe::Signature("ext4".into()));
    r.mounter.set_fs_size(dev, 64 * MIB);
    r.stage("ext4", &[]).await.unwrap();
    let calls = r.calls();
    assert!(
        matches!(
            calls[0],
            MountCall::GrowUnmounted {
                fs: FsType::Ext4,
                ..
            }
        ),
        "{calls:?}"
    );
    assert!(
        matches!(calls[1], MountCall::MountDevice { .. }),
        "{calls:?}"
    );
    // A restored XFS keeps nothing but `nouuid` unless the class asks.
    let r = rig();
    r.mounter.set_content(dev, Probe::Signature("xfs".into()));
    r.mounter.set_fs_size(dev, 64 * MIB);
    r.stage("xfs", &[(XFS_NOUUID_CONTEXT, "true")])
        .await
        .unwrap();
    let calls = r.calls();
    assert!(
        matches!(
            &calls[0],
            MountCall::MountDevice { opts, .. } if opts.flags == ["nouuid", "discard"]
        ),
        "{calls:?}"
    );
    assert!(
        matches!(
            calls[1],
            MountCall::Grow {
                fs: FsType::Xfs,
                ..
            }
        ),
        "xfs grows once mounted: {calls:?}"
    );
    // Within one block of the device: nothing to grow.
    let r = rig();
    r.mounter.set_content(dev, Probe::Signature("ext4".into()));
    r.mounter.set_fs_size(dev, 128 * MIB - 4096);
    r.stage("ext4", &[]).await.unwrap();
    assert!(
        !r.calls()
            .iter()
            .any(|c| matches!(c, MountCall::GrowUnmounted { .. })),
        "{:?}",
        r.calls()
    );
}
