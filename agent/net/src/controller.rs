//! The long-running reconciler of one network namespace: a pass at start, then a pass after
//! every relevant netlink event (settled for a few milliseconds), on a periodic resync, when
//! a desired sysctl drifts, and when the file changes (mtime, or SIGHUP). Failed passes
//! retry with exponential backoff. With an `ovn:` section, a change of the local Open_vSwitch
//! database (its monitor's update) starts a pass too; when the section goes, what Hearth
//! created in that database is removed. Each pass also syncs the floating-IP announcer, and its
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
use crate::ovn::watch::Watch;
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

/// A network file read, checked and rendered once: what the passes converge to.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The render, with the `ovn:` section's netlink part merged in.
    pub desired: Desired,
    /// The `ovn:` section.
    pub ovn: Option<OvnSpec>,
    /// The file's mtime when it was read (a later change reloads it).
    modified: Option<SystemTime>,
}

/// Reads, checks and renders the file at `path`; the `ovn:` section's netlink part is merged
/// into the render, and its certificate files are read once (fail fast on unreadable ones).
pub fn load(path: &Path) -> Result<Loaded, ControllerError> {
    let err = |source| ControllerError::Load {
        path: path.to_owned(),
        source,
    };
    let modified = mtime(path);
    let mut file = spec::load(path).map_err(err)?;
    let ovn = file.ovn.clone();
    if let Some(o) = &ovn {
        // Fail fast (at startup, and a reload keeps the old file) on unreadable certificates.
        o.tls().map_err(err)?;
        crate::ovn::netfile::merge(o, &mut file);
    }
    Ok(Loaded {
        desired: render(&file),
        ovn,
        modified,
    })
}

/// Runs until SIGTERM/SIGINT in the current network namespace. When it fails, the progress
/// handle says it stopped, so readiness fails at once rather than when the last pass ages.
pub async fn run(path: PathBuf, opts: Options) -> Result<(), ControllerError> {
    match load(&path) {
        Ok(first) => run_loaded(path, first, opts).await,
        Err(e) => {
            if let Some(p) = &opts.progress {
                p.stopped(e.to_string());
            }
            Err(e)
        }
    }
}

/// [`run`] with the file already loaded (by the caller, to fail fast on a bad file).
pub async fn run_loaded(
    path: PathBuf,
    first: Loaded,
    opts: Options,
) -> Result<(), ControllerError> {
    let progress = opts.progress.clone();
    let result = run_loop(path, first, opts).await;
    if let (Err(e), Some(p)) = (&result, progress) {
        p.stopped(e.to_string());
    }
    result
}

async fn run_loop(path: PathBuf, first: Loaded, opts: Options) -> Result<(), ControllerError> {
    let Loaded {
        mut desired,
        mut ovn,
        modified: mut stamp,
    } = first;
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
    let mut warned = Warned::default();
    tracing::info!(file = %path.display(), "network reconciler started");
    // The database of an `ovn:` section that was removed (or moved): what Hearth created
    // there goes at the next pass.
    let mut gone: Option<OvnSpec> = None;
    let mut watch: Option<Watch> = None;
    loop {
        if let Some(g) = &gone {
            match crate::ovn::apply::remove(&g.ovsdb, g.tls().ok().flatten(), false).await {
                Ok(o) if o.failed.is_none() => gone = None,
                Ok(o) => tracing::warn!("{}", o.failed.map(|e| e.to_string()).unwrap_or_default()),
                Err(e) => tracing::warn!("removing the OVN configuration of the old section: {e}"),
            }
        }
        if ovn.is_none() {
            watch = None;
        } else if let (None, Some(o)) = (&watch, &ovn) {
            match Watch::start(o).await {
                Ok(w) => watch = Some(w),
                Err(e) => tracing::debug!("not following the local OVSDB yet: {e}"),
            }
        }
        let ovn_failed = match &ovn {
            Some(o) => match crate::ovn::apply::node_pass(o, false, Duration::ZERO)
                .instrument(tracing::info_span!("ovn", system_id = %o.system_id))
                .await
            {
                Ok(out) => match out.failed {
                    Some(e) => {
                        tracing::warn!("{e}");
                        true
                    }
                    None => false,
                },
                Err(e) => {
                    tracing::warn!("{e}");
                    true
                }
            },
            None => false,
        };
        let (failures, conflicts) = pass(&*netlink, &sysctls, &announcer, &desired)
            .instrument(tracing::info_span!("reconcile"))
            .await;
        for c in &conflicts {
            if warned.fresh(c, std::time::Instant::now()) {
                tracing::warn!("{c}");
            } else {
                tracing::debug!("{c}");
            }
        }
        warned.keep_only(&conflicts);
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
                up = crate::ovn::watch::next(&mut watch) => {
                    if up.is_none() {
                        watch = None; // started again at the next pass
                    }
                    tracing::debug!("local OVSDB changed");
                    tokio::time::sleep(opts.settle).await;
                    break;
                }
                _ = poll.tick() => {
                    if mtime(&path) != stamp {
                        stamp = mtime(&path);
                        if reload(&path, &mut desired, &mut ovn, &mut gone, &mut watch) { break; }
                    }
                    if sysctl_drift(&desired, &sysctls) { break; }
                }
                _ = hup.recv() => {
                    stamp = mtime(&path);
                    if reload(&path, &mut desired, &mut ovn, &mut gone, &mut watch) { break; }
                }
                _ = term.recv() => return Ok(()),
                _ = int.recv() => return Ok(()),
            }
        }
    }
}

/// How often a conflict that stays is warned again (passes follow every netlink event, so
/// one foreign object would otherwise be warned many times a second).
const REWARN: Duration = Duration::from_secs(300);

/// The conflicts warned so far and when: a message is warned when new, or again after
/// [`REWARN`]; one that went away and comes back is new.
#[derive(Debug, Default)]
struct Warned(std::collections::HashMap<String, std::time::Instant>);

impl Warned {
    /// Whether `msg` is to be warned now (and notes it).
    fn fresh(&mut self, msg: &str, now: std::time::Instant) -> bool {
        match self.0.get(msg) {
            Some(at) if now.duration_since(*at) < REWARN => false,
            _ => {
                self.0.insert(msg.to_owned(), now);
                true
            }
        }
    }

    /// Forgets the messages not in `current`.
    fn keep_only(&mut self, current: &[String]) {
        self.0.retain(|m, _| current.contains(m));
    }
}

fn reload(
    path: &Path,
    desired: &mut Desired,
    ovn: &mut Option<OvnSpec>,
    gone: &mut Option<OvnSpec>,
    watch: &mut Option<Watch>,
) -> bool {
    match load(path) {
        Ok(l) => {
            tracing::info!(file = %path.display(), "network file reloaded");
            *desired = l.desired;
            let old = std::mem::replace(ovn, l.ovn);
            if let Some(old) = old {
                if ovn.as_ref().is_none_or(|n| n.ovsdb != old.ovsdb) {
                    tracing::info!(ovsdb = %old.ovsdb, "the ovn: section is gone: removing Hearth's OVS configuration there");
                    *gone = Some(old);
                }
                *watch = None; // follows the new section's database, if any
            }
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
            // Warned by the caller, once per conflict and then at most every REWARN.
            conflicts.extend(out.plan.conflicts.iter().map(ToString::to_string));
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

#[cfg(test)]
mod warned_tests {
    use std::time::{Duration, Instant};

    use super::{Warned, REWARN};

    #[test]
    fn a_conflict_is_warned_once_then_after_rewarn_and_again_when_it_returns() {
        let mut w = Warned::default();
        let t0 = Instant::now();
        assert!(w.fresh("! link x is foreign", t0));
        for ms in [1, 15, 150] {
            assert!(!w.fresh("! link x is foreign", t0 + Duration::from_millis(ms)));
        }
        assert!(w.fresh("! link x is foreign", t0 + REWARN));
        w.keep_only(&[]);
        assert!(w.fresh(
            "! link x is foreign",
            t0 + REWARN + Duration::from_millis(1)
        ));
    }
}
