//! The storage collector: this node's pools with capacity and free space (LINSTOR's
//! storage-pool view, or the state directory's filesystem for loopfile) and every volume from
//! the CSI backend, local devices from a
//! [`DeviceMap`] read once per snapshot, and staged/published paths and filesystem usage from
//! one mountinfo read. Owns nothing the CSI services use; it only reads, and never mounts,
//! attaches or takes a volume lock.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use hearth_csi::backend::VolumeBackend;
use hearth_csi::mount::{mountinfo, MountEntry};

use super::snapshot::{Storage, StoragePool, VolumeHealth};
use super::HealthError;

/// Reads the storage picture.
#[async_trait]
pub trait StorageSource: Send + Sync {
    /// One picture of pools and volumes.
    async fn storage(&self) -> Result<Storage, HealthError>;
}

/// Maps volume IDs to local block devices, in one pass.
pub trait DeviceMap: Send + Sync {
    /// Devices by volume ID.
    fn devices(&self) -> HashMap<String, PathBuf>;
}

/// Loop devices backing loopfile images: `/sys/block/loop*/loop/backing_file`.
#[derive(Debug, Clone)]
pub struct LoopDevices {
    /// `DIR/volumes` of the loopfile layout.
    pub volumes_dir: PathBuf,
    /// `/sys/block`, or a fake tree in tests.
    pub sys_block: PathBuf,
}

impl DeviceMap for LoopDevices {
    fn devices(&self) -> HashMap<String, PathBuf> {
        let mut out = HashMap::new();
        let Ok(entries) = std::fs::read_dir(&self.sys_block) else {
            return out;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.starts_with("loop") {
                continue;
            }
            let Ok(backing) = std::fs::read_to_string(entry.path().join("loop/backing_file"))
            else {
                continue;
            };
            let backing = Path::new(backing.trim());
            if backing.parent() != Some(self.volumes_dir.as_path()) {
                continue;
            }
            if let Some(id) = backing.file_stem().and_then(|s| s.to_str()) {
                out.insert(id.to_owned(), PathBuf::from("/dev").join(&name));
            }
        }
        out
    }
}

/// No local device knowledge (LINSTOR: devices show up through mountinfo sources only).
#[derive(Debug, Clone, Copy)]
pub struct NoDevices;

impl DeviceMap for NoDevices {
    fn devices(&self) -> HashMap<String, PathBuf> {
        HashMap::new()
    }
}

/// The real storage source over a CSI backend.
pub struct BackendStorage {
    /// `loopfile` or `linstor`.
    pub name: String,
    /// This node's name: pools are listed for it.
    pub node: String,
    /// The backend the controller serves.
    pub backend: Arc<dyn VolumeBackend>,
    /// Local devices.
    pub devices: Arc<dyn DeviceMap>,
    /// The kubelet directory: mounts under `DIR/pods` are published, others staged.
    pub kubelet_dir: PathBuf,
}

#[async_trait]
impl StorageSource for BackendStorage {
    async fn storage(&self) -> Result<Storage, HealthError> {
        let volumes = self
            .backend
            .list_volumes()
            .await
            .map_err(|e| HealthError::ListVolumes(e.to_string()))?;
        let pools = self
            .backend
            .pools(&self.node)
            .await
            .map_err(|e| HealthError::Capacity(e.to_string()))?;
        let devices = self.devices.clone();
        let kubelet = self.kubelet_dir.clone();
        let ids: Vec<(String, u64)> = volumes
            .iter()
            .map(|v| (v.id.clone(), v.capacity_bytes))
            .collect();
        let mut out = tokio::task::spawn_blocking(move || {
            let mounts = mountinfo::read().unwrap_or_default();
            local_view(&ids, &devices.devices(), &mounts, &kubelet)
        })
        .await
        .map_err(|e| HealthError::Worker(e.to_string()))?;
        for v in out.iter_mut().filter(|v| v.device.is_some()) {
            match self.backend.volume_condition(&v.id).await {
                Ok(c) => (v.healthy, v.condition) = (!c.abnormal, c.message),
                Err(e) => (v.healthy, v.condition) = (false, e.to_string()),
            }
        }
        Ok(Storage {
            backend: self.name.clone(),
            pools: pools
                .into_iter()
                .map(|p| StoragePool {
                    name: p.name,
                    node: p.node,
                    kind: p.kind,
                    total_bytes: p.total_bytes,
                    free_bytes: p.free_bytes,
                })
                .collect(),
            volumes: out,
        })
    }
}

/// Joins volumes with devices and mounts: pure, so tests feed it fixtures.
pub fn local_view(
    volumes: &[(String, u64)],
    devices: &HashMap<String, PathBuf>,
    mounts: &[MountEntry],
    kubelet_dir: &Path,
) -> Vec<VolumeHealth> {
    let pods = kubelet_dir.join("pods");
    let mut by_source: HashMap<&str, Vec<&MountEntry>> = HashMap::new();
    for m in mounts {
        by_source.entry(m.source.as_str()).or_default().push(m);
        // A block volume is the device node bind-mounted from devtmpfs: root is `/loopN`.
        if m.fs_type == "devtmpfs" {
            by_source
                .entry(m.root.to_str().unwrap_or(""))
                .or_default()
                .push(m);
        }
    }
    volumes
        .iter()
        .map(|(id, size)| {
            let device = devices.get(id);
            let mut v = VolumeHealth {
                id: id.clone(),
                size_bytes: *size,
                device: device.map(|d| d.display().to_string()),
                healthy: true,
                condition: if device.is_some() {
                    "attached"
                } else {
                    "not attached here"
                }
                .into(),
                ..VolumeHealth::default()
            };
            let Some(dev) = device else { return v };
            let dev_str = dev.to_str().unwrap_or("");
            let dev_rel = dev
                .strip_prefix("/dev")
                .ok()
                .map(|p| format!("/{}", p.display()));
            let found = by_source
                .get(dev_str)
                .into_iter()
                .chain(dev_rel.as_deref().and_then(|r| by_source.get(r)))
                .flatten();
            for m in found {
                let path = m.mount_point.display().to_string();
                if m.mount_point.starts_with(&pods) {
                    v.published_paths.push(path);
                } else {
                    v.staged_paths.push(path);
                }
            }
            if let Some(staged) = v.staged_paths.first() {
                if let Ok(st) = nix::sys::statvfs::statvfs(staged.as_str()) {
                    let frag = st.fragment_size();
                    v.fs_total_bytes = Some(st.blocks() * frag);
                    v.fs_used_bytes = Some((st.blocks() - st.blocks_free()) * frag);
                }
            }
            v
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount(source: &str, point: &str, fs: &str, root: &str) -> MountEntry {
        let line = format!("36 1 7:0 {root} {point} rw - {fs} {source} rw\n");
        mountinfo::parse(&line).expect("fixture parses").remove(0)
    }

    #[test]
    fn joins_devices_with_staged_and_published_mounts() {
        let devices = HashMap::from([("v1".to_owned(), PathBuf::from("/dev/loop3"))]);
        let mounts = vec![
            mount("/dev/loop3", "/k/plugins/x/globalmount", "ext4", "/"),
            mount("/dev/loop3", "/k/pods/p/volumes/mount", "ext4", "/"),
            mount("udev", "/k/pods/q/volumeDevices/v", "devtmpfs", "/loop3"),
        ];
        let vols = [("v1".to_owned(), 10), ("v2".to_owned(), 20)];
        let out = local_view(&vols, &devices, &mounts, Path::new("/k"));
        assert_eq!(out[0].device.as_deref(), Some("/dev/loop3"));
        assert_eq!(out[0].staged_paths, ["/k/plugins/x/globalmount"]);
        assert_eq!(out[0].published_paths.len(), 2);
        assert_eq!(out[1].device, None);
        assert_eq!(out[1].condition, "not attached here");
    }

    #[test]
    fn loop_devices_reads_backing_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let lo = dir.path().join("loop7/loop");
        std::fs::create_dir_all(&lo).expect("mkdir");
        std::fs::write(lo.join("backing_file"), "/s/volumes/vol-1.img\n").expect("write");
        let map = LoopDevices {
            volumes_dir: "/s/volumes".into(),
            sys_block: dir.path().into(),
        };
        assert_eq!(
            map.devices().get("vol-1"),
            Some(&PathBuf::from("/dev/loop7"))
        );
    }
}
