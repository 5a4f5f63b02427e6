//! The size of the filesystem on a device, read from its superblock, so NodeStage can tell a
//! filesystem smaller than its device (a restore or clone into a larger volume, a volume grown
//! while no node had it mounted) and grow it.
//!
//! Reads the first 4 KiB of the device with `O_DIRECT` where the device allows it, so a page
//! cache that predates another node's writes (DRBD) is not what is read. Never writes.

use std::fs::OpenOptions;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

use super::FsType;

/// How much of the device is read: both superblocks lie inside.
const READ: usize = 4096;

/// A filesystem's size and its block size, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FsSize {
    /// The filesystem's size.
    pub bytes: u64,
    /// Its block size: a device larger by less than one block has nothing to grow into.
    pub block_size: u64,
}

fn le32(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from(u32::from_le_bytes(
        b.get(at..at + 4)?.try_into().ok()?,
    )))
}

fn be32(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from(u32::from_be_bytes(
        b.get(at..at + 4)?.try_into().ok()?,
    )))
}

fn be64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// The size `fs`'s superblock records, from the first 4 KiB of a device; None when the bytes
/// hold no such superblock.
pub fn parse(fs: FsType, head: &[u8]) -> Option<FsSize> {
    match fs {
        FsType::Ext4 => {
            let sb = head.get(1024..2048)?;
            if sb.get(0x38..0x3a)? != [0x53, 0xef] {
                return None;
            }
            let log = le32(sb, 0x18)?;
            if log > 6 {
                return None;
            }
            let block_size = 1024u64 << log;
            let mut blocks = le32(sb, 0x04)?;
            if le32(sb, 0x60)? & 0x80 != 0 {
                // INCOMPAT_64BIT: the high half of the block count.
                blocks |= le32(sb, 0x150)? << 32;
            }
            Some(FsSize {
                bytes: blocks.checked_mul(block_size)?,
                block_size,
            })
        }
        FsType::Xfs => {
            if head.get(0..4)? != b"XFSB" {
                return None;
            }
            let block_size = be32(head, 4)?;
            Some(FsSize {
                bytes: be64(head, 8)?.checked_mul(block_size)?,
                block_size,
            })
        }
    }
}

/// Reads the superblock of `fs` on `device`.
pub fn read(device: &Path, fs: FsType) -> std::io::Result<Option<FsSize>> {
    // An O_DIRECT read needs a buffer aligned to the logical block size: 4 KiB covers 512-byte
    // and 4 KiB devices alike.
    let mut buf = vec![0u8; 2 * READ];
    let offset = buf.as_ptr().align_offset(READ);
    let head = buf
        .get_mut(offset..offset + READ)
        .ok_or_else(|| std::io::Error::other("no aligned buffer"))?;
    let direct = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECT)
        .open(device);
    let read = match direct {
        Ok(f) => f.read_exact_at(head, 0),
        // A file system or device without O_DIRECT: a plain read.
        Err(_) => OpenOptions::new()
            .read(true)
            .open(device)?
            .read_exact_at(head, 0),
    };
    match read {
        Ok(()) => Ok(parse(fs, head)),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// Makes `fs` on a sparse file of `mib` MiB with the real mkfs (no root needed).
    fn image(fs: FsType, mib: u64) -> Option<tempfile::NamedTempFile> {
        let tool = format!("/usr/sbin/mkfs.{}", fs.as_str());
        if !Path::new(&tool).exists() {
            eprintln!("skipping: {tool} is not installed");
            return None;
        }
        let file = tempfile::NamedTempFile::new().unwrap();
        file.as_file().set_len(mib << 20).unwrap();
        let force = if fs == FsType::Xfs { "-f" } else { "-F" };
        let ok = Command::new(tool)
            .args(["-q", force])
            .arg(file.path())
            .status()
            .unwrap()
            .success();
        assert!(ok, "mkfs");
        Some(file)
    }

    #[test]
    fn reads_the_size_mkfs_made() {
        if let Some(img) = image(FsType::Ext4, 64) {
            let size = read(img.path(), FsType::Ext4).unwrap().unwrap();
            assert_eq!(size.bytes, 64 << 20, "{size:?}");
            assert!(read(img.path(), FsType::Xfs).unwrap().is_none());
        }
        if let Some(img) = image(FsType::Xfs, 320) {
            let size = read(img.path(), FsType::Xfs).unwrap().unwrap();
            assert_eq!(size.bytes, 320 << 20, "{size:?}");
            assert_eq!(size.block_size, 4096);
            assert!(read(img.path(), FsType::Ext4).unwrap().is_none());
        }
    }

    #[test]
    fn other_bytes_are_no_superblock() {
        assert_eq!(parse(FsType::Ext4, &[0; 4096]), None);
        assert_eq!(parse(FsType::Xfs, &[0; 4096]), None);
        assert_eq!(parse(FsType::Ext4, &[0; 10]), None);
        let mut xfs = vec![0u8; 4096];
        xfs[..4].copy_from_slice(b"XFSB");
        xfs[4..8].copy_from_slice(&4096u32.to_be_bytes());
        xfs[8..16].copy_from_slice(&1000u64.to_be_bytes());
        assert_eq!(
            parse(FsType::Xfs, &xfs),
            Some(FsSize {
                bytes: 4096 * 1000,
                block_size: 4096
            })
        );
    }
}
