//! A Python venv under `target/` with the PyPI packages a test's client needs, made with pip
//! when missing. Without python3 or PyPI the test skips with the reason; under `CI=true` a skip
//! is a failure.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// One venv: where it lives, what it installs and the import that proves it works.
pub struct Venv<'a> {
    /// Names the test in skip messages ("grpcio test").
    pub what: &'a str,
    /// Environment variable that overrides the venv's directory.
    pub env: &'a str,
    /// Directory under the workspace's `target/` when `env` is unset.
    pub default_dir: &'a str,
    /// `pip install` arguments.
    pub packages: &'a [&'a str],
    /// Python statement that succeeds only with the packages importable.
    pub import: &'a str,
}

impl Venv<'_> {
    /// The venv's directory.
    pub fn dir(&self) -> PathBuf {
        std::env::var_os(self.env)
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("../target")
                    .join(self.default_dir)
            })
    }

    fn works(&self, python: &Path) -> bool {
        Command::new(python)
            .args(["-c", self.import])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    fn skip(&self, reason: &str) -> Option<PathBuf> {
        let what = self.what;
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{what}: {reason}, and CI=true forbids skipping"
        );
        eprintln!("skipping the {what}: {reason}");
        None
    }

    /// The venv's python with the packages, installing them when missing; `None` (after a
    /// printed reason) when that cannot be done here.
    pub fn python(&self) -> Option<PathBuf> {
        let venv = self.dir();
        let python = venv.join("bin/python");
        if self.works(&python) {
            return Some(python);
        }
        if !python.exists() {
            let made = Command::new("python3")
                .arg("-m")
                .arg("venv")
                .arg(&venv)
                .status();
            if !made.is_ok_and(|s| s.success()) {
                return self.skip("python3 with the venv module is not available");
            }
        }
        let pip = Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet"])
            .args(self.packages)
            .status();
        if !pip.is_ok_and(|s| s.success()) || !self.works(&python) {
            let packages = self.packages.join(" ");
            return self.skip(&format!(
                "pip install {packages} failed (PyPI unreachable?)"
            ));
        }
        Some(python)
    }
}
