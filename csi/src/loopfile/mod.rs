//! The loopfile backend: each volume is a sparse file under the state directory, attached on
//! the node as a loop device. It is the embedded default of `hearth dev`.
//!
//! Layout under the state directory:
//! ```text
//! hearth.db              the catalog (records of volumes and snapshots)
//! volumes/<id>.img       volume images
//! snapshots/<id>.img     snapshot images (reflinks where the filesystem can, else sparse copies)
//! tmp/                   images being made; renamed into place when complete
//! ```
//! A file appears under `volumes/` or `snapshots/` only by an atomic rename of a complete,
//! fsync'd file, and only while its record exists. Recovery at start-up finishes or undoes
//! what a crash interrupted. Files without a record are never deleted: they are reported.

mod attacher;
pub mod catalog;
mod volumes;

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

pub use attacher::LoopAttacher;
pub use volumes::LoopfileBackend;

/// Where the loopfile backend keeps its files.
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    /// The layout under `state_dir`.
    pub fn new(state_dir: &Path) -> Self {
        Self {
            root: state_dir.to_owned(),
        }
    }

    /// Creates the directories.
    pub fn create_dirs(&self) -> io::Result<()> {
        for d in [self.volumes_dir(), self.snapshots_dir(), self.tmp_dir()] {
            std::fs::create_dir_all(&d)?;
        }
        Ok(())
    }

    /// The state directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The catalog file.
    pub fn catalog(&self) -> PathBuf {
        self.root.join("hearth.db")
    }

    /// The directory of volume images.
    pub fn volumes_dir(&self) -> PathBuf {
        self.root.join("volumes")
    }

    /// The directory of snapshot images.
    pub fn snapshots_dir(&self) -> PathBuf {
        self.root.join("snapshots")
    }

    /// The directory of images being made.
    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// The image of a volume. Callers pass only IDs checked by [`is_volume_id`].
    pub fn volume_image(&self, id: &str) -> PathBuf {
        self.volumes_dir().join(format!("{id}.img"))
    }

    /// The image of a snapshot. Callers pass only IDs checked by [`is_snapshot_id`].
    pub fn snapshot_image(&self, id: &str) -> PathBuf {
        self.snapshots_dir().join(format!("{id}.img"))
    }

    /// The temporary file for an image being made.
    pub fn tmp_image(&self, id: &str) -> PathBuf {
        self.tmp_dir().join(format!("{id}.img"))
    }
}

const VOLUME_PREFIX: &str = "vol-";
const SNAPSHOT_PREFIX: &str = "snap-";

fn new_id(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::new_v4().simple())
}

/// The loopfile backend takes no StorageClass parameters of its own. Keys the CSI sidecars add
/// (`csi.storage.k8s.io/...`) are accepted and ignored; any other is INVALID_ARGUMENT.
pub fn validate_parameters(
    parameters: &std::collections::BTreeMap<String, String>,
) -> Result<(), crate::CsiError> {
    match parameters
        .keys()
        .find(|k| !k.starts_with("csi.storage.k8s.io/"))
    {
        Some(key) => Err(crate::CsiError::InvalidArgument(format!(
            "unknown StorageClass parameter {key:?}: the loopfile backend takes none"
        ))),
        None => Ok(()),
    }
}

/// The volume ID for a CO name: `vol-` and the first 32 hex digits of SHA-256 of the name.
/// Deterministic, so a coordinator and the node that holds the image agree on it without a
/// round trip, and a retried CreateVolume finds the same volume.
pub fn volume_id_for(name: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("hearth-loopfile-volume:{name}").as_bytes());
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    format!("{VOLUME_PREFIX}{hex}")
}

fn is_id(prefix: &str, s: &str) -> bool {
    s.strip_prefix(prefix).is_some_and(|hex| {
        hex.len() == 32
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// True when `s` has the shape of a loopfile volume ID (safe to use in a path).
pub fn is_volume_id(s: &str) -> bool {
    is_id(VOLUME_PREFIX, s)
}

/// True when `s` has the shape of a loopfile snapshot ID (safe to use in a path).
pub fn is_snapshot_id(s: &str) -> bool {
    is_id(SNAPSHOT_PREFIX, s)
}

/// fsyncs a directory, so a rename or unlink in it is durable.
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked_strictly() {
        let id = new_id(VOLUME_PREFIX);
        assert!(is_volume_id(&id));
        assert!(!is_snapshot_id(&id));
        for bad in [
            "",
            "vol-",
            "vol-../../etc",
            "vol-0123456789abcdef0123456789ABCDEF",
            "x",
        ] {
            assert!(!is_volume_id(bad), "{bad}");
        }
    }
}
