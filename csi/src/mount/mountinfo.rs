//! Parsing of `/proc/self/mountinfo` into [`MountEntry`] values.
//!
//! This module owns the mountinfo format (proc(5)): field splitting, optional fields and the
//! kernel's octal escapes. It only reads; it must not mount, unmount or touch any path other
//! than `/proc/self/mountinfo`. It is on the NodePublish hot path, so [`read`] is one read of the
//! file and one pass over it, and the parser never panics: malformed input is an error.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;

use super::MountError;

/// The mount table of the calling process's mount namespace.
const MOUNTINFO: &str = "/proc/self/mountinfo";

/// One line of `/proc/self/mountinfo`: a mount in this mount namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountEntry {
    /// Unique id of the mount.
    pub mount_id: u32,
    /// Id of the parent mount (the mount's own id for the root of the namespace).
    pub parent_id: u32,
    /// Major number of `st_dev` for files on this filesystem.
    pub major: u32,
    /// Minor number of `st_dev` for files on this filesystem.
    pub minor: u32,
    /// The directory of the filesystem that forms the root of this mount (`/` for a whole
    /// filesystem, a subdirectory or file for a bind mount).
    pub root: PathBuf,
    /// The mount point, an absolute path in this process's root.
    pub mount_point: PathBuf,
    /// Per-mount options, e.g. `rw`, `ro`, `nosuid`, `relatime`.
    pub options: Vec<String>,
    /// Optional fields such as `shared:7` or `master:3` (mount propagation).
    pub optional_fields: Vec<String>,
    /// The filesystem type, e.g. `ext4` (with its subtype as `fuse.sshfs`).
    pub fs_type: String,
    /// The mount source, e.g. `/dev/loop3`, or `none`.
    pub source: String,
    /// Per-superblock options, e.g. `rw`, `errors=remount-ro`.
    pub super_options: Vec<String>,
}

impl MountEntry {
    /// True when writes through this mount fail: the mount or its superblock is read-only.
    pub fn read_only(&self) -> bool {
        self.options.iter().any(|o| o == "ro") || self.super_options.iter().any(|o| o == "ro")
    }
}

/// Reads and parses `/proc/self/mountinfo`.
pub fn read() -> Result<Vec<MountEntry>, MountError> {
    let bytes = std::fs::read(MOUNTINFO)
        .map_err(|e| MountError::ReadMountinfo(format!("{MOUNTINFO}: {e}")))?;
    parse_bytes(&bytes)
}

/// Parses the text of a mountinfo file.
pub fn parse(text: &str) -> Result<Vec<MountEntry>, MountError> {
    parse_bytes(text.as_bytes())
}

/// Parses the bytes of a mountinfo file. Paths are kept byte for byte (they need not be UTF-8);
/// other fields that are not UTF-8 are converted lossily.
pub fn parse_bytes(bytes: &[u8]) -> Result<Vec<MountEntry>, MountError> {
    let mut entries = Vec::with_capacity(bytes.iter().filter(|&&b| b == b'\n').count());
    for (index, line) in bytes.split(|&b| b == b'\n').enumerate() {
        if line.is_empty() {
            continue;
        }
        let entry = parse_line(line).map_err(|reason| {
            MountError::ReadMountinfo(format!(
                "line {}: {reason}: {:?}",
                index + 1,
                String::from_utf8_lossy(line)
            ))
        })?;
        entries.push(entry);
    }
    Ok(entries)
}

/// Parses one line, without its newline.
fn parse_line(line: &[u8]) -> Result<MountEntry, String> {
    // Fields are separated by single spaces; spaces inside fields are escaped as \040. The
    // source may be empty on some kernels, so empty fields are kept, not collapsed.
    let mut fields = line.split(|&b| b == b' ');
    let mut next = |name: &str| fields.next().ok_or_else(|| format!("missing {name}"));

    let mount_id = parse_u32(next("mount id")?, "mount id")?;
    let parent_id = parse_u32(next("parent id")?, "parent id")?;
    let (major, minor) = parse_dev(next("major:minor")?)?;
    // The root is a path inside the filesystem, except for pseudo filesystems: a bind mount of
    // a network namespace (nsfs, as `ip netns add` makes) has `net:[4026532177]`.
    let root = PathBuf::from(OsString::from_vec(unescape(next("root")?)?));
    let mount_point = parse_path(next("mount point")?, "mount point")?;
    let options = parse_options(next("mount options")?)?;

    let mut optional_fields = Vec::new();
    loop {
        let field = next("the \"-\" separator")?;
        if field == b"-" {
            break;
        }
        if field.is_empty() {
            return Err("empty optional field".to_owned());
        }
        optional_fields.push(unescape_string(field)?);
    }

    let fs_type = unescape_string(next("filesystem type")?)?;
    if fs_type.is_empty() {
        return Err("empty filesystem type".to_owned());
    }
    let source = unescape_string(next("mount source")?)?;
    let super_options = parse_options(next("super options")?)?;
    if fields.next().is_some() {
        return Err("trailing fields".to_owned());
    }

    Ok(MountEntry {
        mount_id,
        parent_id,
        major,
        minor,
        root,
        mount_point,
        options,
        optional_fields,
        fs_type,
        source,
        super_options,
    })
}

fn parse_u32(field: &[u8], name: &str) -> Result<u32, String> {
    // from_utf8 + parse rejects signs only partly ("+1" parses), so check the digits first.
    if field.is_empty() || !field.iter().all(u8::is_ascii_digit) {
        return Err(format!("{name} is not a number"));
    }
    std::str::from_utf8(field)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("{name} is out of range"))
}

fn parse_dev(field: &[u8]) -> Result<(u32, u32), String> {
    let colon = field
        .iter()
        .position(|&b| b == b':')
        .ok_or_else(|| "major:minor has no colon".to_owned())?;
    let (major, minor) = field.split_at(colon);
    Ok((parse_u32(major, "major")?, parse_u32(&minor[1..], "minor")?))
}

fn parse_path(field: &[u8], name: &str) -> Result<PathBuf, String> {
    let bytes = unescape(field)?;
    if bytes.first() != Some(&b'/') {
        return Err(format!("{name} is not an absolute path"));
    }
    Ok(PathBuf::from(OsString::from_vec(bytes)))
}

/// Splits a comma-separated option list, then unescapes each option (the kernel escapes commas
/// inside option values, so splitting first is right).
fn parse_options(field: &[u8]) -> Result<Vec<String>, String> {
    if field.is_empty() {
        return Ok(Vec::new());
    }
    field.split(|&b| b == b',').map(unescape_string).collect()
}

fn unescape_string(field: &[u8]) -> Result<String, String> {
    let bytes = unescape(field)?;
    Ok(match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

/// Undoes the kernel's escaping: a backslash followed by exactly three octal digits is that
/// byte (`\040` space, `\011` tab, `\012` newline, `\134` backslash). Any other backslash is
/// malformed.
fn unescape(field: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(field.len());
    let mut rest = field;
    while let Some((&byte, tail)) = rest.split_first() {
        if byte != b'\\' {
            out.push(byte);
            rest = tail;
            continue;
        }
        let digits = tail
            .get(..3)
            .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)))
            .ok_or_else(|| {
                "malformed escape: a backslash not followed by 3 octal digits".to_owned()
            })?;
        let value = digits
            .iter()
            .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
        let value = u8::try_from(value).map_err(|_| "octal escape above \\377".to_owned())?;
        out.push(value);
        rest = &tail[3..];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStrExt;

    const SAMPLE: &str = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
40 36 7:3 / /var/lib/kubelet/pods/x/volumes/a\\040b ro,nosuid,relatime shared:7 master:2 - ext4 /dev/loop3 rw
";

    #[test]
    fn accepts_pseudo_filesystem_roots() {
        // `ip netns add` bind-mounts an nsfs inode: its root is not a path.
        let line = "43 42 0:4 net:[4026532177] /run/netns/ns rw shared:2 - nsfs nsfs rw";
        let entries = parse(line).unwrap();
        assert_eq!(entries[0].root, PathBuf::from("net:[4026532177]"));
        assert_eq!(entries[0].mount_point, PathBuf::from("/run/netns/ns"));
    }

    #[test]
    fn parses_sample() {
        let entries = parse(SAMPLE).unwrap();
        assert_eq!(entries.len(), 3);

        let proc_ = &entries[0];
        assert_eq!((proc_.mount_id, proc_.parent_id), (22, 27));
        assert_eq!((proc_.major, proc_.minor), (0, 21));
        assert_eq!(proc_.root, PathBuf::from("/"));
        assert_eq!(proc_.mount_point, PathBuf::from("/proc"));
        assert_eq!(proc_.options, ["rw", "relatime"]);
        assert!(proc_.optional_fields.is_empty());
        assert_eq!(proc_.fs_type, "proc");
        assert_eq!(proc_.source, "proc");
        assert_eq!(proc_.super_options, ["rw"]);
        assert!(!proc_.read_only());

        let ext3 = &entries[1];
        assert_eq!((ext3.major, ext3.minor), (98, 0));
        assert_eq!(ext3.root, PathBuf::from("/mnt1"));
        assert_eq!(ext3.optional_fields, ["master:1"]);
        assert_eq!(ext3.super_options, ["rw", "errors=continue"]);

        let vol = &entries[2];
        assert_eq!(
            vol.mount_point,
            PathBuf::from("/var/lib/kubelet/pods/x/volumes/a b")
        );
        assert_eq!(vol.optional_fields, ["shared:7", "master:2"]);
        assert_eq!(vol.source, "/dev/loop3");
        assert!(vol.read_only());
    }

    #[test]
    fn unescapes_space_tab_newline_backslash() {
        let line = "1 2 3:4 /a\\011b /m\\040n\\012o\\134p rw - ext4 /dev/x\\040y rw,opt=a\\054b";
        let entries = parse(line).unwrap();
        let e = &entries[0];
        assert_eq!(e.root, PathBuf::from("/a\tb"));
        assert_eq!(e.mount_point, PathBuf::from("/m n\no\\p"));
        assert_eq!(e.source, "/dev/x y");
        // An escaped comma stays inside its option.
        assert_eq!(e.super_options, ["rw", "opt=a,b"]);
    }

    #[test]
    fn keeps_non_utf8_paths() {
        let line = b"1 2 3:4 / /mnt/\xff\xfe rw - tmpfs tmpfs rw\n";
        let entries = parse_bytes(line).unwrap();
        assert_eq!(
            entries[0].mount_point.as_os_str().as_bytes(),
            b"/mnt/\xff\xfe"
        );
    }

    #[test]
    fn accepts_empty_source_and_super_options() {
        let entries = parse("1 2 3:4 / /m rw - tmpfs  rw").unwrap();
        assert_eq!(entries[0].source, "");
        let entries = parse("1 2 3:4 / /m rw - tmpfs none ").unwrap();
        assert!(entries[0].super_options.is_empty());
    }

    #[test]
    fn skips_blank_lines_and_handles_no_trailing_newline() {
        let entries =
            parse("\n1 2 3:4 / /m rw - tmpfs none rw\n\n5 1 3:5 / /n rw - tmpfs none rw").unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(parse("").unwrap(), Vec::new());
    }

    #[test]
    fn refuses_malformed_lines() {
        let bad = [
            "1",
            "1 2",
            "1 2 3:4",
            "1 2 3:4 / /m rw",
            "1 2 3:4 / /m rw tmpfs none rw",         // no separator
            "1 2 3:4 / /m rw shared:1",              // no separator after optional fields
            "1 2 3:4 / /m rw -",                     // nothing after the separator
            "1 2 3:4 / /m rw - tmpfs",               // no source
            "1 2 3:4 / /m rw - tmpfs none",          // no super options
            "1 2 3:4 / /m rw - tmpfs none rw extra", // trailing field
            "1 2 3:4 / /m rw -  none rw",            // empty fs type
            "x 2 3:4 / /m rw - tmpfs none rw",       // id not a number
            "-1 2 3:4 / /m rw - tmpfs none rw",      // negative id
            "+1 2 3:4 / /m rw - tmpfs none rw",      // signed id
            "99999999999 2 3:4 / /m rw - tmpfs none rw", // id out of range
            "1 2 34 / /m rw - tmpfs none rw",        // no colon
            "1 2 :4 / /m rw - tmpfs none rw",        // empty major
            "1 2 3: / /m rw - tmpfs none rw",        // empty minor
            "1 2 3:4 / m rw - tmpfs none rw",        // relative mount point
            "1 2 3:4 / /m\\04 rw - tmpfs none rw",   // short escape
            "1 2 3:4 / /m\\ rw - tmpfs none rw",     // lone backslash at the end of a field
            "1 2 3:4 / /m\\0a0 rw - tmpfs none rw",  // non-octal digit
            "1 2 3:4 / /m\\400 rw - tmpfs none rw",  // escape above one byte
            "1 2 3:4 / /m rw  - tmpfs none rw",      // empty optional field
            "1  2 3:4 / /m rw - tmpfs none rw",      // double space
        ];
        for line in bad {
            match parse(line) {
                Err(MountError::ReadMountinfo(reason)) => {
                    assert!(reason.contains("line 1"), "{line:?}: {reason}");
                }
                other => panic!("{line:?} parsed: {other:?}"),
            }
        }
    }

    #[test]
    fn error_names_the_line() {
        let text = "1 2 3:4 / /m rw - tmpfs none rw\n1 2 3:4 / /m rw\n";
        let Err(MountError::ReadMountinfo(reason)) = parse(text) else {
            panic!("parsed");
        };
        assert!(reason.starts_with("line 2:"), "{reason}");
    }

    #[test]
    fn never_panics_on_mangled_input() {
        // Fuzz-ish: every prefix, every single-byte deletion and a few byte substitutions of a
        // valid line must either parse or return an error, never panic.
        let line =
            "36 35 98:0 /mnt\\0401 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue";
        let bytes = line.as_bytes();
        for end in 0..=bytes.len() {
            let _ = parse_bytes(&bytes[..end]);
        }
        for skip in 0..bytes.len() {
            let mut mangled = bytes.to_vec();
            mangled.remove(skip);
            let _ = parse_bytes(&mangled);
            for replacement in [b' ', b'\\', b'-', b':', b'\n', 0, 0xff, b'7'] {
                let mut mangled = bytes.to_vec();
                mangled[skip] = replacement;
                let _ = parse_bytes(&mangled);
            }
        }
    }

    #[test]
    fn reads_this_process_mountinfo() {
        let entries = read().unwrap();
        assert!(!entries.is_empty());
        assert!(entries
            .iter()
            .any(|e| e.mount_point == std::path::Path::new("/")));
    }
}
