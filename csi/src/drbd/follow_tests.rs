use std::path::Path;

use super::*;
use crate::drbd::kinds::{ReplicationState, Role};
use crate::drbd::test_support::{fake_tool, EVENTS2_NOW};
use crate::drbd::DrbdStatusSource;

const WAIT: Duration = Duration::from_secs(10);

fn quick(tool: &Path) -> FollowConfig {
    FollowConfig {
        tool: tool.to_owned(),
        min_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(100),
    }
}

/// A fake drbdsetup that checks its arguments, prints the node-a dump, then `then`.
fn fake_events2(dir: &Path, then: &str) -> PathBuf {
    let fixture = dir.join("events2.txt");
    std::fs::write(&fixture, EVENTS2_NOW).expect("write fixture");
    fake_tool(
        dir,
        &format!(
            "[ \"$*\" = \"events2 --statistics\" ] || {{ echo \"bad args: $*\" >&2; exit 3; }}\n\
             echo run >> '{runs}'\n\
             cat '{fixture}'\n{then}",
            runs = dir.join("runs").display(),
            fixture = fixture.display(),
        ),
    )
}

async fn wait_for(
    rx: &mut watch::Receiver<DrbdState>,
    what: &str,
    check: impl FnMut(&DrbdState) -> bool,
) {
    match tokio::time::timeout(WAIT, rx.wait_for(check)).await {
        Ok(Ok(_)) => {}
        other => panic!("waiting for {what}: {other:?}"),
    }
}

#[tokio::test]
async fn follows_the_dump_and_later_changes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tool = fake_events2(
        dir.path(),
        "sleep 0.3\n\
         echo 'change resource name:pvc-bbb role:Primary'\n\
         echo 'this line is garbage'\n\
         echo 'change peer-device name:pvc-bbb peer-node-id:1 volume:0 replication:Established out-of-sync:0'\n\
         exec sleep 30",
    );
    let follower = follow_events2(quick(&tool));
    let mut rx = follower.subscribe();
    wait_for(&mut rx, "the dump", |s| s.complete).await;
    assert_eq!(rx.borrow().resources.len(), 5);
    assert!(follower.source().status().await.is_ok());
    wait_for(&mut rx, "the changes", |s| {
        let bbb = &s.resources["pvc-bbb"];
        bbb.role == Role::Primary
            && bbb.connections[&1].peer_devices[&0].replication == ReplicationState::Established
    })
    .await;
    assert!(rx.borrow().complete);
}

#[tokio::test]
async fn restarts_drbdsetup_when_it_exits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tool = fake_events2(dir.path(), "exit 1");
    let follower = follow_events2(quick(&tool));
    let mut rx = follower.subscribe();
    wait_for(&mut rx, "a dump", |s| s.complete).await;
    let runs = dir.path().join("runs");
    let deadline = Instant::now() + WAIT;
    while std::fs::read_to_string(&runs)
        .unwrap_or_default()
        .lines()
        .count()
        < 3
    {
        assert!(Instant::now() < deadline, "drbdsetup was not restarted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(follower);
}

#[tokio::test]
async fn a_missing_tool_never_completes() {
    let follower = follow_events2(quick(Path::new("/nonexistent/drbdsetup")));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!follower.subscribe().borrow().complete);
    assert!(matches!(
        follower.source().status().await,
        Err(DrbdError::NotSynced)
    ));
}

#[tokio::test]
async fn dropping_the_follower_kills_drbdsetup() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pid_file = dir.path().join("pid");
    let tool = fake_events2(
        dir.path(),
        &format!("echo $$ > '{}'\nexec sleep 30", pid_file.display()),
    );
    let follower = follow_events2(quick(&tool));
    let mut rx = follower.subscribe();
    wait_for(&mut rx, "the dump", |s| s.complete).await;
    // The script writes its pid after the dump, so it may not be there yet.
    let deadline = Instant::now() + WAIT;
    let pid = loop {
        match std::fs::read_to_string(&pid_file) {
            Ok(pid) if pid.ends_with('\n') => break pid,
            _ => assert!(Instant::now() < deadline, "no pid file"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let stat = format!("/proc/{}/stat", pid.trim());
    drop(follower);
    loop {
        match std::fs::read_to_string(&stat) {
            // Gone, or killed and not yet reaped (state Z).
            Err(_) => break,
            Ok(text)
                if text
                    .rsplit(')')
                    .next()
                    .is_some_and(|s| s.trim_start().starts_with('Z')) =>
            {
                break
            }
            Ok(_) => {}
        }
        assert!(Instant::now() < deadline, "drbdsetup still runs: {stat}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn lines_are_bounded() {
    let input = format!("short\n{}\nlast", "y".repeat(100));
    let mut reader = input.as_bytes();
    let mut buf = Vec::new();
    let mut lines = Vec::new();
    while read_line_bounded(&mut reader, &mut buf, 10)
        .await
        .expect("read")
    {
        lines.push(String::from_utf8_lossy(&buf).into_owned());
    }
    assert_eq!(lines, ["short", "yyyyyyyyyy", "last"]);
}

#[test]
fn warnings_are_rate_limited() {
    let mut limiter = WarnLimiter::default();
    assert_eq!(limiter.allow(), Some(0));
    assert_eq!(limiter.allow(), None);
    assert_eq!(limiter.allow(), None);
    limiter.last = Instant::now().checked_sub(WARN_INTERVAL);
    assert_eq!(limiter.allow(), Some(2));
}
