//! Sysctls under `/proc/sys/net`: the `Sysctls` trait and its one real implementation.
//! Paths come from the checked file and always start with `net/`; nothing else is written.
//! `/proc/sys/net` shows the network namespace of the thread that opens the file.

use std::path::PathBuf;

/// Why a sysctl could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum SysctlError {
    /// Reading `/proc/sys/<path>` failed (often: the interface does not exist yet).
    #[error("reading sysctl {path}: {source}")]
    Read {
        /// The path below /proc/sys.
        path: String,
        /// The errno.
        source: std::io::Error,
    },
    /// Writing failed (an invalid value gives EINVAL).
    #[error("writing sysctl {path}: {source}")]
    Write {
        /// The path below /proc/sys.
        path: String,
        /// The errno.
        source: std::io::Error,
    },
    /// A path outside `net/` was asked for.
    #[error("refusing sysctl {0}: only net/* is Hearth's")]
    Refused(String),
}

/// Reads and writes sysctls by their path below `/proc/sys`.
pub trait Sysctls: Send + Sync {
    /// The current value, whitespace-normalized.
    fn read(&self, path: &str) -> Result<String, SysctlError>;
    /// Writes a value.
    fn write(&self, path: &str, value: &str) -> Result<(), SysctlError>;
}

/// The real `/proc/sys`.
#[derive(Debug, Clone)]
pub struct ProcSys {
    root: PathBuf,
}

impl Default for ProcSys {
    fn default() -> Self {
        Self {
            root: PathBuf::from("/proc/sys"),
        }
    }
}

impl ProcSys {
    fn path(&self, path: &str) -> Result<PathBuf, SysctlError> {
        if !path.starts_with("net/") || path.split('/').any(|c| c.is_empty() || c == "..") {
            return Err(SysctlError::Refused(path.to_owned()));
        }
        Ok(self.root.join(path))
    }
}

impl Sysctls for ProcSys {
    fn read(&self, path: &str) -> Result<String, SysctlError> {
        let full = self.path(path)?;
        std::fs::read_to_string(full)
            .map(|v| crate::render::normalize(&v))
            .map_err(|source| SysctlError::Read {
                path: path.to_owned(),
                source,
            })
    }

    fn write(&self, path: &str, value: &str) -> Result<(), SysctlError> {
        let full = self.path(path)?;
        std::fs::write(full, value).map_err(|source| SysctlError::Write {
            path: path.to_owned(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_net_paths() {
        let p = ProcSys::default();
        assert!(matches!(
            p.write("kernel/hostname", "x"),
            Err(SysctlError::Refused(_))
        ));
        assert!(matches!(
            p.read("net/../kernel/hostname"),
            Err(SysctlError::Refused(_))
        ));
        assert!(p.read("net/ipv4/ip_forward").is_ok());
    }
}
