//! Fault injection: a table of faults that fire on matching LINSTOR requests before they are
//! routed. Added with `POST /sim/faults` or [`super::Simulator::add_fault`].
//!
//! Kinds:
//! - `http500`: answer 500 with a `FAIL_UNKNOWN_ERROR` `ApiCallRc` list;
//! - `http503`: answer 503 with an empty body (a proxy in front of a restarting controller);
//! - `in_use`: answer 500 with `FAIL_IN_USE`;
//! - `timeout`: hold the request for `delay_ms` (default 5000), then handle it normally (so it
//!   may apply after the client gave up);
//! - `drop`: close the connection without an answer.
//!
//! With `"apply": true` the request is handled first and its answer replaced by the fault
//! (the controller did the work, the client never heard): the case that makes a retried create
//! see "already exists".
//!
//! Owns: the fault description and matching. The server acts on them.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What a fault does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// 500 with `FAIL_UNKNOWN_ERROR`.
    Http500,
    /// 503, empty body.
    Http503,
    /// 500 with `FAIL_IN_USE`.
    InUse,
    /// Delay, then answer normally.
    Timeout,
    /// Close the connection.
    Drop,
}

/// One fault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fault {
    /// Fires on paths starting with this (`/v1/resource-definitions`).
    pub path_prefix: String,
    /// Fires only on this method (any when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// What it does.
    pub kind: FaultKind,
    /// How many requests it fires on.
    #[serde(default = "one")]
    pub count: u32,
    /// For `timeout`: how long to hold the request, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
    /// Handle the request before answering with the fault.
    #[serde(default)]
    pub apply: bool,
}

fn one() -> u32 {
    1
}

impl Fault {
    /// A fault of `kind` on `method` requests under `path_prefix`, firing `count` times.
    pub fn new(kind: FaultKind, method: Option<&str>, path_prefix: &str, count: u32) -> Self {
        Self {
            path_prefix: path_prefix.to_owned(),
            method: method.map(str::to_owned),
            kind,
            count,
            delay_ms: None,
            apply: false,
        }
    }

    /// The same fault, applied before it fires.
    pub fn applied(mut self) -> Self {
        self.apply = true;
        self
    }

    /// The same fault with a delay (for `timeout`).
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay_ms = Some(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX));
        self
    }

    /// True when it fires on this request.
    pub fn matches(&self, method: &str, path: &str) -> bool {
        self.count > 0
            && path.starts_with(&self.path_prefix)
            && self
                .method
                .as_deref()
                .is_none_or(|m| m.eq_ignore_ascii_case(method))
    }

    /// The hold time of a `timeout` fault.
    pub fn hold(&self) -> Duration {
        Duration::from_millis(self.delay_ms.unwrap_or(5000))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_match() {
        let f: Fault = serde_json::from_str(
            r#"{"path_prefix": "/v1/resource-definitions", "method": "post", "kind": "http500", "count": 2}"#,
        )
        .unwrap();
        assert_eq!(f.kind, FaultKind::Http500);
        assert!(f.matches("POST", "/v1/resource-definitions/x"));
        assert!(!f.matches("GET", "/v1/resource-definitions"));
        assert!(!f.matches("POST", "/v1/nodes"));
        let f: Fault = serde_json::from_str(r#"{"path_prefix": "/", "kind": "in_use"}"#).unwrap();
        assert_eq!((f.kind, f.count, f.apply), (FaultKind::InUse, 1, false));
        assert_eq!(
            Fault::new(FaultKind::Timeout, None, "/", 1).hold(),
            Duration::from_secs(5)
        );
        assert!(serde_json::from_str::<Fault>(r#"{"path_prefix": "/", "kind": "boom"}"#).is_err());
    }
}
