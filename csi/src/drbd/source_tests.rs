use super::*;
use crate::drbd::test_support::{fake_tool, text_busy, STATUS_RECENT};

/// Calls `status`, retrying the ETXTBSY a freshly written script can give.
async fn status_of(source: &DrbdsetupStatus) -> Result<DrbdState, DrbdError> {
    for _ in 0..20 {
        match source.status().await {
            Err(error) if text_busy(&error) => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            other => return other,
        }
    }
    source.status().await
}

#[tokio::test]
async fn runs_status_json_and_parses_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fixture = dir.path().join("status.json");
    std::fs::write(&fixture, STATUS_RECENT).expect("write fixture");
    let tool = fake_tool(
        dir.path(),
        &format!(
            "[ \"$*\" = \"status --json\" ] || {{ echo \"bad args: $*\" >&2; exit 3; }}\ncat '{}'",
            fixture.display()
        ),
    );
    let state = status_of(&DrbdsetupStatus::new(&tool))
        .await
        .expect("status");
    assert!(state.complete);
    assert_eq!(
        state.device_by_minor(1001).map(|d| d.resource.as_str()),
        Some("pvc-bbb")
    );
}

#[tokio::test]
async fn failures_carry_exit_status_and_stderr() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tool = fake_tool(
        dir.path(),
        "echo 'Could not connect to drbd netlink' >&2\nexit 20",
    );
    let error = status_of(&DrbdsetupStatus::new(&tool))
        .await
        .expect_err("fails");
    assert!(matches!(error, DrbdError::Run { .. }), "{error:?}");
    let message = error.to_string();
    assert!(
        message.contains("status --json exited with 20"),
        "{message}"
    );
    assert!(
        message.contains("Could not connect to drbd netlink"),
        "{message}"
    );
}

#[tokio::test]
async fn garbage_output_is_a_parse_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tool = fake_tool(dir.path(), "echo 'not json'");
    let error = status_of(&DrbdsetupStatus::new(&tool))
        .await
        .expect_err("fails");
    assert!(matches!(error, DrbdError::ParseStatus { .. }), "{error:?}");
}

#[tokio::test]
async fn a_hanging_tool_is_killed_at_the_timeout() {
    let dir = tempfile::tempdir().expect("tempdir");
    let tool = fake_tool(dir.path(), "exec sleep 30");
    let source = DrbdsetupStatus::new(&tool).with_timeout(Duration::from_millis(200));
    let started = std::time::Instant::now();
    let error = status_of(&source).await.expect_err("times out");
    assert!(matches!(error, DrbdError::Timeout { .. }), "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn a_missing_tool_is_tool_missing() {
    let error = DrbdsetupStatus::new("/nonexistent/drbdsetup")
        .status()
        .await
        .expect_err("missing");
    assert!(matches!(error, DrbdError::ToolMissing { .. }), "{error:?}");
    assert!(error.to_string().contains("install drbd-utils"), "{error}");
}

#[test]
fn finds_tools_only_when_executable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (empty, full) = (dir.path().join("empty"), dir.path().join("full"));
    std::fs::create_dir_all(&empty).expect("mkdir");
    std::fs::create_dir_all(&full).expect("mkdir");
    let tool = fake_tool(&full, "exit 0");
    std::fs::write(empty.join("drbdsetup"), "not executable").expect("write");
    let found = find_tool_in("drbdsetup", &[empty.as_path(), full.as_path()]).expect("found");
    assert_eq!(found, tool);
    let error = find_tool_in("drbdsetup", &[empty.as_path()]).expect_err("not executable");
    let DrbdError::ToolMissing { searched } = &error else {
        panic!("{error:?}");
    };
    assert_eq!(searched, &empty.display().to_string());
}

#[tokio::test]
async fn fake_and_watched_sources() {
    let fake = FakeStatus::default();
    assert!(fake.status().await.expect("fake").resources.is_empty());
    let state = crate::drbd::status_json::parse(STATUS_RECENT).expect("parses");
    fake.set(state.clone());
    assert_eq!(fake.status().await.expect("fake"), state);

    let (tx, rx) = watch::channel(DrbdState::default());
    let watched = WatchedStatus::new(rx);
    assert!(matches!(watched.status().await, Err(DrbdError::NotSynced)));
    tx.send_replace(state.clone());
    assert_eq!(watched.status().await.expect("complete"), state);
}

#[test]
fn tail_keeps_the_end() {
    let long = "x".repeat(5000) + "the end\n";
    let tail = tail(long.as_bytes());
    assert!(
        tail.ends_with("the end") && tail.len() == 1024 - 1,
        "{}",
        tail.len()
    );
}
