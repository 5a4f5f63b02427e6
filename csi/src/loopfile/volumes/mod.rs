//! The loopfile VolumeBackend: creates, grows, copies and removes image files and their
//! records. Every step is ordered so a crash leaves a record that says what to finish.
//! Snapshots are in `snapshots.rs`.

use std::collections::BTreeMap;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::Path;
use std::sync::Arc;

use super::catalog::{Catalog, CatalogError, RecordState, VolumeRecord};
use super::{is_volume_id, sync_dir, volume_id_for, Layout};
use crate::attach::Condition;
use crate::backend::{
    BackendFeatures, ContentSource, PoolCapacity, Snapshot, Volume, VolumeBackend, VolumeSpec,
};
use crate::host::{copy, loopdev};
use crate::{CsiError, TOPOLOGY_NODE_KEY};

mod snapshots;

use snapshots::to_snapshot;

impl From<CatalogError> for CsiError {
    fn from(err: CatalogError) -> Self {
        CsiError::Internal(err.to_string())
    }
}

fn io_err(context: impl std::fmt::Display) -> impl FnOnce(io::Error) -> CsiError {
    move |e| {
        if e.raw_os_error() == Some(libc::ENOSPC) {
            CsiError::ResourceExhausted(format!("{context}: no space left in the state directory"))
        } else {
            CsiError::internal(context, e)
        }
    }
}

/// The loopfile backend.
#[derive(Debug, Clone)]
pub struct LoopfileBackend {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    layout: Layout,
    catalog: Catalog,
    node_id: String,
}

impl LoopfileBackend {
    /// Opens the backend under the layout's state directory, creating it if needed, and
    /// finishes or undoes whatever a crash interrupted.
    pub fn open(layout: Layout, node_id: &str) -> Result<Self, CsiError> {
        layout
            .create_dirs()
            .map_err(io_err("creating the state directories"))?;
        let catalog = Catalog::open(&layout.catalog())?;
        let inner = Inner {
            layout,
            catalog,
            node_id: node_id.to_owned(),
        };
        inner.recover()?;
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Inner) -> Result<T, CsiError> + Send + 'static,
    ) -> Result<T, CsiError> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || f(&inner)).await?
    }
}

impl Inner {
    fn topology(&self) -> Vec<BTreeMap<String, String>> {
        vec![BTreeMap::from([(
            TOPOLOGY_NODE_KEY.to_owned(),
            self.node_id.clone(),
        )])]
    }

    /// True when a volume here is reachable from the topology segment: every key the segment
    /// names must match this node's.
    fn reaches(&self, segment: &BTreeMap<String, String>) -> bool {
        self.topology()
            .iter()
            .any(|ours| segment.iter().all(|(k, v)| ours.get(k) == Some(v)))
    }

    fn to_volume(&self, r: VolumeRecord) -> Volume {
        Volume {
            id: r.id,
            name: r.name,
            capacity_bytes: r.capacity_bytes,
            parameters: r.parameters,
            source: r.source,
            topology: self.topology(),
            context: BTreeMap::new(),
        }
    }

    /// Finishes or undoes interrupted work: see the module docs.
    fn recover(&self) -> Result<(), CsiError> {
        let tmp = self.layout.tmp_dir();
        for entry in fs::read_dir(&tmp).map_err(io_err("reading tmp/"))? {
            let entry = entry.map_err(io_err("reading tmp/"))?;
            tracing::info!(path = %entry.path().display(), "removing an image left half made by a crash");
            fs::remove_file(entry.path()).map_err(io_err("removing a half-made image"))?;
        }
        for v in self.catalog.volumes()? {
            let image = self.layout.volume_image(&v.id);
            match v.state {
                RecordState::Ready => {
                    if !image.exists() {
                        tracing::error!(volume = %v.id, "the image of a ready volume is missing");
                    }
                }
                RecordState::Creating if image.exists() => {
                    self.catalog.set_volume_state(&v.id, RecordState::Ready)?;
                }
                RecordState::Creating => self.catalog.remove_volume(&v.id)?,
                RecordState::Deleting => self.remove_volume_files(&v.id)?,
            }
        }
        for s in self.catalog.snapshots()? {
            let image = self.layout.snapshot_image(&s.id);
            match s.state {
                RecordState::Ready => {}
                RecordState::Creating if image.exists() => {
                    self.catalog.set_snapshot_state(&s.id, RecordState::Ready)?;
                }
                RecordState::Creating => self.catalog.remove_snapshot(&s.id)?,
                RecordState::Deleting => self.remove_snapshot_files(&s.id)?,
            }
        }
        self.report_orphans()
    }

    fn report_orphans(&self) -> Result<(), CsiError> {
        let volumes: Vec<String> = self.catalog.volumes()?.into_iter().map(|v| v.id).collect();
        let snapshots: Vec<String> = self
            .catalog
            .snapshots()?
            .into_iter()
            .map(|s| s.id)
            .collect();
        for (dir, known) in [
            (self.layout.volumes_dir(), volumes),
            (self.layout.snapshots_dir(), snapshots),
        ] {
            for entry in fs::read_dir(&dir).map_err(io_err("reading the image directory"))? {
                let path = entry.map_err(io_err("reading the image directory"))?.path();
                let id = path
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .unwrap_or_default();
                if !known.iter().any(|k| k == id) {
                    tracing::warn!(path = %path.display(), "image without a record; leaving it in place");
                }
            }
        }
        Ok(())
    }

    /// The state directory's filesystem: the one pool images are carved from.
    fn state_dir_pool(&self) -> Result<PoolCapacity, CsiError> {
        let st = nix::sys::statvfs::statvfs(self.layout.root())
            .map_err(|e| CsiError::internal("statvfs of the state directory", e))?;
        Ok(PoolCapacity {
            name: "state-dir".into(),
            node: self.node_id.clone(),
            kind: "filesystem".into(),
            total_bytes: Some(st.blocks().saturating_mul(st.fragment_size())),
            free_bytes: Some(st.blocks_available().saturating_mul(st.fragment_size())),
        })
    }

    fn available_bytes(&self) -> Result<u64, CsiError> {
        let st = nix::sys::statvfs::statvfs(self.layout.root())
            .map_err(|e| CsiError::internal("statvfs of the state directory", e))?;
        Ok(st.blocks_available().saturating_mul(st.fragment_size()))
    }

    fn ensure_space(&self, bytes: u64) -> Result<(), CsiError> {
        let available = self.available_bytes()?;
        if bytes > available {
            return Err(CsiError::ResourceExhausted(format!(
                "{bytes} bytes requested but the state directory has {available} bytes free"
            )));
        }
        Ok(())
    }

    /// Writes a complete image to tmp/, then renames it into place.
    fn materialize(
        &self,
        id: &str,
        final_path: &Path,
        size: u64,
        from: Option<&Path>,
    ) -> Result<(), CsiError> {
        let tmp = self.layout.tmp_image(id);
        match fs::remove_file(&tmp) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_err("removing a stale temporary image")(e)),
        }
        let result = (|| {
            match from {
                Some(src) => {
                    copy::clone_file(src, &tmp)
                        .map_err(|e| CsiError::internal(format!("copying {}", src.display()), e))?;
                }
                None => {
                    File::create_new(&tmp).map_err(io_err("creating an image"))?;
                }
            }
            let f = OpenOptions::new()
                .write(true)
                .open(&tmp)
                .map_err(io_err("opening an image"))?;
            if f.metadata()
                .map_err(io_err("reading an image's size"))?
                .len()
                < size
            {
                f.set_len(size).map_err(io_err("sizing an image"))?;
            }
            f.sync_all().map_err(io_err("syncing an image"))?;
            fs::rename(&tmp, final_path).map_err(io_err("moving an image into place"))?;
            sync_dir(final_path.parent().unwrap_or(Path::new("/")))
                .map_err(io_err("syncing the image directory"))
        })();
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    fn create_volume(&self, spec: &VolumeSpec) -> Result<Volume, CsiError> {
        if !spec.requisite.is_empty() && !spec.requisite.iter().any(|s| self.reaches(s)) {
            return Err(CsiError::ResourceExhausted(format!(
                "this loopfile backend serves only node {}, which is not in the requisite topology",
                self.node_id
            )));
        }
        if let Some(existing) = self.catalog.volume_by_name(&spec.name)? {
            check_compatible(&existing, spec)?;
            match existing.state {
                RecordState::Ready => return Ok(self.to_volume(existing)),
                RecordState::Deleting => {
                    return Err(CsiError::Aborted(format!(
                        "volume {} named {} is being deleted; retry",
                        existing.id, spec.name
                    )))
                }
                RecordState::Creating => {
                    // Resume below with the same ID; the source is re-checked.
                    return self.finish_volume(existing);
                }
            }
        }
        let record = VolumeRecord {
            id: volume_id_for(&spec.name),
            name: spec.name.clone(),
            capacity_bytes: spec.capacity_bytes,
            parameters: spec.parameters.clone(),
            source: spec.source.clone(),
            state: RecordState::Creating,
        };
        self.source_image(record.source.as_ref(), record.capacity_bytes)?;
        self.ensure_space(record.capacity_bytes)?;
        self.catalog.insert_volume(&record)?;
        self.finish_volume(record)
    }

    fn finish_volume(&self, mut record: VolumeRecord) -> Result<Volume, CsiError> {
        let source = self.source_image(record.source.as_ref(), record.capacity_bytes)?;
        let image = self.layout.volume_image(&record.id);
        if !image.exists() {
            if let Err(e) =
                self.materialize(&record.id, &image, record.capacity_bytes, source.as_deref())
            {
                // Nothing was handed out yet: undo the record so a retry starts clean.
                self.catalog.remove_volume(&record.id)?;
                return Err(e);
            }
        }
        self.catalog
            .set_volume_state(&record.id, RecordState::Ready)?;
        record.state = RecordState::Ready;
        Ok(self.to_volume(record))
    }

    /// The image to copy a new volume from, checked to exist and fit.
    fn source_image(
        &self,
        source: Option<&ContentSource>,
        size: u64,
    ) -> Result<Option<std::path::PathBuf>, CsiError> {
        let (path, source_size) = match source {
            None => return Ok(None),
            Some(ContentSource::Snapshot(id)) => {
                let snap = self.snapshot_ready(id)?.ok_or_else(|| {
                    CsiError::NotFound(format!("source snapshot {id} does not exist"))
                })?;
                (self.layout.snapshot_image(id), snap.size_bytes)
            }
            Some(ContentSource::Volume(id)) => {
                let vol = self.volume_ready(id)?.ok_or_else(|| {
                    CsiError::NotFound(format!("source volume {id} does not exist"))
                })?;
                (self.layout.volume_image(id), vol.capacity_bytes)
            }
        };
        if size < source_size {
            return Err(CsiError::OutOfRange(format!(
                "the new volume ({size} bytes) is smaller than its source ({source_size} bytes)"
            )));
        }
        Ok(Some(path))
    }

    fn volume_ready(&self, id: &str) -> Result<Option<VolumeRecord>, CsiError> {
        if !is_volume_id(id) {
            return Ok(None);
        }
        Ok(self
            .catalog
            .volume(id)?
            .filter(|v| v.state == RecordState::Ready))
    }

    fn delete_volume(&self, id: &str) -> Result<(), CsiError> {
        if !is_volume_id(id) {
            return Ok(());
        }
        let Some(record) = self.catalog.volume(id)? else {
            return Ok(());
        };
        let image = self.layout.volume_image(&record.id);
        if image.exists() {
            if let Some(dev) = loopdev::find_by_backing_file(&image)
                .map_err(|e| CsiError::internal("looking for the volume's loop device", e))?
            {
                return Err(CsiError::FailedPrecondition(format!(
                    "volume {id} is still attached as {}; unstage it first",
                    dev.path.display()
                )));
            }
        }
        self.catalog.set_volume_state(id, RecordState::Deleting)?;
        self.remove_volume_files(id)
    }

    fn remove_volume_files(&self, id: &str) -> Result<(), CsiError> {
        remove_image(&self.layout.volume_image(id))?;
        self.catalog.remove_volume(id)?;
        Ok(())
    }

    fn expand_volume(&self, id: &str, size: u64) -> Result<u64, CsiError> {
        let record = self
            .volume_ready(id)?
            .ok_or_else(|| CsiError::NotFound(format!("volume {id} does not exist")))?;
        if size <= record.capacity_bytes {
            return Ok(record.capacity_bytes);
        }
        self.ensure_space(size - record.capacity_bytes)?;
        let image = self.layout.volume_image(id);
        let f = OpenOptions::new()
            .write(true)
            .open(&image)
            .map_err(io_err("opening the volume image"))?;
        f.set_len(size)
            .map_err(io_err("growing the volume image"))?;
        f.sync_all().map_err(io_err("syncing the volume image"))?;
        self.catalog.set_volume_capacity(id, size)?;
        Ok(size)
    }

    fn volume_condition(&self, id: &str) -> Result<Condition, CsiError> {
        let record = self
            .volume_ready(id)?
            .ok_or_else(|| CsiError::NotFound(format!("volume {id} does not exist")))?;
        let image = self.layout.volume_image(id);
        Ok(match fs::metadata(&image) {
            Ok(m) if m.len() >= record.capacity_bytes => Condition::healthy("image present"),
            Ok(m) => Condition::abnormal(format!(
                "image {} is {} bytes, smaller than the volume's {} bytes",
                image.display(),
                m.len(),
                record.capacity_bytes
            )),
            Err(e) => Condition::abnormal(format!("image {}: {e}", image.display())),
        })
    }
}

fn remove_image(path: &Path) -> Result<(), CsiError> {
    match fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err(format!("removing {}", path.display()))(e)),
    }
    sync_dir(path.parent().unwrap_or(Path::new("/"))).map_err(io_err("syncing the image directory"))
}

fn check_compatible(existing: &VolumeRecord, spec: &VolumeSpec) -> Result<(), CsiError> {
    let size_ok = existing.capacity_bytes >= spec.capacity_bytes
        && (spec.limit_bytes == 0 || existing.capacity_bytes <= spec.limit_bytes);
    if !size_ok || existing.parameters != spec.parameters || existing.source != spec.source {
        return Err(CsiError::AlreadyExists(format!(
            "volume {} exists as {} with {} bytes and other parameters or source",
            spec.name, existing.id, existing.capacity_bytes
        )));
    }
    Ok(())
}

#[async_trait::async_trait]
impl VolumeBackend for LoopfileBackend {
    fn features(&self) -> BackendFeatures {
        BackendFeatures {
            snapshots: true,
            clones: true,
            expansion: true,
            publish: false,
            multi_node: false,
        }
    }

    fn validate_parameters(&self, parameters: &BTreeMap<String, String>) -> Result<(), CsiError> {
        super::validate_parameters(parameters)
    }

    async fn create_volume(&self, spec: &VolumeSpec) -> Result<Volume, CsiError> {
        let spec = spec.clone();
        self.blocking(move |i| i.create_volume(&spec)).await
    }

    async fn delete_volume(&self, volume_id: &str) -> Result<(), CsiError> {
        let id = volume_id.to_owned();
        self.blocking(move |i| i.delete_volume(&id)).await
    }

    async fn get_volume(&self, volume_id: &str) -> Result<Option<Volume>, CsiError> {
        let id = volume_id.to_owned();
        self.blocking(move |i| Ok(i.volume_ready(&id)?.map(|r| i.to_volume(r))))
            .await
    }

    async fn list_volumes(&self) -> Result<Vec<Volume>, CsiError> {
        self.blocking(|i| {
            Ok(i.catalog
                .volumes()?
                .into_iter()
                .filter(|v| v.state == RecordState::Ready)
                .map(|r| i.to_volume(r))
                .collect())
        })
        .await
    }

    async fn volume_condition(&self, volume_id: &str) -> Result<Condition, CsiError> {
        let id = volume_id.to_owned();
        self.blocking(move |i| i.volume_condition(&id)).await
    }

    async fn expand_volume(&self, volume_id: &str, capacity_bytes: u64) -> Result<u64, CsiError> {
        let id = volume_id.to_owned();
        self.blocking(move |i| i.expand_volume(&id, capacity_bytes))
            .await
    }

    async fn create_snapshot(
        &self,
        name: &str,
        source_volume_id: &str,
    ) -> Result<Snapshot, CsiError> {
        let (name, source) = (name.to_owned(), source_volume_id.to_owned());
        self.blocking(move |i| i.create_snapshot(&name, &source))
            .await
    }

    async fn delete_snapshot(&self, snapshot_id: &str) -> Result<(), CsiError> {
        let id = snapshot_id.to_owned();
        self.blocking(move |i| i.delete_snapshot(&id)).await
    }

    async fn list_snapshots(&self) -> Result<Vec<Snapshot>, CsiError> {
        self.blocking(|i| {
            Ok(i.catalog
                .snapshots()?
                .into_iter()
                .filter(|s| s.state == RecordState::Ready)
                .map(to_snapshot)
                .collect())
        })
        .await
    }

    async fn available_capacity(
        &self,
        _parameters: &BTreeMap<String, String>,
        segment: Option<&BTreeMap<String, String>>,
    ) -> Result<u64, CsiError> {
        if segment.is_some_and(|s| !self.inner.reaches(s)) {
            return Ok(0);
        }
        self.blocking(|i| i.available_bytes()).await
    }

    async fn pools(&self, _node: &str) -> Result<Vec<PoolCapacity>, CsiError> {
        self.blocking(|i| Ok(vec![i.state_dir_pool()?])).await
    }
}
