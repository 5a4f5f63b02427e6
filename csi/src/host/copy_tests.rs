//! Tests of `copy`: kept beside it so the module itself stays readable.

use super::*;
use std::fs;
use std::process::Command;

const MIB: u64 = 1024 * 1024;

fn is_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

/// A 64 MiB file with three written extents and a trailing hole.
fn sparse_source(dir: &Path) -> (PathBuf, Vec<(u64, Vec<u8>)>) {
    let path = dir.join("src.img");
    let f = File::create(&path).unwrap();
    let extents: Vec<(u64, Vec<u8>)> = vec![
        (0, vec![0xA5; 4096]),
        (
            10 * MIB + 123,
            (0..100_000u32).map(|i| (i % 253) as u8).collect(),
        ),
        (40 * MIB, vec![0x5A; 2 * MIB as usize]),
    ];
    for (off, data) in &extents {
        f.write_all_at(data, *off).unwrap();
    }
    f.set_len(64 * MIB).unwrap();
    f.sync_all().unwrap();
    (path, extents)
}

fn allocated_bytes(path: &Path) -> u64 {
    fs::metadata(path).unwrap().blocks() * 512
}

fn assert_same_content(a: &Path, b: &Path) {
    let (a, b) = (fs::read(a).unwrap(), fs::read(b).unwrap());
    assert_eq!(a.len(), b.len());
    assert!(a == b, "contents differ");
}

#[test]
fn sparse_copy_preserves_content_length_and_holes() {
    let dir = tempfile::tempdir().unwrap();
    let (src, extents) = sparse_source(dir.path());
    let dst = dir.path().join("dst.img");
    let method = clone_file(&src, &dst).unwrap();
    println!("method on the temp dir's filesystem: {method:?}");

    let meta = fs::metadata(&dst).unwrap();
    assert_eq!(meta.len(), 64 * MIB, "length incl. trailing hole");
    assert_same_content(&src, &dst);
    let f = File::open(&dst).unwrap();
    for (off, data) in &extents {
        let mut back = vec![0u8; data.len()];
        f.read_exact_at(&mut back, *off).unwrap();
        assert_eq!(&back, data);
    }
    // ~2.2 MiB written; allow block rounding and fs preallocation, but a dense copy would be
    // 64 MiB.
    let alloc = allocated_bytes(&dst);
    assert!(alloc < 8 * MIB, "dst allocates {alloc} bytes");
    // The trailing 20+ MiB is a hole.
    let end = lseek(f.as_fd(), (48 * MIB) as i64, Whence::SeekData);
    assert_eq!(end, Err(Errno::ENXIO), "trailing hole was filled");
}

#[test]
fn copies_empty_and_all_hole_files() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    File::create(&empty).unwrap();
    clone_file(&empty, &dir.path().join("empty2")).unwrap();
    assert_eq!(fs::metadata(dir.path().join("empty2")).unwrap().len(), 0);

    let holes = dir.path().join("holes");
    File::create(&holes).unwrap().set_len(5 * MIB + 7).unwrap();
    let copy = dir.path().join("holes2");
    clone_file(&holes, &copy).unwrap();
    assert_eq!(fs::metadata(&copy).unwrap().len(), 5 * MIB + 7);
    assert_eq!(allocated_bytes(&copy), 0);
}

#[test]
fn read_write_fallback_copies_extents() {
    let dir = tempfile::tempdir().unwrap();
    let (src, _) = sparse_source(dir.path());
    let dst = dir.path().join("rw.img");
    let s = File::open(&src).unwrap();
    let d = File::create(&dst).unwrap();
    let len = s.metadata().unwrap().len();
    let mut pos = 0;
    while let Some((start, end)) = next_extent(&s, &src, pos, len).unwrap() {
        read_write(&s, &src, &d, &dst, start, end).unwrap();
        pos = end;
    }
    d.set_len(len).unwrap();
    assert_same_content(&src, &dst);
    assert!(allocated_bytes(&dst) < 8 * MIB);
}

#[test]
fn keeps_source_permissions() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("p");
    fs::write(&src, b"x").unwrap();
    fs::set_permissions(&src, fs::Permissions::from_mode(0o600)).unwrap();
    let dst = dir.path().join("q");
    clone_file(&src, &dst).unwrap();
    assert_eq!(fs::metadata(&dst).unwrap().mode() & 0o777, 0o600);
}

#[test]
fn refuses_to_overwrite_existing_dst() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("a");
    fs::write(&src, b"new").unwrap();
    let dst = dir.path().join("b");
    fs::write(&dst, b"precious").unwrap();
    let err = clone_file(&src, &dst).unwrap_err();
    assert!(
        matches!(
            err,
            CopyError::CreateDest {
                errno: Errno::EEXIST,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        fs::read(&dst).unwrap(),
        b"precious",
        "existing dst untouched"
    );
}

#[test]
fn missing_or_irregular_source_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let dst = dir.path().join("out");
    let err = clone_file(&dir.path().join("nope"), &dst).unwrap_err();
    assert!(matches!(
        err,
        CopyError::OpenSource {
            errno: Errno::ENOENT,
            ..
        }
    ));
    let err = clone_file(dir.path(), &dst).unwrap_err();
    assert!(matches!(err, CopyError::NotRegular { .. }), "{err:?}");
    assert!(!dst.exists());
}

/// Unmounts a test mount (lazily if busy) on drop.
struct Unmount(PathBuf);

impl Drop for Unmount {
    fn drop(&mut self) {
        if nix::mount::umount(&self.0).is_err() {
            let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

#[test]
fn removes_partial_dst_on_error() {
    if !is_root() {
        println!("skipping: needs root (mounts a small tmpfs to run out of space)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (src, _) = sparse_source(dir.path());
    let small = dir.path().join("small");
    fs::create_dir(&small).unwrap();
    nix::mount::mount(
        Some("tmpfs"),
        &small,
        Some("tmpfs"),
        nix::mount::MsFlags::MS_NOSUID | nix::mount::MsFlags::MS_NODEV,
        Some("size=1m"),
    )
    .unwrap();
    let _umount = Unmount(small.clone());

    let dst = small.join("dst.img");
    let err = clone_file(&src, &dst).unwrap_err();
    assert!(
        matches!(
            err,
            CopyError::CopyRange {
                errno: Errno::ENOSPC,
                ..
            } | CopyError::Write {
                errno: Errno::ENOSPC,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(!dst.exists(), "partial dst left behind");
    assert_eq!(fs::read_dir(&small).unwrap().count(), 0);
}

/// Mounted scratch xfs (reflink=1) on a loop device; unmounted and detached on drop.
struct XfsMount {
    mnt: PathBuf,
    dev: Option<super::super::loopdev::LoopDevice>,
    mounted: bool,
}

impl Drop for XfsMount {
    fn drop(&mut self) {
        if self.mounted && nix::mount::umount(&self.mnt).is_err() {
            let _ = nix::mount::umount2(&self.mnt, nix::mount::MntFlags::MNT_DETACH);
        }
        if let Some(dev) = self.dev.take() {
            let _ = super::super::loopdev::detach(&dev);
        }
    }
}

fn find_mkfs_xfs() -> Option<PathBuf> {
    ["/usr/sbin/mkfs.xfs", "/sbin/mkfs.xfs", "/usr/bin/mkfs.xfs"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

#[test]
fn reflink_on_xfs() {
    if !is_root() {
        println!("skipping: needs root (loop-mounts an xfs image)");
        return;
    }
    let Some(mkfs) = find_mkfs_xfs() else {
        println!("skipping: mkfs.xfs not installed (apt-get install xfsprogs)");
        return;
    };
    let fs_ok = fs::read_to_string("/proc/filesystems")
        .map(|s| s.lines().any(|l| l.trim_end().ends_with("xfs")))
        .unwrap_or(false);
    if !fs_ok {
        println!("skipping: kernel has no xfs");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let image = dir.path().join("xfs.img");
    // mkfs.xfs wants >= 300 MiB; the file stays sparse.
    File::create(&image).unwrap().set_len(320 * MIB).unwrap();
    let out = Command::new(&mkfs)
        .args(["-q", "-f", "-m", "reflink=1"])
        .arg(&image)
        .output()
        .unwrap();
    assert!(out.status.success(), "mkfs.xfs: {out:?}");

    let mnt = dir.path().join("mnt");
    fs::create_dir(&mnt).unwrap();
    let mut guard = XfsMount {
        mnt: mnt.clone(),
        dev: None,
        mounted: false,
    };
    let dev = super::super::loopdev::attach(&image, false).unwrap();
    guard.dev = Some(dev.clone());
    nix::mount::mount(
        Some(&dev.path),
        &mnt,
        Some("xfs"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    )
    .unwrap();
    guard.mounted = true;

    let (src, _) = sparse_source(&mnt);
    let dst = mnt.join("clone.img");
    assert_eq!(clone_file(&src, &dst).unwrap(), CopyMethod::Reflink);
    assert_eq!(fs::metadata(&dst).unwrap().len(), 64 * MIB);
    assert_same_content(&src, &dst);
    // A reflinked clone shares extents; writing to it must not change the source.
    File::options()
        .write(true)
        .open(&dst)
        .unwrap()
        .write_all_at(b"changed", 0)
        .unwrap();
    let mut head = [0u8; 7];
    File::open(&src)
        .unwrap()
        .read_exact_at(&mut head, 0)
        .unwrap();
    assert_eq!(head, [0xA5; 7]);
    drop(guard);
}
