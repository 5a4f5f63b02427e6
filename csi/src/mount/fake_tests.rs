//! Tests of the recording fake mounter.

use super::*;

const MIB: u64 = 1 << 20;

#[test]
fn formats_only_blank_devices_and_mounts_only_what_they_hold() {
    let dir = tempfile::tempdir().unwrap();
    let m = FakeMounter::new();
    let dev = Path::new("/dev/loop9");
    m.add_blank_device(dev, 9, 64 * MIB);
    let target = dir.path().join("staging");
    let opts = MountOptions::default();
    assert!(matches!(
        m.mount_device(dev, &target, FsType::Ext4, &opts),
        Err(MountError::Mount {
            errno: Errno::EINVAL,
            ..
        })
    ));
    m.format(dev, FsType::Ext4, false, &[]).unwrap();
    assert!(m.format(dev, FsType::Xfs, false, &[]).is_err());
    m.mount_device(dev, &target, FsType::Ext4, &opts).unwrap();
    m.mount_device(dev, &target, FsType::Ext4, &opts).unwrap();
    assert_eq!(m.mount_points(), vec![target.clone()]);
    assert_eq!(m.device_number(dev).unwrap(), (7, 9));
    assert_eq!(m.stats(&target).unwrap().total_bytes, 64 * MIB);
    assert!(m.unmount(&target).unwrap());
    assert!(!m.unmount(&target).unwrap());
}

#[test]
fn binds_show_their_origin_and_finish_a_read_only_remount() {
    let dir = tempfile::tempdir().unwrap();
    let m = FakeMounter::new();
    let dev = Path::new("/dev/loop3");
    m.add_blank_device(dev, 3, MIB);
    let target = dir.path().join("pod/block");
    let rw = MountOptions::default();
    let ro = MountOptions {
        readonly: true,
        ..Default::default()
    };
    m.bind(dev, &target, &rw).unwrap();
    assert!(target.is_file());
    let at = m.mount_at(&target).unwrap().unwrap();
    assert_eq!(
        (at.fs_type.as_str(), at.root.as_path()),
        ("devtmpfs", Path::new("/loop3"))
    );
    m.bind(dev, &target, &ro).unwrap();
    assert!(m.mount_at(&target).unwrap().unwrap().read_only());
    assert!(m.bind(dev, &target, &rw).is_err());
    m.fail_next(MountOp::Unmount, Errno::EBUSY);
    assert!(m.unmount(&target).is_err());
    assert!(m.unmount(&target).unwrap());
}
