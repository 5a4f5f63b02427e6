//! Floating IPs for overlay workloads in the OVN northbound database: one `dnat_and_snat` NAT
//! row per floating IP on the gateway logical router, and the HA chassis group of the router's
//! gateway port whose member priorities say which node is the gateway.
//!
//! Owns, in OVN_Northbound: the NAT rows of the configured router marked
//! `external_ids:hearth-managed=true` (each also names its floating IP under
//! [`FIP_KEY`]), the HA_Chassis_Group named in [`Desired::ha`] when it carries the same mark
//! (and its HA_Chassis rows), and the `ha_chassis_group` column of the gateway port. It must
//! not change or delete any other row or column: foreign NAT rows, routers, switches, ports
//! and groups are left as they are.
//!
//! Flow: [`read`] takes a consistent snapshot ([`Observed`]), [`reconcile::plan`] (pure) turns
//! the difference with [`Desired`] into one transaction, [`apply`] runs it.
//! [`gateway`] decides the member priorities (pure) and reads the active gateway chassis from
//! the southbound database.

pub mod gateway;
pub mod reconcile;

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde_json::Value;

use crate::ovsdb::datum::{decode_map, decode_optional, decode_uuids, eq, select};
use crate::ovsdb::{Ovsdb, OvsdbError};

/// The northbound database name.
pub const DB: &str = "OVN_Northbound";
/// The external_ids key naming the floating IP a NAT row belongs to.
pub const FIP_KEY: &str = "hearth-floating-ip";

/// Why writing the northbound database failed.
#[derive(Debug, thiserror::Error)]
pub enum NbError {
    /// The configured router does not exist.
    #[error("logical router {0:?} not found in the northbound database")]
    NoRouter(String),
    /// The configured gateway port is not a port of the router.
    #[error("logical router port {port:?} not found on router {router:?}")]
    NoGatewayPort {
        /// The router.
        router: String,
        /// The port.
        port: String,
    },
    /// An HA chassis group of that name exists and is not Hearth's.
    #[error(
        "HA_Chassis_Group {0:?} exists and is not marked hearth-managed; refusing to take it over"
    )]
    ForeignGroup(String),
    /// The database call failed.
    #[error("northbound database: {0}")]
    Ovsdb(#[from] OvsdbError),
}

/// One NAT rule Hearth wants: the floating IP `name` maps `external_ip` to `logical_ip`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatWant {
    /// The FloatingIP's name.
    pub name: String,
    /// The allocated external address.
    pub external_ip: IpAddr,
    /// The workload's address on the overlay.
    pub logical_ip: IpAddr,
}

/// The HA chassis group Hearth wants on the gateway port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HaWant {
    /// The group's name.
    pub group: String,
    /// Chassis name → priority (0..=32767; the highest live one is the gateway).
    pub members: BTreeMap<String, i64>,
}

/// What Hearth wants in the northbound database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    /// The gateway logical router.
    pub router: String,
    /// Its gateway (distributed gateway) port.
    pub gateway_port: String,
    /// The NAT rules, one per floating IP with a target.
    pub nats: Vec<NatWant>,
    /// The HA group of the gateway port; `None` leaves the port's gateway settings alone.
    pub ha: Option<HaWant>,
}

/// A NAT row as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatRow {
    /// Row UUID.
    pub uuid: String,
    /// `type`.
    pub kind: String,
    /// `external_ip`.
    pub external_ip: String,
    /// `logical_ip`.
    pub logical_ip: String,
    /// `external_ids`.
    pub external_ids: BTreeMap<String, String>,
}

/// An HA_Chassis row as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HaChassisRow {
    /// Row UUID.
    pub uuid: String,
    /// `chassis_name`.
    pub chassis: String,
    /// `priority`.
    pub priority: i64,
}

/// The HA group as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRow {
    /// Row UUID.
    pub uuid: String,
    /// `external_ids`.
    pub external_ids: BTreeMap<String, String>,
    /// Its members.
    pub members: Vec<HaChassisRow>,
}

/// The parts of the northbound database Hearth looks at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    /// The router's UUID, if it exists.
    pub router: Option<String>,
    /// The router's NAT rows (all of them; [`is_ours`] tells Hearth's).
    pub nats: Vec<NatRow>,
    /// The gateway port: its UUID and its `ha_chassis_group`, if it is a port of the router.
    pub port: Option<(String, Option<String>)>,
    /// The group named in [`HaWant::group`], if it exists.
    pub group: Option<GroupRow>,
}

/// Whether a row's external_ids mark it as Hearth's.
pub fn is_ours(external_ids: &BTreeMap<String, String>) -> bool {
    external_ids.get(super::MANAGED_KEY).map(String::as_str) == Some("true")
}

fn rows(v: Option<&Value>) -> &[Value] {
    v.and_then(|v| v.get("rows"))
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn text(row: &Value, col: &str) -> String {
    row.get(col)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn first_uuid(row: &Value, col: &str) -> Option<String> {
    row.get(col)
        .and_then(|v| decode_uuids(v).into_iter().next())
}

/// Reads the router, its NAT rows, the gateway port and the HA group in one transaction.
pub async fn read(db: &dyn Ovsdb, desired: &Desired) -> Result<Observed, NbError> {
    let group = desired.ha.as_ref().map(|h| h.group.as_str()).unwrap_or("");
    let r = db
        .transact(
            DB,
            vec![
                select(
                    "Logical_Router",
                    vec![eq("name", Value::from(desired.router.as_str()))],
                    &["_uuid", "nat", "ports"],
                ),
                select(
                    "NAT",
                    vec![],
                    &["_uuid", "type", "external_ip", "logical_ip", "external_ids"],
                ),
                select(
                    "Logical_Router_Port",
                    vec![eq("name", Value::from(desired.gateway_port.as_str()))],
                    &["_uuid", "ha_chassis_group"],
                ),
                select(
                    "HA_Chassis_Group",
                    vec![eq("name", Value::from(group))],
                    &["_uuid", "ha_chassis", "external_ids"],
                ),
                select("HA_Chassis", vec![], &["_uuid", "chassis_name", "priority"]),
            ],
        )
        .await?;
    let router = rows(r.first()).first();
    let nat_refs = router
        .map(|row| decode_uuids(row.get("nat").unwrap_or(&Value::Null)))
        .unwrap_or_default();
    let port_refs = router
        .map(|row| decode_uuids(row.get("ports").unwrap_or(&Value::Null)))
        .unwrap_or_default();
    let nats = rows(r.get(1))
        .iter()
        .filter_map(|row| {
            let uuid = first_uuid(row, "_uuid")?;
            nat_refs.contains(&uuid).then(|| NatRow {
                uuid,
                kind: text(row, "type"),
                external_ip: text(row, "external_ip"),
                logical_ip: text(row, "logical_ip"),
                external_ids: decode_map(row.get("external_ids").unwrap_or(&Value::Null)),
            })
        })
        .collect();
    let port = rows(r.get(2)).iter().find_map(|row| {
        let uuid = first_uuid(row, "_uuid")?;
        let group = row
            .get("ha_chassis_group")
            .and_then(decode_optional)
            .and_then(|v| decode_uuids(&v).into_iter().next());
        port_refs.contains(&uuid).then_some((uuid, group))
    });
    let chassis: BTreeMap<String, HaChassisRow> = rows(r.get(4))
        .iter()
        .filter_map(|row| {
            let uuid = first_uuid(row, "_uuid")?;
            Some((
                uuid.clone(),
                HaChassisRow {
                    uuid,
                    chassis: text(row, "chassis_name"),
                    priority: row.get("priority").and_then(Value::as_i64).unwrap_or(0),
                },
            ))
        })
        .collect();
    let group = if desired.ha.is_some() {
        rows(r.get(3)).first().and_then(|row| {
            Some(GroupRow {
                uuid: first_uuid(row, "_uuid")?,
                external_ids: decode_map(row.get("external_ids").unwrap_or(&Value::Null)),
                members: decode_uuids(row.get("ha_chassis").unwrap_or(&Value::Null))
                    .iter()
                    .filter_map(|u| chassis.get(u).cloned())
                    .collect(),
            })
        })
    } else {
        None
    };
    Ok(Observed {
        router: router.and_then(|row| first_uuid(row, "_uuid")),
        nats,
        port,
        group,
    })
}

/// What one [`apply`] pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    /// The number of operations written (0 when everything was as desired).
    pub ops: usize,
}

/// Reads, plans and writes one transaction; a second call with the same `desired` writes
/// nothing.
pub async fn apply(db: &dyn Ovsdb, desired: &Desired) -> Result<Applied, NbError> {
    let observed = read(db, desired).await?;
    let ops = reconcile::plan(desired, &observed)?;
    if !ops.is_empty() {
        db.transact(DB, ops.clone()).await?;
    }
    Ok(Applied { ops: ops.len() })
}
