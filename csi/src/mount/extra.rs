//! The filesystem options a StorageClass may add, as linstor-csi takes them: `fsOpts` (mkfs
//! arguments), `mountOpts` (mount options) and `postMountXfsOpts` (one `xfs_io -c` command
//! run on a mounted XFS). The controller checks them when a volume is made and passes them in
//! the volume context; the node checks them again, since a volume context is outside input.
//!
//! Nothing here reaches a shell: mkfs arguments are argv words, the xfs_io command is one argv
//! word. Still, only plain words are accepted (no paths, quotes, `$`, `;`, spaces inside a
//! word), options that name another file or device or would populate the filesystem from one
//! are refused, and the xfs_io command must be one that sets an attribute. Pure: no I/O.

use super::FsType;

/// The longest option string accepted.
pub const MAX_LEN: usize = 1024;
/// The most mkfs words accepted.
const MAX_WORDS: usize = 32;

/// Sub-option keys (`key=value` inside a word) that name a file or another device.
const PATH_KEYS: &[&str] = &["device", "logdev", "rtdev", "name", "file", "protofile"];

/// mkfs flags refused for any filesystem: version, force and dry-run switches (Hearth decides
/// when to force, and a dry run would leave a blank device counted as formatted).
const REFUSED_FLAGS: &[&str] = &["-V", "-F", "-f", "-n", "-N"];

/// xfs_io commands `postMountXfsOpts` may run: they set an attribute of the mount's root.
const XFS_IO_COMMANDS: &[&str] = &["extsize", "cowextsize", "chattr", "chproj"];

fn word_ok(word: &str) -> bool {
    !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.=:,+^%".contains(&b))
}

/// Checks `fsOpts` and splits it into mkfs argument words. Words are separated by whitespace;
/// a word that is not a flag must be the value of the short flag just before it (`-L data`),
/// so no word is taken for the device.
pub fn mkfs_args(value: &str) -> Result<Vec<String>, String> {
    if value.len() > MAX_LEN {
        return Err(format!("longer than {MAX_LEN} bytes"));
    }
    let words: Vec<&str> = value.split_ascii_whitespace().collect();
    if words.len() > MAX_WORDS {
        return Err(format!("more than {MAX_WORDS} words"));
    }
    let mut after_short_flag = false;
    for word in &words {
        if !word_ok(word) {
            return Err(format!(
                "{word:?} has characters an mkfs option does not (allowed: letters, digits and -_.=:,+^%)"
            ));
        }
        if word.starts_with("--") {
            return Err(format!("{word:?}: long options are not accepted"));
        }
        if REFUSED_FLAGS.contains(word) {
            return Err(format!(
                "{word:?} is decided by Hearth, not the StorageClass"
            ));
        }
        for sub in word.trim_start_matches('-').split(',') {
            let key = sub.split_once('=').map_or(sub, |(k, _)| k);
            if PATH_KEYS.contains(&key) {
                return Err(format!("{word:?} names another file or device"));
            }
        }
        if word.starts_with('-') {
            after_short_flag = word.len() == 2;
        } else if after_short_flag {
            after_short_flag = false;
        } else {
            return Err(format!(
                "{word:?} is not a flag nor the value of one; Hearth names the device itself"
            ));
        }
    }
    Ok(words.into_iter().map(str::to_owned).collect())
}

/// The mkfs flags refused for one filesystem, checked on the node where the filesystem is
/// known: mke2fs's `-d` (populate from a directory), `-l` (bad-blocks file), `-S` (rewrite
/// superblocks only); mkfs.xfs's `-p` (protofile).
pub fn refused_for(fs: FsType, args: &[String]) -> Option<String> {
    let refused: &[&str] = match fs {
        FsType::Ext4 => &["-d", "-l", "-S"],
        FsType::Xfs => &["-p"],
    };
    args.iter()
        .find(|a| refused.contains(&a.as_str()))
        .map(|a| format!("{a} is not accepted for {}", fs.as_str()))
}

/// Checks `mountOpts`: comma-separated mount options, under the same policy as a CSI
/// capability's mount flags. Returns them as one flag (empty: none).
pub fn mount_flags(value: &str) -> Result<Vec<String>, String> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(Vec::new());
    }
    super::flags::parse_flag(value).map_err(|e| e.to_string())?;
    Ok(vec![value.to_owned()])
}

/// Checks `postMountXfsOpts`: one xfs_io command that sets an attribute (`extsize 2m`).
pub fn xfs_io_command(value: &str) -> Result<String, String> {
    let value = value.trim();
    if value.len() > 256 {
        return Err("longer than 256 bytes".into());
    }
    let words: Vec<&str> = value.split(' ').collect();
    let first = words.first().copied().unwrap_or_default();
    if !XFS_IO_COMMANDS.contains(&first) {
        return Err(format!(
            "xfs_io command {first:?} is not accepted; use one of {}",
            XFS_IO_COMMANDS.join(", ")
        ));
    }
    if let Some(w) = words.iter().find(|w| {
        w.is_empty()
            || !w
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.=+".contains(&b))
    }) {
        return Err(format!("{w:?} has characters an xfs_io argument does not"));
    }
    Ok(value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mkfs_words_are_plain_flags_and_their_values() {
        assert_eq!(
            mkfs_args("-L data  -m crc=1,finobt=1 -O ^has_journal").unwrap(),
            ["-L", "data", "-m", "crc=1,finobt=1", "-O", "^has_journal"]
        );
        assert_eq!(mkfs_args("").unwrap(), Vec::<String>::new());
        for bad in [
            "-L x; rm -rf /",
            "-L $(id)",
            "-L `id`",
            "-L 'x'",
            "-d /etc",
            "-J device=LABEL=x",
            "-l logdev=sdb",
            "-d file,name=x",
            "--help",
            "-f",
            "stray",
        ] {
            assert!(mkfs_args(bad).is_err(), "{bad:?} accepted");
        }
        let many = "-q ".repeat(40);
        assert!(mkfs_args(&many).is_err());
    }

    #[test]
    fn some_flags_are_refused_per_filesystem() {
        let args = |s: &str| mkfs_args(s).unwrap();
        assert!(refused_for(FsType::Ext4, &args("-d etc")).is_some());
        assert!(refused_for(FsType::Xfs, &args("-d su=64k,sw=4")).is_none());
        assert!(refused_for(FsType::Xfs, &args("-p proto")).is_some());
        assert!(refused_for(FsType::Ext4, &args("-L data")).is_none());
    }

    #[test]
    fn mount_options_follow_the_flag_policy() {
        assert_eq!(mount_flags("noatime,discard").unwrap(), ["noatime,discard"]);
        assert!(mount_flags("").unwrap().is_empty());
        assert!(mount_flags("bind").is_err());
        assert!(mount_flags("noatime,logdev=/dev/sdb").is_err());
        assert!(mount_flags("a b").is_err());
    }

    #[test]
    fn xfs_io_runs_only_attribute_commands() {
        assert_eq!(xfs_io_command("extsize 2m").unwrap(), "extsize 2m");
        assert_eq!(xfs_io_command("chattr +x").unwrap(), "chattr +x");
        for bad in [
            "pwrite 0 1m",
            "open /etc/shadow",
            "extsize 2m; id",
            "extsize  2m",
            "",
        ] {
            assert!(xfs_io_command(bad).is_err(), "{bad:?} accepted");
        }
    }
}
