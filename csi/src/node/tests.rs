//! Unit tests of the node service's decisions, over the recording fakes: no root, no devices,
//! no mounts. (The same calls against the kernel are in `tests/`.)

use std::path::{Path, PathBuf};
use std::sync::Arc;

use hearth_proto::csi::v1::node_server::Node;
use hearth_proto::csi::v1::volume_capability::access_mode::Mode;
use hearth_proto::csi::v1::volume_capability::{AccessMode, AccessType, BlockVolume, MountVolume};
use hearth_proto::csi::v1::*;
use nix::errno::Errno;
use tonic::{Code, Request};

use super::{NodeConfig, NodeService};
use crate::attach::fake::{AttachCall, AttachOp, FakeAttacher};
use crate::attach::Condition;
use crate::mount::fake::{FakeMounter, MountCall, MountOp};
use crate::mount::{FsType, MountOptions, Probe};
use crate::validate;
use crate::CsiError;

const MIB: u64 = 1 << 20;
const VOL: &str = "vol-a";
const DEV: &str = "/dev/loop40";

struct Harness {
    _dir: tempfile::TempDir,
    kubelet: PathBuf,
    attacher: Arc<FakeAttacher>,
    mounter: Arc<FakeMounter>,
    node: NodeService<FakeAttacher, FakeMounter>,
}

impl Harness {
    /// A node with one detached, blank 64 MiB volume `VOL` that attaches as `DEV`.
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().canonicalize().unwrap();
        let kubelet = root.join("kubelet");
        std::fs::create_dir_all(&kubelet).unwrap();
        let attacher = Arc::new(FakeAttacher::new());
        let mounter = Arc::new(FakeMounter::new());
        attacher.add_volume(VOL, Path::new(DEV), 64 * MIB);
        mounter.add_blank_device(Path::new(DEV), 40, 64 * MIB);
        let config = NodeConfig {
            node_id: "node-a".into(),
            kubelet_dir: kubelet.clone(),
            max_volumes_per_node: 0,
            markers_dir: root.join("formatting"),
            multi_node: false,
        };
        let node = NodeService::new(Arc::clone(&attacher), Arc::clone(&mounter), config).unwrap();
        Self {
            _dir: dir,
            kubelet,
            attacher,
            mounter,
            node,
        }
    }

    fn staging(&self) -> PathBuf {
        self.kubelet.join("staging/vol-a")
    }

    fn target(&self, n: u32) -> PathBuf {
        self.kubelet.join(format!("pods/p{n}/mount"))
    }

    async fn stage(&self, cap: VolumeCapability) -> Result<(), Code> {
        let req = NodeStageVolumeRequest {
            volume_id: VOL.into(),
            staging_target_path: path(&self.staging()),
            volume_capability: Some(cap),
            ..Default::default()
        };
        code(self.node.node_stage_volume(Request::new(req)).await)
    }

    async fn unstage(&self) -> Result<(), Code> {
        let req = NodeUnstageVolumeRequest {
            volume_id: VOL.into(),
            staging_target_path: path(&self.staging()),
        };
        code(self.node.node_unstage_volume(Request::new(req)).await)
    }

    async fn publish(
        &self,
        cap: VolumeCapability,
        target: &Path,
        readonly: bool,
    ) -> Result<(), Code> {
        let req = NodePublishVolumeRequest {
            volume_id: VOL.into(),
            staging_target_path: path(&self.staging()),
            target_path: path(target),
            volume_capability: Some(cap),
            readonly,
            ..Default::default()
        };
        code(self.node.node_publish_volume(Request::new(req)).await)
    }

    async fn unpublish(&self, target: &Path) -> Result<(), Code> {
        let req = NodeUnpublishVolumeRequest {
            volume_id: VOL.into(),
            target_path: path(target),
        };
        code(self.node.node_unpublish_volume(Request::new(req)).await)
    }

    async fn stats(&self, id: &str, volume_path: &str) -> Result<NodeGetVolumeStatsResponse, Code> {
        let req = NodeGetVolumeStatsRequest {
            volume_id: id.into(),
            volume_path: volume_path.into(),
            staging_target_path: String::new(),
        };
        self.node
            .node_get_volume_stats(Request::new(req))
            .await
            .map(tonic::Response::into_inner)
            .map_err(|s| s.code())
    }

    async fn expand(
        &self,
        id: &str,
        volume_path: &str,
        required: u64,
        cap: Option<VolumeCapability>,
    ) -> Result<u64, Code> {
        let req = NodeExpandVolumeRequest {
            volume_id: id.into(),
            volume_path: volume_path.into(),
            capacity_range: Some(CapacityRange {
                required_bytes: i64::try_from(required).unwrap(),
                limit_bytes: 0,
            }),
            volume_capability: cap,
            ..Default::default()
        };
        self.node
            .node_expand_volume(Request::new(req))
            .await
            .map(|r| u64::try_from(r.into_inner().capacity_bytes).unwrap())
            .map_err(|s| s.code())
    }

    /// The changing calls the mounter received, without the ones made by the test itself.
    fn mount_calls(&self) -> Vec<MountCall> {
        self.mounter.calls()
    }
}

fn path(p: &Path) -> String {
    p.to_str().unwrap().to_owned()
}

fn code<T>(r: Result<T, tonic::Status>) -> Result<(), Code> {
    r.map(drop).map_err(|s| s.code())
}

fn access(mode: Mode) -> Option<AccessMode> {
    Some(AccessMode { mode: mode as i32 })
}

fn mount_cap(fs: &str, mode: Mode) -> VolumeCapability {
    VolumeCapability {
        access_type: Some(AccessType::Mount(MountVolume {
            fs_type: fs.into(),
            ..Default::default()
        })),
        access_mode: access(mode),
    }
}

fn ext4() -> VolumeCapability {
    mount_cap("ext4", Mode::SingleNodeWriter)
}

fn block(mode: Mode) -> VolumeCapability {
    VolumeCapability {
        access_type: Some(AccessType::Block(BlockVolume {})),
        access_mode: access(mode),
    }
}

fn format_calls(calls: &[MountCall]) -> Vec<(FsType, bool)> {
    calls
        .iter()
        .filter_map(|c| match c {
            MountCall::Format { fs, force, .. } => Some((*fs, *force)),
            _ => None,
        })
        .collect()
}

// ----- NodeStageVolume -------------------------------------------------------------------------

#[tokio::test]
async fn stage_formats_a_blank_device_once_and_mounts_it() {
    let h = Harness::new();
    h.stage(ext4()).await.unwrap();
    assert_eq!(
        h.mount_calls(),
        vec![
            MountCall::Format {
                device: DEV.into(),
                fs: FsType::Ext4,
                force: false,
                args: Vec::new(),
            },
            MountCall::MountDevice {
                device: DEV.into(),
                target: h.staging(),
                fs: FsType::Ext4,
                opts: MountOptions::default(),
            },
        ]
    );
    assert!(!h.node.markers.pending(VOL), "the format marker is cleared");
    // Already staged: nothing is formatted or mounted again.
    h.stage(ext4()).await.unwrap();
    assert_eq!(h.mount_calls().len(), 2);
    assert_eq!(
        h.attacher.calls(),
        vec![
            AttachCall::Attach(VOL.into()),
            AttachCall::Attach(VOL.into())
        ]
    );
    assert_eq!(h.mounter.mount_points(), vec![h.staging()]);
}

#[tokio::test]
async fn stage_mounts_a_formatted_device_without_formatting() {
    let h = Harness::new();
    h.mounter
        .set_content(Path::new(DEV), Probe::Signature("xfs".into()));
    h.stage(mount_cap("xfs", Mode::SingleNodeWriter))
        .await
        .unwrap();
    assert!(format_calls(&h.mount_calls()).is_empty());
    assert_eq!(h.mounter.mount_points(), vec![h.staging()]);
}

#[tokio::test]
async fn stage_never_reformats_data_and_leaves_no_attachment_behind() {
    for content in [
        Probe::Signature("xfs".into()),
        Probe::UnknownData,
        Probe::Signature("LVM2_member".into()),
    ] {
        let h = Harness::new();
        h.mounter.set_content(Path::new(DEV), content.clone());
        assert_eq!(
            h.stage(ext4()).await,
            Err(Code::FailedPrecondition),
            "{content:?}"
        );
        assert!(format_calls(&h.mount_calls()).is_empty(), "{content:?}");
        assert!(h.mounter.mount_points().is_empty());
        assert!(
            !h.attacher.is_attached(VOL),
            "a failed first stage detaches ({content:?})"
        );
        assert_eq!(
            h.attacher.calls().last(),
            Some(&AttachCall::Detach(VOL.into()))
        );
    }
}

#[tokio::test]
async fn a_failed_stage_keeps_an_attachment_it_did_not_make() {
    let h = Harness::new();
    h.attacher.set_attached(VOL, true);
    h.mounter.fail_next(MountOp::MountDevice, Errno::EIO);
    assert_eq!(h.stage(ext4()).await, Err(Code::Internal));
    assert!(h.attacher.is_attached(VOL));
    assert_eq!(h.attacher.calls(), vec![AttachCall::Attach(VOL.into())]);
}

#[tokio::test]
async fn stage_finishes_a_format_a_crash_interrupted() {
    let h = Harness::new();
    // mkfs had written part of its signature when the agent died.
    h.node.markers.begin(VOL).unwrap();
    h.mounter
        .set_content(Path::new(DEV), Probe::Signature("ext4".into()));
    h.stage(ext4()).await.unwrap();
    assert_eq!(format_calls(&h.mount_calls()), vec![(FsType::Ext4, true)]);
    assert!(!h.node.markers.pending(VOL));
}

#[tokio::test]
async fn a_failed_format_keeps_its_marker_for_the_retry() {
    let h = Harness::new();
    h.mounter.fail_next(MountOp::Format, Errno::EIO);
    assert_eq!(h.stage(ext4()).await, Err(Code::Internal));
    assert!(h.node.markers.pending(VOL));
    h.stage(ext4()).await.unwrap();
    assert_eq!(
        format_calls(&h.mount_calls()),
        vec![(FsType::Ext4, false), (FsType::Ext4, true)]
    );
}

#[tokio::test]
async fn stage_refuses_a_staging_path_that_holds_another_volume() {
    let h = Harness::new();
    let other = Path::new("/dev/loop41");
    h.mounter.add_blank_device(other, 41, MIB);
    h.mounter
        .set_content(other, Probe::Signature("ext4".into()));
    crate::mount::Mounter::mount_device(
        h.mounter.as_ref(),
        other,
        &h.staging(),
        FsType::Ext4,
        &MountOptions::default(),
    )
    .unwrap();
    assert_eq!(h.stage(ext4()).await, Err(Code::AlreadyExists));
    assert!(format_calls(&h.mount_calls()).is_empty());
}

#[tokio::test]
async fn stage_of_a_block_volume_attaches_and_mounts_nothing() {
    let h = Harness::new();
    h.stage(block(Mode::SingleNodeWriter)).await.unwrap();
    assert!(h.attacher.is_attached(VOL));
    assert!(h.mount_calls().is_empty());
}

#[tokio::test]
async fn stage_of_an_unknown_volume_is_not_found() {
    let h = Harness::new();
    let req = NodeStageVolumeRequest {
        volume_id: "vol-missing".into(),
        staging_target_path: path(&h.staging()),
        volume_capability: Some(ext4()),
        ..Default::default()
    };
    let got = code(h.node.node_stage_volume(Request::new(req)).await);
    assert_eq!(got, Err(Code::NotFound));
}

#[tokio::test]
async fn stage_validates_before_it_touches_anything() {
    let h = Harness::new();
    let staging = path(&h.staging());
    let cases = [
        ("", staging.as_str(), Some(ext4())),
        (VOL, "", Some(ext4())),
        (VOL, staging.as_str(), None),
        (VOL, "/etc/outside", Some(ext4())),
        (VOL, "relative/path", Some(ext4())),
        (
            VOL,
            staging.as_str(),
            Some(mount_cap("btrfs", Mode::SingleNodeWriter)),
        ),
    ];
    for (id, staging, cap) in cases {
        let req = NodeStageVolumeRequest {
            volume_id: id.into(),
            staging_target_path: staging.into(),
            volume_capability: cap.clone(),
            ..Default::default()
        };
        let got = code(h.node.node_stage_volume(Request::new(req)).await);
        assert_eq!(
            got,
            Err(Code::InvalidArgument),
            "{id:?} {staging:?} {cap:?}"
        );
    }
    assert!(h.attacher.calls().is_empty());
    assert!(h.mount_calls().is_empty());
}

#[tokio::test]
async fn a_volume_busy_with_another_call_is_aborted() {
    let h = Harness::new();
    let _held = h.node.locks.try_lock(VOL).unwrap();
    assert_eq!(h.stage(ext4()).await, Err(Code::Aborted));
    assert!(h.attacher.calls().is_empty());
}

// ----- NodeUnstageVolume -----------------------------------------------------------------------

#[tokio::test]
async fn unstage_unmounts_and_detaches_and_may_be_repeated() {
    let h = Harness::new();
    h.stage(ext4()).await.unwrap();
    h.unstage().await.unwrap();
    assert!(h.mounter.mount_points().is_empty());
    assert!(!h.attacher.is_attached(VOL));
    assert_eq!(
        h.mount_calls().last(),
        Some(&MountCall::Unmount(h.staging()))
    );
    h.unstage().await.unwrap();
    let detaches = h
        .attacher
        .calls()
        .into_iter()
        .filter(|c| *c == AttachCall::Detach(VOL.into()))
        .count();
    assert_eq!(detaches, 1, "nothing is detached twice");
}

#[tokio::test]
async fn unstage_refuses_while_published() {
    let h = Harness::new();
    h.stage(ext4()).await.unwrap();
    h.publish(ext4(), &h.target(1), false).await.unwrap();
    assert_eq!(h.unstage().await, Err(Code::FailedPrecondition));
    assert!(h.attacher.is_attached(VOL));
    assert_eq!(h.mounter.mount_points(), vec![h.staging(), h.target(1)]);
}

#[tokio::test]
async fn unstage_of_a_block_volume_refuses_while_bound() {
    let h = Harness::new();
    let cap = block(Mode::SingleNodeWriter);
    h.stage(cap.clone()).await.unwrap();
    h.publish(cap, &h.target(1), false).await.unwrap();
    assert_eq!(h.unstage().await, Err(Code::FailedPrecondition));
    assert!(h.attacher.is_attached(VOL));
    h.unpublish(&h.target(1)).await.unwrap();
    h.unstage().await.unwrap();
    assert!(!h.attacher.is_attached(VOL));
}

#[tokio::test]
async fn a_busy_staging_mount_fails_unstage_without_detaching() {
    let h = Harness::new();
    h.stage(ext4()).await.unwrap();
    h.mounter.fail_next(MountOp::Unmount, Errno::EBUSY);
    assert_eq!(h.unstage().await, Err(Code::FailedPrecondition));
    assert!(h.attacher.is_attached(VOL));
}

// ----- NodePublishVolume -----------------------------------------------------------------------

#[tokio::test]
async fn publish_binds_the_staging_mount_read_write_or_read_only() {
    let h = Harness::new();
    let cap = mount_cap("ext4", Mode::SingleNodeMultiWriter);
    h.stage(cap.clone()).await.unwrap();
    h.publish(cap.clone(), &h.target(1), false).await.unwrap();
    h.publish(cap.clone(), &h.target(2), true).await.unwrap();
    let binds: Vec<(PathBuf, PathBuf, bool)> = h
        .mount_calls()
        .into_iter()
        .filter_map(|c| match c {
            MountCall::Bind {
                source,
                target,
                opts,
            } => Some((source, target, opts.readonly)),
            _ => None,
        })
        .collect();
    assert_eq!(
        binds,
        vec![
            (h.staging(), h.target(1), false),
            (h.staging(), h.target(2), true)
        ]
    );
    // Already published the same way: nothing more happens.
    h.publish(cap.clone(), &h.target(2), true).await.unwrap();
    assert_eq!(h.mount_calls().len(), 4);
    // The same target with another read-only-ness is a conflict.
    assert_eq!(
        h.publish(cap, &h.target(2), false).await,
        Err(Code::AlreadyExists)
    );
}

#[tokio::test]
async fn publish_requires_the_volume_staged() {
    let h = Harness::new();
    assert_eq!(
        h.publish(ext4(), &h.target(1), false).await,
        Err(Code::FailedPrecondition)
    );
    assert_eq!(
        h.publish(block(Mode::SingleNodeWriter), &h.target(1), false)
            .await,
        Err(Code::FailedPrecondition)
    );
    assert!(h.mount_calls().is_empty());
}

#[tokio::test]
async fn publish_refuses_a_target_that_holds_another_volume() {
    let h = Harness::new();
    h.stage(ext4()).await.unwrap();
    let other = Path::new("/dev/loop41");
    h.mounter.add_blank_device(other, 41, MIB);
    crate::mount::Mounter::bind(
        h.mounter.as_ref(),
        other,
        &h.target(1),
        &MountOptions::default(),
    )
    .unwrap();
    assert_eq!(
        h.publish(ext4(), &h.target(1), false).await,
        Err(Code::AlreadyExists)
    );
}

#[tokio::test]
async fn a_single_writer_volume_is_published_writable_once() {
    let h = Harness::new();
    let cap = mount_cap("ext4", Mode::SingleNodeSingleWriter);
    h.stage(cap.clone()).await.unwrap();
    h.publish(cap.clone(), &h.target(1), false).await.unwrap();
    assert_eq!(
        h.publish(cap.clone(), &h.target(2), false).await,
        Err(Code::FailedPrecondition)
    );
    // A second, read-only publish writes nothing, so it is allowed.
    h.publish(cap, &h.target(3), true).await.unwrap();
}

#[tokio::test]
async fn publish_of_a_block_volume_binds_the_device_node() {
    let h = Harness::new();
    let cap = block(Mode::SingleNodeWriter);
    h.stage(cap.clone()).await.unwrap();
    let target = h.kubelet.join("pods/p1/dev/vol-a");
    h.publish(cap.clone(), &target, false).await.unwrap();
    assert_eq!(
        h.mount_calls(),
        vec![MountCall::Bind {
            source: DEV.into(),
            target: target.clone(),
            opts: MountOptions::default(),
        }]
    );
    assert!(target.is_file(), "a device bind lands on a file");
    h.publish(cap, &target, false).await.unwrap();
    assert_eq!(h.mount_calls().len(), 1);
}

#[tokio::test]
async fn a_block_volume_is_not_published_as_a_filesystem() {
    let h = Harness::new();
    h.stage(block(Mode::SingleNodeWriter)).await.unwrap();
    // Not staged as a filesystem: there is no staging mount to bind.
    assert_eq!(
        h.publish(ext4(), &h.target(1), false).await,
        Err(Code::FailedPrecondition)
    );
}

// ----- NodeUnpublishVolume ---------------------------------------------------------------------

#[tokio::test]
async fn unpublish_unmounts_and_removes_the_target_and_may_be_repeated() {
    let h = Harness::new();
    h.stage(ext4()).await.unwrap();
    h.publish(ext4(), &h.target(1), false).await.unwrap();
    h.unpublish(&h.target(1)).await.unwrap();
    assert!(!h.target(1).exists());
    assert_eq!(h.mounter.mount_points(), vec![h.staging()]);
    h.unpublish(&h.target(1)).await.unwrap();
    h.unstage().await.unwrap();
}

#[tokio::test]
async fn unpublish_keeps_a_target_directory_that_holds_files() {
    let h = Harness::new();
    let target = h.target(1);
    std::fs::create_dir_all(&target).unwrap();
    std::fs::write(target.join("data"), b"pod data").unwrap();
    h.unpublish(&target).await.unwrap_err();
    assert_eq!(std::fs::read(target.join("data")).unwrap(), b"pod data");
}

#[tokio::test]
async fn unpublish_refuses_paths_outside_the_kubelet_dir() {
    let h = Harness::new();
    assert_eq!(
        h.unpublish(Path::new("/etc")).await,
        Err(Code::InvalidArgument)
    );
    assert!(h.mount_calls().is_empty());
}

// ----- NodeGetVolumeStats ----------------------------------------------------------------------

#[tokio::test]
async fn stats_of_an_unknown_volume_is_not_found_whatever_the_path() {
    let h = Harness::new();
    for p in [
        "some/path",
        "/path/does/not/exist",
        "/etc",
        "relative/../up",
    ] {
        assert_eq!(
            h.stats("vol-missing", p).await.unwrap_err(),
            Code::NotFound,
            "{p:?}"
        );
    }
    assert_eq!(
        h.stats("", "some/path").await.unwrap_err(),
        Code::InvalidArgument
    );
    assert_eq!(h.stats(VOL, "").await.unwrap_err(), Code::InvalidArgument);
}

#[tokio::test]
async fn stats_of_a_volume_not_at_the_path_is_not_found() {
    let h = Harness::new();
    h.stage(ext4()).await.unwrap();
    h.publish(ext4(), &h.target(1), false).await.unwrap();
    for p in [
        "some/path".to_owned(),
        "/path/does/not/exist".to_owned(),
        path(&h.kubelet.join("pods/elsewhere")),
    ] {
        assert_eq!(h.stats(VOL, &p).await.unwrap_err(), Code::NotFound, "{p:?}");
    }
}

#[tokio::test]
async fn stats_of_a_mounted_volume_report_bytes_and_inodes() {
    let h = Harness::new();
    h.stage(ext4()).await.unwrap();
    h.publish(ext4(), &h.target(1), false).await.unwrap();
    let got = h.stats(VOL, &path(&h.target(1))).await.unwrap();
    assert_eq!(got.usage.len(), 2);
    assert_eq!(got.usage[0].total, i64::try_from(64 * MIB).unwrap());
    assert_eq!(got.usage[1].total, 1000);
    assert!(!got.volume_condition.unwrap().abnormal);
}

#[tokio::test]
async fn stats_of_a_block_volume_report_the_device_size() {
    let h = Harness::new();
    let cap = block(Mode::SingleNodeWriter);
    h.stage(cap.clone()).await.unwrap();
    let target = h.kubelet.join("pods/p1/dev/vol-a");
    h.publish(cap, &target, false).await.unwrap();
    h.mounter.set_size(Path::new(DEV), 80 * MIB);
    let got = h.stats(VOL, &path(&target)).await.unwrap();
    assert_eq!(got.usage.len(), 1);
    assert_eq!(got.usage[0].total, i64::try_from(80 * MIB).unwrap());
}

#[tokio::test]
async fn stats_report_a_filesystem_that_does_not_answer_as_abnormal() {
    let h = Harness::new();
    h.stage(ext4()).await.unwrap();
    h.publish(ext4(), &h.target(1), false).await.unwrap();
    h.mounter.fail_next(MountOp::Stats, Errno::EIO);
    let got = h.stats(VOL, &path(&h.target(1))).await.unwrap();
    assert!(got.usage.is_empty());
    assert!(got.volume_condition.unwrap().abnormal);
    h.attacher
        .set_condition(VOL, Condition::abnormal("the image was deleted"));
    let got = h.stats(VOL, &path(&h.target(1))).await.unwrap();
    assert_eq!(
        got.volume_condition.unwrap().message,
        "the image was deleted"
    );
}

// ----- NodeExpandVolume ------------------------------------------------------------------------

#[tokio::test]
async fn expand_of_an_unknown_volume_is_not_found_whatever_the_path() {
    let h = Harness::new();
    for p in ["some/path", "/path/does/not/exist"] {
        assert_eq!(
            h.expand("vol-missing", p, MIB, None).await.unwrap_err(),
            Code::NotFound,
            "{p:?}"
        );
    }
    assert_eq!(
        h.expand(VOL, "", MIB, None).await.unwrap_err(),
        Code::InvalidArgument
    );
    assert!(h.attacher.calls().is_empty());
}

#[tokio::test]
async fn expand_grows_the_filesystem_it_finds() {
    let h = Harness::new();
    h.stage(ext4()).await.unwrap();
    h.publish(ext4(), &h.target(1), false).await.unwrap();
    h.attacher.set_size(VOL, 128 * MIB);
    let got = h.expand(VOL, &path(&h.target(1)), 128 * MIB, None).await;
    assert_eq!(got, Ok(128 * MIB));
    assert_eq!(
        h.mount_calls().last(),
        Some(&MountCall::Grow {
            device: DEV.into(),
            mount_path: h.target(1),
            fs: FsType::Ext4
        })
    );
}

#[tokio::test]
async fn expand_refuses_a_device_smaller_than_asked() {
    let h = Harness::new();
    h.stage(ext4()).await.unwrap();
    h.publish(ext4(), &h.target(1), false).await.unwrap();
    let got = h.expand(VOL, &path(&h.target(1)), 128 * MIB, None).await;
    assert_eq!(got, Err(Code::OutOfRange));
    assert!(!h
        .mount_calls()
        .iter()
        .any(|c| matches!(c, MountCall::Grow { .. })));
}

#[tokio::test]
async fn expand_of_a_block_volume_grows_no_filesystem() {
    let h = Harness::new();
    let cap = block(Mode::SingleNodeWriter);
    h.stage(cap.clone()).await.unwrap();
    let target = h.kubelet.join("pods/p1/dev/vol-a");
    h.publish(cap.clone(), &target, false).await.unwrap();
    h.attacher.set_size(VOL, 96 * MIB);
    let got = h.expand(VOL, &path(&target), 96 * MIB, Some(cap)).await;
    assert_eq!(got, Ok(96 * MIB));
    assert!(!h
        .mount_calls()
        .iter()
        .any(|c| matches!(c, MountCall::Grow { .. })));
    assert_eq!(
        h.attacher.calls().last(),
        Some(&AttachCall::RefreshSize(VOL.into()))
    );
}

#[tokio::test]
async fn expand_of_an_unmounted_filesystem_volume_is_not_found() {
    let h = Harness::new();
    h.attacher.set_attached(VOL, true);
    let got = h.expand(VOL, &path(&h.target(1)), MIB, None).await;
    assert_eq!(got, Err(Code::NotFound));
}

#[tokio::test]
async fn a_failed_attach_is_reported_with_its_code() {
    let h = Harness::new();
    h.attacher.fail_next(
        AttachOp::Attach,
        CsiError::Unavailable("the DRBD peer is not up to date".into()),
    );
    assert_eq!(h.stage(ext4()).await, Err(Code::Unavailable));
    assert!(h.mount_calls().is_empty());
}

#[tokio::test]
async fn a_capability_without_fs_type_takes_the_filesystem_the_volume_was_made_for() {
    let context = validate::volume_context(
        &[(validate::FS_TYPE_PARAMETER.to_owned(), "xfs".to_owned())].into(),
    );
    for (cap_fs, want) in [("", FsType::Xfs), ("ext4", FsType::Ext4)] {
        let h = Harness::new();
        let req = NodeStageVolumeRequest {
            volume_id: VOL.into(),
            staging_target_path: path(&h.staging()),
            volume_capability: Some(mount_cap(cap_fs, Mode::SingleNodeWriter)),
            volume_context: context.clone(),
            ..Default::default()
        };
        code(h.node.node_stage_volume(Request::new(req)).await).unwrap();
        assert_eq!(
            format_calls(&h.mount_calls()),
            vec![(want, false)],
            "{cap_fs:?}"
        );
    }
}
