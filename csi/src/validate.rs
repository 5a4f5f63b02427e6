//! Validation of CSI request fields, shared by the controller and node services.
//!
//! Everything that comes from outside is checked here before it reaches a backend, an attacher
//! or the mounter: names, IDs, capacity ranges, volume capabilities and paths. Nothing here
//! touches the host except [`path_under`], which resolves symlinks of existing ancestors.

use std::path::{Component, Path, PathBuf};

use hearth_proto::csi::v1::volume_capability::access_mode::Mode;
use hearth_proto::csi::v1::volume_capability::AccessType;
use hearth_proto::csi::v1::{CapacityRange, VolumeCapability};

use crate::mount::{self, FsType, MountOptions};
use crate::CsiError;

/// The longest name or ID Hearth accepts (the CSI spec recommends at most 128 bytes).
pub const MAX_NAME_LEN: usize = 128;
/// Sizes are rounded up to this unit.
pub const SIZE_UNIT: u64 = 1 << 20;
/// The size of a volume created without a capacity range.
pub const DEFAULT_SIZE: u64 = 1 << 30;
/// The largest volume Hearth supports (ext4 with 4 KiB blocks tops out at 16 TiB per file).
pub const MAX_SIZE: u64 = 8 << 40;

/// A size for a CSI or SQLite `int64` field, saturating (sizes never reach `i64::MAX`).
pub fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Checks that a required string field is present, short and printable.
pub fn required<'a>(field: &str, value: &'a str) -> Result<&'a str, CsiError> {
    if value.is_empty() {
        return Err(CsiError::InvalidArgument(format!("{field} is required")));
    }
    if value.len() > MAX_NAME_LEN {
        return Err(CsiError::InvalidArgument(format!(
            "{field} is {} bytes long; at most {MAX_NAME_LEN} are allowed",
            value.len()
        )));
    }
    if value.chars().any(|c| c.is_control()) {
        return Err(CsiError::InvalidArgument(format!(
            "{field} contains control characters"
        )));
    }
    Ok(value)
}

/// Resolves a capacity range to a size in bytes, rounded up to [`SIZE_UNIT`].
/// Returns the size and the limit (0 when unlimited).
pub fn capacity(range: Option<&CapacityRange>, default: u64) -> Result<(u64, u64), CsiError> {
    let Some(range) = range else {
        return Ok((default, 0));
    };
    let (Ok(required), Ok(limit)) = (
        u64::try_from(range.required_bytes),
        u64::try_from(range.limit_bytes),
    ) else {
        return Err(CsiError::InvalidArgument(format!(
            "capacity_range has a negative size (required {}, limit {})",
            range.required_bytes, range.limit_bytes
        )));
    };
    if limit != 0 && required > limit {
        return Err(CsiError::InvalidArgument(format!(
            "capacity_range.required_bytes {required} is larger than limit_bytes {limit}"
        )));
    }
    let wanted = if required == 0 {
        default.min(if limit == 0 { u64::MAX } else { limit })
    } else {
        required
    };
    let size = wanted.div_ceil(SIZE_UNIT).max(1) * SIZE_UNIT;
    if limit != 0 && size > limit {
        return Err(CsiError::OutOfRange(format!(
            "the smallest size Hearth can make that covers {wanted} bytes is {size} bytes, above limit_bytes {limit}"
        )));
    }
    if size > MAX_SIZE {
        return Err(CsiError::OutOfRange(format!(
            "{size} bytes is above the largest supported volume size, {MAX_SIZE} bytes"
        )));
    }
    Ok((size, limit))
}

/// A volume capability Hearth supports, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// A raw block device.
    Block {
        /// True when the mode allows no writer.
        reader_only: bool,
        /// True when only one workload may use it (SINGLE_NODE_SINGLE_WRITER).
        single_writer: bool,
    },
    /// A mounted filesystem.
    Mount {
        /// The filesystem.
        fs: FsType,
        /// The mount flags, validated.
        flags: Vec<String>,
        /// True when the mode allows no writer.
        reader_only: bool,
        /// True when only one workload may use it (SINGLE_NODE_SINGLE_WRITER).
        single_writer: bool,
    },
}

impl Access {
    /// True when the mode allows no writer.
    pub fn reader_only(&self) -> bool {
        match self {
            Self::Block { reader_only, .. } | Self::Mount { reader_only, .. } => *reader_only,
        }
    }

    /// True when only one workload on the node may write.
    pub fn single_writer(&self) -> bool {
        match self {
            Self::Block { single_writer, .. } | Self::Mount { single_writer, .. } => *single_writer,
        }
    }

    /// Mount options for a publish of this access, with the request's readonly flag.
    pub fn mount_options(&self, readonly: bool) -> MountOptions {
        let flags = match self {
            Self::Block { .. } => Vec::new(),
            Self::Mount { flags, .. } => flags.clone(),
        };
        MountOptions {
            readonly: readonly || self.reader_only(),
            flags,
        }
    }
}

/// Parses one capability, or says why Hearth cannot serve it.
/// `multi_node` is true where the backend can attach a volume on more than one node. Even then
/// a multi-node *writer* is only a raw block volume (KubeVirt live migration): ext4 and xfs are
/// not cluster filesystems.
pub fn access(cap: &VolumeCapability, multi_node: bool) -> Result<Access, CsiError> {
    let mode = cap.access_mode.as_ref().ok_or_else(|| {
        CsiError::InvalidArgument("volume_capability.access_mode is required".into())
    })?;
    let mode = Mode::try_from(mode.mode).map_err(|_| {
        CsiError::InvalidArgument(format!(
            "access mode {} is not a CSI access mode",
            mode.mode
        ))
    })?;
    let (reader_only, single_writer) = match mode {
        Mode::SingleNodeWriter | Mode::SingleNodeMultiWriter => (false, false),
        Mode::SingleNodeSingleWriter => (false, true),
        Mode::SingleNodeReaderOnly | Mode::MultiNodeReaderOnly => (true, false),
        Mode::MultiNodeSingleWriter | Mode::MultiNodeMultiWriter
            if multi_node && matches!(cap.access_type, Some(AccessType::Block(_))) =>
        {
            (false, false)
        }
        Mode::MultiNodeSingleWriter | Mode::MultiNodeMultiWriter | Mode::Unknown => {
            return Err(CsiError::InvalidArgument(format!(
                "access mode {} is not supported by this backend",
                mode.as_str_name()
            )))
        }
    };
    match cap.access_type.as_ref() {
        Some(AccessType::Block(_)) => Ok(Access::Block {
            reader_only,
            single_writer,
        }),
        Some(AccessType::Mount(m)) => {
            let fs = FsType::parse(&m.fs_type).ok_or_else(|| {
                CsiError::InvalidArgument(format!(
                    "fs_type {:?} is not supported; use ext4 (the default) or xfs",
                    m.fs_type
                ))
            })?;
            mount::validate_mount_flags(&m.mount_flags)
                .map_err(|e| CsiError::InvalidArgument(e.to_string()))?;
            Ok(Access::Mount {
                fs,
                flags: m.mount_flags.clone(),
                reader_only,
                single_writer,
            })
        }
        None => Err(CsiError::InvalidArgument(
            "volume_capability.access_type (block or mount) is required".into(),
        )),
    }
}

/// The StorageClass parameter that names a volume's filesystem, as Kubernetes spells it. The
/// external-provisioner turns it into the capability's `fs_type` (and drops it); other callers
/// (csi-sanity's `--csi.testvolumeparameters`, a CO without that sidecar) pass it through, and
/// then the volume carries it in its context as [`FS_TYPE_CONTEXT`].
pub const FS_TYPE_PARAMETER: &str = "csi.storage.k8s.io/fstype";
/// The volume-context key that tells NodeStage the filesystem the volume was created for.
pub const FS_TYPE_CONTEXT: &str = "fsType";

/// The filesystem the parameters name, if any; INVALID_ARGUMENT for one Hearth cannot make.
pub fn parameter_fs(
    parameters: &std::collections::BTreeMap<String, String>,
) -> Result<Option<FsType>, CsiError> {
    let Some(name) = parameters.get(FS_TYPE_PARAMETER) else {
        return Ok(None);
    };
    match FsType::parse(name) {
        Some(fs) if !name.is_empty() => Ok(Some(fs)),
        _ => Err(CsiError::InvalidArgument(format!(
            "StorageClass parameter {FS_TYPE_PARAMETER}={name:?} is not supported; use ext4 or xfs"
        ))),
    }
}

/// The volume context of a volume created with `parameters`.
pub fn volume_context(
    parameters: &std::collections::BTreeMap<String, String>,
) -> std::collections::HashMap<String, String> {
    match parameter_fs(parameters) {
        Ok(Some(fs)) => [(FS_TYPE_CONTEXT.to_owned(), fs.as_str().to_owned())].into(),
        _ => Default::default(),
    }
}

/// For NodeStage: a mount capability without an `fs_type` takes the filesystem the volume was
/// created for, from its context; an explicit `fs_type` always wins.
pub fn with_context_fs(
    access: Access,
    cap: Option<&VolumeCapability>,
    context: &std::collections::HashMap<String, String>,
) -> Result<Access, CsiError> {
    let explicit = matches!(
        cap.and_then(|c| c.access_type.as_ref()),
        Some(AccessType::Mount(m)) if !m.fs_type.is_empty()
    );
    match (access, context.get(FS_TYPE_CONTEXT)) {
        (
            Access::Mount {
                flags,
                reader_only,
                single_writer,
                ..
            },
            Some(name),
        ) if !explicit => {
            let fs = FsType::parse(name).ok_or_else(|| {
                CsiError::InvalidArgument(format!(
                    "volume_context {FS_TYPE_CONTEXT}={name:?} is not supported; use ext4 or xfs"
                ))
            })?;
            Ok(Access::Mount {
                fs,
                flags,
                reader_only,
                single_writer,
            })
        }
        (access, _) => Ok(access),
    }
}

/// Checks a list of capabilities, which must not be empty.
pub fn accesses(caps: &[VolumeCapability], multi_node: bool) -> Result<Vec<Access>, CsiError> {
    if caps.is_empty() {
        return Err(CsiError::InvalidArgument(
            "volume_capabilities is required".into(),
        ));
    }
    caps.iter().map(|c| access(c, multi_node)).collect()
}

/// Where a path from a request lies, judged without touching anything outside the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Located {
    /// Under the root; the path with the symlinks of its existing ancestors resolved.
    Under(PathBuf),
    /// Not under the root (relative, with `..`, outside, or resolving outside): why.
    Elsewhere(String),
}

/// Checks that `path` is absolute, has no `..`, and lies under `root` once the symlinks of its
/// existing ancestors are resolved. Returns the path with those symlinks resolved.
pub fn path_under(field: &str, path: &str, root: &Path) -> Result<PathBuf, CsiError> {
    match locate_under(field, path, root)? {
        Located::Under(p) => Ok(p),
        Located::Elsewhere(why) => Err(CsiError::InvalidArgument(why)),
    }
}

/// Like [`path_under`], for calls where a path that cannot hold one of this node's volumes is
/// an answer ("not there": NOT_FOUND) rather than a bad request. Only an empty or unusable
/// path is INVALID_ARGUMENT. Nothing outside `root` is resolved or touched: a path is
/// canonicalised only once it lies under `root` lexically.
pub fn locate_under(field: &str, path: &str, root: &Path) -> Result<Located, CsiError> {
    if path.is_empty() {
        return Err(CsiError::InvalidArgument(format!("{field} is required")));
    }
    if path.len() > 4096 || path.chars().any(|c| c.is_control()) {
        return Err(CsiError::InvalidArgument(format!(
            "{field} is not a usable path"
        )));
    }
    let p = Path::new(path);
    if !p.is_absolute() || p.components().any(|c| matches!(c, Component::ParentDir)) {
        return Ok(Located::Elsewhere(format!(
            "{field} {path:?} must be an absolute path without '..'"
        )));
    }
    let outside = || {
        Located::Elsewhere(format!(
            "{field} {path:?} is outside the kubelet directory {}",
            root.display()
        ))
    };
    if !p.starts_with(root) {
        return Ok(outside());
    }
    let root = root.canonicalize().map_err(|e| {
        CsiError::FailedPrecondition(format!("kubelet directory {}: {e}", root.display()))
    })?;
    // Resolve the longest existing ancestor, then re-attach the rest.
    let mut existing = p.to_path_buf();
    let mut rest = Vec::new();
    loop {
        match existing.canonicalize() {
            Ok(real) => {
                let mut full = real;
                full.extend(rest.iter().rev());
                if !full.starts_with(&root) {
                    return Ok(outside());
                }
                return Ok(Located::Under(full));
            }
            Err(_) => {
                let Some(name) = existing.file_name().map(|n| n.to_owned()) else {
                    return Ok(outside());
                };
                rest.push(name);
                if !existing.pop() {
                    return Ok(outside());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hearth_proto::csi::v1::volume_capability::{AccessMode, BlockVolume, MountVolume};

    fn cap(mode: Mode, access: AccessType) -> VolumeCapability {
        VolumeCapability {
            access_mode: Some(AccessMode { mode: mode as i32 }),
            access_type: Some(access),
        }
    }

    #[test]
    fn capacity_rounds_up_and_respects_limits() {
        let r = |req, lim| CapacityRange {
            required_bytes: req,
            limit_bytes: lim,
        };
        assert_eq!(capacity(None, DEFAULT_SIZE).unwrap(), (DEFAULT_SIZE, 0));
        assert_eq!(capacity(Some(&r(1, 0)), DEFAULT_SIZE).unwrap().0, SIZE_UNIT);
        assert_eq!(
            capacity(Some(&r(0, 5 << 20)), DEFAULT_SIZE).unwrap().0,
            5 << 20
        );
        assert!(matches!(
            capacity(Some(&r(10, 5)), 0),
            Err(CsiError::InvalidArgument(_))
        ));
        assert!(matches!(
            capacity(Some(&r(-1, 0)), 0),
            Err(CsiError::InvalidArgument(_))
        ));
        assert!(matches!(
            capacity(Some(&r(100, 200)), 0),
            Err(CsiError::OutOfRange(_))
        ));
        assert!(matches!(
            capacity(Some(&r(i64::MAX, 0)), 0),
            Err(CsiError::OutOfRange(_))
        ));
    }

    #[test]
    fn access_modes_and_types() {
        let block = AccessType::Block(BlockVolume {});
        let mount = |fs: &str, flags: &[&str]| {
            AccessType::Mount(MountVolume {
                fs_type: fs.into(),
                mount_flags: flags.iter().map(|s| s.to_string()).collect(),
                ..Default::default()
            })
        };
        assert!(access(&cap(Mode::SingleNodeWriter, block.clone()), false).is_ok());
        assert!(access(&cap(Mode::MultiNodeMultiWriter, block.clone()), false).is_err());
        assert!(access(&cap(Mode::MultiNodeMultiWriter, block), true).is_ok());
        let ext4_rwx = cap(Mode::MultiNodeMultiWriter, mount("ext4", &[]));
        assert!(
            access(&ext4_rwx, true).is_err(),
            "ext4 is not a cluster filesystem"
        );
        let ro = access(
            &cap(Mode::MultiNodeReaderOnly, mount("xfs", &["noatime"])),
            false,
        )
        .unwrap();
        assert!(ro.reader_only());
        assert!(access(&cap(Mode::SingleNodeWriter, mount("vfat", &[])), false).is_err());
        assert!(access(&cap(Mode::SingleNodeWriter, mount("", &["bind"])), false).is_err());
        let missing = VolumeCapability {
            access_mode: None,
            access_type: None,
        };
        assert!(access(&missing, false).is_err());
    }

    #[test]
    fn paths_must_stay_under_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("kubelet");
        std::fs::create_dir_all(root.join("pods")).unwrap();
        std::os::unix::fs::symlink("/etc", root.join("pods/escape")).unwrap();
        let ok = root.join("pods/new/target");
        assert!(path_under("target_path", ok.to_str().unwrap(), &root).is_ok());
        for bad in ["", "relative", "/etc/passwd"] {
            assert!(path_under("target_path", bad, &root).is_err(), "{bad}");
        }
        let dotdot = format!("{}/pods/../../x", root.display());
        assert!(path_under("target_path", &dotdot, &root).is_err());
        let via_link = format!("{}/pods/escape/x", root.display());
        assert!(path_under("target_path", &via_link, &root).is_err());
    }

    #[test]
    fn the_fstype_parameter_reaches_the_volume_context() {
        let params = |v: &str| -> std::collections::BTreeMap<String, String> {
            [(FS_TYPE_PARAMETER.to_owned(), v.to_owned())].into()
        };
        assert_eq!(parameter_fs(&params("xfs")).unwrap(), Some(FsType::Xfs));
        assert_eq!(parameter_fs(&Default::default()).unwrap(), None);
        for bad in ["", "btrfs"] {
            assert!(matches!(
                parameter_fs(&params(bad)),
                Err(CsiError::InvalidArgument(_))
            ));
        }
        assert_eq!(
            volume_context(&params("xfs"))
                .get(FS_TYPE_CONTEXT)
                .map(String::as_str),
            Some("xfs")
        );
        assert!(volume_context(&Default::default()).is_empty());
    }
}
