//! The fence guard: a small child process (`hearth fence-guard`) that removes every leased
//! floating-IP address ([`hearth_net::LEASED_PROTO`]) of its network namespace when the lease
//! ends and the agent did not do it, or when the agent dies.
//!
//! The agent writes each new lease deadline to the guard's stdin as an absolute
//! `CLOCK_MONOTONIC` time in nanoseconds (`0` for "no lease"). The guard fences when that time
//! passes without a newer one, and when its stdin reaches end-of-file, which is what happens
//! when the agent exits or is killed with SIGKILL: the kernel closes the pipe. So a crashed or
//! frozen agent cannot keep answering for an address past its lease, and the coordinator's
//! rule "reassign only after the lease ended" stays safe without trusting the agent process.

use std::io::{BufRead, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::time::Duration;

use nix::time::{clock_gettime, ClockId};
use tokio::time::Instant;

use hearth_net::announce::{AnnounceError, Announcer, Frames, Schedule};
use hearth_net::netlink::RtNetlink;

/// Nanoseconds on `CLOCK_MONOTONIC` (shared by every process of the machine).
fn monotonic_ns() -> u64 {
    clock_gettime(ClockId::CLOCK_MONOTONIC).map_or(0, |t| {
        u64::try_from(t.tv_sec())
            .unwrap_or(0)
            .saturating_mul(1_000_000_000)
            .saturating_add(u64::try_from(t.tv_nsec()).unwrap_or(0))
    })
}

/// The agent's handle on its guard process.
#[derive(Debug)]
pub struct FenceGuard {
    child: Child,
    stdin: ChildStdin,
    last: Option<Option<Instant>>,
}

impl FenceGuard {
    /// Starts `hearth fence-guard` (this executable) in the current network namespace.
    pub fn spawn() -> std::io::Result<Self> {
        let mut child = Command::new("/proc/self/exe")
            .arg("fence-guard")
            .stdin(Stdio::piped())
            .spawn()?;
        let stdin = child
            .stdin
            .take()
            .ok_or_else(|| std::io::Error::other("fence guard has no stdin"))?;
        Ok(Self {
            child,
            stdin,
            last: None,
        })
    }

    /// Tells the guard the current lease deadline (`None`: no lease, fence now).
    pub fn set_deadline(&mut self, deadline: Option<Instant>) -> std::io::Result<()> {
        if self.last == Some(deadline) {
            return Ok(());
        }
        let ns = match deadline {
            None => 0,
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                monotonic_ns().saturating_add(u64::try_from(left.as_nanos()).unwrap_or(u64::MAX))
            }
        };
        writeln!(self.stdin, "{ns}")?;
        self.stdin.flush()?;
        self.last = Some(deadline);
        Ok(())
    }
}

impl Drop for FenceGuard {
    fn drop(&mut self) {
        // Closing stdin makes the guard fence and exit; reap it so no zombie is left.
        let _ = self.child.try_wait();
    }
}

/// Sends nothing: the guard only removes addresses.
struct NoFrames;

impl Frames for NoFrames {
    fn send(&self, _index: u32, _frame: &[u8]) -> Result<(), AnnounceError> {
        Ok(())
    }
}

/// Removes every leased address of this network namespace.
fn fence(runtime: &tokio::runtime::Runtime) {
    runtime.block_on(async {
        match RtNetlink::open() {
            Ok(netlink) => {
                let announcer =
                    Announcer::leased(Arc::new(netlink), Arc::new(NoFrames), Schedule::default());
                for e in announcer.sync(&[]).await {
                    eprintln!("hearth fence-guard: {e}");
                }
            }
            Err(e) => eprintln!("hearth fence-guard: {e}"),
        }
    });
}

/// `hearth fence-guard`: reads deadlines from stdin and fences as described in the module
/// documentation. Returns when stdin closes (after fencing).
pub fn run_guard() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (tx, rx) = mpsc::channel::<u64>();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            let Ok(ns) = line.trim().parse::<u64>() else {
                continue;
            };
            if tx.send(ns).is_err() {
                break;
            }
        }
    });
    let mut deadline: u64 = 0;
    let mut fenced = false;
    loop {
        let now = monotonic_ns();
        let wait = if deadline > now {
            Duration::from_nanos(deadline - now)
        } else {
            if !fenced {
                fence(&runtime);
                fenced = true;
            }
            Duration::from_secs(3600)
        };
        match rx.recv_timeout(wait) {
            Ok(ns) => {
                deadline = ns;
                if deadline > monotonic_ns() {
                    fenced = false;
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                fence(&runtime);
                return Ok(());
            }
        }
    }
}
