//! The mount-flag policy: which CSI mount flags Hearth passes to mount(2), which it drops
//! (fstab-only options) and which it refuses (anything that changes what or where is mounted,
//! or propagation), and what each accepted flag does. Pure: no syscalls.

use nix::mount::MsFlags;

use super::{MountError, MountOptions};

/// The longest mount flag accepted.
pub(super) const MAX_FLAG_LEN: usize = 256;

/// Flags that belong to the mount, not the superblock: the ones a bind remount can change.
pub(super) const PER_MOUNT_FLAGS: MsFlags = MsFlags::MS_RDONLY
    .union(MsFlags::MS_NOSUID)
    .union(MsFlags::MS_NODEV)
    .union(MsFlags::MS_NOEXEC)
    .union(MsFlags::MS_NOATIME)
    .union(MsFlags::MS_NODIRATIME)
    .union(MsFlags::MS_RELATIME)
    .union(MsFlags::MS_STRICTATIME)
    .union(MS_NOSYMFOLLOW);

/// `MS_NOSYMFOLLOW` (Linux 5.10), which nix does not name.
pub(super) const MS_NOSYMFOLLOW: MsFlags = MsFlags::from_bits_retain(libc::MS_NOSYMFOLLOW);

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
    pub(super) fn set(&mut self, flags: MsFlags) {
        self.set |= flags;
        self.clear &= !flags;
    }

    pub(super) fn clear(&mut self, flags: MsFlags) {
        self.clear |= flags;
        self.set &= !flags;
    }

    /// Applies `later` after `self`: the later flag wins, as with mount(8)'s `-o`.
    pub(super) fn then(&mut self, later: FlagEffect) {
        self.clear(later.clear);
        self.set(later.set);
        self.data.extend(later.data);
    }

    pub(super) fn data_string(&self) -> Option<String> {
        (!self.data.is_empty()).then(|| self.data.join(","))
    }
}

/// Known mount flags: name, flags set, flags cleared.
pub(super) const KNOWN_FLAGS: &[(&str, MsFlags, MsFlags)] = {
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
pub(super) const USERSPACE_ONLY: &[&str] = &["auto", "noauto", "nofail", "_netdev", "nouser"];

/// Flags that would change what is mounted or where, or mount propagation.
pub(super) const REFUSED: &[&str] = &[
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
pub(super) fn refusal(option: &str) -> Option<&'static str> {
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
pub(super) fn effective_flags(opts: &MountOptions) -> Result<FlagEffect, MountError> {
    let mut effect = FlagEffect::default();
    for flag in &opts.flags {
        effect.then(parse_flag(flag)?);
    }
    if opts.readonly {
        effect.set(MsFlags::MS_RDONLY);
    }
    Ok(effect)
}
