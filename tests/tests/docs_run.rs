//! Docs that run: the shell blocks of `README.md` and `docs/` are executed as written, so a
//! doc that drifts from the code fails here. The convention (docs/doc-tests.md):
//!
//! - ```` ```sh ```` (or `bash`): run, in order, in one shell per file (variables carry over
//!   between a file's blocks, as in one terminal); the file fails on the first failing command.
//! - ```` ```sh background wait=PATH ````: started in the background (a server such as
//!   `hearth dev`); the next block starts once PATH exists; it is stopped at the end.
//! - ```` ```yaml file=NAME ````: written to NAME in the working directory before the blocks
//!   run.
//! - ```` ```sh no-run ````: shown, never run (needs a cluster, placeholders, a benchmark).
//!
//! Each file runs in a throwaway network namespace (`ip netns exec`, which also gives it its
//! own mount namespace) with a fresh working directory; `hearth` on `PATH` is the binary under
//! test; `/var/tmp/hearth` becomes a directory inside the working directory, and `cargo run
//! [-q] --release -p hearth-agent --` becomes `hearth`.
#![allow(clippy::tests_outside_test_module)] // an integration-test file is a test-only crate

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use hearth_tests::{hearth_bin, root_or_skip, tool_or_skip};

/// One fenced block.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Block {
    line: usize,
    lang: String,
    attrs: Vec<String>,
    body: String,
}

impl Block {
    fn attr(&self, key: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find_map(|a| a.strip_prefix(key)?.strip_prefix('='))
    }

    fn has(&self, flag: &str) -> bool {
        self.attrs.iter().any(|a| a == flag)
    }

    fn is_shell(&self) -> bool {
        matches!(self.lang.as_str(), "sh" | "bash")
    }
}

/// The fenced blocks of a Markdown text (fences may be indented, as in list items).
fn blocks(text: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut open: Option<(Block, usize)> = None;
    for (i, raw) in text.lines().enumerate() {
        let indent = raw.len() - raw.trim_start().len();
        let line = raw.trim_start();
        match &mut open {
            None => {
                if let Some(info) = line.strip_prefix("```") {
                    let mut words = info.split_whitespace().map(str::to_owned);
                    let lang = words.next().unwrap_or_default();
                    let block = Block {
                        line: i + 1,
                        lang,
                        attrs: words.collect(),
                        body: String::new(),
                    };
                    open = Some((block, indent));
                }
            }
            Some((block, ind)) => {
                if line.starts_with("```") {
                    if let Some((b, _)) = open.take() {
                        out.push(b);
                    }
                } else {
                    let cut = raw.len().min(*ind).min(indent);
                    block.body.push_str(&raw[cut..]);
                    block.body.push('\n');
                }
            }
        }
    }
    out
}

fn sandboxed(text: &str, work: &Path) -> String {
    text.replace("cargo run -q --release -p hearth-agent --", "hearth")
        .replace("cargo run --release -p hearth-agent --", "hearth")
        .replace("/var/tmp/hearth", &format!("{}/hearth", work.display()))
}

/// The script that runs `file`'s blocks, or `None` when nothing in it runs.
fn script(file: &str, blocks: &[Block], work: &Path) -> Option<String> {
    let mut s = String::from(
        "set -euo pipefail\nip link set lo up\n\
         trap 'for p in $(jobs -p); do kill $p 2>/dev/null || true; done; wait' EXIT\n",
    );
    let mut runs = false;
    for (n, b) in blocks.iter().enumerate() {
        if let (Some(name), false) = (b.attr("file"), b.is_shell()) {
            std::fs::write(work.join(name), sandboxed(&b.body, work)).expect("doc file");
            continue;
        }
        if !b.is_shell() || b.has("no-run") {
            continue;
        }
        runs = true;
        let body = sandboxed(&b.body, work);
        let _ = writeln!(s, "echo '### {file}:{}' >&2", b.line);
        if b.has("background") {
            let log = work.join(format!("background-{n}.log"));
            let _ = writeln!(s, "( {body}\n) >{} 2>&1 &", log.display());
            if let Some(wait) = b.attr("wait") {
                let wait = sandboxed(wait, work);
                let _ = writeln!(
                    s,
                    "for _ in $(seq 600); do [ -e {wait} ] && break; sleep 0.05; done\n\
                     [ -e {wait} ] || {{ echo '{wait} never appeared' >&2; cat {} >&2; exit 1; }}",
                    log.display()
                );
            }
        } else {
            s.push_str(&body);
        }
    }
    runs.then_some(s)
}

fn doc_files() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = vec![root.join("README.md")];
    let mut dirs = vec![root.join("docs")];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).expect("docs dir").flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "md") {
                files.push(p);
            }
        }
    }
    files.sort();
    files
}

#[test]
fn fences_parse_with_their_attributes() {
    let md =
        "x\n```sh background wait=/a/b\nhearth dev\n```\n  ```yaml file=f.yaml\n  a: 1\n  ```\n";
    let b = blocks(md);
    assert_eq!(b.len(), 2);
    assert!(b[0].has("background"));
    assert_eq!(b[0].attr("wait"), Some("/a/b"));
    assert_eq!(b[0].body, "hearth dev\n");
    assert_eq!(b[1].attr("file"), Some("f.yaml"));
    assert_eq!(b[1].body, "a: 1\n");
}

#[test]
fn every_shell_block_of_the_docs_runs_or_says_no_run() {
    let test = "every_shell_block_of_the_docs_runs";
    if !root_or_skip(test) || !tool_or_skip(test, "ip") || !tool_or_skip(test, "mkfs.xfs") {
        return;
    }
    let bin_dir = hearth_bin()
        .parent()
        .expect("hearth's directory")
        .to_owned();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut ran = Vec::new();
    for file in doc_files() {
        let text = std::fs::read_to_string(&file).expect("doc");
        let name = file
            .strip_prefix(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
            .unwrap_or(&file)
            .display()
            .to_string();
        let work = tempfile::tempdir().expect("work dir");
        let Some(script) = script(&name, &blocks(&text), work.path()) else {
            continue;
        };
        let ns = hearth_tests::netns::NetNs::new("doc");
        let out = ns
            .command("timeout")
            .args(["300", "bash", "-c", &script])
            .current_dir(work.path())
            .env("PATH", &path)
            .env("HOME", work.path())
            .output()
            .expect("running the doc's blocks");
        let err = String::from_utf8_lossy(&out.stderr);
        for dev in hearth_tests::loop_devices_under(work.path()) {
            let _ = Command::new("losetup").args(["-d", &dev]).status();
        }
        assert!(
            out.status.success(),
            "{name}: a block failed (the last ### line names it):\n--- stdout\n{}\n--- stderr\n{err}",
            String::from_utf8_lossy(&out.stdout)
        );
        ran.push(name);
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        ran.iter().any(|f| f == "README.md"),
        "the README's blocks ran: {ran:?}"
    );
    println!("docs run: {ran:?}");
}
