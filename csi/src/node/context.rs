//! What a volume's context tells NodeStage beyond its filesystem: the StorageClass's mkfs
//! arguments, mount options and post-mount XFS command, and whether the volume was restored
//! or cloned (then XFS mounts with `nouuid`: its UUID is its source's, and XFS refuses to
//! mount two filesystems with one UUID on a node). Checked again here: a volume context is
//! outside input. Pure.

use std::collections::HashMap;

use crate::mount::{extra, FsType};
use crate::CsiError;

/// mkfs arguments (the StorageClass's `fsOpts`), whitespace-separated.
pub const FS_OPTIONS_CONTEXT: &str = "hearth.dev/fs-options";
/// Mount options (the StorageClass's `mountOpts`), comma-separated.
pub const MOUNT_OPTIONS_CONTEXT: &str = "hearth.dev/mount-options";
/// One `xfs_io -c` command run after an XFS is mounted (`postMountXfsOpts`).
pub const POST_MOUNT_XFS_CONTEXT: &str = "hearth.dev/post-mount-xfs-options";
/// `true` for a restored or cloned volume: XFS mounts it with `nouuid`.
pub const XFS_NOUUID_CONTEXT: &str = "hearth.dev/xfs-nouuid";

/// The stage-time options of a volume, from its context.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StageOptions {
    /// Extra mkfs arguments.
    pub mkfs_args: Vec<String>,
    /// Extra mount flags, before the capability's (which win).
    pub mount_flags: Vec<String>,
    /// The xfs_io command to run after mounting an XFS.
    pub post_mount_xfs: Option<String>,
    /// Mount XFS with `nouuid`.
    pub xfs_nouuid: bool,
}

fn invalid(key: &str, why: String) -> CsiError {
    CsiError::InvalidArgument(format!("volume_context {key}: {why}"))
}

impl StageOptions {
    /// Reads and checks the options in `context`.
    pub fn from_context(context: &HashMap<String, String>) -> Result<Self, CsiError> {
        let get = |k: &str| context.get(k).map(String::as_str).unwrap_or_default();
        let mkfs_args = extra::mkfs_args(get(FS_OPTIONS_CONTEXT))
            .map_err(|e| invalid(FS_OPTIONS_CONTEXT, e))?;
        let mount_flags = extra::mount_flags(get(MOUNT_OPTIONS_CONTEXT))
            .map_err(|e| invalid(MOUNT_OPTIONS_CONTEXT, e))?;
        let post_mount_xfs = match get(POST_MOUNT_XFS_CONTEXT).trim() {
            "" => None,
            v => Some(extra::xfs_io_command(v).map_err(|e| invalid(POST_MOUNT_XFS_CONTEXT, e))?),
        };
        Ok(Self {
            mkfs_args,
            mount_flags,
            post_mount_xfs,
            xfs_nouuid: get(XFS_NOUUID_CONTEXT) == "true",
        })
    }

    /// The mount flags for a stage of `fs`: the class's, `nouuid` for a restored or cloned
    /// XFS, then the capability's, which win.
    pub fn flags_for(&self, fs: FsType, capability: &[String]) -> Vec<String> {
        let mut flags = self.mount_flags.clone();
        if fs == FsType::Xfs && self.xfs_nouuid {
            flags.push("nouuid".to_owned());
        }
        flags.extend(capability.iter().cloned());
        flags
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn reads_and_checks_the_options() {
        let o = StageOptions::from_context(&ctx(&[
            (FS_OPTIONS_CONTEXT, "-L data"),
            (MOUNT_OPTIONS_CONTEXT, "noatime"),
            (POST_MOUNT_XFS_CONTEXT, "extsize 2m"),
            (XFS_NOUUID_CONTEXT, "true"),
        ]))
        .unwrap();
        assert_eq!(o.mkfs_args, ["-L", "data"]);
        assert_eq!(
            o.flags_for(FsType::Xfs, &["discard".into()]),
            ["noatime", "nouuid", "discard"]
        );
        assert_eq!(o.flags_for(FsType::Ext4, &[]), ["noatime"]);
        assert_eq!(
            StageOptions::from_context(&HashMap::new()).unwrap(),
            StageOptions::default()
        );
        for (k, v) in [
            (FS_OPTIONS_CONTEXT, "-L $(reboot)"),
            (MOUNT_OPTIONS_CONTEXT, "remount"),
            (POST_MOUNT_XFS_CONTEXT, "pwrite 0 1"),
        ] {
            let err = StageOptions::from_context(&ctx(&[(k, v)])).unwrap_err();
            assert!(
                matches!(&err, CsiError::InvalidArgument(m) if m.contains(k)),
                "{err:?}"
            );
        }
    }
}
