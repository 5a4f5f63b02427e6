//! Child processes of the agent (mkfs, blkid, resize2fs, drbdsetup): found only in the system
//! tool directories, and never outliving the agent.
//!
//! The death signal is set in the child between fork and exec; this module owns that one
//! pre-exec hook so every tool gets the same treatment. It knows nothing about the tools.

use std::path::{Path, PathBuf};

use nix::sys::signal::Signal;

/// Where system tools are looked up, in order. The agent's PATH is not trusted.
pub const TOOL_DIRS: [&str; 4] = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"];

/// The first executable file named `name` in `dirs`.
pub fn find_in(name: &str, dirs: &[&Path]) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    dirs.iter().map(|d| d.join(name)).find(|p| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    })
}

/// The pre-exec hook: optionally lower the child's priority, then have the kernel SIGKILL it
/// when the forking thread dies, and fail the spawn if the agent already died.
fn hook(
    niceness: Option<libc::c_int>,
) -> impl FnMut() -> std::io::Result<()> + Send + Sync + 'static {
    let parent = nix::unistd::getpid();
    move || {
        if let Some(n) = niceness {
            // SAFETY: setpriority is a plain syscall on the calling process; failure only costs
            // latency, so its result is ignored.
            unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, n) };
        }
        // The death signal fires when the forking *thread* exits: callers spawn from a thread
        // that outlives the child (a blocking wait, or a runtime thread plus kill_on_drop).
        nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)?;
        // The agent may have died between fork and prctl: then no signal will come.
        if nix::unistd::getppid() != parent {
            return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
        }
        Ok(())
    }
}

/// A blocking command for `tool` that dies with the agent, at `niceness` when given.
pub fn command(tool: &Path, niceness: Option<libc::c_int>) -> std::process::Command {
    use std::os::unix::process::CommandExt;
    let mut c = std::process::Command::new(tool);
    // SAFETY: the hook runs in the forked child before exec, where only async-signal-safe calls
    // are allowed: it makes raw syscalls (setpriority, prctl, getppid) and builds an io::Error
    // from an errno, none of which allocates, takes a lock or touches shared state.
    unsafe { c.pre_exec(hook(niceness)) };
    c
}

/// An async command for `tool` that dies with the agent (and when dropped).
pub fn async_command(tool: &Path) -> tokio::process::Command {
    let mut c = tokio::process::Command::new(tool);
    c.kill_on_drop(true);
    // SAFETY: as in `command`: the hook only makes async-signal-safe syscalls.
    unsafe { c.pre_exec(hook(None)) };
    c
}
