//! Tests of `loopdev`: kept beside it so the module itself stays readable.

use super::attach::*;
use super::ioctl::*;
use super::sysfs::*;
use super::*;
use std::ffi::{CStr, OsStr};
use std::fs;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;

const MIB: u64 = 1024 * 1024;

fn is_root() -> bool {
    if nix::unistd::Uid::effective().is_root() {
        true
    } else {
        println!("skipping: needs root");
        false
    }
}

/// Detaches a device this test attached, even when the test fails halfway.
struct Detach(Option<LoopDevice>);

impl Drop for Detach {
    fn drop(&mut self) {
        if let Some(dev) = self.0.take() {
            let _ = detach(&dev);
        }
    }
}

fn sparse_file(dir: &Path, name: &str, len: u64) -> PathBuf {
    let path = dir.join(name);
    let f = File::create(&path).unwrap();
    f.set_len(len).unwrap();
    path
}

/// Whether `dev` is currently bound to the file with identity `id`.
fn is_bound_to(dev: &LoopDevice, id: (u64, u64)) -> bool {
    status_of(dev.number, id, false).unwrap().is_some()
}

#[test]
fn struct_layout_matches_kernel() {
    assert_eq!(std::mem::size_of::<LoopInfo64>(), 232);
    assert_eq!(std::mem::offset_of!(LoopInfo64, lo_flags), 52);
    assert_eq!(std::mem::offset_of!(LoopInfo64, lo_file_name), 56);
    assert_eq!(std::mem::offset_of!(LoopConfig, info), 8);
    assert_eq!(std::mem::size_of::<LoopConfig>(), 304);
}

#[test]
fn file_name_is_truncated_to_63_bytes() {
    let long = PathBuf::from(format!("/{}", "a".repeat(200)));
    let info = LoopInfo64::for_file(&long, true);
    assert_eq!(info.lo_flags, LO_FLAGS_READ_ONLY);
    assert_eq!(info.lo_file_name[62], b'a');
    assert_eq!(info.lo_file_name[63], 0);
    let short = LoopInfo64::for_file(Path::new("/x/y"), false);
    assert_eq!(&short.lo_file_name[..5], b"/x/y\0");
    assert_eq!(short.lo_flags, 0);
}

#[test]
fn parses_backing_file_attribute() {
    assert_eq!(
        parse_backing(b"/var/a b.img\n"),
        Some((PathBuf::from("/var/a b.img"), false))
    );
    assert_eq!(
        parse_backing(b"/var/x.img (deleted)\n"),
        Some((PathBuf::from("/var/x.img"), true))
    );
    assert_eq!(parse_backing(b"\n"), None);
    assert_eq!(parse_backing(b""), None);
}

#[test]
fn find_of_missing_file_is_stat_error() {
    let err = find_by_backing_file(Path::new("/nonexistent/hearth-loop-test")).unwrap_err();
    assert!(matches!(
        err,
        LoopError::StatBacking {
            errno: Errno::ENOENT,
            ..
        }
    ));
}

#[test]
fn device_size_of_non_block_file_fails() {
    let dir = tempfile::tempdir().unwrap();
    let path = sparse_file(dir.path(), "f", MIB);
    assert!(matches!(
        device_size(&path).unwrap_err(),
        LoopError::Size {
            errno: Errno::ENOTTY,
            ..
        }
    ));
}

#[test]
fn attach_find_io_grow_detach() {
    if !is_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = sparse_file(dir.path(), "disk.img", 16 * MIB);
    let id = file_id(&img).unwrap();

    let dev = attach(&img, false).unwrap();
    let mut guard = Detach(Some(dev.clone()));
    assert_eq!(dev.path, PathBuf::from(format!("/dev/loop{}", dev.number)));
    assert!(is_bound_to(&dev, id));

    assert_eq!(find_by_backing_file(&img).unwrap(), Some(dev.clone()));
    assert_eq!(
        attach(&img, false).unwrap(),
        dev,
        "re-attach reuses the device"
    );
    assert!(matches!(
        attach(&img, true).unwrap_err(),
        LoopError::ModeMismatch {
            attached_read_only: false,
            ..
        }
    ));
    assert_eq!(device_size(&dev.path).unwrap(), 16 * MIB);

    // Kernel-side view.
    let listed = list_attached().unwrap();
    let mine = listed.iter().find(|a| a.device == dev).unwrap();
    assert!(!mine.deleted);
    assert_eq!(
        fs::canonicalize(&mine.backing).unwrap(),
        fs::canonicalize(&img).unwrap()
    );

    // Write through the device (O_DIRECT-free; fsync flushes to the backing file), read
    // back through the file and the device.
    let pattern: Vec<u8> = (0..4096u32).map(|i| (i % 251) as u8).collect();
    {
        let mut d = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&dev.path)
            .unwrap();
        d.seek(SeekFrom::Start(MIB)).unwrap();
        d.write_all(&pattern).unwrap();
        d.sync_all().unwrap();
        let mut back = vec![0u8; pattern.len()];
        d.seek(SeekFrom::Start(MIB)).unwrap();
        d.read_exact(&mut back).unwrap();
        assert_eq!(back, pattern);
    }
    {
        let mut f = File::open(&img).unwrap();
        f.seek(SeekFrom::Start(MIB)).unwrap();
        let mut back = vec![0u8; pattern.len()];
        f.read_exact(&mut back).unwrap();
        assert_eq!(back, pattern, "data reached the backing file");
    }

    // Grow.
    OpenOptions::new()
        .write(true)
        .open(&img)
        .unwrap()
        .set_len(32 * MIB)
        .unwrap();
    assert_eq!(set_capacity(&dev).unwrap(), 32 * MIB);
    assert_eq!(device_size(&dev.path).unwrap(), 32 * MIB);

    detach(&dev).unwrap();
    guard.0 = None;
    assert_eq!(find_by_backing_file(&img).unwrap(), None);

    // Detach again: hold the (now free) node exclusively so nobody else can bind it in the
    // meantime, and only detach again if it is still unbound — never someone else's device.
    let excl = open(
        &dev.path,
        OFlag::O_RDONLY | OFlag::O_CLOEXEC | OFlag::O_EXCL,
        Mode::empty(),
    );
    match excl {
        Ok(fd) if matches!(loop_get_status64(fd.as_fd()), Err(Errno::ENXIO)) => {
            detach(&dev).unwrap();
            drop(fd);
        }
        _ => println!(
            "{} was re-used by someone else; not detaching twice",
            dev.path.display()
        ),
    }
}

#[test]
fn attach_read_only() {
    if !is_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = sparse_file(dir.path(), "ro.img", 4 * MIB);
    let dev = attach(&img, true).unwrap();
    let _guard = Detach(Some(dev.clone()));
    let fd = open(&dev.path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty()).unwrap();
    let info = loop_get_status64(fd.as_fd()).unwrap();
    assert_ne!(info.lo_flags & LO_FLAGS_READ_ONLY, 0);
    assert_eq!(info.lo_flags & LO_FLAGS_AUTOCLEAR, 0);
    drop(fd);
    // The device refuses writes (the open itself may succeed on recent kernels).
    let wrote = OpenOptions::new()
        .write(true)
        .open(&dev.path)
        .and_then(|mut d| d.write_all(&[1u8; 512]).and_then(|()| d.sync_all()));
    assert!(wrote.is_err(), "write to a read-only loop device succeeded");
    assert_eq!(attach(&img, true).unwrap(), dev);
    assert!(matches!(
        attach(&img, false).unwrap_err(),
        LoopError::ModeMismatch {
            attached_read_only: true,
            ..
        }
    ));
}

#[test]
fn rw_attach_has_no_autoclear_and_records_name() {
    if !is_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = sparse_file(dir.path(), "name.img", MIB);
    let dev = attach(&img, false).unwrap();
    let _guard = Detach(Some(dev.clone()));
    let fd = open(&dev.path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty()).unwrap();
    let info = loop_get_status64(fd.as_fd()).unwrap();
    assert_eq!(info.lo_flags & (LO_FLAGS_AUTOCLEAR | LO_FLAGS_READ_ONLY), 0);
    let name = CStr::from_bytes_until_nul(&info.lo_file_name).unwrap();
    let expect = img.as_os_str().as_bytes();
    assert_eq!(name.to_bytes(), &expect[..expect.len().min(63)]);
}

#[test]
fn concurrent_attach_detach() {
    if !is_root() {
        return;
    }
    const THREADS: usize = 8;
    const ROUNDS: usize = 20;
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let started = Instant::now();
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let dir = Arc::clone(&dir);
            thread::spawn(move || -> Result<(), String> {
                let img = sparse_file(dir.path(), &format!("c{t}.img"), 8 * MIB);
                let id = file_id(&img).map_err(|e| e.to_string())?;
                for round in 0..ROUNDS {
                    let dev = attach(&img, false).map_err(|e| format!("t{t} r{round}: {e}"))?;
                    let mut guard = Detach(Some(dev.clone()));
                    if !is_bound_to(&dev, id) {
                        return Err(format!(
                            "t{t} r{round}: {} not bound to us",
                            dev.path.display()
                        ));
                    }
                    detach(&dev).map_err(|e| format!("t{t} r{round}: {e}"))?;
                    guard.0 = None;
                    if find_by_backing_file(&img)
                        .map_err(|e| e.to_string())?
                        .is_some()
                    {
                        return Err(format!("t{t} r{round}: still attached after detach"));
                    }
                }
                Ok(())
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    println!(
        "{} attach+detach pairs in {:?}",
        THREADS * ROUNDS,
        started.elapsed()
    );
    for r in &results {
        assert!(r.is_ok(), "{r:?}");
    }
    // No leaks: nothing is backed by our files any more.
    for a in list_attached().unwrap() {
        assert!(
            !a.backing.starts_with(dir.path()),
            "leaked {} -> {}",
            a.device.path.display(),
            a.backing.display()
        );
    }
}

#[test]
fn same_file_concurrently_gets_one_device() {
    if !is_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = Arc::new(sparse_file(dir.path(), "shared.img", MIB));
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let img = Arc::clone(&img);
            thread::spawn(move || attach(&img, false))
        })
        .collect();
    let devs: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    // One guard per distinct device: detaching the same number twice could hit a device
    // someone else attached in between.
    let mut distinct: Vec<LoopDevice> = devs
        .iter()
        .filter_map(|d| d.as_ref().ok().cloned())
        .collect();
    distinct.sort_by_key(|d| d.number);
    distinct.dedup();
    let _guards: Vec<_> = distinct.iter().map(|d| Detach(Some(d.clone()))).collect();
    for d in &devs {
        assert!(d.is_ok(), "{d:?}");
    }
    assert_eq!(distinct.len(), 1, "one file, one device: {distinct:?}");
}

#[test]
fn list_attached_reports_deleted_backing() {
    if !is_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = sparse_file(dir.path(), "gone.img", MIB);
    let dev = attach(&img, false).unwrap();
    let _guard = Detach(Some(dev.clone()));
    fs::remove_file(&img).unwrap();
    let listed = list_attached().unwrap();
    let mine = listed.iter().find(|a| a.device == dev).unwrap();
    assert!(mine.deleted, "{mine:?}");
    assert_eq!(mine.backing.file_name(), Some(OsStr::new("gone.img")));
}

#[test]
fn attach_detach_latency() {
    if !is_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = sparse_file(dir.path(), "lat.img", 16 * MIB);
    const N: u32 = 50;
    let started = Instant::now();
    for _ in 0..N {
        let dev = attach(&img, false).unwrap();
        let mut guard = Detach(Some(dev.clone()));
        detach(&dev).unwrap();
        guard.0 = None;
    }
    let per = started.elapsed() / N;
    println!("attach+detach: {per:?} per pair (sequential)");
    // Generous bound: catches a slow path (e.g. hitting DETACH_WAIT), not a benchmark.
    assert!(per < Duration::from_millis(50), "{per:?}");
}

#[test]
fn detach_with_a_holder_is_deferred_and_not_reused() {
    if !is_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = sparse_file(dir.path(), "held.img", MIB);
    // Every guard is disarmed right after its explicit detach: a stale guard would later
    // detach whatever device re-used the number (possibly another test's).
    let dev = attach(&img, false).unwrap();
    let mut guard = Detach(Some(dev.clone()));

    // A transient holder that goes away within DETACH_WAIT: detach waits it out.
    let holder = File::open(&dev.path).unwrap();
    let releaser = thread::spawn(move || {
        thread::sleep(Duration::from_millis(20));
        drop(holder);
    });
    detach(&dev).unwrap();
    guard.0 = None;
    releaser.join().unwrap();
    assert_eq!(find_by_backing_file(&img).unwrap(), None);

    // A holder that stays (like a mount): detach returns Ok, the kernel keeps the device
    // until the last close (ours, `holder`, also on unwind), and attach does not hand out
    // the dying device.
    let dev = attach(&img, false).unwrap();
    let mut guard = Detach(Some(dev.clone()));
    let holder = File::open(&dev.path).unwrap();
    detach(&dev).unwrap();
    guard.0 = None;
    let info = loop_get_status64(holder.as_fd()).unwrap();
    assert_ne!(info.lo_flags & LO_FLAGS_AUTOCLEAR, 0, "teardown deferred");
    let fresh = attach(&img, false).unwrap();
    let mut guard = Detach(Some(fresh.clone()));
    assert_ne!(fresh, dev);
    drop(holder);
    assert_eq!(find_by_backing_file(&img).unwrap(), Some(fresh.clone()));
    detach(&fresh).unwrap();
    guard.0 = None;
    assert_eq!(find_by_backing_file(&img).unwrap(), None);
}

#[test]
fn legacy_set_fd_bind() {
    if !is_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = sparse_file(dir.path(), "legacy.img", 2 * MIB);
    let id = file_id(&img).unwrap();
    let backing = open(&img, OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty()).unwrap();
    let control = open(
        LOOP_CONTROL,
        OFlag::O_RDWR | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
    .unwrap();
    let info = LoopInfo64::for_file(&img, false);
    let mut bound = None;
    for _ in 0..ATTACH_TRIES {
        let dev = LoopDevice::from_number(ctl_get_free(control.as_fd()).unwrap());
        let fd = open_new_node(&dev, false).unwrap();
        match bind_legacy(&dev, fd.as_fd(), backing.as_fd(), &img, &info) {
            Ok(()) => {
                bound = Some(dev);
                break;
            }
            Err(BindError::Busy) => continue,
            Err(BindError::Failed(e)) => panic!("{e}"),
        }
    }
    let dev = bound.expect("a free device within ATTACH_TRIES");
    let mut guard = Detach(Some(dev.clone()));
    assert!(is_bound_to(&dev, id));
    assert_eq!(find_by_backing_file(&img).unwrap(), Some(dev.clone()));
    assert_eq!(device_size(&dev.path).unwrap(), 2 * MIB);
    let fd = open(&dev.path, OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty()).unwrap();
    let status = loop_get_status64(fd.as_fd()).unwrap();
    drop(fd);
    assert_eq!(
        status.lo_flags & (LO_FLAGS_AUTOCLEAR | LO_FLAGS_READ_ONLY),
        0
    );
    assert_eq!(status.lo_file_name, info.lo_file_name);
    detach(&dev).unwrap();
    guard.0 = None;
    assert_eq!(find_by_backing_file(&img).unwrap(), None);
}
