//! [`SimProcess`]: the `linstor-sim` binary as a child of a test, which never outlives it.
//!
//! A test that fails (panics) must not leave its simulator running: the child holds the
//! test's stdout and stderr, so a surviving `linstor-sim` keeps `cargo test | tee` (and so
//! `tests/run`) waiting forever. The child is therefore
//! - stopped when the guard drops, on success and during a panic's unwinding: SIGTERM first,
//!   so it detaches its loop devices and removes its files, then SIGKILL after a grace time;
//! - killed by the kernel (`PR_SET_PDEATHSIG`) if the spawning thread dies without unwinding.
//!
//! Owns: that one child process, found by its PID only.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// How long a dropped simulator may take to clean up after SIGTERM before SIGKILL.
const GRACE: Duration = Duration::from_secs(10);

/// A running `linstor-sim` child; stopped on drop.
#[derive(Debug)]
pub struct SimProcess {
    child: Option<Child>,
    url: String,
}

impl SimProcess {
    /// Starts `bin` (the test's `env!("CARGO_BIN_EXE_linstor-sim")`) with `args`, and reads
    /// its URL from the first line it prints (`linstor-sim listening on URL`).
    pub fn spawn(bin: &Path, args: &[&str]) -> std::io::Result<Self> {
        let mut command = hearth_csi::host::child::command(bin, None);
        command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped());
        let mut guard = Self {
            child: Some(command.spawn()?),
            url: String::new(),
        };
        let stdout = guard
            .child
            .as_mut()
            .and_then(|c| c.stdout.take())
            .ok_or_else(|| std::io::Error::other("linstor-sim has no stdout"))?;
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        guard.url = line
            .trim()
            .rsplit(' ')
            .next()
            .unwrap_or_default()
            .to_owned();
        if !guard.url.starts_with("http") {
            return Err(std::io::Error::other(format!(
                "linstor-sim printed {line:?}, not its URL"
            )));
        }
        Ok(guard)
    }

    /// The simulator's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The child's PID.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Sends SIGTERM and waits for the exit (SIGKILL after the grace time).
    pub fn terminate(mut self) -> std::io::Result<ExitStatus> {
        self.stop()
    }

    fn stop(&mut self) -> std::io::Result<ExitStatus> {
        let Some(mut child) = self.child.take() else {
            return Err(std::io::Error::other("linstor-sim was already stopped"));
        };
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        let pid = Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX));
        // A failed SIGTERM (the child just exited) is settled by the wait below.
        let _ = kill(pid, Signal::SIGTERM);
        let deadline = Instant::now() + GRACE;
        loop {
            if let Some(status) = child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                child.kill()?;
                return child.wait();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for SimProcess {
    fn drop(&mut self) {
        if self.child.is_some() {
            if let Err(e) = self.stop() {
                eprintln!("linstor-sim: stopping the child: {e}");
            }
        }
    }
}
