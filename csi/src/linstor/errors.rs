//! The one mapping from LINSTOR client errors to CSI codes.

use super::client::consts::{FAIL_NOT_ENOUGH_FREE_SPACE, FAIL_NOT_ENOUGH_NODES};
use super::client::LinstorError;
use crate::CsiError;

impl From<LinstorError> for CsiError {
    fn from(err: LinstorError) -> Self {
        let code = err
            .ret_code()
            .map(|c| c & super::client::consts::MASK_BITS_CODE);
        if err.is_not_found() {
            CsiError::NotFound(err.to_string())
        } else if err.is_already_exists() {
            CsiError::AlreadyExists(err.to_string())
        } else if err.is_in_use() {
            CsiError::FailedPrecondition(err.to_string())
        } else if err.is_transient() {
            CsiError::Unavailable(format!("LINSTOR did not answer: {err}"))
        } else if matches!(
            code,
            Some(FAIL_NOT_ENOUGH_FREE_SPACE | FAIL_NOT_ENOUGH_NODES)
        ) {
            CsiError::ResourceExhausted(err.to_string())
        } else {
            CsiError::Internal(err.to_string())
        }
    }
}
