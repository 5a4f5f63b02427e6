//! Registration as kubelet sees it: a tonic client playing kubelet's plugin watcher on a
//! temporary socket, and the socket's replacement and removal through a fake file system.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use hearth_proto::kubelet::pluginregistration::registration_client::RegistrationClient;
use hearth_proto::kubelet::pluginregistration::{InfoRequest, RegistrationStatus};
use hyper_util::rt::TokioIo;
use tokio::net::{UnixListener, UnixStream};
use tonic::transport::{Channel, Endpoint, Uri};

use super::*;
use crate::health::snapshot::{Section, SectionState, Snapshot};

fn plan(dir: &Path) -> Plan {
    Plan::new(
        dir,
        "csi.hearth.dev",
        Path::new("/var/lib/kubelet/plugins/csi.hearth.dev/csi.sock"),
    )
    .expect("plan")
}

#[test]
fn the_plan_names_the_socket_after_the_driver_and_announces_the_kubelet_path() {
    let p = plan(Path::new("/var/lib/kubelet/plugins_registry"));
    assert_eq!(
        p.socket,
        PathBuf::from("/var/lib/kubelet/plugins_registry/csi.hearth.dev-reg.sock")
    );
    let info = p.plugin_info();
    assert_eq!(info.r#type, "CSIPlugin");
    assert_eq!(info.name, "csi.hearth.dev");
    assert_eq!(
        info.endpoint,
        "/var/lib/kubelet/plugins/csi.hearth.dev/csi.sock"
    );
    assert_eq!(info.supported_versions, vec!["1.0.0".to_owned()]);

    let relative = Plan::new(Path::new("registry"), "d", Path::new("/csi.sock"));
    assert!(matches!(
        relative,
        Err(RegistrationError::Relative {
            flag: "--kubelet-registration-dir",
            ..
        })
    ));
    let relative = Plan::new(Path::new("/r"), "d", Path::new("csi.sock"));
    assert!(
        matches!(
            &relative,
            Err(RegistrationError::Relative {
                flag: "--kubelet-registration-path",
                ..
            })
        ),
        "{relative:?}"
    );
}

#[test]
fn a_refusal_without_a_reason_still_says_what_happened() {
    let ok = RegistrationStatus {
        plugin_registered: true,
        error: String::new(),
    };
    assert_eq!(Outcome::of(&ok), Outcome::Registered);
    let bad = RegistrationStatus {
        plugin_registered: false,
        error: "NodeGetInfo failed".into(),
    };
    assert_eq!(
        Outcome::of(&bad),
        Outcome::Failed("NodeGetInfo failed".into())
    );
    let bare = RegistrationStatus::default();
    assert!(matches!(Outcome::of(&bare), Outcome::Failed(e) if e.contains("no reason")));
}

/// A file system that records what is done to it; `listen` binds a socket of its own.
struct FakeSockets {
    exists: bool,
    answers: bool,
    fail_remove: bool,
    ops: Mutex<Vec<String>>,
    dir: tempfile::TempDir,
}

impl FakeSockets {
    fn new(exists: bool, answers: bool) -> Self {
        Self {
            exists,
            answers,
            fail_remove: false,
            ops: Mutex::default(),
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }
    fn ops(&self) -> Vec<String> {
        self.ops.lock().expect("ops").clone()
    }
    fn record(&self, op: &str, path: &Path) {
        self.ops
            .lock()
            .expect("ops")
            .push(format!("{op} {}", path.display()));
    }
}

impl SocketFiles for FakeSockets {
    fn exists(&self, _: &Path) -> bool {
        self.exists
    }
    fn answers(&self, _: &Path) -> bool {
        self.answers
    }
    fn remove(&self, path: &Path) -> std::io::Result<()> {
        self.record("remove", path);
        if self.fail_remove {
            return Err(std::io::Error::from_raw_os_error(libc::EACCES));
        }
        Ok(())
    }
    fn listen(&self, path: &Path) -> std::io::Result<UnixListener> {
        self.record("listen", path);
        UnixListener::bind(self.dir.path().join("fake.sock"))
    }
}

#[tokio::test]
async fn a_stale_socket_is_replaced_and_a_live_one_refused() {
    let socket = Path::new("/registry/csi.hearth.dev-reg.sock");
    let fresh = FakeSockets::new(false, false);
    bind(&fresh, socket).expect("binds");
    assert_eq!(fresh.ops(), vec![format!("listen {}", socket.display())]);

    let stale = FakeSockets::new(true, false);
    bind(&stale, socket).expect("replaces");
    assert_eq!(
        stale.ops(),
        vec![
            format!("remove {}", socket.display()),
            format!("listen {}", socket.display())
        ]
    );

    let live = FakeSockets::new(true, true);
    let err = bind(&live, socket).expect_err("another process serves it");
    assert!(matches!(err, RegistrationError::InUse(_)), "{err}");
    assert!(live.ops().is_empty(), "a live socket is left alone");

    let mut stuck = FakeSockets::new(true, false);
    stuck.fail_remove = true;
    let err = bind(&stuck, socket).expect_err("cannot remove");
    assert!(
        err.to_string().contains("csi.hearth.dev-reg.sock"),
        "the error names the socket: {err}"
    );
}

#[tokio::test]
async fn a_clean_stop_removes_the_socket() {
    let files = Arc::new(FakeSockets::new(false, false));
    let dir = tempfile::tempdir().expect("tempdir");
    let tracker = Arc::new(Tracker::new(plan(dir.path())));
    let running = start(tracker, Arc::clone(&files) as Arc<dyn SocketFiles>).expect("starts");
    running.stop().await;
    let socket = dir.path().join("csi.hearth.dev-reg.sock");
    assert_eq!(
        files.ops(),
        vec![
            format!("listen {}", socket.display()),
            format!("remove {}", socket.display())
        ]
    );
}

async fn kubelet(socket: &Path) -> RegistrationClient<Channel> {
    let path = socket.to_owned();
    let channel = Endpoint::from_static("http://[::1]:50051")
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move { Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(path).await?)) }
        }))
        .await
        .expect("connects to the registration socket");
    RegistrationClient::new(channel)
}

fn check_of(tracker: &Tracker) -> crate::health::snapshot::Check {
    let mut snap = Snapshot {
        kubelet_registration: Some(Section::ok(tracker.view())),
        ..Snapshot::default()
    };
    let dir = tempfile::tempdir().expect("tempdir");
    snap.checks = crate::health::checks::evaluate(&snap, &dir.path().join("x.sock"), dir.path());
    let check = snap
        .checks
        .iter()
        .find(|c| c.name == "kubelet_registration")
        .cloned()
        .expect("a kubelet_registration check");
    assert!(check.required);
    assert_eq!(
        crate::health::checks::not_ready(&snap)
            .iter()
            .any(|c| c.name == "kubelet_registration"),
        !check.ok
    );
    check
}

#[tokio::test]
async fn kubelet_gets_the_info_and_its_verdict_is_recorded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let registry = dir.path().join("plugins_registry");
    std::fs::create_dir_all(&registry).expect("mkdir");
    // A socket file left by a crashed agent: nobody answers on it.
    let socket = registry.join("csi.hearth.dev-reg.sock");
    drop(std::os::unix::net::UnixListener::bind(&socket).expect("stale socket"));
    assert!(socket.exists());

    let tracker = Arc::new(Tracker::new(plan(&registry)));
    assert_eq!(tracker.view().state, "waiting");
    let waiting = check_of(&tracker);
    assert!(
        !waiting.ok && waiting.reason.contains("not registered"),
        "{waiting:?}"
    );

    let running = start(Arc::clone(&tracker), Arc::new(HostSockets)).expect("starts");
    // A second agent on the same directory is refused while the first one serves.
    assert!(matches!(
        start(
            Arc::new(Tracker::new(plan(&registry))),
            Arc::new(HostSockets)
        ),
        Err(RegistrationError::InUse(_))
    ));

    let mut client = kubelet(&socket).await;
    let info = client
        .get_info(InfoRequest {})
        .await
        .expect("GetInfo")
        .into_inner();
    assert_eq!(info, plan(&registry).plugin_info());
    assert_eq!(tracker.view().get_info_calls, 1);

    client
        .notify_registration_status(RegistrationStatus {
            plugin_registered: false,
            error: "RegisterPlugin error -- failed to get plugin info using RPC NodeGetInfo".into(),
        })
        .await
        .expect("notify");
    let view = tracker.view();
    assert_eq!(view.state, "error");
    assert!(view.error.as_deref().unwrap_or("").contains("NodeGetInfo"));
    let failed = check_of(&tracker);
    assert!(
        !failed.ok && failed.reason.contains("NodeGetInfo"),
        "{failed:?}"
    );

    // Kubelet retries (it re-reads the directory, or restarts): the last verdict counts.
    client
        .notify_registration_status(RegistrationStatus {
            plugin_registered: true,
            error: String::new(),
        })
        .await
        .expect("notify");
    let view = tracker.view();
    assert_eq!((view.state.as_str(), view.notifications), ("registered", 2));
    assert!(view.error.is_none() && view.notified_unix.is_some());
    assert!(check_of(&tracker).ok);

    running.stop().await;
    assert!(!socket.exists(), "a clean stop removes the socket");
}

#[test]
fn the_status_section_is_only_there_when_registration_is_on() {
    let snap = Snapshot::default();
    let json = serde_json::to_value(&snap).expect("serializes");
    assert!(json.get("kubelet_registration").is_none());
    let with = Snapshot {
        kubelet_registration: Some(Section::without(SectionState::Ok, "x")),
        ..Snapshot::default()
    };
    let json = serde_json::to_value(&with).expect("serializes");
    assert!(json.get("kubelet_registration").is_some());
}
