//! The LINSTOR simulator's real devices (needs root): each resource-definition volume is a
//! loop device over a sparse file, shared as `device_path` by all its resources; resize grows
//! it, snapshots and clones copy its data, an open device refuses deletion (`FAIL_IN_USE`),
//! and nothing is left attached after deletes, faults, or SIGTERM of the `linstor-sim` binary.
#![allow(clippy::tests_outside_test_module)] // an integration-test file is a test-only crate

mod linstor_common;

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::time::Duration;

use hearth_csi::linstor::client::*;
use hearth_tests::linstor_sim::{Fault, FaultKind, SimProcess};
use hearth_tests::root_or_skip;
use linstor_common::{client, leftovers, simulator};

const MIB_KIB: u64 = 1024;

fn size_bytes(dev: &str) -> u64 {
    hearth_csi::host::loopdev::device_size(Path::new(dev)).unwrap()
}

fn write_at(dev: &str, data: &[u8]) {
    let f = OpenOptions::new().write(true).open(dev).unwrap();
    f.write_all_at(data, 0).unwrap();
    f.sync_all().unwrap();
}

fn read_at(dev: &str, len: usize) -> Vec<u8> {
    let mut buf = vec![0; len];
    File::open(dev).unwrap().read_exact_at(&mut buf, 0).unwrap();
    buf
}

async fn device_of(c: &LinstorClient, rd: &str) -> Vec<String> {
    let view = c
        .resource_view(&ViewFilter {
            resources: vec![rd.into()],
            ..Default::default()
        })
        .await
        .unwrap();
    view.iter()
        .flat_map(|r| r.volumes.iter().filter_map(|v| v.device_path.clone()))
        .collect()
}

/// The backing file of loop device `dev`, if it is attached.
fn backing(dev: &str) -> Option<String> {
    let name = dev.trim_start_matches("/dev/");
    std::fs::read_to_string(format!("/sys/block/{name}/loop/backing_file"))
        .ok()
        .map(|b| b.trim().to_owned())
        .filter(|b| !b.is_empty())
}

/// One of the simulator's devices, remembered with its backing file: tests run in parallel,
/// and a freed `/dev/loopN` is soon bound again to another test's file.
struct Attachment {
    dev: String,
    file: String,
}

impl Attachment {
    fn of(dev: &str) -> Self {
        let file = backing(dev).unwrap_or_else(|| panic!("{dev} is not attached"));
        Self {
            dev: dev.to_owned(),
            file,
        }
    }

    fn attached(&self) -> bool {
        backing(&self.dev).as_deref() == Some(self.file.as_str())
    }
}

#[tokio::test]
async fn loop_devices_follow_the_volume_lifecycle() {
    if !root_or_skip("loop_devices_follow_the_volume_lifecycle") {
        return;
    }
    let sim = simulator(true, false);
    let c = client(&sim).await;
    c.create_resource_definition(&ResourceDefinitionCreate::new("pvc-d", None))
        .await
        .unwrap();
    c.create_volume_definition("pvc-d", &VolumeDefinitionCreate::new(0, 64 * MIB_KIB))
        .await
        .unwrap();
    assert!(
        sim.state()["devices"]["loop_devices"]
            .as_array()
            .unwrap()
            .is_empty(),
        "no device before a resource"
    );
    c.autoplace("pvc-d", &AutoPlaceRequest::default())
        .await
        .unwrap();
    let spare = ["node-a", "node-b", "node-c"];
    for n in spare {
        c.make_available("pvc-d", n, &MakeAvailable::default())
            .await
            .unwrap();
    }
    let paths = device_of(&c, "pvc-d").await;
    assert_eq!(paths.len(), 3);
    assert!(
        paths
            .iter()
            .all(|p| p == &paths[0] && p.starts_with("/dev/loop")),
        "{paths:?}"
    );
    let dev = paths[0].clone();
    let dev_loop = Attachment::of(&dev);
    assert_eq!(size_bytes(&dev), 64 << 20);

    write_at(&dev, b"first generation");
    c.modify_volume_definition(
        "pvc-d",
        0,
        &VolumeDefinitionModify {
            size_kib: Some(96 * MIB_KIB),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    // LINSTOR records the size first and the satellites grow the device later (the simulator
    // lands it RESIZE_TIME after the request, on the next call): wait for it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while size_bytes(&dev) != 96 << 20 && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let _ = device_of(&c, "pvc-d").await;
    }
    assert_eq!(size_bytes(&dev), 96 << 20, "LOOP_SET_CAPACITY after resize");

    c.create_snapshot("pvc-d", "s1", &[]).await.unwrap();
    write_at(&dev, b"second generation");
    c.create_resource_definition(&ResourceDefinitionCreate::new("pvc-r", None))
        .await
        .unwrap();
    let restore = SnapshotRestore {
        to_resource: "pvc-r".into(),
        nodes: Vec::new(),
    };
    c.restore_volume_definitions("pvc-d", "s1", &restore)
        .await
        .unwrap();
    c.restore_resources("pvc-d", "s1", &restore).await.unwrap();
    let restored = device_of(&c, "pvc-r").await[0].clone();
    assert_ne!(restored, dev);
    let restored_loop = Attachment::of(&restored);
    assert_eq!(read_at(&restored, 16), b"first generation");
    assert_eq!(size_bytes(&restored), 96 << 20);

    c.clone_resource_definition(
        "pvc-d",
        &CloneRequest {
            name: "pvc-c".into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    c.wait_clone("pvc-d", "pvc-c", Duration::from_secs(5))
        .await
        .unwrap();
    let cloned = device_of(&c, "pvc-c").await[0].clone();
    assert_eq!(read_at(&cloned, 17), b"second generation");
    let cloned_loop = Attachment::of(&cloned);

    // An open device (O_EXCL, as a mount holds it) refuses the last delete.
    let holder = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_EXCL)
        .open(&cloned)
        .unwrap();
    let e = c.delete_resource_definition("pvc-c").await.unwrap_err();
    assert!(e.is_in_use(), "{e}");
    drop(holder);

    // A delete whose answer is lost still frees the device; the replay sees NotFound.
    sim.add_fault(
        Fault::new(
            FaultKind::Http503,
            Some("DELETE"),
            "/v1/resource-definitions/pvc-c",
            1,
        )
        .applied(),
    );
    assert!(c
        .delete_resource_definition("pvc-c")
        .await
        .unwrap_err()
        .is_not_found());
    assert!(!cloned_loop.attached());

    c.delete_snapshot("pvc-d", "s1").await.unwrap();
    for rd in ["pvc-d", "pvc-r"] {
        c.delete_resource_definition(rd).await.unwrap();
    }
    assert!(!dev_loop.attached() && !restored_loop.attached());
    assert_eq!(leftovers(&sim), Vec::<String>::new());
}

#[tokio::test]
async fn dropping_the_simulator_frees_its_devices() {
    if !root_or_skip("dropping_the_simulator_frees_its_devices") {
        return;
    }
    let sim = simulator(true, false);
    let c = client(&sim).await;
    c.create_resource_definition(&ResourceDefinitionCreate::new("pvc-x", None))
        .await
        .unwrap();
    c.create_volume_definition("pvc-x", &VolumeDefinitionCreate::new(0, 8 * MIB_KIB))
        .await
        .unwrap();
    c.autoplace("pvc-x", &AutoPlaceRequest::default())
        .await
        .unwrap();
    c.create_snapshot("pvc-x", "s1", &[]).await.unwrap();
    let dev = Attachment::of(&device_of(&c, "pvc-x").await[0]);
    drop(sim);
    assert!(!dev.attached(), "{} still attached after drop", dev.dev);
}

#[tokio::test]
async fn sigterm_stops_the_binary_and_frees_its_devices() {
    if !root_or_skip("sigterm_stops_the_binary_and_frees_its_devices") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let state_dir = dir.path().to_str().unwrap();
    let sim = SimProcess::spawn(
        Path::new(env!("CARGO_BIN_EXE_linstor-sim")),
        &[
            "--listen",
            "127.0.0.1:0",
            "--devices",
            "loop",
            "--pool-size",
            "1GiB",
            "--state-dir",
            state_dir,
        ],
    )
    .unwrap();
    let url = sim.url().to_owned();
    let c = LinstorClient::connect(&ClientConfig::new(&url))
        .await
        .unwrap();
    c.create_resource_definition(&ResourceDefinitionCreate::new("pvc-t", None))
        .await
        .unwrap();
    c.create_volume_definition("pvc-t", &VolumeDefinitionCreate::new(0, 8 * MIB_KIB))
        .await
        .unwrap();
    c.autoplace("pvc-t", &AutoPlaceRequest::default())
        .await
        .unwrap();
    let dev = Attachment::of(&device_of(&c, "pvc-t").await[0]);

    assert!(sim.terminate().unwrap().success());
    assert!(!dev.attached(), "{} still attached after SIGTERM", dev.dev);
    let files: Vec<_> = walk(dir.path());
    assert!(files.is_empty(), "files left: {files:?}");
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.path().is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push(e.path());
        }
    }
    out
}

/// NodeExpandVolume's wait for a device LINSTOR has not grown yet is bounded, and ends in a
/// code the CO retries (UNAVAILABLE), not OUT_OF_RANGE.
#[tokio::test]
async fn the_wait_for_a_grown_device_is_bounded_and_retryable() {
    if !root_or_skip("the_wait_for_a_grown_device_is_bounded_and_retryable") {
        return;
    }
    use hearth_csi::attach::Attacher;
    use hearth_csi::linstor::{LinstorAttacher, LinstorViewState};
    let sim = simulator(true, false);
    let c = client(&sim).await;
    c.create_resource_definition(&ResourceDefinitionCreate::new("pvc-w", None))
        .await
        .unwrap();
    c.create_volume_definition("pvc-w", &VolumeDefinitionCreate::new(0, 8 * MIB_KIB))
        .await
        .unwrap();
    c.create_resources(
        "pvc-w",
        &[ResourceCreate::diskful("pvc-w", "node-a", Some("data"))],
    )
    .await
    .unwrap();
    let state = std::sync::Arc::new(LinstorViewState::new(c.clone(), "node-a"));
    let short = LinstorAttacher::new(
        c.clone(),
        "node-a",
        state.clone(),
        Duration::from_millis(50),
    );
    let grow = VolumeDefinitionModify {
        size_kib: Some(16 * MIB_KIB),
        ..Default::default()
    };
    c.modify_volume_definition("pvc-w", 0, &grow).await.unwrap();
    let err = short
        .grown_size("pvc-w", 16 << 20)
        .await
        .expect_err("the device is not grown within 50 ms");
    assert!(
        matches!(err, hearth_csi::CsiError::Unavailable(_)),
        "{err:?}"
    );
    let patient = LinstorAttacher::new(c.clone(), "node-a", state, Duration::from_secs(5));
    assert_eq!(
        patient.grown_size("pvc-w", 16 << 20).await.unwrap(),
        16 << 20
    );
    c.delete_resource_definition("pvc-w").await.unwrap();
    assert!(leftovers(&sim).is_empty(), "{:?}", leftovers(&sim));
}
