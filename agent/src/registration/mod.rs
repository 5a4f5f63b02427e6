//! Kubelet plugin registration, served by the node agent itself (what node-driver-registrar
//! does as a sidecar; docs/design/kubelet-registration.md).
//!
//! With `--kubelet-registration-dir DIR` the agent serves kubelet's plugin-registration API
//! (`pluginregistration.Registration`, k8s.io/kubelet v1) on `DIR/<driver>-reg.sock`.
//! Kubelet's plugin watcher sees the socket appear, calls `GetInfo` (a `CSIPlugin` named after
//! the driver, with the CSI socket path as kubelet sees it), calls NodeGetInfo on that CSI
//! socket, writes the driver into the node's CSINode, and tells the agent the outcome with
//! `NotifyRegistrationStatus`. The outcome is kept in a [`Tracker`] for `/status` and
//! `/readyz`.
//!
//! Owns the registration socket: a stale one (left by a crash) is replaced at start, a live
//! one (another process answers) is an error, and the socket is removed at a clean stop so
//! kubelet deregisters the driver. The file operations are behind [`SocketFiles`].

#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use futures_util::TryStreamExt;
use hearth_proto::kubelet::pluginregistration::registration_server::{
    Registration, RegistrationServer,
};
use hearth_proto::kubelet::pluginregistration::{
    InfoRequest, PluginInfo, RegistrationStatus, RegistrationStatusResponse,
};
use tokio::net::UnixListener;
use tokio_stream::wrappers::UnixListenerStream;
use tonic::{Request, Response, Status};

use crate::authority::FixAuthority;
use crate::health::snapshot::KubeletRegistration;

/// `PluginInfo.type` of a CSI driver.
pub const PLUGIN_TYPE: &str = "CSIPlugin";
/// The CSI versions kubelet may use with the driver.
pub const SUPPORTED_VERSIONS: [&str; 1] = ["1.0.0"];

/// What can go wrong setting registration up.
#[derive(Debug, thiserror::Error)]
pub enum RegistrationError {
    /// A flag that is not an absolute path.
    #[error("{flag} {path:?} must be an absolute path")]
    Relative {
        /// The flag.
        flag: &'static str,
        /// What was given.
        path: String,
    },
    /// Another process answers on the registration socket.
    #[error("registration socket {0} is served by another process")]
    InUse(PathBuf),
    /// Creating, removing or binding the socket failed.
    #[error("registration socket {path}: {source}")]
    Socket {
        /// The socket.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Where the agent registers, and what it tells kubelet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// `<dir>/<driver>-reg.sock`.
    pub socket: PathBuf,
    /// The CSI driver name.
    pub driver: String,
    /// The CSI socket path as kubelet sees it (`--kubelet-registration-path`).
    pub endpoint: String,
}

impl Plan {
    /// The plan for `driver` in kubelet's registration directory `dir`, announcing the CSI
    /// socket at `endpoint` (the path in kubelet's mount namespace).
    pub fn new(dir: &Path, driver: &str, endpoint: &Path) -> Result<Self, RegistrationError> {
        for (flag, p) in [
            ("--kubelet-registration-dir", dir),
            ("--kubelet-registration-path", endpoint),
        ] {
            if !p.is_absolute() {
                return Err(RegistrationError::Relative {
                    flag,
                    path: p.display().to_string(),
                });
            }
        }
        Ok(Self {
            socket: dir.join(format!("{driver}-reg.sock")),
            driver: driver.to_owned(),
            endpoint: endpoint.display().to_string(),
        })
    }

    /// The answer to `GetInfo`.
    pub fn plugin_info(&self) -> PluginInfo {
        PluginInfo {
            r#type: PLUGIN_TYPE.into(),
            name: self.driver.clone(),
            endpoint: self.endpoint.clone(),
            supported_versions: SUPPORTED_VERSIONS.iter().map(|v| (*v).to_owned()).collect(),
        }
    }
}

/// What kubelet said last.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Outcome {
    /// Not notified yet.
    #[default]
    Waiting,
    /// Kubelet registered the driver.
    Registered,
    /// Kubelet refused it, with its error.
    Failed(String),
}

impl Outcome {
    /// The outcome of a `NotifyRegistrationStatus`.
    pub fn of(status: &RegistrationStatus) -> Self {
        if status.plugin_registered {
            Self::Registered
        } else if status.error.is_empty() {
            Self::Failed("kubelet did not register the plugin and gave no reason".into())
        } else {
            Self::Failed(status.error.clone())
        }
    }
}

#[derive(Debug, Default)]
struct Progress {
    outcome: Outcome,
    get_info_calls: u64,
    notifications: u64,
    notified_unix: Option<f64>,
}

/// The registration's progress, shared by the server and the status page.
#[derive(Debug)]
pub struct Tracker {
    plan: Plan,
    progress: Mutex<Progress>,
}

fn now_unix() -> f64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

impl Tracker {
    /// A tracker for `plan`, waiting.
    pub fn new(plan: Plan) -> Self {
        Self {
            plan,
            progress: Mutex::default(),
        }
    }

    fn got_info(&self) {
        if let Ok(mut p) = self.progress.lock() {
            p.get_info_calls += 1;
        }
    }

    /// Records a notification; returns the outcome.
    pub fn notified(&self, status: &RegistrationStatus) -> Outcome {
        let outcome = Outcome::of(status);
        if let Ok(mut p) = self.progress.lock() {
            p.outcome = outcome.clone();
            p.notifications += 1;
            p.notified_unix = Some(now_unix());
        }
        outcome
    }

    /// The last outcome.
    pub fn outcome(&self) -> Outcome {
        self.progress
            .lock()
            .map(|p| p.outcome.clone())
            .unwrap_or_default()
    }

    /// The status page's view.
    pub fn view(&self) -> KubeletRegistration {
        let p = self.progress.lock();
        let (outcome, get_info_calls, notifications, notified_unix) = match p.as_deref() {
            Ok(p) => (
                p.outcome.clone(),
                p.get_info_calls,
                p.notifications,
                p.notified_unix,
            ),
            Err(_) => (Outcome::default(), 0, 0, None),
        };
        let (state, error) = match outcome {
            Outcome::Waiting => ("waiting", None),
            Outcome::Registered => ("registered", None),
            Outcome::Failed(e) => ("error", Some(e)),
        };
        KubeletRegistration {
            socket: self.plan.socket.display().to_string(),
            driver: self.plan.driver.clone(),
            endpoint: self.plan.endpoint.clone(),
            state: state.into(),
            error,
            get_info_calls,
            notifications,
            notified_unix,
        }
    }
}

/// The registration socket's file operations.
pub trait SocketFiles: Send + Sync {
    /// Whether something exists at `path`.
    fn exists(&self, path: &Path) -> bool;
    /// Whether a process accepts connections on the socket at `path`.
    fn answers(&self, path: &Path) -> bool;
    /// Removes `path`; a missing file is not an error.
    fn remove(&self, path: &Path) -> std::io::Result<()>;
    /// Creates the parent directory and listens on `path`.
    fn listen(&self, path: &Path) -> std::io::Result<UnixListener>;
}

/// The real file system.
#[derive(Debug, Default)]
pub struct HostSockets;

impl SocketFiles for HostSockets {
    fn exists(&self, path: &Path) -> bool {
        path.symlink_metadata().is_ok()
    }
    fn answers(&self, path: &Path) -> bool {
        // A unix-socket connect answers at once: accepted, refused or missing.
        std::os::unix::net::UnixStream::connect(path).is_ok()
    }
    fn remove(&self, path: &Path) -> std::io::Result<()> {
        match std::fs::remove_file(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    }
    fn listen(&self, path: &Path) -> std::io::Result<UnixListener> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        UnixListener::bind(path)
    }
}

/// Binds the registration socket: a stale file is replaced, a live socket refused.
pub fn bind(files: &dyn SocketFiles, socket: &Path) -> Result<UnixListener, RegistrationError> {
    let failed = |source| RegistrationError::Socket {
        path: socket.to_owned(),
        source,
    };
    if files.exists(socket) {
        if files.answers(socket) {
            return Err(RegistrationError::InUse(socket.to_owned()));
        }
        tracing::info!(socket = %socket.display(), "replacing a stale registration socket");
        files.remove(socket).map_err(failed)?;
    }
    files.listen(socket).map_err(failed)
}

/// The `pluginregistration.Registration` service.
#[derive(Debug, Clone)]
pub struct RegistrationService {
    tracker: Arc<Tracker>,
}

#[tonic::async_trait]
impl Registration for RegistrationService {
    async fn get_info(&self, _: Request<InfoRequest>) -> Result<Response<PluginInfo>, Status> {
        self.tracker.got_info();
        let info = self.tracker.plan.plugin_info();
        tracing::info!(driver = %info.name, endpoint = %info.endpoint, "kubelet asked for the plugin's info");
        Ok(Response::new(info))
    }

    async fn notify_registration_status(
        &self,
        request: Request<RegistrationStatus>,
    ) -> Result<Response<RegistrationStatusResponse>, Status> {
        let driver = &self.tracker.plan.driver;
        match self.tracker.notified(request.get_ref()) {
            Outcome::Failed(e) => {
                tracing::error!(%driver, "kubelet did not register the CSI driver: {e}");
            }
            _ => tracing::info!(%driver, "kubelet registered the CSI driver"),
        }
        Ok(Response::new(RegistrationStatusResponse {}))
    }
}

/// The running registration server.
pub struct Running {
    socket: PathBuf,
    files: Arc<dyn SocketFiles>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

/// Binds the socket of `tracker`'s plan and serves the registration API on it.
pub fn start(
    tracker: Arc<Tracker>,
    files: Arc<dyn SocketFiles>,
) -> Result<Running, RegistrationError> {
    let socket = tracker.plan.socket.clone();
    let listener = bind(&*files, &socket)?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let service = RegistrationServer::new(RegistrationService { tracker });
    tracing::info!(socket = %socket.display(), "serving kubelet plugin registration");
    // Kubelet is a grpc-go client; other clients may send the socket path as `:authority`.
    let incoming = UnixListenerStream::new(listener).map_ok(FixAuthority::new);
    let task = tokio::spawn(async move {
        let served = tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming_shutdown(incoming, async {
                let _ = stopped.await;
            })
            .await;
        if let Err(e) = served {
            tracing::error!("kubelet plugin registration server stopped: {e}");
        }
    });
    Ok(Running {
        socket,
        files,
        stop: Some(stop),
        task,
    })
}

impl Running {
    /// Stops serving and removes the socket (kubelet then deregisters the driver).
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
        if let Err(e) = self.files.remove(&self.socket) {
            tracing::warn!(socket = %self.socket.display(), "removing the registration socket: {e}");
        }
    }
}
