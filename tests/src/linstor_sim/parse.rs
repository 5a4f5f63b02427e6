//! Reading request bodies the way LINSTOR does: JSON whatever the `Content-Type`
//! (python-linstor sends none), optional fields, and `FAIL_INVLD_*` answers for bad input.
//!
//! Owns: body and field parsing helpers, name rules, and property changes
//! (`override_props`, `delete_props`, `delete_namespaces`).

use serde_json::Value;

use super::consts::{FAIL_INVLD_REQUEST, FAIL_INVLD_RSC_NAME, WARN_DEL_UNSET_PROP};
use super::reply::{Fail, Rc};
use super::state::Props;

/// Parses a body; an empty body is `{}`.
pub fn body(bytes: &[u8]) -> Result<Value, Fail> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(serde_json::Map::new()));
    }
    serde_json::from_slice(bytes).map_err(|e| bad(format!("request body is not JSON: {e}")))
}

/// A `FAIL_INVLD_REQUEST` answer.
pub fn bad(message: impl Into<String>) -> Fail {
    Fail(Rc::err(0, 0, FAIL_INVLD_REQUEST, message))
}

/// A string field, if present and a string.
pub fn str_of(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// A non-negative integer field, if present.
pub fn u64_of(v: &Value, key: &str) -> Result<Option<u64>, Fail> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(x) => x
            .as_u64()
            .map(Some)
            .ok_or_else(|| bad(format!("{key} must be a non-negative integer"))),
    }
}

/// A boolean field (false when absent).
pub fn bool_of(v: &Value, key: &str) -> bool {
    v.get(key).and_then(Value::as_bool).unwrap_or(false)
}

/// A list of strings (empty when absent or null).
pub fn strings_of(v: &Value, key: &str) -> Result<Vec<String>, Fail> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|i| {
                i.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| bad(format!("{key} must be a list of strings")))
            })
            .collect(),
        Some(_) => Err(bad(format!("{key} must be a list"))),
    }
}

/// A string-to-string map (empty when absent or null).
pub fn props_of(v: &Value, key: &str) -> Result<Props, Fail> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(Props::new()),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, val)| {
                val.as_str()
                    .map(|s| (k.clone(), s.to_owned()))
                    .ok_or_else(|| bad(format!("{key}.{k} must be a string")))
            })
            .collect(),
        Some(_) => Err(bad(format!("{key} must be an object"))),
    }
}

/// LINSTOR's object name rule: `[a-zA-Z0-9_][a-zA-Z0-9_-]{1,47}`.
pub fn check_name(name: &str, what: &str) -> Result<(), Fail> {
    let ok = (2..=48).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        && !name.starts_with('-');
    if ok {
        Ok(())
    } else {
        Err(Fail(
            Rc::err(
                0,
                0,
                FAIL_INVLD_RSC_NAME,
                format!("Invalid {what} name '{name}'"),
            )
            .correction("Use 2-48 characters of a-z, A-Z, 0-9, '_' and '-', not starting with '-'"),
        ))
    }
}

/// Applies `override_props`, `delete_props` and `delete_namespaces` from `body`; returns a
/// warning for each deleted key that was not set.
pub fn change_props(props: &mut Props, body: &Value, obj: u64) -> Result<Vec<Rc>, Fail> {
    let set = props_of(body, "override_props")?;
    let delete = strings_of(body, "delete_props")?;
    let namespaces = strings_of(body, "delete_namespaces")?;
    let mut warnings = Vec::new();
    for key in delete {
        if props.remove(&key).is_none() {
            warnings.push(Rc::warn(
                obj,
                WARN_DEL_UNSET_PROP,
                format!("Could not delete property '{key}' as it did not exist"),
            ));
        }
    }
    for ns in namespaces {
        let prefix = format!("{}/", ns.trim_end_matches('/'));
        props.retain(|k, _| !k.starts_with(&prefix));
    }
    props.extend(set);
    Ok(warnings)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn bodies_and_fields() {
        assert_eq!(body(b"").unwrap(), json!({}));
        assert!(body(b"{").is_err());
        let v = json!({"a": "x", "n": 5, "l": ["p"], "m": {"k": "v"}, "bad": -1});
        assert_eq!(str_of(&v, "a").as_deref(), Some("x"));
        assert_eq!(u64_of(&v, "n").unwrap(), Some(5));
        assert!(u64_of(&v, "bad").is_err());
        assert_eq!(strings_of(&v, "l").unwrap(), ["p"]);
        assert!(strings_of(&v, "m").is_err());
        assert_eq!(props_of(&v, "m").unwrap()["k"], "v");
    }

    #[test]
    fn names() {
        assert!(check_name("pvc-0b8e6b5c-1f2a-4c1e-9d7b-3a2f1e0d9c8b", "resource").is_ok());
        for bad in ["a", "-ab", "a b", "ä√", &"x".repeat(49)] {
            assert!(check_name(bad, "resource").is_err(), "{bad}");
        }
    }

    #[test]
    fn prop_changes() {
        let mut p = Props::new();
        p.insert("DrbdOptions/Net/protocol".into(), "C".into());
        p.insert("Aux/a".into(), "1".into());
        let w = change_props(
            &mut p,
            &json!({"override_props": {"DrbdOptions/Net/allow-two-primaries": "yes"},
                    "delete_props": ["Aux/a", "Aux/none"], "delete_namespaces": ["DrbdOptions/Net"]}),
            0,
        )
        .unwrap();
        assert_eq!(w.len(), 1);
        assert_eq!(p.len(), 1);
        assert_eq!(p["DrbdOptions/Net/allow-two-primaries"], "yes");
    }
}
