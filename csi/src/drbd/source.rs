//! Where the node side gets DRBD state from: the [`DrbdStatusSource`] trait and its
//! implementations.
//!
//! This module owns running `drbdsetup status --json` (found by absolute path, killed on
//! timeout and when the agent dies) and the two stand-ins: [`WatchedStatus`] over the events2
//! follower and [`FakeStatus`] for tests. It must not run any drbdsetup verb but `status`
//! (`events2` is `follow.rs`'s) and must not parse (that is `status_json`).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;
use std::time::Duration;

use tokio::process::Command;
use tokio::sync::watch;

use super::{status_json, DrbdError, DrbdState};

/// The directories searched for drbdsetup, in order. The agent's PATH is not trusted.
pub use crate::host::child::TOOL_DIRS;

/// How long `drbdsetup status --json` may run before it is killed.
const STATUS_TIMEOUT: Duration = Duration::from_secs(10);

/// Reads the current DRBD state of this node.
#[async_trait::async_trait]
pub trait DrbdStatusSource: Send + Sync {
    /// The state now: every resource with its devices, connections and peer devices.
    async fn status(&self) -> Result<DrbdState, DrbdError>;
}

/// Finds drbdsetup in [`TOOL_DIRS`].
pub fn find_drbdsetup() -> Result<PathBuf, DrbdError> {
    find_tool_in("drbdsetup", &TOOL_DIRS.map(Path::new))
}

/// Finds the executable `name` in `dirs`, the first match winning.
pub fn find_tool_in(name: &str, dirs: &[&Path]) -> Result<PathBuf, DrbdError> {
    crate::host::child::find_in(name, dirs).ok_or_else(|| DrbdError::ToolMissing {
        searched: dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
    })
}

/// The real source: runs `drbdsetup status --json` on every call.
#[derive(Debug, Clone)]
pub struct DrbdsetupStatus {
    tool: PathBuf,
    timeout: Duration,
}

impl DrbdsetupStatus {
    /// Uses drbdsetup at `tool` (an absolute path).
    pub fn new(tool: impl Into<PathBuf>) -> Self {
        Self {
            tool: tool.into(),
            timeout: STATUS_TIMEOUT,
        }
    }

    /// Finds drbdsetup in [`TOOL_DIRS`]; [`DrbdError::ToolMissing`] when it is not there.
    pub fn locate() -> Result<Self, DrbdError> {
        find_drbdsetup().map(Self::new)
    }

    /// Sets how long one call may run before drbdsetup is killed.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The drbdsetup this source runs.
    pub fn tool(&self) -> &Path {
        &self.tool
    }
}

#[async_trait::async_trait]
impl DrbdStatusSource for DrbdsetupStatus {
    async fn status(&self) -> Result<DrbdState, DrbdError> {
        const ARGS: [&str; 2] = ["status", "--json"];
        let mut command = tool_command(&self.tool, &ARGS);
        command.stdout(Stdio::piped()).stderr(Stdio::piped());
        let child = command.spawn().map_err(|e| spawn_error(&self.tool, e))?;
        // On timeout the child is dropped, and `kill_on_drop` kills it.
        let output = tokio::time::timeout(self.timeout, child.wait_with_output())
            .await
            .map_err(|_| DrbdError::Timeout {
                tool: self.tool.clone(),
                args: ARGS.join(" "),
                after: self.timeout,
            })?
            .map_err(|source| DrbdError::ReadOutput {
                tool: self.tool.clone(),
                args: ARGS.join(" "),
                source,
            })?;
        if !output.status.success() {
            return Err(DrbdError::Run {
                tool: self.tool.clone(),
                args: ARGS.join(" "),
                outcome: describe_exit(output.status),
                stderr: tail(&output.stderr),
            });
        }
        status_json::parse(&String::from_utf8_lossy(&output.stdout)).map_err(|source| {
            DrbdError::ParseStatus {
                tool: self.tool.clone(),
                source,
            }
        })
    }
}

/// The source over an events2 follower: the followed state, when it is complete.
#[derive(Debug, Clone)]
pub struct WatchedStatus {
    state: watch::Receiver<DrbdState>,
}

impl WatchedStatus {
    /// Reads the state `state` publishes (see [`super::follow_events2`]).
    pub fn new(state: watch::Receiver<DrbdState>) -> Self {
        Self { state }
    }
}

#[async_trait::async_trait]
impl DrbdStatusSource for WatchedStatus {
    async fn status(&self) -> Result<DrbdState, DrbdError> {
        let state = self.state.borrow();
        if state.complete {
            Ok(state.clone())
        } else {
            Err(DrbdError::NotSynced)
        }
    }
}

/// A fake source for tests of the node side: returns what it was given last.
#[derive(Debug, Default)]
pub struct FakeStatus {
    state: Mutex<DrbdState>,
}

impl FakeStatus {
    /// A fake that returns `state`.
    pub fn new(state: DrbdState) -> Self {
        Self {
            state: Mutex::new(state),
        }
    }

    /// Replaces the state the fake returns.
    pub fn set(&self, state: DrbdState) {
        *self.state.lock().unwrap_or_else(|e| e.into_inner()) = state;
    }
}

#[async_trait::async_trait]
impl DrbdStatusSource for FakeStatus {
    async fn status(&self) -> Result<DrbdState, DrbdError> {
        Ok(self.state.lock().unwrap_or_else(|e| e.into_inner()).clone())
    }
}

/// A drbdsetup command: stdin from /dev/null, killed when dropped, and SIGKILLed by the kernel
/// if the agent dies first. Stdout and stderr are left to the caller.
pub(super) fn tool_command(tool: &Path, args: &[&str]) -> Command {
    let mut command = crate::host::child::async_command(tool);
    command.args(args).stdin(Stdio::null());
    command
}

/// Maps a spawn failure: a missing file is [`DrbdError::ToolMissing`].
pub(super) fn spawn_error(tool: &Path, source: std::io::Error) -> DrbdError {
    if source.kind() == std::io::ErrorKind::NotFound {
        DrbdError::ToolMissing {
            searched: tool.display().to_string(),
        }
    } else {
        DrbdError::Spawn {
            tool: tool.to_owned(),
            source,
        }
    }
}

/// `exited with 10` or `was killed by signal 9`.
pub(super) fn describe_exit(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        (None, None) => "failed".to_owned(),
    }
}

/// The last 1 KiB of a tool's stderr, trimmed, for an error message.
pub(super) fn tail(bytes: &[u8]) -> String {
    const MAX: usize = 1024;
    let start = bytes.len().saturating_sub(MAX);
    String::from_utf8_lossy(bytes.get(start..).unwrap_or_default())
        .trim()
        .to_owned()
}

#[cfg(test)]
#[path = "source_tests.rs"]
mod tests;
