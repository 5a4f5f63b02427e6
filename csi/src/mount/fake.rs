//! [`FakeMounter`]: a recording fake of the [`Mounter`] over an in-memory mount table and a
//! list of block devices, so the decisions of the node service can be unit-tested without root.
//!
//! It keeps the Mounter's contract where callers rely on it: a mount or bind at a target that
//! already shows the same thing succeeds without a change, anything else there is `EBUSY`;
//! formatting without `force` refuses a device that is not blank; a filesystem mounts only
//! from a device that holds it; binds of a device node show as devtmpfs, binds of a mount show
//! its filesystem. Mount points are created on the real filesystem (directories, or empty
//! files for device binds), since callers remove them after an unmount. It records every call
//! that changes something, in order, for tests to assert on.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use nix::errno::Errno;

use super::{FsStats, FsType, MountEntry, MountError, MountOptions, Mounter, Probe};
use crate::host::blockdev::BlockDeviceError;

/// The device number mountinfo shows for binds of device nodes (devtmpfs).
const DEVTMPFS: (u32, u32) = (0, 6);

/// A block device the fake knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeDevice {
    /// Its (major, minor) number.
    pub number: (u32, u32),
    /// Its size in bytes.
    pub size: u64,
    /// What a probe finds on it.
    pub content: Probe,
}

/// A call that changed (or tried to change) something, as the fake received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountCall {
    /// [`Mounter::format`].
    Format {
        /// The device.
        device: PathBuf,
        /// The filesystem.
        fs: FsType,
        /// Whether an interrupted format was being finished.
        force: bool,
        /// The StorageClass's mkfs arguments.
        args: Vec<String>,
    },
    /// [`Mounter::grow_unmounted`].
    GrowUnmounted {
        /// The device.
        device: PathBuf,
        /// The filesystem.
        fs: FsType,
    },
    /// [`Mounter::post_mount_xfs`].
    PostMountXfs {
        /// The mount point.
        path: PathBuf,
        /// The xfs_io command.
        command: String,
    },
    /// [`Mounter::mount_device`].
    MountDevice {
        /// The device.
        device: PathBuf,
        /// The mount point.
        target: PathBuf,
        /// The filesystem.
        fs: FsType,
        /// The options.
        opts: MountOptions,
    },
    /// [`Mounter::bind`].
    Bind {
        /// The device node or directory bound.
        source: PathBuf,
        /// The mount point.
        target: PathBuf,
        /// The options.
        opts: MountOptions,
    },
    /// [`Mounter::unmount`].
    Unmount(PathBuf),
    /// [`Mounter::grow`].
    Grow {
        /// The device.
        device: PathBuf,
        /// Where it is mounted.
        mount_path: PathBuf,
        /// The filesystem.
        fs: FsType,
    },
}

/// The fake's operations that a test can make fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MountOp {
    /// [`Mounter::format`].
    Format,
    /// [`Mounter::mount_device`].
    MountDevice,
    /// [`Mounter::bind`].
    Bind,
    /// [`Mounter::unmount`].
    Unmount,
    /// [`Mounter::grow`].
    Grow,
    /// [`Mounter::stats`].
    Stats,
}

#[derive(Debug, Default)]
struct State {
    devices: BTreeMap<PathBuf, FakeDevice>,
    mounts: Vec<MountEntry>,
    next_mount_id: u32,
    calls: Vec<MountCall>,
    failures: Vec<(MountOp, Errno)>,
    /// Filesystem sizes that differ from their device's (set by tests); a formatted device
    /// otherwise holds a filesystem of its whole size.
    fs_sizes: BTreeMap<PathBuf, u64>,
}

/// A recording fake Mounter. Cheap to clone the results out of; share it behind an `Arc`.
#[derive(Debug, Default)]
pub struct FakeMounter {
    state: Mutex<State>,
}

impl FakeMounter {
    /// A fake with no devices and no mounts.
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds (or replaces) a block device node.
    pub fn add_device(&self, path: &Path, device: FakeDevice) {
        self.state().devices.insert(path.to_owned(), device);
    }

    /// A blank device of `size` bytes with number `(7, minor)`, like a loop device.
    pub fn add_blank_device(&self, path: &Path, minor: u32, size: u64) {
        self.add_device(
            path,
            FakeDevice {
                number: (7, minor),
                size,
                content: Probe::Blank,
            },
        );
    }

    /// Sets what a probe of `path` finds.
    pub fn set_content(&self, path: &Path, content: Probe) {
        if let Some(d) = self.state().devices.get_mut(path) {
            d.content = content;
        }
    }

    /// Sets a device's size (a grown volume).
    pub fn set_size(&self, path: &Path, size: u64) {
        if let Some(d) = self.state().devices.get_mut(path) {
            d.size = size;
        }
    }

    /// Says the filesystem on `path` is `bytes` large (smaller than the device: a restore into
    /// a larger volume).
    pub fn set_fs_size(&self, path: &Path, bytes: u64) {
        self.state().fs_sizes.insert(path.to_owned(), bytes);
    }

    /// The device at `path`, as the fake holds it now.
    pub fn device(&self, path: &Path) -> Option<FakeDevice> {
        self.state().devices.get(path).cloned()
    }

    /// Adds a mount entry as if something else had mounted it.
    pub fn add_mount(&self, entry: MountEntry) {
        Self::push(&mut self.state(), entry);
    }

    /// The mount points in the table, in mount order.
    pub fn mount_points(&self) -> Vec<PathBuf> {
        self.state()
            .mounts
            .iter()
            .map(|e| e.mount_point.clone())
            .collect()
    }

    /// Every changing call so far, in order.
    pub fn calls(&self) -> Vec<MountCall> {
        self.state().calls.clone()
    }

    /// Makes the next call of `op` fail with `errno` (once).
    pub fn fail_next(&self, op: MountOp, errno: Errno) {
        self.state().failures.push((op, errno));
    }

    fn take_failure(s: &mut State, op: MountOp) -> Option<Errno> {
        let i = s.failures.iter().position(|(o, _)| *o == op)?;
        Some(s.failures.remove(i).1)
    }

    fn push(s: &mut State, mut entry: MountEntry) {
        s.next_mount_id += 1;
        entry.mount_id = 100 + s.next_mount_id;
        s.mounts.push(entry);
    }
}

/// An entry for a mount of `fs` from `device` (number `number`) at `target`.
fn entry(
    number: (u32, u32),
    root: PathBuf,
    target: &Path,
    fs_type: &str,
    source: &str,
    read_only: bool,
) -> MountEntry {
    MountEntry {
        mount_id: 0,
        parent_id: 1,
        major: number.0,
        minor: number.1,
        root,
        mount_point: target.to_owned(),
        options: vec![if read_only { "ro" } else { "rw" }.to_owned()],
        optional_fields: Vec::new(),
        fs_type: fs_type.to_owned(),
        source: source.to_owned(),
        super_options: vec!["rw".to_owned()],
    }
}

fn mount_point(path: &Path, dir: bool) -> Result<(), MountError> {
    let made = if dir {
        std::fs::create_dir_all(path)
    } else {
        let parent = path.parent().map(std::fs::create_dir_all).transpose();
        parent.and_then(|_| {
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .open(path)
                .map(drop)
        })
    };
    made.map_err(|source| MountError::MountPoint {
        path: path.to_owned(),
        source,
    })
}

fn same_origin(a: &MountEntry, b: &MountEntry) -> bool {
    (a.major, a.minor, &a.root) == (b.major, b.minor, &b.root)
}

impl Mounter for FakeMounter {
    fn probe(&self, device: &Path) -> Result<Probe, MountError> {
        self.state()
            .devices
            .get(device)
            .map(|d| d.content.clone())
            .ok_or_else(|| MountError::Probe {
                device: device.to_owned(),
                reason: "no such device".into(),
            })
    }

    fn format(
        &self,
        device: &Path,
        fs: FsType,
        force: bool,
        extra: &[String],
    ) -> Result<(), MountError> {
        let mut s = self.state();
        s.calls.push(MountCall::Format {
            device: device.to_owned(),
            fs,
            force,
            args: extra.to_vec(),
        });
        let fail = |reason: &str| MountError::Format {
            device: device.to_owned(),
            fs: fs.as_str(),
            reason: reason.to_owned(),
        };
        if let Some(errno) = Self::take_failure(&mut s, MountOp::Format) {
            return Err(fail(errno.desc()));
        }
        let d = s
            .devices
            .get_mut(device)
            .ok_or_else(|| fail("no such device"))?;
        if !force && d.content != Probe::Blank {
            return Err(fail("the device is not blank"));
        }
        d.content = Probe::Signature(fs.as_str().to_owned());
        Ok(())
    }

    fn mount_device(
        &self,
        device: &Path,
        target: &Path,
        fs: FsType,
        opts: &MountOptions,
    ) -> Result<(), MountError> {
        let mut s = self.state();
        s.calls.push(MountCall::MountDevice {
            device: device.to_owned(),
            target: target.to_owned(),
            fs,
            opts: opts.clone(),
        });
        let fail = |errno| MountError::Mount {
            source_path: device.to_owned(),
            target: target.to_owned(),
            errno,
        };
        super::validate_mount_flags(&opts.flags)?;
        if let Some(errno) = Self::take_failure(&mut s, MountOp::MountDevice) {
            return Err(fail(errno));
        }
        let d = s.devices.get(device).cloned().ok_or(fail(Errno::ENOENT))?;
        mount_point(target, true)?;
        let wanted = entry(
            d.number,
            PathBuf::from("/"),
            target,
            fs.as_str(),
            &device.to_string_lossy(),
            opts.readonly,
        );
        if let Some(existing) = s.mounts.iter().rev().find(|e| e.mount_point == target) {
            return if same_origin(existing, &wanted)
                && existing.fs_type == wanted.fs_type
                && existing.read_only() == opts.readonly
            {
                Ok(())
            } else {
                Err(fail(Errno::EBUSY))
            };
        }
        if d.content != Probe::Signature(fs.as_str().to_owned()) {
            // mount(2) finds no filesystem of that type on the device.
            return Err(fail(Errno::EINVAL));
        }
        Self::push(&mut s, wanted);
        Ok(())
    }

    fn bind(&self, source: &Path, target: &Path, opts: &MountOptions) -> Result<(), MountError> {
        let mut s = self.state();
        s.calls.push(MountCall::Bind {
            source: source.to_owned(),
            target: target.to_owned(),
            opts: opts.clone(),
        });
        let fail = |errno| MountError::Mount {
            source_path: source.to_owned(),
            target: target.to_owned(),
            errno,
        };
        super::validate_mount_flags(&opts.flags)?;
        if let Some(errno) = Self::take_failure(&mut s, MountOp::Bind) {
            return Err(fail(errno));
        }
        let (wanted, dir) = if s.devices.contains_key(source) {
            let rel = source
                .strip_prefix("/dev")
                .map_err(|_| fail(Errno::EINVAL))?;
            let e = entry(
                DEVTMPFS,
                Path::new("/").join(rel),
                target,
                "devtmpfs",
                "udev",
                opts.readonly,
            );
            (e, false)
        } else {
            let from = s
                .mounts
                .iter()
                .rev()
                .find(|e| e.mount_point == source)
                .ok_or(fail(Errno::ENOENT))?;
            let mut e = from.clone();
            e.mount_point = target.to_owned();
            e.options = vec![if opts.readonly { "ro" } else { "rw" }.to_owned()];
            (e, true)
        };
        mount_point(target, dir)?;
        if let Some(i) = s.mounts.iter().rposition(|e| e.mount_point == target) {
            let existing = &mut s.mounts[i];
            if !same_origin(existing, &wanted) {
                return Err(fail(Errno::EBUSY));
            }
            return match (existing.read_only(), opts.readonly) {
                (a, b) if a == b => Ok(()),
                // An earlier bind whose read-only remount did not happen: finish it.
                (false, true) => {
                    existing.options = vec!["ro".to_owned()];
                    Ok(())
                }
                _ => Err(fail(Errno::EBUSY)),
            };
        }
        Self::push(&mut s, wanted);
        Ok(())
    }

    fn unmount(&self, target: &Path) -> Result<bool, MountError> {
        let mut s = self.state();
        s.calls.push(MountCall::Unmount(target.to_owned()));
        if let Some(errno) = Self::take_failure(&mut s, MountOp::Unmount) {
            return Err(MountError::Unmount {
                target: target.to_owned(),
                errno,
            });
        }
        let before = s.mounts.len();
        s.mounts.retain(|e| e.mount_point != target);
        Ok(s.mounts.len() != before)
    }

    fn mount_at(&self, target: &Path) -> Result<Option<MountEntry>, MountError> {
        Ok(self
            .state()
            .mounts
            .iter()
            .rev()
            .find(|e| e.mount_point == target)
            .cloned())
    }

    fn mounts(&self) -> Result<Vec<MountEntry>, MountError> {
        Ok(self.state().mounts.clone())
    }

    fn grow(&self, device: &Path, mount_path: &Path, fs: FsType) -> Result<(), MountError> {
        let mut s = self.state();
        s.calls.push(MountCall::Grow {
            device: device.to_owned(),
            mount_path: mount_path.to_owned(),
            fs,
        });
        let fail = |reason: &str| MountError::Resize {
            device: device.to_owned(),
            reason: reason.to_owned(),
        };
        if let Some(errno) = Self::take_failure(&mut s, MountOp::Grow) {
            return Err(fail(errno.desc()));
        }
        s.fs_sizes.remove(device);
        match s.devices.get(device) {
            Some(d) if d.content == Probe::Signature(fs.as_str().to_owned()) => Ok(()),
            Some(_) => Err(fail("no such filesystem on the device")),
            None => Err(fail("no such device")),
        }
    }

    fn filesystem_size(
        &self,
        device: &Path,
        fs: FsType,
    ) -> Result<Option<super::FsSize>, MountError> {
        let s = self.state();
        let d = s.devices.get(device).ok_or_else(|| not_a_device(device))?;
        if d.content != Probe::Signature(fs.as_str().to_owned()) {
            return Ok(None);
        }
        Ok(Some(super::FsSize {
            bytes: s.fs_sizes.get(device).copied().unwrap_or(d.size),
            block_size: 4096,
        }))
    }

    fn grow_unmounted(&self, device: &Path, fs: FsType) -> Result<(), MountError> {
        let mut s = self.state();
        s.calls.push(MountCall::GrowUnmounted {
            device: device.to_owned(),
            fs,
        });
        s.fs_sizes.remove(device);
        Ok(())
    }

    fn post_mount_xfs(&self, mount_path: &Path, command: &str) -> Result<(), MountError> {
        self.state().calls.push(MountCall::PostMountXfs {
            path: mount_path.to_owned(),
            command: command.to_owned(),
        });
        Ok(())
    }

    fn stats(&self, path: &Path) -> Result<FsStats, MountError> {
        let mut s = self.state();
        let fail = |errno| MountError::Stats {
            path: path.to_owned(),
            errno,
        };
        if let Some(errno) = Self::take_failure(&mut s, MountOp::Stats) {
            return Err(fail(errno));
        }
        let mount = s
            .mounts
            .iter()
            .rev()
            .find(|e| e.mount_point == path)
            .ok_or(fail(Errno::ENOENT))?;
        let size = s
            .devices
            .values()
            .find(|d| d.number == (mount.major, mount.minor))
            .map_or(0, |d| d.size);
        Ok(FsStats {
            total_bytes: size,
            available_bytes: size / 2,
            used_bytes: size / 2,
            total_inodes: 1000,
            free_inodes: 900,
            used_inodes: 100,
        })
    }

    fn device_size(&self, device: &Path) -> Result<u64, MountError> {
        self.state()
            .devices
            .get(device)
            .map(|d| d.size)
            .ok_or_else(|| not_a_device(device))
    }

    fn device_number(&self, device: &Path) -> Result<(u32, u32), MountError> {
        self.state()
            .devices
            .get(device)
            .map(|d| d.number)
            .ok_or_else(|| not_a_device(device))
    }
}

fn not_a_device(device: &Path) -> MountError {
    MountError::BlockDevice(BlockDeviceError::Open {
        path: device.to_owned(),
        errno: Errno::ENOENT,
    })
}

#[cfg(test)]
#[path = "fake_tests.rs"]
mod tests;
