//! [`HostMounter`]: the [`Mounter`] that mounts in the agent's own mount namespace with
//! mount(2), umount2(2) and statvfs(2), and the mount-flag policy ([`parse_flag`]).
//!
//! This module owns the syscalls and the mount points it is asked to create (directories with
//! mode 0750, or empty files for device binds). It must not touch any other path, must not
//! change mount propagation, and must not detach busy mounts: a busy unmount is an error for
//! the caller to report. Formatting, probing and growing run external tools and live in
//! `format.rs`; mountinfo parsing lives in `mountinfo.rs`.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags};
use nix::sys::statvfs::FsFlags;

use super::{
    format, mountinfo, FsStats, FsType, MountEntry, MountError, MountOptions, Mounter, Probe,
};

/// Mode of the mount-point directories this module creates.
const MOUNT_POINT_MODE: u32 = 0o750;

/// Mode of the empty files created as targets for device binds.
const DEVICE_TARGET_MODE: u32 = 0o640;

/// Bounds the unmount loop: no sane mount point has more mounts stacked on it.
const MAX_STACKED_MOUNTS: usize = 64;

/// The longest mount flag accepted.
const MAX_FLAG_LEN: usize = 256;

/// Flags that belong to the mount, not the superblock: the ones a bind remount can change.
const PER_MOUNT_FLAGS: MsFlags = MsFlags::MS_RDONLY
    .union(MsFlags::MS_NOSUID)
    .union(MsFlags::MS_NODEV)
    .union(MsFlags::MS_NOEXEC)
    .union(MsFlags::MS_NOATIME)
    .union(MsFlags::MS_NODIRATIME)
    .union(MsFlags::MS_RELATIME)
    .union(MsFlags::MS_STRICTATIME)
    .union(MS_NOSYMFOLLOW);

/// `MS_NOSYMFOLLOW` (Linux 5.10), which nix does not name.
const MS_NOSYMFOLLOW: MsFlags = MsFlags::from_bits_retain(libc::MS_NOSYMFOLLOW);

/// The [`Mounter`] for the host: syscalls in the agent's mount namespace and the standard
/// filesystem tools.
#[derive(Debug, Default, Clone)]
pub struct HostMounter {
    _private: (),
}

impl HostMounter {
    /// A mounter for the agent's mount namespace.
    pub fn new() -> Self {
        Self::default()
    }
}

/// What one mount flag does: mount(2) flags to set or clear, and filesystem data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct FlagEffect {
    /// mount(2) flags to set.
    pub(super) set: MsFlags,
    /// mount(2) flags to clear (`rw`, `suid`, `atime`...).
    pub(super) clear: MsFlags,
    /// Options passed to the filesystem in mount(2)'s data string, e.g. `discard`.
    pub(super) data: Vec<String>,
}

impl Default for FlagEffect {
    fn default() -> Self {
        Self {
            set: MsFlags::empty(),
            clear: MsFlags::empty(),
            data: Vec::new(),
        }
    }
}

impl FlagEffect {
    fn set(&mut self, flags: MsFlags) {
        self.set |= flags;
        self.clear &= !flags;
    }

    fn clear(&mut self, flags: MsFlags) {
        self.clear |= flags;
        self.set &= !flags;
    }

    /// Applies `later` after `self`: the later flag wins, as with mount(8)'s `-o`.
    fn then(&mut self, later: FlagEffect) {
        self.clear(later.clear);
        self.set(later.set);
        self.data.extend(later.data);
    }

    fn data_string(&self) -> Option<String> {
        (!self.data.is_empty()).then(|| self.data.join(","))
    }
}

/// Known mount flags: name, flags set, flags cleared.
const KNOWN_FLAGS: &[(&str, MsFlags, MsFlags)] = {
    use MsFlags as F;
    const NONE: MsFlags = MsFlags::empty();
    const ATIME: MsFlags = MsFlags::MS_NOATIME
        .union(MsFlags::MS_RELATIME)
        .union(MsFlags::MS_STRICTATIME);
    &[
        ("ro", F::MS_RDONLY, NONE),
        ("rw", NONE, F::MS_RDONLY),
        ("nosuid", F::MS_NOSUID, NONE),
        ("suid", NONE, F::MS_NOSUID),
        ("nodev", F::MS_NODEV, NONE),
        ("dev", NONE, F::MS_NODEV),
        ("noexec", F::MS_NOEXEC, NONE),
        ("exec", NONE, F::MS_NOEXEC),
        ("sync", F::MS_SYNCHRONOUS, NONE),
        ("async", NONE, F::MS_SYNCHRONOUS),
        ("dirsync", F::MS_DIRSYNC, NONE),
        ("mand", F::MS_MANDLOCK, NONE),
        ("nomand", NONE, F::MS_MANDLOCK),
        ("noatime", F::MS_NOATIME, ATIME.difference(F::MS_NOATIME)),
        ("atime", NONE, F::MS_NOATIME),
        ("nodiratime", F::MS_NODIRATIME, NONE),
        ("diratime", NONE, F::MS_NODIRATIME),
        ("relatime", F::MS_RELATIME, ATIME.difference(F::MS_RELATIME)),
        ("norelatime", NONE, F::MS_RELATIME),
        (
            "strictatime",
            F::MS_STRICTATIME,
            ATIME.difference(F::MS_STRICTATIME),
        ),
        ("nostrictatime", NONE, F::MS_STRICTATIME),
        ("lazytime", F::MS_LAZYTIME, NONE),
        ("nolazytime", NONE, F::MS_LAZYTIME),
        ("silent", F::MS_SILENT, NONE),
        ("loud", NONE, F::MS_SILENT),
        ("iversion", F::MS_I_VERSION, NONE),
        ("noiversion", NONE, F::MS_I_VERSION),
        ("nosymfollow", MS_NOSYMFOLLOW, NONE),
        ("symfollow", NONE, MS_NOSYMFOLLOW),
        // mount(8)'s "defaults": rw, suid, dev, exec, async (auto and nouser are fstab-only).
        (
            "defaults",
            NONE,
            F::MS_RDONLY
                .union(F::MS_NOSUID)
                .union(F::MS_NODEV)
                .union(F::MS_NOEXEC)
                .union(F::MS_SYNCHRONOUS),
        ),
    ]
};

/// fstab and mount(8) options that mean nothing to the kernel: accepted and dropped.
const USERSPACE_ONLY: &[&str] = &["auto", "noauto", "nofail", "_netdev", "nouser"];

/// Flags that would change what is mounted or where, or mount propagation.
const REFUSED: &[&str] = &[
    "bind",
    "rbind",
    "move",
    "remount",
    "rec",
    "shared",
    "rshared",
    "private",
    "rprivate",
    "slave",
    "rslave",
    "unbindable",
    "runbindable",
];

/// Why a single option (no commas) is refused, if it is.
fn refusal(option: &str) -> Option<&'static str> {
    let key = option.split_once('=').map_or(option, |(key, _)| key);
    if REFUSED.contains(&option) || option.starts_with("make-") {
        Some("it changes what or where is mounted, or mount propagation")
    } else if matches!(key, "loop" | "offset" | "sizelimit" | "encryption") {
        Some("loop devices are set up by Hearth, not by mount options")
    } else if option.starts_with("X-") {
        Some("mount(8) helper actions are not supported")
    } else if matches!(key, "journal_path" | "journal_dev" | "logdev" | "rtdev") {
        Some("it names another device")
    } else if option == "errors=panic" {
        Some("a filesystem error would panic the node")
    } else {
        None
    }
}

/// Parses one CSI mount flag. A flag may hold several comma-separated options; each is a
/// mount(2) flag (`ro`, `noatime`...), an option the kernel never sees (`defaults`,
/// `nofail`, `x-*`: dropped), or filesystem data (`discard`, `errors=remount-ro`...). Options
/// that change what or where is mounted (`bind`, `remount`, `make-private`...) are refused, and
/// so are empty, over-long or odd-looking ones: data must match `[A-Za-z0-9_.=:/+-]+`.
pub(super) fn parse_flag(flag: &str) -> Result<FlagEffect, MountError> {
    let invalid = |reason: &'static str| MountError::InvalidFlag {
        flag: flag.to_owned(),
        reason,
    };
    if flag.is_empty() {
        return Err(invalid("it is empty"));
    }
    if flag.len() > MAX_FLAG_LEN {
        return Err(invalid("it is longer than 256 bytes"));
    }
    if flag.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(invalid("it contains whitespace or a control character"));
    }
    let mut effect = FlagEffect::default();
    for option in flag.split(',') {
        if option.is_empty() {
            return Err(invalid("it has an empty option between commas"));
        }
        if let Some(reason) = refusal(option) {
            return Err(invalid(reason));
        }
        if let Some(&(_, set, clear)) = KNOWN_FLAGS.iter().find(|(name, _, _)| *name == option) {
            effect.clear(clear);
            effect.set(set);
        } else if USERSPACE_ONLY.contains(&option)
            || option.starts_with("x-")
            || option.starts_with("comment=")
        {
            // Meaningful to fstab or mount(8) helpers only; the kernel would reject them.
        } else if option
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.=:/+-".contains(&b))
        {
            effect.data.push(option.to_owned());
        } else {
            return Err(invalid("it has characters a filesystem option does not"));
        }
    }
    Ok(effect)
}

/// All of a mount's flags: the CSI flags in order, then `readonly`, which always wins.
fn effective_flags(opts: &MountOptions) -> Result<FlagEffect, MountError> {
    let mut effect = FlagEffect::default();
    for flag in &opts.flags {
        effect.then(parse_flag(flag)?);
    }
    if opts.readonly {
        effect.set(MsFlags::MS_RDONLY);
    }
    Ok(effect)
}

/// The path made absolute and normalised without touching the filesystem: `.` dropped, `..`
/// pops, repeated and trailing slashes gone.
fn lexical_absolute(path: &Path) -> PathBuf {
    let joined;
    let path = if path.is_absolute() {
        path
    } else {
        joined = std::env::current_dir()
            .unwrap_or_else(|_| PathBuf::from("/"))
            .join(path);
        &joined
    };
    let mut out = PathBuf::from("/");
    for component in path.components() {
        match component {
            Component::Normal(name) => out.push(name),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

/// The path as mountinfo would spell a mount point there: absolute, with symlinks in the parent
/// directories resolved (the kernel reports resolved paths) but the last component kept as is.
fn mount_point_key(target: &Path) -> PathBuf {
    let lexical = lexical_absolute(target);
    match (lexical.parent(), lexical.file_name()) {
        (Some(parent), Some(name)) => fs::canonicalize(parent)
            .map(|parent| parent.join(name))
            .unwrap_or(lexical.clone()),
        _ => lexical,
    }
}

/// The top-most of the mounts at `key`: the one no other mount at `key` is stacked on.
fn top_mount_at<'a>(entries: &'a [MountEntry], key: &Path) -> Option<&'a MountEntry> {
    let at: Vec<&MountEntry> = entries.iter().filter(|e| e.mount_point == key).collect();
    at.iter()
        .rev()
        .find(|candidate| !at.iter().any(|other| other.parent_id == candidate.mount_id))
        .or(at.last())
        .copied()
}

/// Where a bind of `source` would come from: the (major, minor, root) that mountinfo shows for
/// a bind mount of it.
fn bind_origin(entries: &[MountEntry], source: &Path) -> Option<(u32, u32, PathBuf)> {
    let source = fs::canonicalize(source).ok()?;
    let best_len = entries
        .iter()
        .filter(|e| source.starts_with(&e.mount_point))
        .map(|e| e.mount_point.components().count())
        .max()?;
    let deepest: Vec<MountEntry> = entries
        .iter()
        .filter(|e| {
            source.starts_with(&e.mount_point) && e.mount_point.components().count() == best_len
        })
        .cloned()
        .collect();
    let mount = top_mount_at(&deepest, deepest.first()?.mount_point.as_path())?;
    let relative = source.strip_prefix(&mount.mount_point).ok()?;
    Some((mount.major, mount.minor, mount.root.join(relative)))
}

/// statvfs counts are `c_ulong` or `fsblkcnt_t`, u32 or u64 depending on the target.
fn widen<T: Into<u64>>(count: T) -> u64 {
    count.into()
}

fn errno_of(error: &io::Error) -> Errno {
    Errno::from_raw(error.raw_os_error().unwrap_or(libc::EIO))
}

/// Refuses a mount point that is a symbolic link: mount(2) would follow it and mount somewhere
/// else, possibly somewhere a pod chose.
fn refuse_symlink(path: &Path) -> Result<(), MountError> {
    match fs::symlink_metadata(path) {
        Ok(metadata) if metadata.file_type().is_symlink() => Err(MountError::MountPoint {
            path: path.to_owned(),
            source: io::Error::new(
                io::ErrorKind::InvalidInput,
                "the mount point is a symbolic link; refusing to mount through it",
            ),
        }),
        _ => Ok(()),
    }
}

/// Creates `path` as a directory (and its parents) with mode 0750 unless it exists.
fn ensure_dir(path: &Path) -> Result<(), MountError> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(MOUNT_POINT_MODE)
        .create(path)
        .map_err(|source| MountError::MountPoint {
            path: path.to_owned(),
            source,
        })
}

/// Creates `path` as an empty file (and its parent directories) unless something exists there.
fn ensure_file(path: &Path) -> Result<(), MountError> {
    let fail = |source| MountError::MountPoint {
        path: path.to_owned(),
        source,
    };
    if let Some(parent) = path.parent() {
        ensure_dir(parent)?;
    }
    match fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(DEVICE_TARGET_MODE)
        .custom_flags(libc::O_CLOEXEC | libc::O_NOFOLLOW)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(fail(e)),
    }
}

/// The per-mount security flags now in force at `path`, which a bind remount must keep unless
/// asked to clear them.
fn current_lock_flags(path: &Path) -> MsFlags {
    let Ok(stat) = nix::sys::statvfs::statvfs(path) else {
        return MsFlags::empty();
    };
    let mut flags = MsFlags::empty();
    for (st, ms) in [
        (FsFlags::ST_NOSUID, MsFlags::MS_NOSUID),
        (FsFlags::ST_NODEV, MsFlags::MS_NODEV),
        (FsFlags::ST_NOEXEC, MsFlags::MS_NOEXEC),
        (FsFlags::ST_NODIRATIME, MsFlags::MS_NODIRATIME),
    ] {
        if stat.flags().contains(st) {
            flags |= ms;
        }
    }
    flags
}

impl HostMounter {
    /// Remounts the bind at `target` with the per-mount flags of `flags`, keeping the security
    /// flags it has unless `flags` clears them.
    fn remount_bind(
        &self,
        source: &Path,
        target: &Path,
        flags: &FlagEffect,
    ) -> Result<(), MountError> {
        let keep = current_lock_flags(target) & !flags.clear;
        let remount = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | keep | (flags.set & PER_MOUNT_FLAGS);
        nix::mount::mount(None::<&str>, target, None::<&str>, remount, None::<&str>).map_err(
            |errno| MountError::Mount {
                source_path: source.to_owned(),
                target: target.to_owned(),
                errno,
            },
        )
    }
}

impl Mounter for HostMounter {
    fn probe(&self, device: &Path) -> Result<Probe, MountError> {
        format::probe(device)
    }

    fn format(&self, device: &Path, fs: FsType, force: bool) -> Result<(), MountError> {
        format::format(device, fs, force)
    }

    fn mount_device(
        &self,
        device: &Path,
        target: &Path,
        fs: FsType,
        opts: &MountOptions,
    ) -> Result<(), MountError> {
        let flags = effective_flags(opts)?;
        let target = lexical_absolute(target);
        let fail = |errno| MountError::Mount {
            source_path: device.to_owned(),
            target: target.clone(),
            errno,
        };
        refuse_symlink(&target)?;
        ensure_dir(&target)?;

        // Already mounted here? Fine if it is this device, same type and same read-only-ness.
        if let Some(existing) = self.mount_at(&target)? {
            let rdev = fs::metadata(device).map_err(|e| fail(errno_of(&e)))?.rdev();
            let same = u64::from(existing.major) == nix::sys::stat::major(rdev)
                && u64::from(existing.minor) == nix::sys::stat::minor(rdev)
                && existing.root == Path::new("/")
                && existing.fs_type == fs.as_str()
                && existing.read_only() == flags.set.contains(MsFlags::MS_RDONLY);
            if same {
                tracing::debug!(device = %device.display(), target = %target.display(), "already mounted");
                return Ok(());
            }
            return Err(fail(Errno::EBUSY));
        }

        let data = flags.data_string();
        tracing::info!(device = %device.display(), target = %target.display(), fs = fs.as_str(), "mounting");
        nix::mount::mount(
            Some(device),
            &target,
            Some(fs.as_str()),
            flags.set,
            data.as_deref(),
        )
        .map_err(fail)
    }

    fn bind(&self, source: &Path, target: &Path, opts: &MountOptions) -> Result<(), MountError> {
        let flags = effective_flags(opts)?;
        let target = lexical_absolute(target);
        let fail = |errno| MountError::Mount {
            source_path: source.to_owned(),
            target: target.clone(),
            errno,
        };
        let source_is_dir = fs::metadata(source)
            .map_err(|e| fail(errno_of(&e)))?
            .is_dir();
        refuse_symlink(&target)?;
        if source_is_dir {
            ensure_dir(&target)?;
        } else {
            ensure_file(&target)?;
        }
        let needs_remount = !(flags.set & PER_MOUNT_FLAGS).is_empty();

        let entries = mountinfo::read()?;
        if let Some(existing) = top_mount_at(&entries, &mount_point_key(&target)) {
            let origin = (existing.major, existing.minor, existing.root.clone());
            if bind_origin(&entries, source) != Some(origin) {
                return Err(fail(Errno::EBUSY));
            }
            let want_read_only = flags.set.contains(MsFlags::MS_RDONLY);
            if existing.read_only() == want_read_only {
                tracing::debug!(source = %source.display(), target = %target.display(), "already bound");
                return Ok(());
            }
            if want_read_only {
                // Bound by an earlier call whose read-only remount did not happen: finish it.
                return self.remount_bind(source, &target, &flags);
            }
            // Read-only there, read-write asked: a conflict, not something to flip silently.
            return Err(fail(Errno::EBUSY));
        }

        tracing::info!(source = %source.display(), target = %target.display(), readonly = opts.readonly, "bind mounting");
        nix::mount::mount(
            Some(source),
            &target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(fail)?;
        if needs_remount {
            if let Err(error) = self.remount_bind(source, &target, &flags) {
                // Never leave a writable bind behind when read-only was asked for.
                if let Err(errno) = nix::mount::umount2(&target, MntFlags::UMOUNT_NOFOLLOW) {
                    tracing::warn!(target = %target.display(), %errno, "undoing a bind whose remount failed");
                }
                return Err(error);
            }
        }
        Ok(())
    }

    fn unmount(&self, target: &Path) -> Result<bool, MountError> {
        let target = lexical_absolute(target);
        let key = mount_point_key(&target);
        let fail = |errno| MountError::Unmount {
            target: target.clone(),
            errno,
        };
        let mut unmounted = false;
        for _ in 0..MAX_STACKED_MOUNTS {
            match nix::mount::umount2(&target, MntFlags::UMOUNT_NOFOLLOW) {
                Ok(()) => {
                    tracing::info!(target = %target.display(), "unmounted");
                    unmounted = true;
                }
                // Not a mount point (any more), or no such path: nothing is mounted there...
                Err(Errno::EINVAL | Errno::ENOENT) => {
                    // ...unless mountinfo disagrees, e.g. when the mount point is hidden under a
                    // later mount. Say so rather than report success.
                    let entries = mountinfo::read()?;
                    return match top_mount_at(&entries, &key) {
                        None => Ok(unmounted),
                        Some(_) => Err(fail(Errno::EINVAL)),
                    };
                }
                Err(errno) => return Err(fail(errno)),
            }
            if top_mount_at(&mountinfo::read()?, &key).is_none() {
                return Ok(true);
            }
        }
        Err(fail(Errno::EBUSY))
    }

    fn mount_at(&self, target: &Path) -> Result<Option<MountEntry>, MountError> {
        let entries = mountinfo::read()?;
        Ok(top_mount_at(&entries, &mount_point_key(target)).cloned())
    }

    fn mounts(&self) -> Result<Vec<MountEntry>, MountError> {
        mountinfo::read()
    }

    fn grow(&self, device: &Path, mount_path: &Path, fs: FsType) -> Result<(), MountError> {
        format::grow(device, mount_path, fs)
    }

    fn stats(&self, path: &Path) -> Result<FsStats, MountError> {
        let stat = nix::sys::statvfs::statvfs(path).map_err(|errno| MountError::Stats {
            path: path.to_owned(),
            errno,
        })?;
        let fragment = widen(stat.fragment_size());
        let blocks = widen(stat.blocks());
        let total_inodes = widen(stat.files());
        let free_inodes = widen(stat.files_free());
        Ok(FsStats {
            total_bytes: blocks.saturating_mul(fragment),
            available_bytes: widen(stat.blocks_available()).saturating_mul(fragment),
            used_bytes: blocks
                .saturating_sub(widen(stat.blocks_free()))
                .saturating_mul(fragment),
            total_inodes,
            free_inodes,
            used_inodes: total_inodes.saturating_sub(free_inodes),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::{File, OpenOptions};
    use std::io::{Read, Seek, SeekFrom, Write};
    use std::os::unix::fs::{FileTypeExt, PermissionsExt};
    use std::process::Command;

    const MIB: u64 = 1 << 20;

    /// Returns from the test, with a note, when not root.
    macro_rules! require_root {
        () => {
            if !nix::unistd::geteuid().is_root() {
                eprintln!("skipping: needs root");
                return;
            }
        };
    }

    /// A tempdir and the loop devices a test made. Dropping it unmounts everything under the
    /// tempdir and detaches the loop devices, even when an assert failed.
    struct Fixture {
        /// Removed after `drop` has unmounted and detached everything (fields drop last).
        _dir: tempfile::TempDir,
        root: PathBuf,
        loops: Vec<PathBuf>,
    }

    impl Fixture {
        fn new() -> Self {
            let dir = tempfile::tempdir().unwrap();
            let root = fs::canonicalize(dir.path()).unwrap();
            Self {
                _dir: dir,
                root,
                loops: Vec::new(),
            }
        }

        fn path(&self, relative: &str) -> PathBuf {
            self.root.join(relative)
        }

        /// A sparse backing file of `size` bytes attached to a free loop device.
        fn loop_device(&mut self, name: &str, size: u64) -> (PathBuf, PathBuf) {
            let backing = self.path(name);
            File::create(&backing).unwrap().set_len(size).unwrap();
            let output = Command::new("losetup")
                .args(["--find", "--show"])
                .arg(&backing)
                .output()
                .unwrap();
            assert!(
                output.status.success(),
                "losetup: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            let device = PathBuf::from(String::from_utf8(output.stdout).unwrap().trim());
            self.loops.push(device.clone());
            (device, backing)
        }

        /// Grows the backing file and tells the loop driver.
        fn grow_loop(&self, device: &Path, backing: &Path, size: u64) {
            OpenOptions::new()
                .write(true)
                .open(backing)
                .unwrap()
                .set_len(size)
                .unwrap();
            let status = Command::new("losetup")
                .arg("-c")
                .arg(device)
                .status()
                .unwrap();
            assert!(status.success());
        }

        fn mounts_under(&self) -> Vec<MountEntry> {
            mountinfo::read()
                .unwrap_or_default()
                .into_iter()
                .filter(|e| e.mount_point.starts_with(&self.root))
                .collect()
        }

        fn mounts_at(&self, path: &Path) -> usize {
            self.mounts_under()
                .iter()
                .filter(|e| e.mount_point == path)
                .count()
        }
    }

    impl Drop for Fixture {
        fn drop(&mut self) {
            for _ in 0..MAX_STACKED_MOUNTS {
                let mounts = self.mounts_under();
                if mounts.is_empty() {
                    break;
                }
                // Newest first: stacked and nested mounts come after what they cover.
                for entry in mounts.iter().rev() {
                    if nix::mount::umount2(&entry.mount_point, MntFlags::empty()).is_err() {
                        let _ = nix::mount::umount2(&entry.mount_point, MntFlags::MNT_DETACH);
                    }
                }
            }
            for device in &self.loops {
                let _ = Command::new("losetup").arg("-d").arg(device).status();
            }
        }
    }

    fn write_at(device: &Path, offset: u64, bytes: &[u8]) {
        let mut file = OpenOptions::new().write(true).open(device).unwrap();
        file.seek(SeekFrom::Start(offset)).unwrap();
        file.write_all(bytes).unwrap();
        file.sync_all().unwrap();
    }

    fn first_mib(device: &Path) -> Vec<u8> {
        let mut bytes = Vec::new();
        File::open(device)
            .unwrap()
            .take(MIB)
            .read_to_end(&mut bytes)
            .unwrap();
        bytes
    }

    fn has_mkfs_xfs() -> bool {
        ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
            .iter()
            .any(|dir| Path::new(dir).join("mkfs.xfs").exists())
    }

    use super::super::format::{has_capability, CAP_SYS_RESOURCE};

    fn opts(readonly: bool, flags: &[&str]) -> MountOptions {
        MountOptions {
            readonly,
            flags: flags.iter().map(|f| (*f).to_owned()).collect(),
        }
    }

    fn write_file(path: &Path) -> io::Result<()> {
        fs::write(path, b"hearth")
    }

    // ---- flags, paths and mount selection: no root needed ----

    #[test]
    fn known_flags_map_to_mount_flags() {
        let effect = parse_flag("ro").unwrap();
        assert_eq!(effect.set, MsFlags::MS_RDONLY);
        assert!(effect.data.is_empty());
        assert_eq!(parse_flag("rw").unwrap().clear, MsFlags::MS_RDONLY);
        for (flag, bit) in [
            ("noatime", MsFlags::MS_NOATIME),
            ("nodiratime", MsFlags::MS_NODIRATIME),
            ("relatime", MsFlags::MS_RELATIME),
            ("strictatime", MsFlags::MS_STRICTATIME),
            ("nosuid", MsFlags::MS_NOSUID),
            ("nodev", MsFlags::MS_NODEV),
            ("noexec", MsFlags::MS_NOEXEC),
            ("sync", MsFlags::MS_SYNCHRONOUS),
            ("dirsync", MsFlags::MS_DIRSYNC),
            ("lazytime", MsFlags::MS_LAZYTIME),
            ("silent", MsFlags::MS_SILENT),
            ("nosymfollow", MS_NOSYMFOLLOW),
        ] {
            assert_eq!(parse_flag(flag).unwrap().set, bit, "{flag}");
        }
        // Atime modes exclude each other; the last one wins.
        let effect = parse_flag("noatime,relatime").unwrap();
        assert_eq!(effect.set, MsFlags::MS_RELATIME);
        assert!(effect.clear.contains(MsFlags::MS_NOATIME));
    }

    #[test]
    fn refuses_flags_that_change_what_or_where() {
        for flag in [
            "bind",
            "rbind",
            "move",
            "remount",
            "rec",
            "shared",
            "rshared",
            "private",
            "rprivate",
            "slave",
            "rslave",
            "unbindable",
            "runbindable",
            "make-private",
            "make-rshared",
            "noatime,bind",
            "loop",
            "loop=/dev/loop0",
            "offset=1024",
            "X-mount.mkdir",
            "journal_path=/dev/sdb",
            "logdev=/dev/sdc",
            "errors=panic",
        ] {
            assert!(
                matches!(parse_flag(flag), Err(MountError::InvalidFlag { .. })),
                "{flag} was accepted"
            );
        }
    }

    #[test]
    fn refuses_malformed_flags() {
        let long = "a".repeat(MAX_FLAG_LEN + 1);
        for flag in [
            "",
            " ",
            "noatime ",
            "a\tb",
            "a\nb",
            "a\0b",
            ",",
            "a,,b",
            "a,",
            "quote\"d",
            "semi;colon",
            "star*",
            "é",
            long.as_str(),
        ] {
            assert!(
                matches!(parse_flag(flag), Err(MountError::InvalidFlag { .. })),
                "{flag:?} was accepted"
            );
        }
        assert!(parse_flag(&"a".repeat(MAX_FLAG_LEN)).is_ok());
    }

    #[test]
    fn other_options_pass_through_as_data() {
        let effect = parse_flag("discard").unwrap();
        assert_eq!(effect.set, MsFlags::empty());
        assert_eq!(effect.data, ["discard"]);
        let effect = parse_flag("errors=remount-ro,noatime,commit=30").unwrap();
        assert_eq!(effect.set, MsFlags::MS_NOATIME);
        assert_eq!(effect.data, ["errors=remount-ro", "commit=30"]);
        for flag in [
            "uid=1000",
            "context=system_u:object_r:tmp_t:s0",
            "lowerdir=/a/b+c",
            "data=ordered",
        ] {
            assert_eq!(parse_flag(flag).unwrap().data, [flag]);
        }
        // Userspace-only options never reach the kernel.
        for flag in [
            "defaults",
            "nofail",
            "_netdev",
            "auto",
            "noauto",
            "x-systemd.automount",
            "comment=x",
        ] {
            assert!(parse_flag(flag).unwrap().data.is_empty(), "{flag}");
        }
        assert!(
            super::super::validate_mount_flags(&["discard".to_owned(), "noatime".to_owned()])
                .is_ok()
        );
        assert!(
            super::super::validate_mount_flags(&["discard".to_owned(), "bind".to_owned()]).is_err()
        );
    }

    #[test]
    fn readonly_wins_over_rw_flags() {
        let effect = effective_flags(&opts(true, &["rw", "nodev", "discard"])).unwrap();
        assert!(effect.set.contains(MsFlags::MS_RDONLY | MsFlags::MS_NODEV));
        assert!(!effect.clear.contains(MsFlags::MS_RDONLY));
        assert_eq!(effect.data_string().as_deref(), Some("discard"));
        // Later flags win over earlier ones.
        let effect = effective_flags(&opts(false, &["ro", "rw"])).unwrap();
        assert!(!effect.set.contains(MsFlags::MS_RDONLY));
        let effect = effective_flags(&opts(false, &["nosuid", "defaults"])).unwrap();
        assert!(!effect.set.contains(MsFlags::MS_NOSUID));
        assert_eq!(
            effective_flags(&opts(false, &[])).unwrap().data_string(),
            None
        );
    }

    #[test]
    fn normalises_paths_lexically() {
        assert_eq!(
            lexical_absolute(Path::new("/a/./b//c/")),
            PathBuf::from("/a/b/c")
        );
        assert_eq!(
            lexical_absolute(Path::new("/a/b/../c")),
            PathBuf::from("/a/c")
        );
        assert_eq!(lexical_absolute(Path::new("/../..")), PathBuf::from("/"));
        let relative = lexical_absolute(Path::new("x/y"));
        assert!(relative.is_absolute() && relative.ends_with("x/y"));
    }

    #[test]
    fn picks_the_top_of_stacked_mounts() {
        let text = "\
1 1 0:1 / / rw - rootfs rootfs rw
10 1 7:0 / /t rw - ext4 /dev/loop0 rw
11 10 0:5 /x /t rw - tmpfs tmpfs rw
12 1 7:1 / /u rw - ext4 /dev/loop1 rw
";
        let entries = mountinfo::parse(text).unwrap();
        assert_eq!(
            top_mount_at(&entries, Path::new("/t")).unwrap().mount_id,
            11
        );
        assert_eq!(
            top_mount_at(&entries, Path::new("/u")).unwrap().mount_id,
            12
        );
        assert!(top_mount_at(&entries, Path::new("/v")).is_none());
        // Order in the file does not matter.
        let reversed: Vec<_> = entries.into_iter().rev().collect();
        assert_eq!(
            top_mount_at(&reversed, Path::new("/t")).unwrap().mount_id,
            11
        );
    }

    // ---- the real thing: root, loop devices, mounts under a tempdir ----

    #[test]
    fn probe_blank_unknown_data_and_signature() {
        require_root!();
        let mut fx = Fixture::new();
        let (device, _) = fx.loop_device("disk.img", 64 * MIB);
        let mounter = HostMounter::new();

        assert_eq!(mounter.probe(&device).unwrap(), Probe::Blank);

        // Data past the first MiB does not count; data inside it does.
        write_at(&device, 2 * MIB, b"beyond");
        assert_eq!(mounter.probe(&device).unwrap(), Probe::Blank);
        write_at(&device, MIB / 2, b"precious");
        let before = first_mib(&device);
        assert_eq!(mounter.probe(&device).unwrap(), Probe::UnknownData);
        assert_eq!(first_mib(&device), before, "probe wrote to the device");

        // Without force, format refuses unknown data and leaves it alone.
        let err = mounter.format(&device, FsType::Ext4, false).unwrap_err();
        assert!(matches!(err, MountError::Format { .. }), "{err}");
        assert_eq!(first_mib(&device), before);

        write_at(&device, MIB / 2, &[0; 8]);
        assert_eq!(mounter.probe(&device).unwrap(), Probe::Blank);
        mounter.format(&device, FsType::Ext4, false).unwrap();
        assert_eq!(
            mounter.probe(&device).unwrap(),
            Probe::Signature("ext4".to_owned())
        );

        // A formatted device is refused without force, reformatted with it.
        let err = mounter.format(&device, FsType::Ext4, false).unwrap_err();
        assert!(err.to_string().contains("ext4"), "{err}");
        mounter.format(&device, FsType::Ext4, true).unwrap();
        assert_eq!(
            mounter.probe(&device).unwrap(),
            Probe::Signature("ext4".to_owned())
        );
    }

    #[test]
    fn probe_reports_a_missing_device() {
        require_root!();
        let fx = Fixture::new();
        let err = HostMounter::new()
            .probe(&fx.path("no-such-device"))
            .unwrap_err();
        assert!(matches!(err, MountError::Probe { .. }), "{err}");
    }

    #[test]
    fn format_xfs_and_back() {
        require_root!();
        if !has_mkfs_xfs() {
            eprintln!("skipping: mkfs.xfs is not installed (apt-get install xfsprogs)");
            return;
        }
        let mut fx = Fixture::new();
        let (device, _) = fx.loop_device("disk.img", 320 * MIB);
        let mounter = HostMounter::new();
        mounter.format(&device, FsType::Xfs, false).unwrap();
        assert_eq!(
            mounter.probe(&device).unwrap(),
            Probe::Signature("xfs".to_owned())
        );
        assert!(mounter.format(&device, FsType::Ext4, false).is_err());
        mounter.format(&device, FsType::Ext4, true).unwrap();
        assert_eq!(
            mounter.probe(&device).unwrap(),
            Probe::Signature("ext4".to_owned())
        );
        mounter.format(&device, FsType::Xfs, true).unwrap();
        assert_eq!(
            mounter.probe(&device).unwrap(),
            Probe::Signature("xfs".to_owned())
        );
    }

    #[test]
    fn mount_device_mount_at_and_stats() {
        require_root!();
        let mut fx = Fixture::new();
        let (device, _) = fx.loop_device("disk.img", 64 * MIB);
        let mounter = HostMounter::new();
        mounter.format(&device, FsType::Ext4, false).unwrap();

        let target = fx.path("staging/vol a");
        mounter
            .mount_device(
                &device,
                &target,
                FsType::Ext4,
                &opts(false, &["noatime", "discard"]),
            )
            .unwrap();

        let entry = mounter.mount_at(&target).unwrap().unwrap();
        assert_eq!(entry.fs_type, "ext4");
        assert_eq!(entry.source, device.to_str().unwrap());
        assert_eq!(entry.mount_point, target);
        assert!(!entry.read_only());
        assert!(
            entry.options.iter().any(|o| o == "noatime"),
            "{:?}",
            entry.options
        );
        assert!(
            entry.super_options.iter().any(|o| o == "discard"),
            "{:?}",
            entry.super_options
        );
        // The same mount through an unnormalised spelling of the path.
        let spelled = fx.path("staging/./x/../vol a/");
        assert_eq!(
            mounter.mount_at(&spelled).unwrap().unwrap().mount_id,
            entry.mount_id
        );
        assert!(mounter
            .mounts()
            .unwrap()
            .iter()
            .any(|e| e.mount_id == entry.mount_id));

        let before = mounter.stats(&target).unwrap();
        assert!(
            before.total_bytes > 40 * MIB && before.total_bytes <= 64 * MIB,
            "{before:?}"
        );
        assert!(before.available_bytes <= before.total_bytes);
        assert!(before.used_bytes < before.total_bytes);
        assert!(before.total_inodes > 0 && before.free_inodes <= before.total_inodes);
        assert_eq!(before.used_inodes, before.total_inodes - before.free_inodes);
        let mut file = File::create(target.join("data")).unwrap();
        file.write_all(&vec![7u8; 4 * MIB as usize]).unwrap();
        file.sync_all().unwrap();
        drop(file);
        let after = mounter.stats(&target).unwrap();
        assert!(
            after.used_bytes >= before.used_bytes + 4 * MIB,
            "{before:?} {after:?}"
        );
        // ext4's inode counters are per-CPU approximations: more in use, not exactly one more.
        assert!(
            after.used_inodes > before.used_inodes,
            "{before:?} {after:?}"
        );

        // Mounting again is a no-op; a conflicting mount is refused.
        mounter
            .mount_device(&device, &target, FsType::Ext4, &opts(false, &[]))
            .unwrap();
        assert_eq!(fx.mounts_at(&target), 1);
        let err = mounter
            .mount_device(&device, &target, FsType::Ext4, &opts(true, &[]))
            .unwrap_err();
        assert!(
            matches!(
                err,
                MountError::Mount {
                    errno: Errno::EBUSY,
                    ..
                }
            ),
            "{err}"
        );
        let err = mounter
            .mount_device(&device, &target, FsType::Xfs, &opts(false, &[]))
            .unwrap_err();
        assert!(
            matches!(
                err,
                MountError::Mount {
                    errno: Errno::EBUSY,
                    ..
                }
            ),
            "{err}"
        );
        // Bad flags are refused before anything happens.
        let other = fx.path("other");
        let err = mounter
            .mount_device(&device, &other, FsType::Ext4, &opts(false, &["remount"]))
            .unwrap_err();
        assert!(matches!(err, MountError::InvalidFlag { .. }), "{err}");
        assert!(!other.exists());

        // Read-only with flags and data.
        assert!(mounter.unmount(&target).unwrap());
        // The mount point was created 0750 (seen now that nothing covers it).
        assert_eq!(
            fs::metadata(&target).unwrap().permissions().mode() & 0o777,
            MOUNT_POINT_MODE
        );
        mounter
            .mount_device(
                &device,
                &target,
                FsType::Ext4,
                &opts(true, &["nosuid,nodev", "errors=remount-ro"]),
            )
            .unwrap();
        let entry = mounter.mount_at(&target).unwrap().unwrap();
        assert!(entry.read_only());
        for option in ["ro", "nosuid", "nodev"] {
            assert!(
                entry.options.iter().any(|o| o == option),
                "{option}: {:?}",
                entry.options
            );
        }
        assert!(
            entry.super_options.iter().any(|o| o == "errors=remount-ro"),
            "{:?}",
            entry.super_options
        );
        let err = write_file(&target.join("new")).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EROFS));
        assert_eq!(
            fs::read(target.join("data")).unwrap().len(),
            4 * MIB as usize
        );
    }

    #[test]
    fn mount_device_reports_kernel_errors() {
        require_root!();
        let mut fx = Fixture::new();
        let (device, _) = fx.loop_device("disk.img", 64 * MIB);
        // Blank device: the kernel finds no ext4 there.
        let err = HostMounter::new()
            .mount_device(&device, &fx.path("mnt"), FsType::Ext4, &opts(false, &[]))
            .unwrap_err();
        assert!(matches!(err, MountError::Mount { .. }), "{err}");
        assert!(fx.mounts_under().is_empty());
    }

    #[test]
    fn read_only_bind_is_read_only() {
        require_root!();
        let mut fx = Fixture::new();
        let (device, _) = fx.loop_device("disk.img", 64 * MIB);
        let mounter = HostMounter::new();
        mounter.format(&device, FsType::Ext4, false).unwrap();
        let staging = fx.path("staging");
        mounter
            .mount_device(&device, &staging, FsType::Ext4, &opts(false, &[]))
            .unwrap();

        let publish = fx.path("pods/uid/volumes/pv");
        mounter
            .bind(&staging, &publish, &opts(true, &["nodev", "noexec"]))
            .unwrap();
        let entry = mounter.mount_at(&publish).unwrap().unwrap();
        assert!(entry.read_only(), "{:?}", entry.options);
        for option in ["ro", "nodev", "noexec"] {
            assert!(
                entry.options.iter().any(|o| o == option),
                "{option}: {:?}",
                entry.options
            );
        }
        let err = write_file(&publish.join("f")).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::EROFS));
        // The staging mount stays writable, and the bind shows its writes.
        write_file(&staging.join("f")).unwrap();
        assert_eq!(fs::read(publish.join("f")).unwrap(), b"hearth");

        // Binding again is a no-op; asking for read-write there is a conflict.
        mounter
            .bind(&staging, &publish, &opts(true, &["nodev", "noexec"]))
            .unwrap();
        assert_eq!(fx.mounts_at(&publish), 1);
        let err = mounter
            .bind(&staging, &publish, &opts(false, &[]))
            .unwrap_err();
        assert!(
            matches!(
                err,
                MountError::Mount {
                    errno: Errno::EBUSY,
                    ..
                }
            ),
            "{err}"
        );
        // Something else is not silently stacked on top.
        let elsewhere = fx.path("elsewhere");
        fs::create_dir(&elsewhere).unwrap();
        let err = mounter
            .bind(&elsewhere, &publish, &opts(true, &[]))
            .unwrap_err();
        assert!(
            matches!(
                err,
                MountError::Mount {
                    errno: Errno::EBUSY,
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(fx.mounts_at(&publish), 1);
    }

    #[test]
    fn bind_finishes_an_interrupted_read_only_bind() {
        require_root!();
        let fx = Fixture::new();
        let source = fx.path("src");
        let target = fx.path("dst");
        fs::create_dir(&source).unwrap();
        fs::create_dir(&target).unwrap();
        // A bind whose read-only remount never happened.
        nix::mount::mount(
            Some(&source),
            &target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .unwrap();
        assert!(!HostMounter::new()
            .mount_at(&target)
            .unwrap()
            .unwrap()
            .read_only());

        HostMounter::new()
            .bind(&source, &target, &opts(true, &[]))
            .unwrap();
        assert!(HostMounter::new()
            .mount_at(&target)
            .unwrap()
            .unwrap()
            .read_only());
        assert_eq!(fx.mounts_at(&target), 1);
        assert_eq!(
            write_file(&target.join("f")).unwrap_err().raw_os_error(),
            Some(libc::EROFS)
        );
    }

    #[test]
    fn bind_keeps_the_source_security_flags() {
        require_root!();
        let fx = Fixture::new();
        let source = fx.path("src");
        let middle = fx.path("nosuid");
        let target = fx.path("dst");
        fs::create_dir(&source).unwrap();
        let mounter = HostMounter::new();
        mounter
            .bind(&source, &middle, &opts(false, &["nosuid"]))
            .unwrap();
        assert!(mounter
            .mount_at(&middle)
            .unwrap()
            .unwrap()
            .options
            .iter()
            .any(|o| o == "nosuid"));
        // Remounting read-only must not drop the nosuid the bind inherited.
        mounter.bind(&middle, &target, &opts(true, &[])).unwrap();
        let entry = mounter.mount_at(&target).unwrap().unwrap();
        assert!(
            entry.options.iter().any(|o| o == "nosuid"),
            "{:?}",
            entry.options
        );
        assert!(entry.read_only());
    }

    #[test]
    fn bind_a_block_device_onto_a_file() {
        require_root!();
        let mut fx = Fixture::new();
        let (device, _) = fx.loop_device("disk.img", 16 * MIB);
        let mounter = HostMounter::new();
        let target = fx.path("plugins/volumeDevices/publish/pv/pod-uid");

        mounter.bind(&device, &target, &opts(false, &[])).unwrap();
        let metadata = fs::metadata(&target).unwrap();
        assert!(metadata.file_type().is_block_device());
        assert_eq!(metadata.rdev(), fs::metadata(&device).unwrap().rdev());
        let entry = mounter.mount_at(&target).unwrap().unwrap();
        assert_eq!(entry.mount_point, target);

        // Writes through the bound node reach the device.
        write_at(&target, 0, b"through the bind");
        assert!(first_mib(&device).starts_with(b"through the bind"));

        mounter.bind(&device, &target, &opts(false, &[])).unwrap();
        assert_eq!(fx.mounts_at(&target), 1);

        assert!(mounter.unmount(&target).unwrap());
        let metadata = fs::symlink_metadata(&target).unwrap();
        assert!(
            metadata.is_file() && metadata.len() == 0,
            "the placeholder file stays"
        );

        // Read-only device binds are remounted read-only too. Note what that does not do: the
        // kernel does not stop writes to a device node on a read-only mount (only to regular
        // files, directories and symlinks), so a read-only raw block volume needs more than this.
        mounter.bind(&device, &target, &opts(true, &[])).unwrap();
        let entry = mounter.mount_at(&target).unwrap().unwrap();
        assert!(
            entry.read_only() && entry.options.iter().any(|o| o == "ro"),
            "{:?}",
            entry.options
        );
        assert_eq!(fx.mounts_at(&target), 1);
    }

    #[test]
    fn unmount_is_idempotent_and_unstacks() {
        require_root!();
        let fx = Fixture::new();
        let mounter = HostMounter::new();
        let source = fx.path("src");
        let target = fx.path("dst");
        fs::create_dir(&source).unwrap();
        fs::create_dir(&target).unwrap();

        assert!(
            !mounter.unmount(&target).unwrap(),
            "nothing mounted on a plain directory"
        );
        assert!(
            !mounter.unmount(&fx.path("missing/path")).unwrap(),
            "nothing mounted on a missing path"
        );

        for _ in 0..3 {
            nix::mount::mount(
                Some(&source),
                &target,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .unwrap();
        }
        assert_eq!(fx.mounts_at(&target), 3);
        assert!(mounter.unmount(&fx.path("dst/")).unwrap());
        assert_eq!(fx.mounts_at(&target), 0);
        assert!(mounter.mount_at(&target).unwrap().is_none());
        assert!(!mounter.unmount(&target).unwrap());
        assert!(target.is_dir(), "unmount leaves the mount point");
    }

    #[test]
    fn unmount_of_a_busy_mount_is_an_error() {
        require_root!();
        let fx = Fixture::new();
        let mounter = HostMounter::new();
        let source = fx.path("src");
        let target = fx.path("dst");
        fs::create_dir(&source).unwrap();
        mounter.bind(&source, &target, &opts(false, &[])).unwrap();

        let open = File::create(target.join("held-open")).unwrap();
        let err = mounter.unmount(&target).unwrap_err();
        assert!(
            matches!(
                err,
                MountError::Unmount {
                    errno: Errno::EBUSY,
                    ..
                }
            ),
            "{err}"
        );
        assert!(
            mounter.mount_at(&target).unwrap().is_some(),
            "a busy mount is not detached"
        );

        drop(open);
        assert!(mounter.unmount(&target).unwrap());
    }

    #[test]
    fn unmount_does_not_follow_a_symlink() {
        require_root!();
        let fx = Fixture::new();
        let mounter = HostMounter::new();
        let source = fx.path("src");
        let target = fx.path("dst");
        fs::create_dir(&source).unwrap();
        mounter.bind(&source, &target, &opts(false, &[])).unwrap();
        let link = fx.path("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();

        assert!(!mounter.unmount(&link).unwrap());
        assert!(mounter.mount_at(&target).unwrap().is_some());
    }

    #[test]
    fn refuses_to_mount_through_a_symlink() {
        require_root!();
        let fx = Fixture::new();
        let mounter = HostMounter::new();
        let source = fx.path("src");
        let elsewhere = fx.path("elsewhere");
        let link = fx.path("link");
        fs::create_dir(&source).unwrap();
        fs::create_dir(&elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &link).unwrap();

        let err = mounter.bind(&source, &link, &opts(false, &[])).unwrap_err();
        assert!(matches!(err, MountError::MountPoint { .. }), "{err}");
        let err = mounter
            .mount_device(
                Path::new("/dev/null"),
                &link,
                FsType::Ext4,
                &opts(false, &[]),
            )
            .unwrap_err();
        assert!(matches!(err, MountError::MountPoint { .. }), "{err}");
        assert!(fx.mounts_under().is_empty());
    }

    #[test]
    fn grow_ext4_online() {
        require_root!();
        let mut fx = Fixture::new();
        let (device, backing) = fx.loop_device("disk.img", 64 * MIB);
        let mounter = HostMounter::new();
        mounter.format(&device, FsType::Ext4, false).unwrap();
        let target = fx.path("mnt");
        mounter
            .mount_device(&device, &target, FsType::Ext4, &opts(false, &[]))
            .unwrap();
        let before = mounter.stats(&target).unwrap().total_bytes;

        fx.grow_loop(&device, &backing, 128 * MIB);
        if !has_capability(CAP_SYS_RESOURCE) {
            // ext4's online resize ioctl needs CAP_SYS_RESOURCE; without it the mounter says so.
            let err = mounter.grow(&device, &target, FsType::Ext4).unwrap_err();
            assert!(matches!(err, MountError::MissingCapability { .. }), "{err}");
            assert!(err.to_string().contains("CAP_SYS_RESOURCE"), "{err}");
            eprintln!("online ext4 grow: no CAP_SYS_RESOURCE here; checked the error instead");
            return;
        }
        mounter.grow(&device, &target, FsType::Ext4).unwrap();
        let after = mounter.stats(&target).unwrap().total_bytes;
        assert!(after > before + 56 * MIB, "{before} -> {after}");
        // Growing again is a no-op, not an error.
        mounter.grow(&device, &target, FsType::Ext4).unwrap();
    }

    #[test]
    fn grow_xfs_online() {
        require_root!();
        if !has_mkfs_xfs() {
            eprintln!("skipping: mkfs.xfs is not installed (apt-get install xfsprogs)");
            return;
        }
        let mut fx = Fixture::new();
        let (device, backing) = fx.loop_device("disk.img", 320 * MIB);
        let mounter = HostMounter::new();
        mounter.format(&device, FsType::Xfs, false).unwrap();
        let target = fx.path("mnt");
        mounter
            .mount_device(&device, &target, FsType::Xfs, &opts(false, &["noatime"]))
            .unwrap();
        assert_eq!(mounter.mount_at(&target).unwrap().unwrap().fs_type, "xfs");
        let before = mounter.stats(&target).unwrap().total_bytes;

        fx.grow_loop(&device, &backing, 640 * MIB);
        mounter.grow(&device, &target, FsType::Xfs).unwrap();
        let after = mounter.stats(&target).unwrap().total_bytes;
        assert!(after > before + 280 * MIB, "{before} -> {after}");
        mounter.grow(&device, &target, FsType::Xfs).unwrap();
    }

    #[test]
    fn grow_reports_tool_failure() {
        require_root!();
        let mut fx = Fixture::new();
        let (device, _) = fx.loop_device("disk.img", 16 * MIB);
        // Blank device: xfs_growfs finds no mounted filesystem.
        let err = HostMounter::new()
            .grow(&device, &fx.path("mnt"), FsType::Xfs)
            .unwrap_err();
        assert!(matches!(err, MountError::Resize { .. }), "{err}");
    }

    #[test]
    fn stats_of_a_missing_path_is_an_error() {
        let err = HostMounter::new()
            .stats(Path::new("/nonexistent/hearth/path"))
            .unwrap_err();
        assert!(
            matches!(
                err,
                MountError::Stats {
                    errno: Errno::ENOENT,
                    ..
                }
            ),
            "{err}"
        );
    }
}
