//! A LINSTOR controller **simulator** for tests and `hearth dev` demos. It is not LINSTOR and
//! not an integration with LINSTOR: it is an independent implementation of the parts of the
//! LINSTOR REST API v1 that a CSI driver uses, checked against LINBIT's OpenAPI file and
//! driven by the official python-linstor client in tests.
//!
//! **CLI** (`tests/src/bin/linstor-sim.rs`):
//! `linstor-sim --listen 127.0.0.1:3370 [--state-dir DIR] [--nodes n1,n2,n3]
//! [--pools data:LVM_THIN] [--pool-size 10GiB] [--devices loop|none]
//! [--tls-cert F --tls-key F --tls-client-ca F]`. It prints `linstor-sim listening on URL`
//! and runs until SIGTERM or SIGINT, then detaches its loop devices and removes its files.
//!
//! **State**: nodes (each with its pools and `DfltDisklessStorPool`), storage pools with
//! total/free capacity in KiB (thick accounting), resource groups with select filters,
//! resource and volume definitions (DRBD minors from 1000), resources (diskful, or diskless
//! with `DISKLESS`/`DRBD_DISKLESS`) with properties, snapshots, clones, S3 remotes and
//! backups. Answers carry LINSTOR's status codes and `ApiCallRc` lists (its own constants in
//! `consts`). In-memory only; the state directory holds the volume and snapshot images.
//!
//! **Devices**: with `--devices loop` (root), each resource-definition volume is a sparse file
//! plus a real loop device, created with the definition's first resource and reported as the
//! `device_path` of all its resources on every node (standing in for `/dev/drbdN`); resize
//! grows the file (`LOOP_SET_CAPACITY`), snapshots copy it, delete frees it. Disk state is
//! `UpToDate` (diskful) or `Diskless`. With `--devices none`, `device_path` is
//! `/dev/drbd<minor>` and nothing is created.
//!
//! **Admin API** (`/sim/*`, see `admin`): `GET /sim/state` (REST calls per route, objects,
//! devices, leaks), `GET|POST|DELETE /sim/faults` (fault injection, see `faults`),
//! `POST /sim/in-use`.
//!
//! **Child process** ([`SimProcess`]): tests that run the binary hold it in a guard that
//! stops it on drop and panic, so a failed test never leaves it holding the test's output.
//!
//! Owns: its state directory, the loop devices it attached, its listening socket.

mod admin;
pub mod app;
pub mod consts;
pub mod devices;
pub mod faults;
mod handlers_defs;
mod handlers_rsc;
mod ops_defs;
mod ops_drbd;
mod ops_groups;
mod ops_place;
mod ops_remote;
mod ops_restore;
mod ops_rsc;
mod ops_snap;
mod parse;
pub mod process;
mod render;
mod reply;
pub mod server;
mod state;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;

use serde_json::Value;
use tokio::sync::watch;

pub use app::{api_routes, Recorded};
pub use devices::DeviceMode;
pub use faults::{Fault, FaultKind};
pub use process::SimProcess;
pub use server::TlsFiles;

/// How to run the simulator.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Where to listen (port 0: any free port).
    pub listen: SocketAddr,
    /// Where the images go; a temporary directory (removed at stop) when `None`.
    pub state_dir: Option<PathBuf>,
    /// Node names.
    pub nodes: Vec<String>,
    /// Pools per node: (name, provider kind).
    pub pools: Vec<(String, String)>,
    /// Each pool's size in KiB.
    pub pool_size_kib: u64,
    /// Real loop devices, or none.
    pub devices: DeviceMode,
    /// HTTPS with client certificates.
    pub tls: Option<TlsFiles>,
    /// Keep every answer (for the OpenAPI check).
    pub record: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            state_dir: None,
            nodes: vec!["node-a".into(), "node-b".into(), "node-c".into()],
            pools: vec![("data".into(), "LVM_THIN".into())],
            pool_size_kib: 10 << 20,
            devices: DeviceMode::None,
            tls: None,
            record: false,
        }
    }
}

/// Why the simulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("create the state directory: {0}")]
    StateDir(#[source] std::io::Error),
    #[error("listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Tls(#[from] server::ServeError),
    #[error("start the simulator's runtime: {0}")]
    Runtime(#[source] std::io::Error),
}

/// Parses `10GiB`, `512MiB`, `1T`, `4096K` or plain KiB into KiB.
pub fn parse_size_kib(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    let shift = match unit
        .trim()
        .to_ascii_lowercase()
        .trim_end_matches("ib")
        .trim_end_matches('b')
    {
        "" | "k" => 0,
        "m" => 10,
        "g" => 20,
        "t" => 30,
        _ => return None,
    };
    n.checked_mul(1 << shift)
}

/// A running simulator. Dropping it stops the server, detaches its loop devices and removes
/// its files.
#[derive(Debug)]
pub struct Simulator {
    addr: SocketAddr,
    tls: bool,
    app: Arc<app::App>,
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
    _tmp: Option<tempfile::TempDir>,
}

impl Simulator {
    /// Binds, then serves on a thread of its own (usable from sync and async tests alike).
    pub fn start(config: SimConfig) -> Result<Self, SimError> {
        let tmp = match &config.state_dir {
            Some(_) => None,
            None => Some(
                tempfile::Builder::new()
                    .prefix("linstor-sim-")
                    .tempdir()
                    .map_err(SimError::StateDir)?,
            ),
        };
        let dir = config
            .state_dir
            .clone()
            .or_else(|| tmp.as_ref().map(|t| t.path().to_owned()))
            .unwrap_or_default();
        std::fs::create_dir_all(&dir).map_err(SimError::StateDir)?;
        let acceptor = config.tls.as_ref().map(server::acceptor).transpose()?;
        let listener =
            std::net::TcpListener::bind(config.listen).map_err(|source| SimError::Listen {
                addr: config.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| SimError::Listen {
            addr: config.listen,
            source,
        })?;
        listener
            .set_nonblocking(true)
            .map_err(|source| SimError::Listen { addr, source })?;
        let devices = devices::Devices::new(config.devices, &dir);
        let state = state::State::new(&config.nodes, &config.pools, config.pool_size_kib, devices);
        let app = Arc::new(app::App::new(state, config.record));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(SimError::Runtime)?;
        let (stop, stopped) = watch::channel(false);
        let served = app.clone();
        let thread = std::thread::Builder::new()
            .name("linstor-sim".into())
            .spawn(move || {
                runtime.block_on(async move {
                    if let Ok(listener) = tokio::net::TcpListener::from_std(listener) {
                        server::serve(listener, acceptor, served, stopped).await;
                    }
                });
            })
            .map_err(SimError::Runtime)?;
        Ok(Self {
            addr,
            tls: config.tls.is_some(),
            app,
            stop,
            thread: Some(thread),
            _tmp: tmp,
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR` (or `https://` with TLS).
    pub fn url(&self) -> String {
        format!(
            "{}://{}",
            if self.tls { "https" } else { "http" },
            self.addr
        )
    }

    /// Adds a fault.
    pub fn add_fault(&self, fault: Fault) {
        self.app.add_fault(fault);
    }

    /// Removes every pending fault.
    pub fn clear_faults(&self) {
        self.app.clear_faults();
    }

    /// The `/sim/state` document.
    pub fn state(&self) -> Value {
        self.app.state_json()
    }

    /// The answers recorded so far (with `record`).
    pub fn recorded(&self) -> Vec<Recorded> {
        self.app.recorded()
    }

    /// Marks a resource open or closed on a node.
    pub fn set_in_use(&self, rd: &str, node: &str, in_use: bool) -> Result<(), String> {
        self.app
            .lock()
            .set_in_use(rd, node, in_use)
            .map_err(|f| f.0.message)
    }

    /// Sets a replica's DRBD disk state (`None`: the default UpToDate/Diskless) and the peer
    /// it resyncs from, with the progress in percent.
    pub fn set_disk_state(
        &self,
        rd: &str,
        node: &str,
        disk_state: Option<&str>,
        sync_from: Option<(&str, f64)>,
    ) -> Result<(), String> {
        self.app
            .lock()
            .set_disk_state(
                rd,
                node,
                disk_state.map(str::to_owned),
                sync_from.map(|(n, p)| (n.to_owned(), p)),
            )
            .map_err(|f| f.0.message)
    }

    /// Sets a node's connection status (`ONLINE`, `OFFLINE`) and flags (`EVICTED`, ...), as
    /// the controller reports a satellite that went away or that an admin evicted.
    pub fn set_node_state(&self, node: &str, status: &str, flags: &[&str]) -> Result<(), String> {
        let mut s = self.app.lock();
        let n = s
            .nodes
            .get_mut(node)
            .ok_or_else(|| format!("no node {node}"))?;
        n.connection_status = status.to_owned();
        n.flags = flags.iter().map(|f| (*f).to_owned()).collect();
        Ok(())
    }

    /// Toggles a replica diskful or diskless, as `linstor resource toggle-disk` does.
    pub fn toggle_disk(&self, rd: &str, node: &str, diskful: bool) -> Result<(), String> {
        self.app
            .lock()
            .toggle_disk(rd, node, diskful, None)
            .map(drop)
            .map_err(|f| f.0.message)
    }

    /// Runs LINSTOR's `AutoDiskfulTask` now (see `ops_drbd`); returns the replicas that got
    /// a disk, as `rd/node`.
    pub fn run_auto_diskful(&self) -> Vec<String> {
        self.app.lock().run_auto_diskful()
    }

    /// Stops serving and frees every device and file (also done on drop).
    pub fn stop(mut self) -> Vec<String> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Vec<String> {
        let _ = self.stop.send(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let mut s = self.app.lock();
        let mut errors = Vec::new();
        let names: Vec<String> = s.rds.keys().cloned().collect();
        for rd in names {
            let Some(mut r) = s.rds.remove(&rd) else {
                continue;
            };
            for vd in r.vds.values_mut() {
                if let Err(e) = s.release_device(&rd, vd) {
                    errors.push(e.0.message);
                }
            }
            for image in r
                .snaps
                .values()
                .flat_map(|sn| sn.vols.values().filter_map(|(_, i)| i.clone()))
            {
                if let Err(e) = s.devices.remove_image(&image) {
                    errors.push(e.to_string());
                }
            }
        }
        errors
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        if self.thread.is_some() {
            for e in self.shutdown() {
                eprintln!("linstor-sim: cleanup: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_size_kib;

    #[test]
    fn sizes() {
        assert_eq!(parse_size_kib("10GiB"), Some(10 << 20));
        assert_eq!(parse_size_kib("512MiB"), Some(512 << 10));
        assert_eq!(parse_size_kib("1T"), Some(1 << 30));
        assert_eq!(parse_size_kib("4096"), Some(4096));
        assert_eq!(parse_size_kib("4096K"), Some(4096));
        assert_eq!(parse_size_kib("x"), None);
        assert_eq!(parse_size_kib("5PB"), None);
    }
}
