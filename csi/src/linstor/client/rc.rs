//! `ApiCallRc`: LINSTOR's reply entry, its classification by exact code, and the decoding of
//! reply bodies (a list, or the single object the OpenAPI file declares for HTTP 500).
//!
//! Owns: turning a status and a body into either the list of replies or the one
//! [`LinstorError`] that the first error entry (or the HTTP status) means. Nothing here does
//! I/O or retries.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::consts::{
    ACCESS_DENIED_RANGE, EXISTS_CODES, IN_USE_CODES, MASK_BITS_CODE, MASK_BITS_TYPE, MASK_ERROR,
    MASK_INFO, MASK_WARN, NOT_FOUND_RANGE,
};
use super::error::LinstorError;
use super::wire;

/// One reply entry of a LINSTOR call.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ApiCallRc {
    /// The raw bit pattern: severity | operation | object | code (see [`super::consts`]).
    #[serde(
        deserialize_with = "wire::ret_code",
        serialize_with = "wire::ret_code_ser"
    )]
    pub ret_code: u64,
    /// What happened.
    #[serde(deserialize_with = "wire::null_default")]
    pub message: String,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    /// More detail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
    /// What to do about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correction: Option<String>,
    /// Error reports the controller wrote.
    #[serde(
        deserialize_with = "wire::null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub error_report_ids: Vec<String>,
    /// Objects involved (`RscDfn` -> name, ...).
    #[serde(
        deserialize_with = "wire::null_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub obj_refs: BTreeMap<String, String>,
}

/// What an [`ApiCallRc`] means to Hearth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RcKind {
    /// No severity bits: success.
    Success,
    /// Informational.
    Info,
    /// A warning; the call went through.
    Warning,
    /// Error: a `FAIL_EXISTS_*` code.
    AlreadyExists,
    /// Error: a `FAIL_NOT_FOUND_*` code (300-399).
    NotFound,
    /// Error: `FAIL_IN_USE`, `FAIL_RSC_BUSY` or `FAIL_NODE_HAS_USED_RSC`.
    InUse,
    /// Error: a `FAIL_ACC_DENIED_*` code (400-499).
    AccessDenied,
    /// Any other error.
    Error,
}

impl ApiCallRc {
    /// Both severity bits set.
    pub fn is_error(&self) -> bool {
        self.ret_code & MASK_BITS_TYPE == MASK_ERROR
    }

    /// The code without the severity, operation and object masks.
    pub fn code(&self) -> u64 {
        self.ret_code & MASK_BITS_CODE
    }

    /// Classifies by the severity bits and the exact code.
    pub fn kind(&self) -> RcKind {
        match self.ret_code & MASK_BITS_TYPE {
            MASK_ERROR => {}
            MASK_WARN => return RcKind::Warning,
            MASK_INFO => return RcKind::Info,
            _ => return RcKind::Success,
        }
        let code = self.code();
        if EXISTS_CODES.contains(&code) {
            RcKind::AlreadyExists
        } else if NOT_FOUND_RANGE.contains(&code) {
            RcKind::NotFound
        } else if IN_USE_CODES.contains(&code) {
            RcKind::InUse
        } else if ACCESS_DENIED_RANGE.contains(&code) {
            RcKind::AccessDenied
        } else {
            RcKind::Error
        }
    }
}

/// Decodes a reply body: a JSON list of `ApiCallRc`, a single `ApiCallRc`, or nothing (an
/// empty body is an empty list).
pub fn decode_list(body: &[u8]) -> Result<Vec<ApiCallRc>, serde_json::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        Many(Vec<ApiCallRc>),
        One(ApiCallRc),
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    Ok(match serde_json::from_slice::<OneOrMany>(body)? {
        OneOrMany::Many(v) => v,
        OneOrMany::One(rc) => vec![rc],
    })
}

/// The error that a reply means, if any: the first error entry decides; without one, an HTTP
/// error status decides (404 not found, 403 access denied, anything else a plain API error).
pub fn check(op: &str, status: u16, rcs: &[ApiCallRc]) -> Result<(), LinstorError> {
    if let Some(rc) = rcs.iter().find(|rc| rc.is_error()) {
        return Err(error_for(op, status, rc));
    }
    if (200..300).contains(&status) {
        return Ok(());
    }
    let message = rcs
        .first()
        .map(|rc| rc.message.clone())
        .unwrap_or_else(|| format!("HTTP {status}"));
    Err(match status {
        404 => LinstorError::NotFound {
            op: op.to_owned(),
            ret_code: 0,
            message,
        },
        403 => LinstorError::AccessDenied {
            op: op.to_owned(),
            ret_code: 0,
            message,
        },
        _ => LinstorError::Api {
            op: op.to_owned(),
            status,
            ret_code: 0,
            message,
            cause: None,
            correction: None,
        },
    })
}

/// The typed error for one error entry.
pub fn error_for(op: &str, status: u16, rc: &ApiCallRc) -> LinstorError {
    let op = op.to_owned();
    let ret_code = rc.ret_code;
    let message = rc.message.clone();
    match rc.kind() {
        RcKind::AlreadyExists => LinstorError::AlreadyExists {
            op,
            ret_code,
            message,
        },
        RcKind::NotFound => LinstorError::NotFound {
            op,
            ret_code,
            message,
        },
        RcKind::InUse => LinstorError::InUse {
            op,
            ret_code,
            message,
        },
        RcKind::AccessDenied => LinstorError::AccessDenied {
            op,
            ret_code,
            message,
        },
        _ => LinstorError::Api {
            op,
            status,
            ret_code,
            message,
            cause: rc.cause.clone(),
            correction: rc.correction.clone(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::super::consts::*;
    use super::*;

    fn rc(ret_code: u64) -> ApiCallRc {
        ApiCallRc {
            ret_code,
            message: "m".into(),
            ..ApiCallRc::default()
        }
    }

    #[test]
    fn kinds_by_exact_code() {
        let exists = MASK_ERROR | MASK_RSC_DFN | MASK_CRT | FAIL_EXISTS_RSC_DFN;
        assert_eq!(rc(exists).kind(), RcKind::AlreadyExists);
        assert_eq!(
            rc(MASK_ERROR | FAIL_EXISTS_RSC_DFN).kind(),
            RcKind::AlreadyExists
        );
        assert_eq!(
            rc(MASK_ERROR | FAIL_NOT_FOUND_RSC_DFN).kind(),
            RcKind::NotFound
        );
        assert_eq!(rc(MASK_ERROR | FAIL_IN_USE).kind(), RcKind::InUse);
        assert_eq!(rc(MASK_ERROR | 412).kind(), RcKind::AccessDenied);
        // FAIL_LOST_STOR_POOL (521) sits in the 500s but is not an "exists" code.
        assert_eq!(rc(MASK_ERROR | 521).kind(), RcKind::Error);
        assert_eq!(rc(MASK_ERROR | FAIL_NOT_ENOUGH_NODES).kind(), RcKind::Error);
        assert_eq!(rc(MASK_WARN | 1005).kind(), RcKind::Warning);
        assert_eq!(rc(MASK_INFO | 10002).kind(), RcKind::Info);
        assert_eq!(
            rc(MASK_RSC_DFN | MASK_CRT | CREATED).kind(),
            RcKind::Success
        );
        // A warning with code 501 is still only a warning.
        assert_eq!(rc(MASK_WARN | 501).kind(), RcKind::Warning);
    }

    #[test]
    fn decode_list_shapes() {
        assert!(decode_list(b"").unwrap().is_empty());
        assert!(decode_list(b" \n").unwrap().is_empty());
        let one = decode_list(br#"{"ret_code": 1, "message": "ok"}"#).unwrap();
        assert_eq!(one.len(), 1);
        let many = decode_list(
            br#"[{"ret_code": -4611686018427387403, "message": "exists", "obj_refs": {"RscDfn": "r"}},
                 {"ret_code": 20447233, "message": "created", "cause": null}]"#,
        )
        .unwrap();
        assert_eq!(many.len(), 2);
        assert_eq!(many[0].kind(), RcKind::AlreadyExists);
        assert!(decode_list(br#"["x"]"#).is_err());
        assert!(decode_list(b"42").is_err());
    }

    #[test]
    fn check_maps_first_error_then_status() {
        let created = rc(MASK_RSC_DFN | MASK_CRT | CREATED);
        assert!(check("POST /x", 201, std::slice::from_ref(&created)).is_ok());
        let exists = rc(MASK_ERROR | MASK_RSC_DFN | FAIL_EXISTS_RSC_DFN);
        let e = check("POST /x", 500, &[created.clone(), exists]).unwrap_err();
        assert!(matches!(e, LinstorError::AlreadyExists { .. }), "{e}");
        // A 2xx reply that still carries an error is an error.
        let busy = rc(MASK_ERROR | FAIL_IN_USE);
        let e = check("DELETE /x", 200, &[busy]).unwrap_err();
        assert!(matches!(e, LinstorError::InUse { .. }), "{e}");
        let e = check("GET /x", 404, &[]).unwrap_err();
        assert!(
            matches!(e, LinstorError::NotFound { ret_code: 0, .. }),
            "{e}"
        );
        let e = check("GET /x", 403, &[]).unwrap_err();
        assert!(matches!(e, LinstorError::AccessDenied { .. }), "{e}");
        let e = check("GET /x", 503, &[]).unwrap_err();
        assert!(matches!(e, LinstorError::Api { status: 503, .. }), "{e}");
    }
}
