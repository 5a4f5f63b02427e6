//! The Kubernetes CSI conformance suite (kubernetes-csi/csi-test's `csi-sanity`), run unmodified
//! against a Hearth socket, with its results read from ginkgo's JSON report.
//!
//! Backend-agnostic: the caller starts `hearth dev` with whatever backend it tests and passes
//! the socket and the kubelet directory; staging and target paths are created below that
//! directory, where Hearth accepts them. Specs that need what the machine lacks are skipped by
//! name, each with its reason printed.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The csi-sanity version `tests/run` installs (the first tag that knows CSI 1.11's
/// GET_SNAPSHOT capability; v5.4.0 fails ControllerGetCapabilities on drivers that report it).
pub const VERSION: &str = "v5.6.0";

/// The csi-sanity binary: `$HEARTH_CSI_SANITY`, or `target/go-bin/csi-sanity` where `tests/run`
/// installs it. None (after printing why) when it is missing; under `CI=true` that fails.
pub fn binary(test: &str) -> Option<PathBuf> {
    let path = std::env::var_os("HEARTH_CSI_SANITY")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/go-bin/csi-sanity")
        });
    if path.is_file() {
        return Some(path);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{test}: csi-sanity is not installed at {} and CI=true forbids skipping; \
         install it with `GOBIN=$PWD/target/go-bin go install \
         github.com/kubernetes-csi/csi-test/v5/cmd/csi-sanity@{VERSION}` (tests/run does)",
        path.display()
    );
    eprintln!(
        "skipping {test}: csi-sanity is not installed at {} (tests/run installs it)",
        path.display()
    );
    None
}

/// How the volumes of a run are used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessType {
    /// A mounted filesystem.
    Mount,
    /// A raw block device.
    Block,
}

/// One csi-sanity run.
#[derive(Debug, Clone)]
pub struct Run<'a> {
    /// The CSI socket (Identity, Controller and Node).
    pub socket: &'a Path,
    /// The kubelet directory the node accepts paths under.
    pub kubelet_dir: &'a Path,
    /// Mount or block.
    pub access: AccessType,
    /// StorageClass parameters for the volumes it creates.
    pub parameters: Vec<(&'a str, &'a str)>,
    /// Size of the volumes it creates, in bytes.
    pub volume_size: u64,
    /// Specs to skip: a regular expression on the spec's full text, and the reason.
    pub skip: Vec<(&'a str, String)>,
    /// Where the report and the parameter file go.
    pub work_dir: &'a Path,
}

/// What a run found.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Specs that passed.
    pub passed: usize,
    /// Specs skipped (by the suite for missing capabilities, or by [`Run::skip`]).
    pub skipped: usize,
    /// Failed specs: full text, then the failure message and location.
    pub failed: Vec<(String, String)>,
    /// csi-sanity's combined output, for the log.
    pub output: String,
}

impl Outcome {
    /// A human summary: counts, then each failed spec with its message.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "{} passed, {} failed, {} skipped",
            self.passed,
            self.failed.len(),
            self.skipped
        );
        for (spec, message) in &self.failed {
            s.push_str(&format!(
                "\nFAILED: {spec}\n    {}",
                message.replace('\n', "\n    ")
            ));
        }
        s
    }
}

impl Run<'_> {
    /// Runs csi-sanity (`bin`) to the end and reads its report.
    pub fn run(&self, bin: &Path) -> Outcome {
        let tag = match self.access {
            AccessType::Mount => "mount",
            AccessType::Block => "block",
        };
        let report = self.work_dir.join(format!("csi-sanity-{tag}.json"));
        let params = self
            .work_dir
            .join(format!("csi-sanity-{tag}-parameters.yaml"));
        let yaml: String = self
            .parameters
            .iter()
            .map(|(k, v)| format!("{k:?}: {v:?}\n"))
            .collect();
        std::fs::write(&params, yaml).expect("writing the parameter file");
        let staging = self.kubelet_dir.join(format!("sanity-{tag}-staging"));
        let target = self.kubelet_dir.join(format!("sanity-{tag}-target"));
        let mut cmd = Command::new(bin);
        cmd.arg(format!("--csi.endpoint=unix://{}", self.socket.display()))
            .arg(format!("--csi.stagingdir={}", staging.display()))
            .arg(format!("--csi.mountdir={}", target.display()))
            .arg(format!("--csi.testvolumeaccesstype={tag}"))
            .arg(format!("--csi.testvolumesize={}", self.volume_size))
            .arg(format!(
                "--csi.testvolumeexpandsize={}",
                2 * self.volume_size
            ))
            .arg(format!("--csi.testvolumeparameters={}", params.display()))
            .arg(format!("--ginkgo.json-report={}", report.display()))
            .arg("--ginkgo.no-color")
            .arg("--ginkgo.timeout=20m");
        for (pattern, reason) in &self.skip {
            eprintln!("csi-sanity ({tag}): skipping specs matching {pattern:?}: {reason}");
            cmd.arg(format!("--ginkgo.skip={pattern}"));
        }
        let out = cmd.output().expect("running csi-sanity");
        let output = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let mut outcome = read_report(&report).unwrap_or_else(|e| {
            panic!(
                "csi-sanity left no readable report ({e}); exit {}:\n{output}",
                out.status
            )
        });
        if !out.status.success() && outcome.failed.is_empty() {
            outcome.failed.push((
                "csi-sanity itself".into(),
                format!("exited with {} and reported no failed spec", out.status),
            ));
        }
        outcome.output = output;
        outcome
    }
}

/// Reads ginkgo's JSON report: an array of suites, each with its `SpecReports`.
fn read_report(path: &Path) -> Result<Outcome, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let suites: serde_json::Value = serde_json::from_str(&text).map_err(|e| e.to_string())?;
    let mut outcome = Outcome::default();
    for spec in suites
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["SpecReports"].as_array())
        .flatten()
    {
        if spec["LeafNodeType"].as_str() != Some("It") {
            // Suite-level setup nodes: their failures show as failed specs' causes.
            if spec["State"].as_str().is_some_and(|s| s != "passed") {
                outcome
                    .failed
                    .push((node_text(spec), failure_message(spec)));
            }
            continue;
        }
        match spec["State"].as_str() {
            Some("passed") => outcome.passed += 1,
            Some("skipped" | "pending") => outcome.skipped += 1,
            _ => outcome
                .failed
                .push((node_text(spec), failure_message(spec))),
        }
    }
    Ok(outcome)
}

fn node_text(spec: &serde_json::Value) -> String {
    let mut parts: Vec<&str> = spec["ContainerHierarchyTexts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t.as_str())
        .collect();
    parts.extend(spec["LeafNodeText"].as_str());
    if parts.is_empty() {
        parts.extend(spec["LeafNodeType"].as_str());
    }
    parts.join(" ")
}

fn failure_message(spec: &serde_json::Value) -> String {
    let f = &spec["Failure"];
    format!(
        "{} ({}:{})",
        f["Message"].as_str().unwrap_or("no message"),
        f["Location"]["FileName"].as_str().unwrap_or("?"),
        f["Location"]["LineNumber"].as_u64().unwrap_or(0)
    )
}

/// True when this process has `CAP_SYS_RESOURCE` (growing a mounted ext4 needs it).
pub fn has_cap_sys_resource() -> bool {
    const CAP_SYS_RESOURCE: u32 = 24;
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapEff:"))
                .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        })
        .is_some_and(|caps| caps & (1 << CAP_SYS_RESOURCE) != 0)
}
