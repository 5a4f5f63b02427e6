//! Follows `drbdsetup events2 --statistics` and keeps a [`DrbdState`] current.
//!
//! This module owns the follower task: it runs drbdsetup, applies each line to the state, and
//! publishes the state through a `tokio::sync::watch` channel once the initial dump is in. When
//! drbdsetup exits it marks the state incomplete and starts it again after a backoff. It must
//! not run any other drbdsetup verb and must not interpret the state.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::source::{describe_exit, spawn_error, tail, tool_command, WatchedStatus};
use super::{events2, DrbdError, DrbdState};

/// The arguments: without `--now`, drbdsetup prints the current state, `exists -`, and then
/// every change until it is killed.
const ARGS: [&str; 2] = ["events2", "--statistics"];
/// Longer lines are cut (and then fail to parse or lose fields); drbdsetup's are ~300 bytes.
const MAX_LINE: usize = 64 * 1024;
/// At most one warning about unparsable lines per this interval.
const WARN_INTERVAL: Duration = Duration::from_secs(30);

/// How to run the follower.
#[derive(Debug, Clone)]
pub struct FollowConfig {
    /// drbdsetup, by absolute path (see [`super::find_drbdsetup`]).
    pub tool: PathBuf,
    /// The first wait before restarting drbdsetup; doubled after each quick failure.
    pub min_backoff: Duration,
    /// The longest wait; a run that lasted this long resets the wait to `min_backoff`.
    pub max_backoff: Duration,
}

impl FollowConfig {
    /// Follows with `tool`, backing off from 1 s to 30 s.
    pub fn new(tool: impl Into<PathBuf>) -> Self {
        Self {
            tool: tool.into(),
            min_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(30),
        }
    }
}

/// A running follower. Dropping it stops the task and kills drbdsetup.
#[derive(Debug)]
pub struct Events2Follower {
    state: watch::Receiver<DrbdState>,
    task: JoinHandle<()>,
}

impl Events2Follower {
    /// A receiver of the followed state; `complete` is false until the first dump is in and
    /// while drbdsetup is being restarted.
    pub fn subscribe(&self) -> watch::Receiver<DrbdState> {
        self.state.clone()
    }

    /// A [`super::DrbdStatusSource`] over the followed state.
    pub fn source(&self) -> WatchedStatus {
        WatchedStatus::new(self.subscribe())
    }
}

impl Drop for Events2Follower {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts following drbdsetup events2 on the current tokio runtime.
pub fn follow_events2(config: FollowConfig) -> Events2Follower {
    let (tx, state) = watch::channel(DrbdState::default());
    let task = tokio::spawn(follow(config, tx));
    Events2Follower { state, task }
}

async fn follow(config: FollowConfig, tx: watch::Sender<DrbdState>) {
    let mut backoff = config.min_backoff;
    loop {
        let started = Instant::now();
        match run_once(&config, &tx).await {
            Ok(outcome) => {
                tracing::warn!(tool = %config.tool.display(), "drbdsetup events2 {outcome}")
            }
            Err(error) => tracing::warn!(%error, "following drbdsetup events2 failed"),
        }
        tx.send_if_modified(|state| std::mem::replace(&mut state.complete, false));
        if started.elapsed() >= config.max_backoff {
            backoff = config.min_backoff;
        }
        tokio::time::sleep(backoff).await;
        backoff = backoff.saturating_mul(2).min(config.max_backoff);
    }
}

/// Runs drbdsetup once until it exits; returns how it exited.
async fn run_once(
    config: &FollowConfig,
    tx: &watch::Sender<DrbdState>,
) -> Result<String, DrbdError> {
    let mut command = tool_command(&config.tool, &ARGS);
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command.spawn().map_err(|e| spawn_error(&config.tool, e))?;
    let read_error = |source| DrbdError::ReadOutput {
        tool: config.tool.clone(),
        args: ARGS.join(" "),
        source,
    };
    let stderr_task = child.stderr.take().map(|stderr| {
        tokio::spawn(async move {
            let mut buf = Vec::new();
            // Bounded: drbdsetup's complaints are short; anything past 64 KiB is dropped.
            let _ = stderr.take(MAX_LINE as u64).read_to_end(&mut buf).await;
            buf
        })
    });
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| read_error(std::io::Error::other("stdout was not captured")))?;
    let mut reader = BufReader::new(stdout);
    let mut pending = Some(DrbdState::default());
    let mut limiter = WarnLimiter::default();
    let mut buf = Vec::new();
    let mut number = 0;
    while read_line_bounded(&mut reader, &mut buf, MAX_LINE)
        .await
        .map_err(read_error)?
    {
        number += 1;
        let text = String::from_utf8_lossy(&buf);
        let line = match events2::parse_line(number, &text) {
            Ok(line) => line,
            Err(error) => {
                if let Some(suppressed) = limiter.allow() {
                    tracing::warn!(%error, suppressed, "skipping an events2 line");
                }
                continue;
            }
        };
        match pending.as_mut() {
            Some(state) => {
                state.apply(&line);
                if state.complete {
                    if let Some(state) = pending.take() {
                        tx.send_replace(state);
                    }
                }
            }
            None => tx.send_modify(|state| state.apply(&line)),
        }
    }
    let status = child.wait().await.map_err(read_error)?;
    let stderr = match stderr_task {
        Some(task) => task.await.unwrap_or_default(),
        None => Vec::new(),
    };
    let stderr = tail(&stderr);
    Ok(if stderr.is_empty() {
        describe_exit(status)
    } else {
        format!("{}: {stderr}", describe_exit(status))
    })
}

/// Reads one line (without its `\n`) into `buf`, keeping at most `max` bytes of it. Returns
/// false at the end of input.
async fn read_line_bounded<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<bool> {
    buf.clear();
    let mut read_any = false;
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(read_any);
        }
        read_any = true;
        let newline = available.iter().position(|&b| b == b'\n');
        let chunk = available
            .get(..newline.unwrap_or(available.len()))
            .unwrap_or_default();
        let room = max.saturating_sub(buf.len());
        buf.extend_from_slice(chunk.get(..chunk.len().min(room)).unwrap_or_default());
        let used = newline.map_or(available.len(), |at| at + 1);
        reader.consume(used);
        if newline.is_some() {
            return Ok(true);
        }
    }
}

/// Lets one warning through per [`WARN_INTERVAL`] and counts the others.
#[derive(Debug, Default)]
struct WarnLimiter {
    last: Option<Instant>,
    suppressed: u64,
}

impl WarnLimiter {
    /// `Some(count suppressed since the last warning)` when a warning may be logged now.
    fn allow(&mut self) -> Option<u64> {
        let now = Instant::now();
        match self.last {
            Some(last) if now.duration_since(last) < WARN_INTERVAL => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

#[cfg(test)]
#[path = "follow_tests.rs"]
mod tests;
