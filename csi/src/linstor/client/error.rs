//! [`LinstorError`]: every way a LINSTOR call can fail, one variant per failed step, each
//! carrying the request (`METHOD /path`, which names the objects) and the controller's code.
//!
//! Owns: the error type and its predicates. The mapping from replies to variants is in
//! [`super::rc`]; callers (the CSI backend) map these to CSI codes once, at their boundary.

use std::path::PathBuf;
use std::time::Duration;

/// Why a LINSTOR call failed.
#[derive(Debug, thiserror::Error)]
pub enum LinstorError {
    /// The configured URL cannot be used.
    #[error("LINSTOR endpoint {url:?}: {reason}")]
    Endpoint { url: String, reason: String },
    /// Loading a CA, certificate or key file, or building the TLS configuration, failed.
    #[error("LINSTOR TLS setup, {what} {path}: {reason}")]
    Tls {
        what: &'static str,
        path: PathBuf,
        reason: String,
    },
    /// Building the HTTP client failed.
    #[error("build the HTTP client for {url}: {reason}")]
    Build { url: String, reason: String },
    /// The request did not get an answer: connection refused or reset, TLS handshake failure,
    /// or the body could not be read. Retried (see [`super::transport`]) before it surfaces.
    #[error("{op}: transport: {reason}")]
    Transport { op: String, reason: String },
    /// No answer within the request timeout, or a poll (clone status) ran out of time.
    #[error("{op}: no answer within {after:?}")]
    Timeout { op: String, after: Duration },
    /// The answer was not the JSON shape expected.
    #[error("{op}: cannot decode the answer (HTTP {status}): {reason}")]
    Decode {
        op: String,
        status: u16,
        reason: String,
    },
    /// The controller's REST API version is not 1.x at 1.0.4 or later.
    #[error(
        "controller at {url} reports REST API version {found:?}; Hearth needs 1.x, at least 1.0.4"
    )]
    Version { url: String, found: String },
    /// A `FAIL_EXISTS_*` code: the object already exists (a replayed create lands here).
    #[error("{op}: already exists (ret_code {ret_code:#x}): {message}")]
    AlreadyExists {
        op: String,
        ret_code: u64,
        message: String,
    },
    /// A `FAIL_NOT_FOUND_*` code, or HTTP 404 (then `ret_code` is 0).
    #[error("{op}: not found (ret_code {ret_code:#x}): {message}")]
    NotFound {
        op: String,
        ret_code: u64,
        message: String,
    },
    /// `FAIL_IN_USE`, `FAIL_RSC_BUSY` or `FAIL_NODE_HAS_USED_RSC`.
    #[error("{op}: in use (ret_code {ret_code:#x}): {message}")]
    InUse {
        op: String,
        ret_code: u64,
        message: String,
    },
    /// A `FAIL_ACC_DENIED_*` code, or HTTP 403 (then `ret_code` is 0).
    #[error("{op}: access denied (ret_code {ret_code:#x}): {message}")]
    AccessDenied {
        op: String,
        ret_code: u64,
        message: String,
    },
    /// Any other error entry, or an HTTP error status without one (then `ret_code` is 0).
    #[error("{op}: LINSTOR error (HTTP {status}, ret_code {ret_code:#x}): {message}{}{}",
        cause.as_ref().map(|c| format!("; cause: {c}")).unwrap_or_default(),
        correction.as_ref().map(|c| format!("; correction: {c}")).unwrap_or_default())]
    Api {
        op: String,
        status: u16,
        ret_code: u64,
        message: String,
        cause: Option<String>,
        correction: Option<String>,
    },
    /// The controller reported a clone as FAILED.
    #[error("clone of resource definition {from} to {to}: the controller reports FAILED")]
    CloneFailed { from: String, to: String },
}

impl LinstorError {
    /// The controller's `ret_code` (0 for errors from an HTTP status alone), if the controller
    /// answered with an error.
    pub fn ret_code(&self) -> Option<u64> {
        match self {
            Self::AlreadyExists { ret_code, .. }
            | Self::NotFound { ret_code, .. }
            | Self::InUse { ret_code, .. }
            | Self::AccessDenied { ret_code, .. }
            | Self::Api { ret_code, .. } => Some(*ret_code),
            _ => None,
        }
    }

    /// The code part of the `ret_code` (`ret_code & 0x7FFF`: 501 for `FAIL_EXISTS_RSC_DFN`,
    /// 514 for `FAIL_EXISTS_SNAPSHOT_DFN`, ...), to tell apart errors of one variant.
    pub fn code(&self) -> Option<u64> {
        self.ret_code().map(|r| r & super::consts::MASK_BITS_CODE)
    }

    /// True for [`LinstorError::AlreadyExists`].
    pub fn is_already_exists(&self) -> bool {
        matches!(self, Self::AlreadyExists { .. })
    }

    /// True for [`LinstorError::NotFound`].
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound { .. })
    }

    /// True for [`LinstorError::InUse`].
    pub fn is_in_use(&self) -> bool {
        matches!(self, Self::InUse { .. })
    }

    /// Failures that may pass when the caller tries again later: transport errors, timeouts,
    /// and HTTP 502/503/504 (what the retry loop had already retried).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Transport { .. } | Self::Timeout { .. } => true,
            Self::Api { status, .. } => matches!(status, 502..=504),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_carries_op_and_code() {
        let e = LinstorError::Api {
            op: "POST /v1/resource-definitions/pvc-1/autoplace".into(),
            status: 500,
            ret_code: 0xC000_0000_0000_03E4,
            message: "Not enough available nodes".into(),
            cause: Some("only 1 node".into()),
            correction: None,
        };
        let s = e.to_string();
        assert!(s.contains("pvc-1/autoplace"), "{s}");
        assert!(s.contains("0xc0000000000003e4"), "{s}");
        assert!(s.contains("cause: only 1 node"), "{s}");
        assert!(!s.contains("correction"), "{s}");
        assert_eq!(e.ret_code(), Some(0xC000_0000_0000_03E4));
        assert_eq!(e.code(), Some(996));
        assert!(!e.is_transient());
    }
}
