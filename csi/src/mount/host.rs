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
#[path = "host_tests.rs"]
mod tests;
