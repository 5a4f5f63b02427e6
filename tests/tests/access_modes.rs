//! Access modes on a real `hearth dev`: read-only publishes are read-only, multi-node
//! reader-only volumes mount read-only, a SINGLE_NODE_SINGLE_WRITER volume gets one writer, and
//! `hearth csi` drives the socket the way the README shows.

#![allow(clippy::tests_outside_test_module)] // an integration-test file is a test-only crate

use std::path::Path;
use std::process::Command;

use hearth_tests::requests::*;
use hearth_tests::{connect, hearth_bin, root_or_skip, Daemon, Mode, Sandbox};

fn write_fails_read_only(dir: &str) {
    let err =
        std::fs::write(Path::new(dir).join("x"), b"x").expect_err("write to a read-only publish");
    assert_eq!(err.raw_os_error(), Some(libc::EROFS), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_and_single_writer_publishes() {
    if !root_or_skip("access_modes") {
        return;
    }
    let sb = Sandbox::new();
    let daemon = Daemon::start(&sb, &[]);
    let mut c = connect(daemon.socket()).await.unwrap();
    let k = sb.kubelet_dir();
    let staging = k.join("plugins/x/globalmount");
    std::fs::create_dir_all(&staging).unwrap();
    let staging = staging.display().to_string();
    let t = |n: &str| k.join(format!("pods/{n}/mount")).display().to_string();

    let single = mount_cap("ext4", Mode::SingleNodeSingleWriter);
    let id = c
        .controller
        .create_volume(create("modes", 64 << 20, single.clone()))
        .await
        .unwrap()
        .into_inner()
        .volume
        .unwrap()
        .volume_id;
    c.node
        .node_stage_volume(stage(&id, &staging, single.clone()))
        .await
        .unwrap();
    c.node
        .node_publish_volume(publish(&id, &staging, &t("a"), single.clone(), false))
        .await
        .unwrap();
    std::fs::write(Path::new(&t("a")).join("f"), b"w").unwrap();
    let second = c
        .node
        .node_publish_volume(publish(&id, &staging, &t("b"), single.clone(), false))
        .await;
    assert_eq!(
        second.unwrap_err().code(),
        tonic::Code::FailedPrecondition,
        "a second writer of a single-writer volume"
    );
    assert!(!Path::new(&t("b")).exists() || std::fs::read_dir(t("b")).unwrap().next().is_none());

    // readonly=true gives a read-only bind even of a writer capability.
    c.node
        .node_publish_volume(publish(&id, &staging, &t("ro"), single.clone(), true))
        .await
        .unwrap();
    write_fails_read_only(&t("ro"));
    assert_eq!(std::fs::read(Path::new(&t("ro")).join("f")).unwrap(), b"w");
    // Asking for the same target read-write is a conflict, not a silent change.
    let flip = c
        .node
        .node_publish_volume(publish(&id, &staging, &t("ro"), single.clone(), false))
        .await;
    assert_eq!(flip.unwrap_err().code(), tonic::Code::AlreadyExists);

    // MULTI_NODE_READER_ONLY publishes read-only without the readonly flag.
    let ro = mount_cap("ext4", Mode::MultiNodeReaderOnly);
    c.node
        .node_publish_volume(publish(&id, &staging, &t("many"), ro.clone(), false))
        .await
        .unwrap();
    write_fails_read_only(&t("many"));

    for n in ["a", "ro", "many", "b"] {
        c.node
            .node_unpublish_volume(unpublish(&id, &t(n)))
            .await
            .unwrap();
    }
    c.node
        .node_unstage_volume(unstage(&id, &staging))
        .await
        .unwrap();
    c.controller.delete_volume(delete(&id)).await.unwrap();
    assert!(sb.mounts().is_empty() && sb.loop_devices().is_empty() && sb.images().is_empty());
}

fn hearth_csi(sb: &Sandbox, args: &[&str]) -> String {
    let out = Command::new(hearth_bin())
        .arg("csi")
        .arg("--state-dir")
        .arg(sb.state_dir())
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "hearth csi {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_walkthrough_with_hearth_csi() {
    if !root_or_skip("hearth_csi") {
        return;
    }
    let sb = Sandbox::new();
    let _daemon = Daemon::start(&sb, &[]);
    let k = sb.kubelet_dir().display().to_string();
    let (staging, target) = (format!("{k}/staging/demo"), format!("{k}/pods/demo/mount"));
    std::fs::create_dir_all(&staging).unwrap();
    assert!(hearth_csi(&sb, &["info"]).contains("csi.hearth.dev"));
    let created = hearth_csi(&sb, &["create", "pvc-demo", "--size", "64Mi"]);
    let id = created.split_whitespace().next().unwrap().to_owned();
    assert!(created.contains(&(64u64 << 20).to_string()));
    // A refused call prints the code's name and the plugin's message, and exits 1.
    let early = Command::new(hearth_bin())
        .args(["csi", "--state-dir"])
        .arg(sb.state_dir())
        .args(["publish", &id, "--staging", &staging, "--target", &target])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&early.stderr);
    assert_eq!(early.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "hearth: FailedPrecondition: volume {id} is not staged at"
        )),
        "{stderr}"
    );
    hearth_csi(&sb, &["stage", &id, "--staging", &staging]);
    hearth_csi(
        &sb,
        &["publish", &id, "--staging", &staging, "--target", &target],
    );
    std::fs::write(format!("{target}/hello"), b"hello").unwrap();
    assert!(hearth_csi(&sb, &["stats", &id, "--path", &target]).contains("BYTES"));
    assert!(hearth_csi(&sb, &["list"]).contains(&id));
    assert!(hearth_csi(&sb, &["snapshot", "snap-demo", "--volume", &id]).contains("ready=true"));
    let snap = hearth_csi(&sb, &["snapshots"])
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned();
    hearth_csi(&sb, &["unpublish", &id, "--target", &target]);
    hearth_csi(&sb, &["unstage", &id, "--staging", &staging]);
    hearth_csi(&sb, &["delete-snapshot", &snap]);
    hearth_csi(&sb, &["delete", &id]);
    assert!(hearth_csi(&sb, &["list"]).trim().is_empty());
    let bad = Command::new(hearth_bin())
        .args(["csi", "--state-dir"])
        .arg(sb.state_dir())
        .args(["create", "x", "--size", "12Qi"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2), "bad input exits 2");
    let gone = Command::new(hearth_bin())
        .args(["csi", "--state-dir"])
        .arg(sb.state_dir())
        .args(["stage", &id, "--staging", &staging])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&gone.stderr);
    assert_eq!(gone.status.code(), Some(1), "{stderr}");
    assert!(stderr.starts_with("hearth: NotFound: "), "{stderr}");
}
