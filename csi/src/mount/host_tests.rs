//! Tests of `host`: kept beside it so the module itself stays readable.

use super::super::flags::*;
use super::super::points::*;
use super::*;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::PathBuf;
use std::process::Command;

const MIB: u64 = 1 << 20;

/// Returns from the test, with a note, when not root.
macro_rules! require_root {
    () => {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipping: needs root");
            return;
        }
    };
}

/// A tempdir and the loop devices a test made. Dropping it unmounts everything under the
/// tempdir and detaches the loop devices, even when an assert failed.
struct Fixture {
    /// Removed after `drop` has unmounted and detached everything (fields drop last).
    _dir: tempfile::TempDir,
    root: PathBuf,
    loops: Vec<PathBuf>,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let root = fs::canonicalize(dir.path()).unwrap();
        Self {
            _dir: dir,
            root,
            loops: Vec::new(),
        }
    }

    fn path(&self, relative: &str) -> PathBuf {
        self.root.join(relative)
    }

    /// A sparse backing file of `size` bytes attached to a free loop device.
    fn loop_device(&mut self, name: &str, size: u64) -> (PathBuf, PathBuf) {
        let backing = self.path(name);
        File::create(&backing).unwrap().set_len(size).unwrap();
        let output = Command::new("losetup")
            .args(["--find", "--show"])
            .arg(&backing)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "losetup: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let device = PathBuf::from(String::from_utf8(output.stdout).unwrap().trim());
        self.loops.push(device.clone());
        (device, backing)
    }

    /// Grows the backing file and tells the loop driver.
    fn grow_loop(&self, device: &Path, backing: &Path, size: u64) {
        OpenOptions::new()
            .write(true)
            .open(backing)
            .unwrap()
            .set_len(size)
            .unwrap();
        let status = Command::new("losetup")
            .arg("-c")
            .arg(device)
            .status()
            .unwrap();
        assert!(status.success());
    }

    fn mounts_under(&self) -> Vec<MountEntry> {
        mountinfo::read()
            .unwrap_or_default()
            .into_iter()
            .filter(|e| e.mount_point.starts_with(&self.root))
            .collect()
    }

    fn mounts_at(&self, path: &Path) -> usize {
        self.mounts_under()
            .iter()
            .filter(|e| e.mount_point == path)
            .count()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        for _ in 0..MAX_STACKED_MOUNTS {
            let mounts = self.mounts_under();
            if mounts.is_empty() {
                break;
            }
            // Newest first: stacked and nested mounts come after what they cover.
            for entry in mounts.iter().rev() {
                if nix::mount::umount2(&entry.mount_point, MntFlags::empty()).is_err() {
                    let _ = nix::mount::umount2(&entry.mount_point, MntFlags::MNT_DETACH);
                }
            }
        }
        for device in &self.loops {
            let _ = Command::new("losetup").arg("-d").arg(device).status();
        }
    }
}

fn write_at(device: &Path, offset: u64, bytes: &[u8]) {
    let mut file = OpenOptions::new().write(true).open(device).unwrap();
    file.seek(SeekFrom::Start(offset)).unwrap();
    file.write_all(bytes).unwrap();
    file.sync_all().unwrap();
}

fn first_mib(device: &Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    File::open(device)
        .unwrap()
        .take(MIB)
        .read_to_end(&mut bytes)
        .unwrap();
    bytes
}

fn has_mkfs_xfs() -> bool {
    ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        .iter()
        .any(|dir| Path::new(dir).join("mkfs.xfs").exists())
}

use super::super::format::{has_capability, CAP_SYS_RESOURCE};

fn opts(readonly: bool, flags: &[&str]) -> MountOptions {
    MountOptions {
        readonly,
        flags: flags.iter().map(|f| (*f).to_owned()).collect(),
    }
}

fn write_file(path: &Path) -> io::Result<()> {
    fs::write(path, b"hearth")
}

// ---- flags, paths and mount selection: no root needed ----

#[test]
fn known_flags_map_to_mount_flags() {
    let effect = parse_flag("ro").unwrap();
    assert_eq!(effect.set, MsFlags::MS_RDONLY);
    assert!(effect.data.is_empty());
    assert_eq!(parse_flag("rw").unwrap().clear, MsFlags::MS_RDONLY);
    for (flag, bit) in [
        ("noatime", MsFlags::MS_NOATIME),
        ("nodiratime", MsFlags::MS_NODIRATIME),
        ("relatime", MsFlags::MS_RELATIME),
        ("strictatime", MsFlags::MS_STRICTATIME),
        ("nosuid", MsFlags::MS_NOSUID),
        ("nodev", MsFlags::MS_NODEV),
        ("noexec", MsFlags::MS_NOEXEC),
        ("sync", MsFlags::MS_SYNCHRONOUS),
        ("dirsync", MsFlags::MS_DIRSYNC),
        ("lazytime", MsFlags::MS_LAZYTIME),
        ("silent", MsFlags::MS_SILENT),
        ("nosymfollow", MS_NOSYMFOLLOW),
    ] {
        assert_eq!(parse_flag(flag).unwrap().set, bit, "{flag}");
    }
    // Atime modes exclude each other; the last one wins.
    let effect = parse_flag("noatime,relatime").unwrap();
    assert_eq!(effect.set, MsFlags::MS_RELATIME);
    assert!(effect.clear.contains(MsFlags::MS_NOATIME));
}

#[test]
fn refuses_flags_that_change_what_or_where() {
    for flag in [
        "bind",
        "rbind",
        "move",
        "remount",
        "rec",
        "shared",
        "rshared",
        "private",
        "rprivate",
        "slave",
        "rslave",
        "unbindable",
        "runbindable",
        "make-private",
        "make-rshared",
        "noatime,bind",
        "loop",
        "loop=/dev/loop0",
        "offset=1024",
        "X-mount.mkdir",
        "journal_path=/dev/sdb",
        "logdev=/dev/sdc",
        "errors=panic",
    ] {
        assert!(
            matches!(parse_flag(flag), Err(MountError::InvalidFlag { .. })),
            "{flag} was accepted"
        );
    }
}

#[test]
fn refuses_malformed_flags() {
    let long = "a".repeat(MAX_FLAG_LEN + 1);
    for flag in [
        "",
        " ",
        "noatime ",
        "a\tb",
        "a\nb",
        "a\0b",
        ",",
        "a,,b",
        "a,",
        "quote\"d",
        "semi;colon",
        "star*",
        "é",
        long.as_str(),
    ] {
        assert!(
            matches!(parse_flag(flag), Err(MountError::InvalidFlag { .. })),
            "{flag:?} was accepted"
        );
    }
    assert!(parse_flag(&"a".repeat(MAX_FLAG_LEN)).is_ok());
}

#[test]
fn other_options_pass_through_as_data() {
    let effect = parse_flag("discard").unwrap();
    assert_eq!(effect.set, MsFlags::empty());
    assert_eq!(effect.data, ["discard"]);
    let effect = parse_flag("errors=remount-ro,noatime,commit=30").unwrap();
    assert_eq!(effect.set, MsFlags::MS_NOATIME);
    assert_eq!(effect.data, ["errors=remount-ro", "commit=30"]);
    for flag in [
        "uid=1000",
        "context=system_u:object_r:tmp_t:s0",
        "lowerdir=/a/b+c",
        "data=ordered",
    ] {
        assert_eq!(parse_flag(flag).unwrap().data, [flag]);
    }
    // Userspace-only options never reach the kernel.
    for flag in [
        "defaults",
        "nofail",
        "_netdev",
        "auto",
        "noauto",
        "x-systemd.automount",
        "comment=x",
    ] {
        assert!(parse_flag(flag).unwrap().data.is_empty(), "{flag}");
    }
    assert!(
        super::super::validate_mount_flags(&["discard".to_owned(), "noatime".to_owned()]).is_ok()
    );
    assert!(
        super::super::validate_mount_flags(&["discard".to_owned(), "bind".to_owned()]).is_err()
    );
}

#[test]
fn readonly_wins_over_rw_flags() {
    let effect = effective_flags(&opts(true, &["rw", "nodev", "discard"])).unwrap();
    assert!(effect.set.contains(MsFlags::MS_RDONLY | MsFlags::MS_NODEV));
    assert!(!effect.clear.contains(MsFlags::MS_RDONLY));
    assert_eq!(effect.data_string().as_deref(), Some("discard"));
    // Later flags win over earlier ones.
    let effect = effective_flags(&opts(false, &["ro", "rw"])).unwrap();
    assert!(!effect.set.contains(MsFlags::MS_RDONLY));
    let effect = effective_flags(&opts(false, &["nosuid", "defaults"])).unwrap();
    assert!(!effect.set.contains(MsFlags::MS_NOSUID));
    assert_eq!(
        effective_flags(&opts(false, &[])).unwrap().data_string(),
        None
    );
}

#[test]
fn normalises_paths_lexically() {
    assert_eq!(
        lexical_absolute(Path::new("/a/./b//c/")),
        PathBuf::from("/a/b/c")
    );
    assert_eq!(
        lexical_absolute(Path::new("/a/b/../c")),
        PathBuf::from("/a/c")
    );
    assert_eq!(lexical_absolute(Path::new("/../..")), PathBuf::from("/"));
    let relative = lexical_absolute(Path::new("x/y"));
    assert!(relative.is_absolute() && relative.ends_with("x/y"));
}

#[test]
fn picks_the_top_of_stacked_mounts() {
    let text = "\
1 1 0:1 / / rw - rootfs rootfs rw
10 1 7:0 / /t rw - ext4 /dev/loop0 rw
11 10 0:5 /x /t rw - tmpfs tmpfs rw
12 1 7:1 / /u rw - ext4 /dev/loop1 rw
";
    let entries = mountinfo::parse(text).unwrap();
    assert_eq!(
        top_mount_at(&entries, Path::new("/t")).unwrap().mount_id,
        11
    );
    assert_eq!(
        top_mount_at(&entries, Path::new("/u")).unwrap().mount_id,
        12
    );
    assert!(top_mount_at(&entries, Path::new("/v")).is_none());
    // Order in the file does not matter.
    let reversed: Vec<_> = entries.into_iter().rev().collect();
    assert_eq!(
        top_mount_at(&reversed, Path::new("/t")).unwrap().mount_id,
        11
    );
}

// ---- the real thing: root, loop devices, mounts under a tempdir ----

#[test]
fn probe_blank_unknown_data_and_signature() {
    require_root!();
    let mut fx = Fixture::new();
    let (device, _) = fx.loop_device("disk.img", 64 * MIB);
    let mounter = HostMounter::new();

    assert_eq!(mounter.probe(&device).unwrap(), Probe::Blank);

    // Data past the first MiB does not count; data inside it does.
    write_at(&device, 2 * MIB, b"beyond");
    assert_eq!(mounter.probe(&device).unwrap(), Probe::Blank);
    write_at(&device, MIB / 2, b"precious");
    let before = first_mib(&device);
    assert_eq!(mounter.probe(&device).unwrap(), Probe::UnknownData);
    assert_eq!(first_mib(&device), before, "probe wrote to the device");

    // Without force, format refuses unknown data and leaves it alone.
    let err = mounter
        .format(&device, FsType::Ext4, false, &[])
        .unwrap_err();
    assert!(matches!(err, MountError::Format { .. }), "{err}");
    assert_eq!(first_mib(&device), before);

    write_at(&device, MIB / 2, &[0; 8]);
    assert_eq!(mounter.probe(&device).unwrap(), Probe::Blank);
    mounter.format(&device, FsType::Ext4, false, &[]).unwrap();
    assert_eq!(
        mounter.probe(&device).unwrap(),
        Probe::Signature("ext4".to_owned())
    );

    // A formatted device is refused without force, reformatted with it.
    let err = mounter
        .format(&device, FsType::Ext4, false, &[])
        .unwrap_err();
    assert!(err.to_string().contains("ext4"), "{err}");
    mounter.format(&device, FsType::Ext4, true, &[]).unwrap();
    assert_eq!(
        mounter.probe(&device).unwrap(),
        Probe::Signature("ext4".to_owned())
    );
}

#[test]
fn probe_reports_a_missing_device() {
    require_root!();
    let fx = Fixture::new();
    let err = HostMounter::new()
        .probe(&fx.path("no-such-device"))
        .unwrap_err();
    assert!(matches!(err, MountError::Probe { .. }), "{err}");
}

#[test]
fn format_xfs_and_back() {
    require_root!();
    if !has_mkfs_xfs() {
        eprintln!("skipping: mkfs.xfs is not installed (apt-get install xfsprogs)");
        return;
    }
    let mut fx = Fixture::new();
    let (device, _) = fx.loop_device("disk.img", 320 * MIB);
    let mounter = HostMounter::new();
    mounter.format(&device, FsType::Xfs, false, &[]).unwrap();
    assert_eq!(
        mounter.probe(&device).unwrap(),
        Probe::Signature("xfs".to_owned())
    );
    assert!(mounter.format(&device, FsType::Ext4, false, &[]).is_err());
    mounter.format(&device, FsType::Ext4, true, &[]).unwrap();
    assert_eq!(
        mounter.probe(&device).unwrap(),
        Probe::Signature("ext4".to_owned())
    );
    mounter.format(&device, FsType::Xfs, true, &[]).unwrap();
    assert_eq!(
        mounter.probe(&device).unwrap(),
        Probe::Signature("xfs".to_owned())
    );
}

#[test]
fn mount_device_mount_at_and_stats() {
    require_root!();
    let mut fx = Fixture::new();
    let (device, _) = fx.loop_device("disk.img", 64 * MIB);
    let mounter = HostMounter::new();
    mounter.format(&device, FsType::Ext4, false, &[]).unwrap();

    let target = fx.path("staging/vol a");
    mounter
        .mount_device(
            &device,
            &target,
            FsType::Ext4,
            &opts(false, &["noatime", "discard"]),
        )
        .unwrap();

    let entry = mounter.mount_at(&target).unwrap().unwrap();
    assert_eq!(entry.fs_type, "ext4");
    assert_eq!(entry.source, device.to_str().unwrap());
    assert_eq!(entry.mount_point, target);
    assert!(!entry.read_only());
    assert!(
        entry.options.iter().any(|o| o == "noatime"),
        "{:?}",
        entry.options
    );
    assert!(
        entry.super_options.iter().any(|o| o == "discard"),
        "{:?}",
        entry.super_options
    );
    // The same mount through an unnormalised spelling of the path.
    let spelled = fx.path("staging/./x/../vol a/");
    assert_eq!(
        mounter.mount_at(&spelled).unwrap().unwrap().mount_id,
        entry.mount_id
    );
    assert!(mounter
        .mounts()
        .unwrap()
        .iter()
        .any(|e| e.mount_id == entry.mount_id));

    let before = mounter.stats(&target).unwrap();
    assert!(
        before.total_bytes > 40 * MIB && before.total_bytes <= 64 * MIB,
        "{before:?}"
    );
    assert!(before.available_bytes <= before.total_bytes);
    assert!(before.used_bytes < before.total_bytes);
    assert!(before.total_inodes > 0 && before.free_inodes <= before.total_inodes);
    assert_eq!(before.used_inodes, before.total_inodes - before.free_inodes);
    let mut file = File::create(target.join("data")).unwrap();
    file.write_all(&vec![7u8; 4 * MIB as usize]).unwrap();
    file.sync_all().unwrap();
    drop(file);
    let after = mounter.stats(&target).unwrap();
    assert!(
        after.used_bytes >= before.used_bytes + 4 * MIB,
        "{before:?} {after:?}"
    );
    // ext4's inode counters are per-CPU approximations: more in use, not exactly one more.
    assert!(
        after.used_inodes > before.used_inodes,
        "{before:?} {after:?}"
    );

    // Mounting again is a no-op; a conflicting mount is refused.
    mounter
        .mount_device(&device, &target, FsType::Ext4, &opts(false, &[]))
        .unwrap();
    assert_eq!(fx.mounts_at(&target), 1);
    let err = mounter
        .mount_device(&device, &target, FsType::Ext4, &opts(true, &[]))
        .unwrap_err();
    assert!(
        matches!(
            err,
            MountError::Mount {
                errno: Errno::EBUSY,
                ..
            }
        ),
        "{err}"
    );
    let err = mounter
        .mount_device(&device, &target, FsType::Xfs, &opts(false, &[]))
        .unwrap_err();
    assert!(
        matches!(
            err,
            MountError::Mount {
                errno: Errno::EBUSY,
                ..
            }
        ),
        "{err}"
    );
    // Bad flags are refused before anything happens.
    let other = fx.path("other");
    let err = mounter
        .mount_device(&device, &other, FsType::Ext4, &opts(false, &["remount"]))
        .unwrap_err();
    assert!(matches!(err, MountError::InvalidFlag { .. }), "{err}");
    assert!(!other.exists());

    // Read-only with flags and data.
    assert!(mounter.unmount(&target).unwrap());
    // The mount point was created 0750 (seen now that nothing covers it).
    assert_eq!(
        fs::metadata(&target).unwrap().permissions().mode() & 0o777,
        MOUNT_POINT_MODE
    );
    mounter
        .mount_device(
            &device,
            &target,
            FsType::Ext4,
            &opts(true, &["nosuid,nodev", "errors=remount-ro"]),
        )
        .unwrap();
    let entry = mounter.mount_at(&target).unwrap().unwrap();
    assert!(entry.read_only());
    for option in ["ro", "nosuid", "nodev"] {
        assert!(
            entry.options.iter().any(|o| o == option),
            "{option}: {:?}",
            entry.options
        );
    }
    assert!(
        entry.super_options.iter().any(|o| o == "errors=remount-ro"),
        "{:?}",
        entry.super_options
    );
    let err = write_file(&target.join("new")).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EROFS));
    assert_eq!(
        fs::read(target.join("data")).unwrap().len(),
        4 * MIB as usize
    );
}

#[test]
fn mount_device_reports_kernel_errors() {
    require_root!();
    let mut fx = Fixture::new();
    let (device, _) = fx.loop_device("disk.img", 64 * MIB);
    // Blank device: the kernel finds no ext4 there.
    let err = HostMounter::new()
        .mount_device(&device, &fx.path("mnt"), FsType::Ext4, &opts(false, &[]))
        .unwrap_err();
    assert!(matches!(err, MountError::Mount { .. }), "{err}");
    assert!(fx.mounts_under().is_empty());
}

#[test]
fn read_only_bind_is_read_only() {
    require_root!();
    let mut fx = Fixture::new();
    let (device, _) = fx.loop_device("disk.img", 64 * MIB);
    let mounter = HostMounter::new();
    mounter.format(&device, FsType::Ext4, false, &[]).unwrap();
    let staging = fx.path("staging");
    mounter
        .mount_device(&device, &staging, FsType::Ext4, &opts(false, &[]))
        .unwrap();

    let publish = fx.path("pods/uid/volumes/pv");
    mounter
        .bind(&staging, &publish, &opts(true, &["nodev", "noexec"]))
        .unwrap();
    let entry = mounter.mount_at(&publish).unwrap().unwrap();
    assert!(entry.read_only(), "{:?}", entry.options);
    for option in ["ro", "nodev", "noexec"] {
        assert!(
            entry.options.iter().any(|o| o == option),
            "{option}: {:?}",
            entry.options
        );
    }
    let err = write_file(&publish.join("f")).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EROFS));
    // The staging mount stays writable, and the bind shows its writes.
    write_file(&staging.join("f")).unwrap();
    assert_eq!(fs::read(publish.join("f")).unwrap(), b"hearth");

    // Binding again is a no-op; asking for read-write there is a conflict.
    mounter
        .bind(&staging, &publish, &opts(true, &["nodev", "noexec"]))
        .unwrap();
    assert_eq!(fx.mounts_at(&publish), 1);
    let err = mounter
        .bind(&staging, &publish, &opts(false, &[]))
        .unwrap_err();
    assert!(
        matches!(
            err,
            MountError::Mount {
                errno: Errno::EBUSY,
                ..
            }
        ),
        "{err}"
    );
    // Something else is not silently stacked on top.
    let elsewhere = fx.path("elsewhere");
    fs::create_dir(&elsewhere).unwrap();
    let err = mounter
        .bind(&elsewhere, &publish, &opts(true, &[]))
        .unwrap_err();
    assert!(
        matches!(
            err,
            MountError::Mount {
                errno: Errno::EBUSY,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(fx.mounts_at(&publish), 1);
}

#[test]
fn bind_finishes_an_interrupted_read_only_bind() {
    require_root!();
    let fx = Fixture::new();
    let source = fx.path("src");
    let target = fx.path("dst");
    fs::create_dir(&source).unwrap();
    fs::create_dir(&target).unwrap();
    // A bind whose read-only remount never happened.
    nix::mount::mount(
        Some(&source),
        &target,
        None::<&str>,
        MsFlags::MS_BIND,
        None::<&str>,
    )
    .unwrap();
    assert!(!HostMounter::new()
        .mount_at(&target)
        .unwrap()
        .unwrap()
        .read_only());

    HostMounter::new()
        .bind(&source, &target, &opts(true, &[]))
        .unwrap();
    assert!(HostMounter::new()
        .mount_at(&target)
        .unwrap()
        .unwrap()
        .read_only());
    assert_eq!(fx.mounts_at(&target), 1);
    assert_eq!(
        write_file(&target.join("f")).unwrap_err().raw_os_error(),
        Some(libc::EROFS)
    );
}

#[test]
fn bind_keeps_the_source_security_flags() {
    require_root!();
    let fx = Fixture::new();
    let source = fx.path("src");
    let middle = fx.path("nosuid");
    let target = fx.path("dst");
    fs::create_dir(&source).unwrap();
    let mounter = HostMounter::new();
    mounter
        .bind(&source, &middle, &opts(false, &["nosuid"]))
        .unwrap();
    assert!(mounter
        .mount_at(&middle)
        .unwrap()
        .unwrap()
        .options
        .iter()
        .any(|o| o == "nosuid"));
    // Remounting read-only must not drop the nosuid the bind inherited.
    mounter.bind(&middle, &target, &opts(true, &[])).unwrap();
    let entry = mounter.mount_at(&target).unwrap().unwrap();
    assert!(
        entry.options.iter().any(|o| o == "nosuid"),
        "{:?}",
        entry.options
    );
    assert!(entry.read_only());
}

#[test]
fn bind_a_block_device_onto_a_file() {
    require_root!();
    let mut fx = Fixture::new();
    let (device, _) = fx.loop_device("disk.img", 16 * MIB);
    let mounter = HostMounter::new();
    let target = fx.path("plugins/volumeDevices/publish/pv/pod-uid");

    mounter.bind(&device, &target, &opts(false, &[])).unwrap();
    let metadata = fs::metadata(&target).unwrap();
    assert!(metadata.file_type().is_block_device());
    assert_eq!(metadata.rdev(), fs::metadata(&device).unwrap().rdev());
    let entry = mounter.mount_at(&target).unwrap().unwrap();
    assert_eq!(entry.mount_point, target);

    // Writes through the bound node reach the device.
    write_at(&target, 0, b"through the bind");
    assert!(first_mib(&device).starts_with(b"through the bind"));

    mounter.bind(&device, &target, &opts(false, &[])).unwrap();
    assert_eq!(fx.mounts_at(&target), 1);

    assert!(mounter.unmount(&target).unwrap());
    let metadata = fs::symlink_metadata(&target).unwrap();
    assert!(
        metadata.is_file() && metadata.len() == 0,
        "the placeholder file stays"
    );

    // Read-only device binds are remounted read-only too. Note what that does not do: the
    // kernel does not stop writes to a device node on a read-only mount (only to regular
    // files, directories and symlinks), so a read-only raw block volume needs more than this.
    mounter.bind(&device, &target, &opts(true, &[])).unwrap();
    let entry = mounter.mount_at(&target).unwrap().unwrap();
    assert!(
        entry.read_only() && entry.options.iter().any(|o| o == "ro"),
        "{:?}",
        entry.options
    );
    assert_eq!(fx.mounts_at(&target), 1);
}

#[test]
fn unmount_is_idempotent_and_unstacks() {
    require_root!();
    let fx = Fixture::new();
    let mounter = HostMounter::new();
    let source = fx.path("src");
    let target = fx.path("dst");
    fs::create_dir(&source).unwrap();
    fs::create_dir(&target).unwrap();

    assert!(
        !mounter.unmount(&target).unwrap(),
        "nothing mounted on a plain directory"
    );
    assert!(
        !mounter.unmount(&fx.path("missing/path")).unwrap(),
        "nothing mounted on a missing path"
    );

    for _ in 0..3 {
        nix::mount::mount(
            Some(&source),
            &target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .unwrap();
    }
    assert_eq!(fx.mounts_at(&target), 3);
    assert!(mounter.unmount(&fx.path("dst/")).unwrap());
    assert_eq!(fx.mounts_at(&target), 0);
    assert!(mounter.mount_at(&target).unwrap().is_none());
    assert!(!mounter.unmount(&target).unwrap());
    assert!(target.is_dir(), "unmount leaves the mount point");
}

#[test]
fn unmount_of_a_busy_mount_is_an_error() {
    require_root!();
    let fx = Fixture::new();
    let mounter = HostMounter::new();
    let source = fx.path("src");
    let target = fx.path("dst");
    fs::create_dir(&source).unwrap();
    mounter.bind(&source, &target, &opts(false, &[])).unwrap();

    let open = File::create(target.join("held-open")).unwrap();
    let err = mounter.unmount(&target).unwrap_err();
    assert!(
        matches!(
            err,
            MountError::Unmount {
                errno: Errno::EBUSY,
                ..
            }
        ),
        "{err}"
    );
    assert!(
        mounter.mount_at(&target).unwrap().is_some(),
        "a busy mount is not detached"
    );

    drop(open);
    // Another test thread's fork may still hold a copy of the descriptor for the moment
    // between fork and exec (CLOEXEC closes it only at exec): allow that to pass.
    let mut tries = 0;
    let unmounted = loop {
        match mounter.unmount(&target) {
            Err(MountError::Unmount {
                errno: Errno::EBUSY,
                ..
            }) if tries < 100 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            other => break other.unwrap(),
        }
    };
    assert!(unmounted);
}

#[test]
fn unmount_does_not_follow_a_symlink() {
    require_root!();
    let fx = Fixture::new();
    let mounter = HostMounter::new();
    let source = fx.path("src");
    let target = fx.path("dst");
    fs::create_dir(&source).unwrap();
    mounter.bind(&source, &target, &opts(false, &[])).unwrap();
    let link = fx.path("link");
    std::os::unix::fs::symlink(&target, &link).unwrap();

    assert!(!mounter.unmount(&link).unwrap());
    assert!(mounter.mount_at(&target).unwrap().is_some());
}

#[test]
fn refuses_to_mount_through_a_symlink() {
    require_root!();
    let fx = Fixture::new();
    let mounter = HostMounter::new();
    let source = fx.path("src");
    let elsewhere = fx.path("elsewhere");
    let link = fx.path("link");
    fs::create_dir(&source).unwrap();
    fs::create_dir(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &link).unwrap();

    let err = mounter.bind(&source, &link, &opts(false, &[])).unwrap_err();
    assert!(matches!(err, MountError::MountPoint { .. }), "{err}");
    let err = mounter
        .mount_device(
            Path::new("/dev/null"),
            &link,
            FsType::Ext4,
            &opts(false, &[]),
        )
        .unwrap_err();
    assert!(matches!(err, MountError::MountPoint { .. }), "{err}");
    assert!(fx.mounts_under().is_empty());
}

#[test]
fn grow_ext4_online() {
    require_root!();
    let mut fx = Fixture::new();
    let (device, backing) = fx.loop_device("disk.img", 64 * MIB);
    let mounter = HostMounter::new();
    mounter.format(&device, FsType::Ext4, false, &[]).unwrap();
    let target = fx.path("mnt");
    mounter
        .mount_device(&device, &target, FsType::Ext4, &opts(false, &[]))
        .unwrap();
    let before = mounter.stats(&target).unwrap().total_bytes;

    fx.grow_loop(&device, &backing, 128 * MIB);
    if !has_capability(CAP_SYS_RESOURCE) {
        // ext4's online resize ioctl needs CAP_SYS_RESOURCE; without it the mounter says so.
        let err = mounter.grow(&device, &target, FsType::Ext4).unwrap_err();
        assert!(matches!(err, MountError::MissingCapability { .. }), "{err}");
        assert!(err.to_string().contains("CAP_SYS_RESOURCE"), "{err}");
        eprintln!("online ext4 grow: no CAP_SYS_RESOURCE here; checked the error instead");
        return;
    }
    mounter.grow(&device, &target, FsType::Ext4).unwrap();
    let after = mounter.stats(&target).unwrap().total_bytes;
    assert!(after > before + 56 * MIB, "{before} -> {after}");
    // Growing again is a no-op, not an error.
    mounter.grow(&device, &target, FsType::Ext4).unwrap();
}

#[test]
fn grow_xfs_online() {
    require_root!();
    if !has_mkfs_xfs() {
        eprintln!("skipping: mkfs.xfs is not installed (apt-get install xfsprogs)");
        return;
    }
    let mut fx = Fixture::new();
    let (device, backing) = fx.loop_device("disk.img", 320 * MIB);
    let mounter = HostMounter::new();
    mounter.format(&device, FsType::Xfs, false, &[]).unwrap();
    let target = fx.path("mnt");
    mounter
        .mount_device(&device, &target, FsType::Xfs, &opts(false, &["noatime"]))
        .unwrap();
    assert_eq!(mounter.mount_at(&target).unwrap().unwrap().fs_type, "xfs");
    let before = mounter.stats(&target).unwrap().total_bytes;

    fx.grow_loop(&device, &backing, 640 * MIB);
    mounter.grow(&device, &target, FsType::Xfs).unwrap();
    let after = mounter.stats(&target).unwrap().total_bytes;
    assert!(after > before + 280 * MIB, "{before} -> {after}");
    mounter.grow(&device, &target, FsType::Xfs).unwrap();
}

#[test]
fn grow_reports_tool_failure() {
    require_root!();
    let mut fx = Fixture::new();
    let (device, _) = fx.loop_device("disk.img", 16 * MIB);
    // Blank device: xfs_growfs finds no mounted filesystem.
    let err = HostMounter::new()
        .grow(&device, &fx.path("mnt"), FsType::Xfs)
        .unwrap_err();
    assert!(matches!(err, MountError::Resize { .. }), "{err}");
}

#[test]
fn stats_of_a_missing_path_is_an_error() {
    let err = HostMounter::new()
        .stats(Path::new("/nonexistent/hearth/path"))
        .unwrap_err();
    assert!(
        matches!(
            err,
            MountError::Stats {
                errno: Errno::ENOENT,
                ..
            }
        ),
        "{err}"
    );
}
