//! Fixtures shared by the drbd tests: the composed files in `testdata/`, and the reference
//! samples in `../shared/reference/samples/` when that checkout is present.

use std::path::PathBuf;

/// `drbdsetup events2 --now --statistics` on node-a: five resources in different states.
pub(crate) const EVENTS2_NOW: &str = include_str!("testdata/events2-now-statistics.txt");
/// A streamed events2 log with timestamps: create, change, resync, rename, destroy, helpers.
pub(crate) const EVENTS2_STREAM: &str = include_str!("testdata/events2-stream.txt");
/// `drbdsetup status --json` in the DRBD 9.0 shape.
pub(crate) const STATUS_DRBD90: &str = include_str!("testdata/status-drbd90.json");
/// `drbdsetup status --json` in the recent 9.x shape, with resync details.
pub(crate) const STATUS_RECENT: &str = include_str!("testdata/status-drbd9-recent.json");

/// The reference samples whose file name starts with `prefix`, or `None` (after printing why)
/// when the shared reference checkout is not next to the workspace.
pub(crate) fn reference_samples(prefix: &str) -> Option<Vec<(PathBuf, String)>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/reference/samples");
    let Ok(entries) = std::fs::read_dir(&dir) else {
        println!("skipped: no reference samples at {}", dir.display());
        return None;
    };
    let mut samples: Vec<(PathBuf, String)> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with(prefix))
        })
        .filter_map(|path| std::fs::read_to_string(&path).ok().map(|text| (path, text)))
        .collect();
    samples.sort();
    if samples.is_empty() {
        println!(
            "skipped: no reference samples {prefix}* in {}",
            dir.display()
        );
        return None;
    }
    Some(samples)
}

/// Writes an executable `/bin/sh` script named `drbdsetup` into `dir` and returns its path.
pub(crate) fn fake_tool(dir: &std::path::Path, body: &str) -> PathBuf {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join("drbdsetup");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o755)
        .open(&path)
        .expect("create the fake drbdsetup");
    file.write_all(format!("#!/bin/sh\n{body}\n").as_bytes())
        .expect("write the fake drbdsetup");
    file.sync_all().expect("sync the fake drbdsetup");
    path
}

/// True for the error a spawn gets when another test thread forked while the script was
/// still open for writing (ETXTBSY): a test artefact, retried.
pub(crate) fn text_busy(error: &super::DrbdError) -> bool {
    matches!(error, super::DrbdError::Spawn { source, .. } if source.raw_os_error() == Some(libc::ETXTBSY))
}
