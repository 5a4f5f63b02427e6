//! Mount points: the path as mountinfo spells it, the top-most mount at a path, where a bind
//! would come from, and creating (never following a symlink) the directories and files that
//! mounts land on.

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Component, Path, PathBuf};

use super::{MountEntry, MountError};

/// Mode of the mount-point directories this module creates.
pub(super) const MOUNT_POINT_MODE: u32 = 0o750;

/// Mode of the empty files created as targets for device binds.
pub(super) const DEVICE_TARGET_MODE: u32 = 0o640;

/// The path made absolute and normalised without touching the filesystem: `.` dropped, `..`
/// pops, repeated and trailing slashes gone.
pub(super) fn lexical_absolute(path: &Path) -> PathBuf {
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
pub(super) fn mount_point_key(target: &Path) -> PathBuf {
    let lexical = lexical_absolute(target);
    match (lexical.parent(), lexical.file_name()) {
        (Some(parent), Some(name)) => fs::canonicalize(parent)
            .map(|parent| parent.join(name))
            .unwrap_or(lexical.clone()),
        _ => lexical,
    }
}

/// The top-most of the mounts at `key`: the one no other mount at `key` is stacked on.
pub(super) fn top_mount_at<'a>(entries: &'a [MountEntry], key: &Path) -> Option<&'a MountEntry> {
    let at: Vec<&MountEntry> = entries.iter().filter(|e| e.mount_point == key).collect();
    at.iter()
        .rev()
        .find(|candidate| !at.iter().any(|other| other.parent_id == candidate.mount_id))
        .or(at.last())
        .copied()
}

/// Where a bind of `source` would come from: the (major, minor, root) that mountinfo shows for
/// a bind mount of it.
pub(super) fn bind_origin(entries: &[MountEntry], source: &Path) -> Option<(u32, u32, PathBuf)> {
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

/// Refuses a mount point that is a symbolic link: mount(2) would follow it and mount somewhere
/// else, possibly somewhere a pod chose.
pub(super) fn refuse_symlink(path: &Path) -> Result<(), MountError> {
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
pub(super) fn ensure_dir(path: &Path) -> Result<(), MountError> {
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
pub(super) fn ensure_file(path: &Path) -> Result<(), MountError> {
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
