//! Answers in LINSTOR's form: `ApiCallRc` entries (severity | operation | object | code), the
//! HTTP status an error maps to (300-399 -> 404, 400-499 -> 403, other errors -> 500), and
//! JSON bodies with `Content-Type: application/json` (python-linstor checks it).
//!
//! Owns: the answer types. The state machine decides which answer to give.

use std::collections::BTreeMap;

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use super::consts::{ERROR, INFO, WARN};

/// One `ApiCallRc`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rc {
    /// The full bit pattern.
    pub ret_code: u64,
    /// The message.
    pub message: String,
    /// Why, for errors.
    pub cause: Option<String>,
    /// What to do, for errors.
    pub correction: Option<String>,
    /// Objects involved (`RscDfn`, `Node`, ...).
    pub obj_refs: BTreeMap<String, String>,
}

impl Rc {
    /// A success entry: `op | obj | code`.
    pub fn ok(op: u64, obj: u64, code: u64, message: impl Into<String>) -> Self {
        Self::new(op | obj | code, message)
    }

    /// An error entry: `ERROR | op | obj | code`.
    pub fn err(op: u64, obj: u64, code: u64, message: impl Into<String>) -> Self {
        Self::new(ERROR | op | obj | code, message)
    }

    /// A warning entry.
    pub fn warn(obj: u64, code: u64, message: impl Into<String>) -> Self {
        Self::new(WARN | obj | code, message)
    }

    /// An info entry.
    pub fn info(obj: u64, code: u64, message: impl Into<String>) -> Self {
        Self::new(INFO | obj | code, message)
    }

    fn new(ret_code: u64, message: impl Into<String>) -> Self {
        Self {
            ret_code,
            message: message.into(),
            cause: None,
            correction: None,
            obj_refs: BTreeMap::new(),
        }
    }

    /// Adds an object reference.
    pub fn obj(mut self, kind: &str, name: &str) -> Self {
        self.obj_refs.insert(kind.to_owned(), name.to_owned());
        self
    }

    /// Adds a cause.
    pub fn cause(mut self, cause: impl Into<String>) -> Self {
        self.cause = Some(cause.into());
        self
    }

    /// Adds a correction.
    pub fn correction(mut self, correction: impl Into<String>) -> Self {
        self.correction = Some(correction.into());
        self
    }

    /// True for an error entry.
    pub fn is_error(&self) -> bool {
        self.ret_code & ERROR == ERROR
    }

    /// The HTTP status this entry maps to when it is the error of an answer.
    pub fn status(&self) -> StatusCode {
        match self.ret_code & 0x7FFF {
            300..=399 => StatusCode::NOT_FOUND,
            400..=499 => StatusCode::FORBIDDEN,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The wire form; `ret_code` as LINSTOR's signed 64-bit number.
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "ret_code": self.ret_code as i64, // the bit pattern, as LINSTOR sends it
            "message": self.message,
            "obj_refs": self.obj_refs,
        });
        if let Some(c) = &self.cause {
            v["cause"] = json!(c);
        }
        if let Some(c) = &self.correction {
            v["correction"] = json!(c);
        }
        v
    }
}

/// An error answer: its first entry decides the status.
#[derive(Debug, Clone)]
pub struct Fail(pub Rc);

impl From<Rc> for Fail {
    fn from(rc: Rc) -> Self {
        Self(rc)
    }
}

impl IntoResponse for Fail {
    fn into_response(self) -> Response {
        let status = self.0.status();
        rcs(status, &[self.0])
    }
}

/// What a handler returns.
pub type Answer = Result<Response, Fail>;

/// A JSON body with `status`.
pub fn json_body(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// A list of `ApiCallRc` with `status`.
pub fn rcs(status: StatusCode, entries: &[Rc]) -> Response {
    let list: Vec<Value> = entries.iter().map(Rc::to_json).collect();
    json_body(status, &Value::Array(list))
}

/// `200 OK` with a JSON value.
pub fn ok_json(body: &Value) -> Answer {
    Ok(json_body(StatusCode::OK, body))
}

/// `201 Created` with `ApiCallRc`s.
pub fn created(entries: &[Rc]) -> Answer {
    Ok(rcs(StatusCode::CREATED, entries))
}

/// `200 OK` with `ApiCallRc`s.
pub fn done(entries: &[Rc]) -> Answer {
    Ok(rcs(StatusCode::OK, entries))
}

#[cfg(test)]
mod tests {
    use super::super::consts::*;
    use super::*;

    #[test]
    fn error_statuses_and_wire_form() {
        let e = Rc::err(OP_CREATE, obj::RSC_DFN, FAIL_EXISTS_RSC_DFN, "exists").obj("RscDfn", "r");
        assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(e.is_error());
        let v = e.to_json();
        assert!(v["ret_code"].as_i64().unwrap() < 0);
        assert_eq!(v["obj_refs"]["RscDfn"], "r");
        let nf = Rc::err(0, obj::RSC_DFN, FAIL_NOT_FOUND_RSC_DFN, "nf");
        assert_eq!(nf.status(), StatusCode::NOT_FOUND);
        let denied = Rc::err(0, 0, 412, "no");
        assert_eq!(denied.status(), StatusCode::FORBIDDEN);
        assert!(!Rc::ok(OP_CREATE, obj::RSC, CREATED, "ok").is_error());
        assert!(!Rc::warn(obj::RSC, WARN_RSC_ALREADY_DEPLOYED, "w").is_error());
    }
}
