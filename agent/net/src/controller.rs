//! The long-running reconciler of one network namespace: a pass at start, then a pass after
//! every relevant netlink event (settled for a few milliseconds), on a periodic resync, when
//! a desired sysctl drifts, and when the file changes (mtime, or SIGHUP). Failed passes
//! retry with exponential backoff. Each pass also syncs the floating-IP announcer, and its
//! outcome goes to [`Options::progress`] for readiness. It stops on SIGTERM or SIGINT and
//! leaves everything in place, so a restart does not flap the node.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::signal::unix::{signal, SignalKind};

use super::announce::{Announcer, PacketSocket, Schedule};
use tracing::Instrument;

use super::apply::converge;
use super::model::Desired;
use super::netlink::{events, NetlinkError, RtNetlink};
use super::progress::{NetProgress, NetState};
use super::render::render;
use super::spec::{self, SpecError};
use super::sysctl::{ProcSys, Sysctls};
use crate::ovn::OvnSpec;

/// Why the controller could not start.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    /// The file is invalid at startup.
    #[error("{path}: {source}")]
    Load {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        source: SpecError,
    },
    /// Opening netlink sockets failed.
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
    /// Opening the raw packet socket failed.
    #[error(transparent)]
    Announce(#[from] super::announce::AnnounceError),
    /// Installing signal handlers failed.
    #[error("installing signal handlers: {0}")]
    Signals(#[source] std::io::Error),
}

/// Timings of the loop.
#[derive(Debug, Clone)]
pub struct Options {
    /// Full resync period (a safety net for lost events).
    pub resync: Duration,
    /// How long to wait after an event for the burst to end.
    pub settle: Duration,
    /// How often desired sysctls and the file's mtime are checked.
    pub poll: Duration,
    /// Floating-IP announcement schedule.
    pub schedule: Schedule,
    /// Where each pass's outcome is published (the status endpoint reads it).
    pub progress: Option<NetProgress>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            resync: Duration::from_secs(30),
            settle: Duration::from_millis(10),
            poll: Duration::from_millis(500),
            schedule: Schedule::default(),
            progress: None,
        }
    }
}

fn mtime(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn sysctl_drift(desired: &Desired, sysctls: &dyn Sysctls) -> bool {
    desired
        .sysctls
        .iter()
        .chain(&desired.interface_sysctls)
        .any(|s| sysctls.read(&s.path).ok().as_deref() != Some(s.value.as_str()))
}

/// The rendered file, and its `ovn:` section (whose netlink part is merged into the render).
fn load(path: &Path) -> Result<(Desired, Option<OvnSpec>), ControllerError> {
    let err = |source| ControllerError::Load {
        path: path.to_owned(),
        source,
    };
    let mut file = spec::load(path).map_err(err)?;
    let ovn = match &file.ovn {
        Some(v) => Some(OvnSpec::from_yaml(v).map_err(|e| err(SpecError::Parse(e.to_string())))?),
        None => None,
    };
    if let Some(o) = &ovn {
        // Fail fast (at startup, and a reload keeps the old file) on unreadable certificates.
        o.tls().map_err(|e| err(SpecError::Parse(e.to_string())))?;
        crate::ovn::netfile::merge(o, &mut file);
    }
    Ok((render(&file), ovn))
}

/// Runs until SIGTERM/SIGINT in the current network namespace. When it fails, the progress
/// handle says it stopped, so readiness fails at once rather than when the last pass ages.
pub async fn run(path: PathBuf, opts: Options) -> Result<(), ControllerError> {
    let progress = opts.progress.clone();
    let result = run_loop(path, opts).await;
    if let (Err(e), Some(p)) = (&result, progress) {
        p.stopped(e.to_string());
    }
    result
}

async fn run_loop(path: PathBuf, opts: Options) -> Result<(), ControllerError> {
    let (mut desired, mut ovn) = load(&path)?;
    let mut stamp = mtime(&path);
    let netlink = Arc::new(RtNetlink::open()?);
    let sysctls = ProcSys::default();
    let announcer = Announcer::new(
        Arc::clone(&netlink),
        Arc::new(PacketSocket::open()?),
        opts.schedule.clone(),
    );
    let mut events = events::subscribe()?;
    let mut hup = signal(SignalKind::hangup()).map_err(ControllerError::Signals)?;
    let mut term = signal(SignalKind::terminate()).map_err(ControllerError::Signals)?;
    let mut int = signal(SignalKind::interrupt()).map_err(ControllerError::Signals)?;
    let mut poll = tokio::time::interval(opts.poll);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut backoff = Duration::ZERO;
    tracing::info!(file = %path.display(), "network reconciler started");
    loop {
        let ovn_failed = match &ovn {
            Some(o) => crate::ovn::apply::node_pass(o, false, Duration::ZERO)
                .instrument(tracing::info_span!("ovn", system_id = %o.system_id))
                .await
                .map_err(|e| tracing::warn!("{e}"))
                .is_err(),
            None => false,
        };
        let (failures, conflicts) = pass(&*netlink, &sysctls, &announcer, &desired)
            .instrument(tracing::info_span!("reconcile"))
            .await;
        if let Some(p) = &opts.progress {
            p.record(NetState::pass(&failures, &conflicts, opts.resync));
        }
        let failed = ovn_failed || !failures.is_empty();
        backoff = if failed {
            (backoff * 2).clamp(Duration::from_millis(100), Duration::from_secs(30))
        } else {
            Duration::ZERO
        };
        let wait = if failed { backoff } else { opts.resync };
        let deadline = tokio::time::sleep(wait);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                ev = events.next_relevant() => {
                    if ev.is_none() {
                        tracing::warn!("netlink event socket closed; resubscribing");
                        events = events::subscribe()?;
                    }
                    tokio::time::sleep(opts.settle).await;
                    break;
                }
                () = &mut deadline => break,
                _ = poll.tick() => {
                    if mtime(&path) != stamp {
                        stamp = mtime(&path);
                        if reload(&path, &mut desired, &mut ovn) { break; }
                    }
                    if sysctl_drift(&desired, &sysctls) { break; }
                }
                _ = hup.recv() => {
                    stamp = mtime(&path);
                    if reload(&path, &mut desired, &mut ovn) { break; }
                }
                _ = term.recv() => return Ok(()),
                _ = int.recv() => return Ok(()),
            }
        }
    }
}

fn reload(path: &Path, desired: &mut Desired, ovn: &mut Option<OvnSpec>) -> bool {
    match load(path) {
        Ok((d, o)) => {
            tracing::info!(file = %path.display(), "network file reloaded");
            *desired = d;
            *ovn = o;
            true
        }
        Err(e) => {
            tracing::error!("keeping the previous network state: {e}");
            false
        }
    }
}

/// One pass: (failures, to retry soon; conflicts, left alone), as the log prints them.
async fn pass<N, F>(
    netlink: &N,
    sysctls: &ProcSys,
    announcer: &Announcer<N, F>,
    desired: &Desired,
) -> (Vec<String>, Vec<String>)
where
    N: super::netlink::Netlink + 'static,
    F: super::announce::Frames + 'static,
{
    let (mut failures, mut conflicts) = (Vec::new(), Vec::new());
    match converge(netlink, sysctls, desired, false).await {
        Ok(out) => {
            if !out.plan.actions.is_empty() {
                let (add, change, remove) = out.plan.counts();
                tracing::info!(add, change, remove, writes = out.report.writes, "applied");
                for a in &out.plan.actions {
                    tracing::debug!("{a}");
                }
            }
            for c in &out.plan.conflicts {
                tracing::warn!("{c}");
                conflicts.push(c.to_string());
            }
            for f in &out.report.failures {
                tracing::warn!("{f}");
                failures.push(f.to_string());
            }
        }
        Err(e) => {
            tracing::warn!("{e}");
            failures.push(e.to_string());
        }
    }
    for e in announcer.sync(&desired.floating_ips).await {
        tracing::warn!("{e}");
        failures.push(e.to_string());
    }
    (failures, conflicts)
}
