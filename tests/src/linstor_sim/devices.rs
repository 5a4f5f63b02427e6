//! The real block devices behind the simulated DRBD volumes: one sparse file under
//! `<state-dir>/volumes/` and one loop device per resource-definition volume, reported as the
//! `device_path` of every resource of that definition on every node (one host cannot have a
//! device per node). Snapshots are file copies under `<state-dir>/snapshots/`.
//!
//! In [`DeviceMode::None`] (no root) nothing is created and `device_path` is
//! `/dev/drbd<minor>`, as LINSTOR would report it.
//!
//! Owns: the files below the state directory and the loop devices it attached itself. It
//! never touches another loop device.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use hearth_csi::host::copy::{clone_file, CopyError};
use hearth_csi::host::loopdev::{self, LoopDevice, LoopError};

/// Whether volumes get real loop devices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceMode {
    /// A sparse file and a loop device per volume (needs root).
    Loop,
    /// No devices; `device_path` is `/dev/drbd<minor>`.
    None,
}

/// A volume's backing file and its loop device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backing {
    /// The sparse file.
    pub file: PathBuf,
    /// The loop device over it.
    pub device: LoopDevice,
}

/// Why a device operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("create directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("create or size backing file {path}: {source}")]
    SizeFile {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("copy {from} to {to}: {source}")]
    Copy {
        from: PathBuf,
        to: PathBuf,
        #[source]
        source: CopyError,
    },
    #[error("loop device for {path}: {source}")]
    Loop {
        path: PathBuf,
        #[source]
        source: LoopError,
    },
    #[error("remove {path}: {source}")]
    Remove {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// The device side of the simulator.
#[derive(Debug)]
pub struct Devices {
    mode: DeviceMode,
    volumes: PathBuf,
    snapshots: PathBuf,
}

impl Devices {
    /// Devices below `state_dir` (directories are created on first use).
    pub fn new(mode: DeviceMode, state_dir: &Path) -> Self {
        Self {
            mode,
            volumes: state_dir.join("volumes"),
            snapshots: state_dir.join("snapshots"),
        }
    }

    /// The mode.
    pub fn mode(&self) -> DeviceMode {
        self.mode
    }

    /// What `device_path` reports for a volume.
    pub fn device_path(backing: Option<&Backing>, minor: u32) -> String {
        match backing {
            Some(b) => b.device.path.display().to_string(),
            None => format!("/dev/drbd{minor}"),
        }
    }

    /// Creates the file (a copy of `seed` grown to `size_kib`, or a new sparse file) and its
    /// loop device. `Ok(None)` in [`DeviceMode::None`].
    pub fn create(
        &self,
        name: &str,
        size_kib: u64,
        seed: Option<&Path>,
    ) -> Result<Option<Backing>, DeviceError> {
        if self.mode == DeviceMode::None {
            return Ok(None);
        }
        mkdir(&self.volumes)?;
        let file = self.volumes.join(format!("{name}.img"));
        let _ = fs::remove_file(&file);
        if let Some(seed) = seed {
            clone_file(seed, &file).map_err(|source| DeviceError::Copy {
                from: seed.to_owned(),
                to: file.clone(),
                source,
            })?;
        }
        set_len(&file, size_kib)?;
        match loopdev::attach(&file, false) {
            Ok(device) => Ok(Some(Backing { file, device })),
            Err(source) => {
                let _ = fs::remove_file(&file);
                Err(DeviceError::Loop { path: file, source })
            }
        }
    }

    /// Grows the file to `size_kib` and tells the loop device.
    pub fn resize(&self, backing: &Backing, size_kib: u64) -> Result<(), DeviceError> {
        set_len(&backing.file, size_kib)?;
        loopdev::set_capacity(&backing.device)
            .map(drop)
            .map_err(|source| DeviceError::Loop {
                path: backing.file.clone(),
                source,
            })
    }

    /// True when something holds the device exclusively (a mount, an `O_EXCL` opener): the
    /// simulated DRBD device is in use.
    pub fn is_busy(backing: &Backing) -> bool {
        use std::os::unix::fs::OpenOptionsExt;
        let open = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_EXCL)
            .open(&backing.device.path);
        matches!(open, Err(e) if e.raw_os_error() == Some(libc::EBUSY))
    }

    /// Detaches the device and removes the file.
    pub fn destroy(&self, backing: &Backing) -> Result<(), DeviceError> {
        loopdev::detach(&backing.device).map_err(|source| DeviceError::Loop {
            path: backing.file.clone(),
            source,
        })?;
        remove(&backing.file)
    }

    /// Copies a volume's file into a snapshot image; `Ok(None)` without devices.
    pub fn snapshot(
        &self,
        backing: Option<&Backing>,
        name: &str,
    ) -> Result<Option<PathBuf>, DeviceError> {
        let Some(b) = backing else {
            return Ok(None);
        };
        mkdir(&self.snapshots)?;
        let image = self.snapshots.join(format!("{name}.img"));
        let _ = fs::remove_file(&image);
        clone_file(&b.file, &image).map_err(|source| DeviceError::Copy {
            from: b.file.clone(),
            to: image.clone(),
            source,
        })?;
        Ok(Some(image))
    }

    /// Removes a snapshot image.
    pub fn remove_image(&self, image: &Path) -> Result<(), DeviceError> {
        remove(image)
    }

    /// Files below the volumes and snapshots directories.
    pub fn files(&self) -> Vec<PathBuf> {
        [&self.volumes, &self.snapshots]
            .iter()
            .flat_map(|d| fs::read_dir(d).into_iter().flatten().flatten())
            .map(|e| e.path())
            .collect()
    }
}

fn mkdir(path: &Path) -> Result<(), DeviceError> {
    fs::create_dir_all(path).map_err(|source| DeviceError::CreateDir {
        path: path.to_owned(),
        source,
    })
}

fn set_len(file: &Path, size_kib: u64) -> Result<(), DeviceError> {
    let err = |source| DeviceError::SizeFile {
        path: file.to_owned(),
        source,
    };
    let f = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(file)
        .map_err(err)?;
    let want = size_kib.saturating_mul(1024);
    if f.metadata().map_err(err)?.len() < want {
        f.set_len(want).map_err(err)?;
    }
    Ok(())
}

fn remove(path: &Path) -> Result<(), DeviceError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(DeviceError::Remove {
            path: path.to_owned(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn none_mode_reports_drbd_paths() {
        let dir = tempfile::tempdir().unwrap();
        let d = Devices::new(DeviceMode::None, dir.path());
        assert_eq!(d.create("r_0", 1024, None).unwrap(), None);
        assert_eq!(Devices::device_path(None, 1000), "/dev/drbd1000");
        assert_eq!(d.snapshot(None, "s").unwrap(), None);
        assert!(d.files().is_empty());
    }

    #[test]
    fn set_len_grows_only() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("x.img");
        set_len(&f, 4).unwrap();
        assert_eq!(fs::metadata(&f).unwrap().len(), 4096);
        set_len(&f, 2).unwrap();
        assert_eq!(fs::metadata(&f).unwrap().len(), 4096);
        remove(&f).unwrap();
        remove(&f).unwrap();
    }
}
