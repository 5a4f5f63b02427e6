//! The boundary error of the CSI services: one variant per gRPC status code that the CSI spec
//! gives. Module errors (mount, loop, catalog) convert into it once, and it converts into
//! `tonic::Status` once, here.

use tonic::{Code, Status};

/// An error returned by a CSI call, classified by the gRPC code the spec asks for.
#[derive(Debug, thiserror::Error)]
pub enum CsiError {
    /// A required field is missing or a value is malformed.
    #[error("{0}")]
    InvalidArgument(String),
    /// The volume, snapshot or path does not exist.
    #[error("{0}")]
    NotFound(String),
    /// An object of the same name exists with incompatible settings.
    #[error("{0}")]
    AlreadyExists(String),
    /// The system is not in a state where the call can proceed.
    #[error("{0}")]
    FailedPrecondition(String),
    /// A size is outside what the plugin supports.
    #[error("{0}")]
    OutOfRange(String),
    /// There is not enough space or another resource is used up.
    #[error("{0}")]
    ResourceExhausted(String),
    /// Another operation on the same object is in flight.
    #[error("{0}")]
    Aborted(String),
    /// A dependency could not be reached; the caller may retry.
    #[error("{0}")]
    Unavailable(String),
    /// The RPC belongs to a capability this plugin does not advertise (the spec's answer for
    /// RPCs of unreported capabilities).
    #[error("{0}")]
    Unimplemented(String),
    /// Anything else: a host call failed unexpectedly.
    #[error("{0}")]
    Internal(String),
}

impl CsiError {
    /// The gRPC code for this error.
    pub fn code(&self) -> Code {
        match self {
            Self::InvalidArgument(_) => Code::InvalidArgument,
            Self::NotFound(_) => Code::NotFound,
            Self::AlreadyExists(_) => Code::AlreadyExists,
            Self::FailedPrecondition(_) => Code::FailedPrecondition,
            Self::OutOfRange(_) => Code::OutOfRange,
            Self::ResourceExhausted(_) => Code::ResourceExhausted,
            Self::Aborted(_) => Code::Aborted,
            Self::Unavailable(_) => Code::Unavailable,
            Self::Unimplemented(_) => Code::Unimplemented,
            Self::Internal(_) => Code::Internal,
        }
    }

    /// Shorthand for an internal error with context.
    pub fn internal(context: impl std::fmt::Display, err: impl std::fmt::Display) -> Self {
        Self::Internal(format!("{context}: {err}"))
    }
}

impl From<CsiError> for Status {
    fn from(err: CsiError) -> Self {
        Status::new(err.code(), err.to_string())
    }
}

impl From<tokio::task::JoinError> for CsiError {
    fn from(err: tokio::task::JoinError) -> Self {
        Self::Internal(format!("host task failed: {err}"))
    }
}

impl From<crate::mount::MountError> for CsiError {
    fn from(err: crate::mount::MountError) -> Self {
        use crate::mount::MountError;
        match &err {
            MountError::InvalidFlag { .. } => Self::InvalidArgument(err.to_string()),
            MountError::MissingCapability { .. } => Self::FailedPrecondition(err.to_string()),
            MountError::Unmount {
                errno: nix::errno::Errno::EBUSY,
                ..
            } => Self::FailedPrecondition(format!("{err}: something still uses the mount")),
            _ => Self::Internal(err.to_string()),
        }
    }
}
