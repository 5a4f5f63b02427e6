//! Format markers: a file per volume that says "Hearth started formatting this device and has
//! not seen mkfs finish". They make formatting crash-safe without ever reformatting data: a
//! device with a signature is reformatted only when its marker proves the signature is a
//! half-written one of Hearth's own, from a format that never completed and was never mounted.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

/// The marker directory.
#[derive(Debug, Clone)]
pub struct FormatMarkers {
    dir: PathBuf,
}

impl FormatMarkers {
    /// Markers under `dir` (created if missing).
    pub fn new(dir: &Path) -> io::Result<Self> {
        fs::create_dir_all(dir)?;
        Ok(Self {
            dir: dir.to_owned(),
        })
    }

    fn path(&self, volume_id: &str) -> PathBuf {
        self.dir.join(volume_id)
    }

    /// True when a format of this volume was started and not finished.
    pub fn pending(&self, volume_id: &str) -> bool {
        self.path(volume_id).exists()
    }

    /// Records, durably, that a format is about to start.
    pub fn begin(&self, volume_id: &str) -> io::Result<()> {
        File::create(self.path(volume_id))?.sync_all()?;
        File::open(&self.dir)?.sync_all()
    }

    /// Records, durably, that the format finished.
    pub fn finish(&self, volume_id: &str) -> io::Result<()> {
        match fs::remove_file(self.path(volume_id)) {
            Ok(()) => File::open(&self.dir)?.sync_all(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markers_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let m = FormatMarkers::new(&dir.path().join("formatting")).unwrap();
        assert!(!m.pending("vol-a"));
        m.begin("vol-a").unwrap();
        assert!(m.pending("vol-a"));
        m.finish("vol-a").unwrap();
        m.finish("vol-a").unwrap();
        assert!(!m.pending("vol-a"));
    }
}
