//! Which node is the gateway: the HA member priorities from node health and leases (pure), and
//! the chassis OVN made active, read from the southbound database (the chassis bound to the
//! gateway port's `cr-` chassisredirect port).

use std::collections::BTreeMap;

use serde_json::Value;

use super::NbError;
use crate::ovsdb::datum::{decode_optional, decode_uuids, eq, select};
use crate::ovsdb::Ovsdb;

/// The southbound database name.
pub const SB: &str = "OVN_Southbound";

/// A gateway-capable node as the coordinator sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gateway {
    /// The chassis name (the node's OVN system-id, which is its node name).
    pub chassis: String,
    /// The node agent reports healthy.
    pub healthy: bool,
    /// The node holds a valid lease.
    pub lease_valid: bool,
}

/// The priority of a node without a valid lease or health: still a member (OVN uses it when
/// no better one is alive), below every eligible one.
pub const FALLBACK: i64 = 1;
/// The base priority of an eligible node.
pub const ELIGIBLE: i64 = 100;
/// The priority of the eligible node that is the gateway now: it keeps the role (no move back
/// when another node recovers).
pub const ACTIVE: i64 = 1000;

/// Member priorities: the active gateway, if eligible, highest; the other eligible nodes next
/// (in name order, earlier names higher, so the choice is deterministic); the rest [`FALLBACK`].
pub fn priorities(gateways: &[Gateway], active: Option<&str>) -> BTreeMap<String, i64> {
    let mut eligible: Vec<&Gateway> = gateways
        .iter()
        .filter(|g| g.healthy && g.lease_valid)
        .collect();
    eligible.sort_by(|a, b| a.chassis.cmp(&b.chassis));
    let n = i64::try_from(eligible.len()).unwrap_or(i64::MAX).min(800);
    let mut out: BTreeMap<String, i64> = gateways
        .iter()
        .map(|g| (g.chassis.clone(), FALLBACK))
        .collect();
    for (i, g) in eligible.iter().enumerate() {
        let rank = i64::try_from(i).unwrap_or(n).min(n);
        let p = if Some(g.chassis.as_str()) == active {
            ACTIVE
        } else {
            ELIGIBLE + (n - rank)
        };
        out.insert(g.chassis.clone(), p);
    }
    out
}

/// The chassis the gateway port is active on now (`None` when it is bound nowhere).
pub async fn active_chassis(sb: &dyn Ovsdb, gateway_port: &str) -> Result<Option<String>, NbError> {
    let port = format!("cr-{gateway_port}");
    let r = sb
        .transact(
            SB,
            vec![
                select(
                    "Port_Binding",
                    vec![eq("logical_port", Value::from(port))],
                    &["chassis"],
                ),
                select("Chassis", vec![], &["_uuid", "name"]),
            ],
        )
        .await?;
    let rows = |i: usize| {
        r.get(i)
            .and_then(|v| v.get("rows"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    };
    let Some(chassis) = rows(0).first().and_then(|row| {
        row.get("chassis")
            .and_then(decode_optional)
            .and_then(|v| decode_uuids(&v).into_iter().next())
    }) else {
        return Ok(None);
    };
    Ok(rows(1).iter().find_map(|row| {
        let u = decode_uuids(row.get("_uuid")?).into_iter().next()?;
        (u == chassis).then(|| row.get("name")?.as_str().map(str::to_owned))?
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gw(c: &str, ok: bool) -> Gateway {
        Gateway {
            chassis: c.into(),
            healthy: ok,
            lease_valid: ok,
        }
    }

    #[test]
    fn active_keeps_the_role_and_lost_lease_falls_back() {
        let g = [gw("a", true), gw("b", true), gw("c", false)];
        let p = priorities(&g, Some("b"));
        assert_eq!(p["b"], ACTIVE);
        assert!(p["a"] > FALLBACK && p["a"] < ACTIVE);
        assert_eq!(p["c"], FALLBACK);
        // b's lease ends: a takes over at once, b stays a fallback member.
        let g = [
            gw("a", true),
            Gateway {
                lease_valid: false,
                ..gw("b", true)
            },
        ];
        let p = priorities(&g, Some("b"));
        assert!(p["a"] > p["b"]);
        assert_eq!(p["b"], FALLBACK);
    }

    #[test]
    fn without_an_active_one_earlier_names_rank_higher() {
        let p = priorities(&[gw("b", true), gw("a", true)], None);
        assert!(p["a"] > p["b"], "{p:?}");
        assert!(p.values().all(|v| (0..=32767).contains(v)));
    }
}
