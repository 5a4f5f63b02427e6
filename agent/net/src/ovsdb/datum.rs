//! The JSON encoding of OVSDB data (RFC 7047 §5.1): atoms, `["set", ...]`, `["map", ...]`,
//! `["uuid", ...]`, `["named-uuid", ...]`, and the operations that carry them. Pure.

use std::collections::BTreeMap;

use serde_json::{json, Value};

/// A map datum of strings.
pub fn map(m: &BTreeMap<String, String>) -> Value {
    json!([
        "map",
        m.iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>()
    ])
}

/// A set datum.
pub fn set(items: Vec<Value>) -> Value {
    json!(["set", items])
}

/// A UUID atom.
pub fn uuid(u: &str) -> Value {
    json!(["uuid", u])
}

/// A reference to a row inserted earlier in the same transaction.
pub fn named_uuid(n: &str) -> Value {
    json!(["named-uuid", n])
}

/// Decodes a string map datum; anything else is an empty map.
pub fn decode_map(v: &Value) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Some(("map", Value::Array(pairs))) = as_tagged(v) {
        for p in pairs {
            if let Some([Value::String(k), Value::String(v)]) = p.as_array().map(Vec::as_slice) {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    out
}

/// Decodes a set (or a lone atom, which is a set of one) of UUIDs.
pub fn decode_uuids(v: &Value) -> Vec<String> {
    match as_tagged(v) {
        Some(("uuid", Value::String(u))) => vec![u.clone()],
        Some(("set", Value::Array(items))) => items.iter().flat_map(decode_uuids).collect(),
        _ => vec![],
    }
}

/// Decodes an optional atom (a set of zero or one) or a lone atom.
pub fn decode_optional(v: &Value) -> Option<Value> {
    match as_tagged(v) {
        Some(("set", Value::Array(items))) => items.first().cloned(),
        _ => Some(v.clone()),
    }
}

/// A set of strings, or a lone string.
pub fn decode_strings(v: &Value) -> Vec<String> {
    match as_tagged(v) {
        Some(("set", Value::Array(items))) => items
            .iter()
            .filter_map(|i| i.as_str().map(str::to_owned))
            .collect(),
        _ => v.as_str().map(|s| vec![s.to_owned()]).unwrap_or_default(),
    }
}

/// `[tag, value]` of a tagged datum.
fn as_tagged(v: &Value) -> Option<(&str, &Value)> {
    match v.as_array().map(Vec::as_slice) {
        Some([Value::String(tag), inner]) => Some((tag.as_str(), inner)),
        _ => None,
    }
}

/// A `select` operation.
pub fn select(table: &str, cond: Vec<Value>, columns: &[&str]) -> Value {
    json!({"op": "select", "table": table, "where": cond, "columns": columns})
}

/// A `where` clause `column == value`.
pub fn eq(column: &str, value: Value) -> Value {
    json!([column, "==", value])
}

/// An `insert` operation naming the new row `name`.
pub fn insert(table: &str, row: Value, name: &str) -> Value {
    json!({"op": "insert", "table": table, "row": row, "uuid-name": name})
}

/// An `update` operation of the row with this UUID.
pub fn update(table: &str, row_uuid: &str, row: Value) -> Value {
    json!({"op": "update", "table": table, "where": [eq("_uuid", uuid(row_uuid))], "row": row})
}

/// A `mutate` operation of the row with this UUID.
pub fn mutate(table: &str, row_uuid: &str, mutations: Vec<Value>) -> Value {
    json!({"op": "mutate", "table": table, "where": [eq("_uuid", uuid(row_uuid))], "mutations": mutations})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let m: BTreeMap<String, String> = [("a".into(), "1".into())].into();
        assert_eq!(decode_map(&map(&m)), m);
        assert_eq!(decode_uuids(&uuid("x")), vec!["x"]);
        assert_eq!(
            decode_uuids(&set(vec![uuid("x"), uuid("y")])),
            vec!["x", "y"]
        );
        assert_eq!(decode_optional(&set(vec![])), None);
        assert_eq!(decode_optional(&json!(5)), Some(json!(5)));
        assert_eq!(decode_strings(&json!("a")), vec!["a"]);
    }
}
