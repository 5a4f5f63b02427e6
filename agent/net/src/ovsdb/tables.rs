//! Typed rows of the Open_vSwitch database tables Hearth reads (Open_vSwitch, Bridge, Port,
//! Interface) and [`read`], which selects them all in one transaction. Decoding is lenient:
//! a column of an unexpected shape reads as empty.

use std::collections::BTreeMap;

use serde_json::Value;

use super::datum::{decode_map, decode_optional, decode_uuids, select};
use super::{Ovsdb, OvsdbError};

/// The Open_vSwitch database name.
pub const DB: &str = "Open_vSwitch";

/// The root row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OpenVswitch {
    /// Its UUID.
    pub uuid: String,
    /// external_ids.
    pub external_ids: BTreeMap<String, String>,
    /// Bridge UUIDs.
    pub bridges: Vec<String>,
}

/// A Bridge row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Bridge {
    /// Its UUID.
    pub uuid: String,
    /// name.
    pub name: String,
    /// datapath_type (empty means `system`).
    pub datapath_type: String,
    /// Port UUIDs.
    pub ports: Vec<String>,
    /// external_ids.
    pub external_ids: BTreeMap<String, String>,
}

/// A Port row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Port {
    /// Its UUID.
    pub uuid: String,
    /// name.
    pub name: String,
    /// Interface UUIDs.
    pub interfaces: Vec<String>,
    /// external_ids.
    pub external_ids: BTreeMap<String, String>,
}

/// An Interface row.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Interface {
    /// Its UUID.
    pub uuid: String,
    /// name.
    pub name: String,
    /// type (empty means a system device).
    pub kind: String,
    /// mac: the requested MAC, if any.
    pub mac: Option<String>,
    /// mtu_request, if any.
    pub mtu_request: Option<i64>,
    /// external_ids.
    pub external_ids: BTreeMap<String, String>,
}

/// Everything [`read`] returns.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OvsState {
    /// The root row (the database has exactly one once ovs-vswitchd or Hearth created it).
    pub root: Option<OpenVswitch>,
    /// Bridges.
    pub bridges: Vec<Bridge>,
    /// Ports.
    pub ports: Vec<Port>,
    /// Interfaces.
    pub interfaces: Vec<Interface>,
}

fn s(row: &Value, col: &str) -> String {
    row.get(col)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn uuid_of(row: &Value) -> String {
    decode_uuids(row.get("_uuid").unwrap_or(&Value::Null))
        .into_iter()
        .next()
        .unwrap_or_default()
}

fn map(row: &Value, col: &str) -> BTreeMap<String, String> {
    decode_map(row.get(col).unwrap_or(&Value::Null))
}

fn uuids(row: &Value, col: &str) -> Vec<String> {
    decode_uuids(row.get(col).unwrap_or(&Value::Null))
}

fn rows(v: &Value) -> &[Value] {
    v.get("rows")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// Reads the four tables in one transaction (a consistent snapshot).
pub async fn read(db: &dyn Ovsdb) -> Result<OvsState, OvsdbError> {
    let r = db
        .transact(
            DB,
            vec![
                select(
                    "Open_vSwitch",
                    vec![],
                    &["_uuid", "external_ids", "bridges"],
                ),
                select(
                    "Bridge",
                    vec![],
                    &["_uuid", "name", "datapath_type", "ports", "external_ids"],
                ),
                select(
                    "Port",
                    vec![],
                    &["_uuid", "name", "interfaces", "external_ids"],
                ),
                select(
                    "Interface",
                    vec![],
                    &[
                        "_uuid",
                        "name",
                        "type",
                        "mac",
                        "mtu_request",
                        "external_ids",
                    ],
                ),
            ],
        )
        .await?;
    let get = |i: usize| r.get(i).map(rows).unwrap_or_default();
    Ok(OvsState {
        root: get(0).first().map(|row| OpenVswitch {
            uuid: uuid_of(row),
            external_ids: map(row, "external_ids"),
            bridges: uuids(row, "bridges"),
        }),
        bridges: get(1)
            .iter()
            .map(|row| Bridge {
                uuid: uuid_of(row),
                name: s(row, "name"),
                datapath_type: s(row, "datapath_type"),
                ports: uuids(row, "ports"),
                external_ids: map(row, "external_ids"),
            })
            .collect(),
        ports: get(2)
            .iter()
            .map(|row| Port {
                uuid: uuid_of(row),
                name: s(row, "name"),
                interfaces: uuids(row, "interfaces"),
                external_ids: map(row, "external_ids"),
            })
            .collect(),
        interfaces: get(3)
            .iter()
            .map(|row| Interface {
                uuid: uuid_of(row),
                name: s(row, "name"),
                kind: s(row, "type"),
                mac: row
                    .get("mac")
                    .and_then(decode_optional)
                    .and_then(|v| v.as_str().map(str::to_owned)),
                mtu_request: row
                    .get("mtu_request")
                    .and_then(decode_optional)
                    .and_then(|v| v.as_i64()),
                external_ids: map(row, "external_ids"),
            })
            .collect(),
    })
}
