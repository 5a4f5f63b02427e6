//! The external filesystem tools: `blkid` to probe, `mkfs.ext4`/`mkfs.xfs` to format,
//! `resize2fs`/`xfs_growfs` to grow (with `e2fsck` first for an unmounted ext4), `xfs_io` for
//! a StorageClass's post-mount command.
//!
//! This module owns finding those tools (by absolute path, never through `PATH`), running them
//! (stdin from /dev/null, stderr captured, killed if the agent dies) and reading their answers.
//! It must not mount or unmount, and [`probe`] must never write to the device.

use std::fs::File;
use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use super::{FsType, MountError, Probe};

/// Where the tools are looked for, in order. `PATH` is not used: the agent's environment is not
/// trusted to point at the right binaries.
use crate::host::child::{self, TOOL_DIRS};

/// How much of a device must read as zeros for it to count as blank.
const BLANK_CHECK_BYTES: usize = 1 << 20;

/// A tool and the Debian package that ships it.
#[derive(Debug, Clone, Copy)]
struct Tool {
    /// The binary's file name.
    name: &'static str,
    /// The Debian package to install when it is missing.
    package: &'static str,
}

const BLKID: Tool = Tool {
    name: "blkid",
    package: "util-linux",
};
const MKFS_EXT4: Tool = Tool {
    name: "mkfs.ext4",
    package: "e2fsprogs",
};
const MKFS_XFS: Tool = Tool {
    name: "mkfs.xfs",
    package: "xfsprogs",
};
const RESIZE2FS: Tool = Tool {
    name: "resize2fs",
    package: "e2fsprogs",
};
const XFS_GROWFS: Tool = Tool {
    name: "xfs_growfs",
    package: "xfsprogs",
};
const E2FSCK: Tool = Tool {
    name: "e2fsck",
    package: "e2fsprogs",
};
const XFS_IO: Tool = Tool {
    name: "xfs_io",
    package: "xfsprogs",
};

/// Reads what `device` holds: blkid's low-level probe first, then, when blkid finds nothing,
/// the first MiB of the device, which must be all zeros for [`Probe::Blank`]. Never writes.
pub(super) fn probe(device: &Path) -> Result<Probe, MountError> {
    let fail = |reason: String| MountError::Probe {
        device: device.to_owned(),
        reason,
    };
    let blkid = find_tool(BLKID).map_err(fail)?;
    let output = run(child::command(&blkid, Some(TOOL_NICENESS))
        .args(["-p", "-o", "export", "--"])
        .arg(device))
    .map_err(|e| fail(format!("running blkid: {e}")))?;

    match output.status.code() {
        // Something found: a filesystem (TYPE) or a partition table (PTTYPE).
        Some(0) => {
            if let Some(name) = signature(&String::from_utf8_lossy(&output.stdout)) {
                return Ok(Probe::Signature(name));
            }
            // Found something it cannot name (no TYPE nor PTTYPE): decide on the bytes.
        }
        // Nothing found.
        Some(2) => {}
        // Ambivalent result: several signatures. Certainly data, never blank.
        Some(8) => return Ok(Probe::UnknownData),
        _ => return Err(fail(format!("blkid {}", describe_failure(&output)))),
    }

    let all_zero = leading_bytes_are_zero(device, BLANK_CHECK_BYTES)
        .map_err(|e| fail(format!("reading the first MiB: {e}")))?;
    Ok(if all_zero {
        Probe::Blank
    } else {
        Probe::UnknownData
    })
}

/// Picks the signature name out of `blkid -o export` output: `TYPE=`, else `PTTYPE=`.
fn signature(export: &str) -> Option<String> {
    let value = |key: &str| {
        export
            .lines()
            .find_map(|line| line.strip_prefix(key)?.strip_prefix('='))
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    value("TYPE").or_else(|| value("PTTYPE"))
}

/// True when the first `limit` bytes of `device` (or all of it, if smaller) are zero.
fn leading_bytes_are_zero(device: &Path, limit: usize) -> std::io::Result<bool> {
    // Opened read-only: a probe never writes.
    let file = File::open(device)?;
    let mut reader = file.take(u64::try_from(limit).unwrap_or(u64::MAX));
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => return Ok(true),
            Ok(n) => {
                if buf[..n].iter().any(|&b| b != 0) {
                    return Ok(false);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Creates `fs` on `device`. Without `force` the device is probed first and anything but
/// [`Probe::Blank`] is refused: mke2fs does not check for an existing filesystem when stdin is
/// not a terminal, so the tools alone cannot be trusted to refuse.
/// `extra` are the StorageClass's mkfs arguments (checked by [`super::extra::mkfs_args`]),
/// passed as argv words before the device.
pub(super) fn format(
    device: &Path,
    fs: FsType,
    force: bool,
    extra: &[String],
) -> Result<(), MountError> {
    let fail = |reason: String| MountError::Format {
        device: device.to_owned(),
        fs: fs.as_str(),
        reason,
    };
    if !force {
        match probe(device)? {
            Probe::Blank => {}
            Probe::Signature(name) => {
                return Err(fail(format!(
                    "the device holds a {name} signature; refusing without force"
                )))
            }
            Probe::UnknownData => {
                return Err(fail(
                    "the device holds unknown data; refusing without force".to_owned(),
                ))
            }
        }
    }

    let mut command = match fs {
        FsType::Ext4 => {
            let mut c = child::command(&find_tool(MKFS_EXT4).map_err(fail)?, Some(TOOL_NICENESS));
            c.arg("-q");
            if force {
                c.arg("-F");
            }
            c.args(["-E", "nodiscard,lazy_itable_init=1,lazy_journal_init=1"]);
            c
        }
        FsType::Xfs => {
            let mut c = child::command(&find_tool(MKFS_XFS).map_err(fail)?, Some(TOOL_NICENESS));
            c.args(["-q", "-K"]);
            if force {
                c.arg("-f");
            }
            c
        }
    };
    if let Some(why) = super::extra::refused_for(fs, extra) {
        return Err(fail(why));
    }
    command.args(extra).arg(device);
    tracing::info!(device = %device.display(), fs = fs.as_str(), force, ?extra, "formatting");
    let output = run(&mut command).map_err(|e| fail(format!("running mkfs: {e}")))?;
    if !output.status.success() {
        return Err(fail(format!("mkfs {}", describe_failure(&output))));
    }
    Ok(())
}

/// Grows the filesystem to fill its device, online: `resize2fs <device>` for ext4,
/// `xfs_growfs -d <mount_path>` for XFS.
pub(super) fn grow(device: &Path, mount_path: &Path, fs: FsType) -> Result<(), MountError> {
    let fail = |reason: String| MountError::Resize {
        device: device.to_owned(),
        reason,
    };
    if fs == FsType::Ext4 && !has_capability(CAP_SYS_RESOURCE) {
        // The kernel refuses ext4's online-resize ioctl without it; say so instead of
        // passing on resize2fs's bare "Permission denied".
        return Err(MountError::MissingCapability {
            capability: "CAP_SYS_RESOURCE",
            step: "growing a mounted ext4 filesystem",
        });
    }
    let mut command = match fs {
        FsType::Ext4 => {
            let mut c = child::command(&find_tool(RESIZE2FS).map_err(fail)?, Some(TOOL_NICENESS));
            c.arg(device);
            c
        }
        FsType::Xfs => {
            let mut c = child::command(&find_tool(XFS_GROWFS).map_err(fail)?, Some(TOOL_NICENESS));
            c.arg("-d").arg(mount_path);
            c
        }
    };
    tracing::info!(device = %device.display(), mount_path = %mount_path.display(), fs = fs.as_str(), "growing filesystem");
    let output = run(&mut command).map_err(|e| fail(format!("running the resize tool: {e}")))?;
    if !output.status.success() {
        return Err(fail(format!("resize {}", describe_failure(&output))));
    }
    Ok(())
}

/// Grows an unmounted ext4 to fill its device: `e2fsck -f -p` (resize2fs insists on a
/// checked filesystem; preen mode fixes only what is safe, and anything else fails here), then
/// `resize2fs`. Needs no capability, unlike online growth.
pub(super) fn grow_unmounted(device: &Path, fs: FsType) -> Result<(), MountError> {
    let fail = |reason: String| MountError::Resize {
        device: device.to_owned(),
        reason,
    };
    if fs != FsType::Ext4 {
        return Err(fail(format!("{} grows only while mounted", fs.as_str())));
    }
    let mut check = child::command(&find_tool(E2FSCK).map_err(fail)?, Some(TOOL_NICENESS));
    check.args(["-f", "-p"]).arg(device);
    let output = run(&mut check).map_err(|e| fail(format!("running e2fsck: {e}")))?;
    // 0: clean; 1: errors corrected. Anything else needs a human.
    if !matches!(output.status.code(), Some(0 | 1)) {
        return Err(fail(format!(
            "e2fsck before growing {}",
            describe_failure(&output)
        )));
    }
    let mut resize = child::command(&find_tool(RESIZE2FS).map_err(fail)?, Some(TOOL_NICENESS));
    resize.arg(device);
    tracing::info!(device = %device.display(), "growing an unmounted ext4");
    let output = run(&mut resize).map_err(|e| fail(format!("running resize2fs: {e}")))?;
    if !output.status.success() {
        return Err(fail(format!("resize2fs {}", describe_failure(&output))));
    }
    Ok(())
}

/// Runs `xfs_io -c <command> <mount_path>` (the StorageClass's `postMountXfsOpts`, checked
/// by [`super::extra::xfs_io_command`]), as one argv word.
pub(super) fn post_mount_xfs(mount_path: &Path, command: &str) -> Result<(), MountError> {
    let fail = |reason: String| MountError::PostMount {
        path: mount_path.to_owned(),
        reason,
    };
    super::extra::xfs_io_command(command).map_err(fail)?;
    let mut c = child::command(&find_tool(XFS_IO).map_err(fail)?, Some(TOOL_NICENESS));
    c.arg("-c").arg(command).arg(mount_path);
    tracing::info!(path = %mount_path.display(), command, "xfs_io after mount");
    let output = run(&mut c).map_err(|e| fail(format!("running xfs_io: {e}")))?;
    // xfs_io reports a failed command on stderr and may still exit 0.
    if !output.status.success() || !output.stderr.is_empty() {
        return Err(fail(format!("xfs_io {}", describe_failure(&output))));
    }
    Ok(())
}

/// The capability number of CAP_SYS_RESOURCE.
pub(super) const CAP_SYS_RESOURCE: u32 = 24;

/// Whether this process has capability `cap` in its effective set (false when unreadable).
pub(super) fn has_capability(cap: u32) -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("CapEff:"))
                .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        })
        .is_some_and(|mask| mask & (1 << cap) != 0)
}

/// Finds `tool` in [`TOOL_DIRS`]. The error names the tool and the package that ships it.
fn find_tool(tool: Tool) -> Result<PathBuf, String> {
    find_tool_in(tool, &TOOL_DIRS)
}

fn find_tool_in(tool: Tool, dirs: &[&str]) -> Result<PathBuf, String> {
    let paths: Vec<&Path> = dirs.iter().map(Path::new).collect();
    child::find_in(tool.name, &paths).ok_or_else(|| {
        format!(
            "{} not found in {}; install the Debian package {}",
            tool.name,
            dirs.join(", "),
            tool.package
        )
    })
}

/// Runs a tool to completion: stdin from /dev/null (so it can never wait for an answer),
/// stdout and stderr captured. Build the command with [`child::command`] so it dies with the
/// agent.
/// The niceness of the tools the mounter runs.
const TOOL_NICENESS: libc::c_int = 10;

fn run(command: &mut Command) -> std::io::Result<Output> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command.output()
}

/// The exit status and the tool's stderr (or stdout, when stderr is empty), for an error.
fn describe_failure(output: &Output) -> String {
    let status = match (output.status.code(), output.status.signal()) {
        (Some(code), _) => format!("exited with {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        (None, None) => "failed".to_owned(),
    };
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let text = if stderr.trim().is_empty() {
        stdout.trim()
    } else {
        stderr.trim()
    };
    if text.is_empty() {
        status
    } else {
        format!("{status}: {text}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_prefers_type_over_pttype() {
        let export =
            "DEVNAME=/dev/loop0\nUUID=3b1a\nBLOCK_SIZE=1024\nTYPE=ext4\nUSAGE=filesystem\n";
        assert_eq!(signature(export).as_deref(), Some("ext4"));
        let export = "DEVNAME=/dev/loop0\nPTUUID=1234\nPTTYPE=gpt\n";
        assert_eq!(signature(export).as_deref(), Some("gpt"));
        let export = "DEVNAME=/dev/loop0\nPTTYPE=dos\nTYPE=LVM2_member\n";
        assert_eq!(signature(export).as_deref(), Some("LVM2_member"));
        // SEC_TYPE must not be mistaken for TYPE, nor an empty value for a name.
        assert_eq!(signature("SEC_TYPE=ext2\nTYPE=\n"), None);
        assert_eq!(signature(""), None);
    }

    #[test]
    fn missing_tool_names_the_package() {
        let dir = tempfile::tempdir().unwrap();
        let dirs = [dir.path().to_str().unwrap()];
        let err = find_tool_in(MKFS_XFS, &dirs).unwrap_err();
        assert!(err.contains("mkfs.xfs"), "{err}");
        assert!(err.contains("xfsprogs"), "{err}");

        // A file that is not executable does not count.
        std::fs::write(dir.path().join("mkfs.xfs"), "").unwrap();
        assert!(find_tool_in(MKFS_XFS, &dirs).is_err());
    }

    #[test]
    fn finds_tools_by_absolute_path() {
        let path = find_tool(BLKID).unwrap();
        assert!(path.is_absolute());
        assert!(path.ends_with("blkid"));
    }

    #[test]
    fn run_reports_stderr_and_status() {
        let sh = find_tool_in(
            Tool {
                name: "sh",
                package: "dash",
            },
            &TOOL_DIRS,
        )
        .unwrap();
        let output = run(Command::new(sh).args(["-c", "read x; echo oops >&2; exit 3"])).unwrap();
        // stdin is /dev/null: `read` returns at once instead of blocking.
        assert_eq!(output.status.code(), Some(3));
        assert_eq!(describe_failure(&output), "exited with 3: oops");
    }

    #[test]
    fn zero_check_reads_only_the_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("img");
        let mut bytes = vec![0u8; 2 * BLANK_CHECK_BYTES];
        bytes[BLANK_CHECK_BYTES + 10] = 1;
        std::fs::write(&path, &bytes).unwrap();
        assert!(leading_bytes_are_zero(&path, BLANK_CHECK_BYTES).unwrap());
        bytes[BLANK_CHECK_BYTES - 1] = 1;
        std::fs::write(&path, &bytes).unwrap();
        assert!(!leading_bytes_are_zero(&path, BLANK_CHECK_BYTES).unwrap());
        // A short file that is all zeros is blank.
        std::fs::write(&path, [0u8; 10]).unwrap();
        assert!(leading_bytes_are_zero(&path, BLANK_CHECK_BYTES).unwrap());
    }
}
