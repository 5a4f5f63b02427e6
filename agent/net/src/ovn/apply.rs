//! One reconcile pass against a live OVSDB: read, diff, transact only the difference. The
//! OVSDB access goes through the [`Ovsdb`] trait.

use crate::netlink::{Netlink, Op, RtNetlink};
use crate::ovsdb::tables::{self, DB};
use crate::ovsdb::Ovsdb;

use super::reconcile::{cleanup, reconcile, to_ops, Action};
use super::render::render;
use super::{OvnError, OvnSpec};

/// What one pass did.
#[derive(Debug, Default)]
pub struct Outcome {
    /// The actions planned (empty when the database already matched).
    pub actions: Vec<Action>,
    /// Why the transaction that carried them out failed (then none of them was applied).
    pub failed: Option<OvnError>,
}

impl Outcome {
    /// How many of the actions were applied.
    pub fn applied(&self) -> usize {
        if self.failed.is_some() {
            0
        } else {
            self.actions.len()
        }
    }
}

/// Reads the Open_vSwitch tables, diffs them with the section's render, and (unless
/// `dry_run`) applies the difference in one transaction.
pub async fn converge(db: &dyn Ovsdb, spec: &OvnSpec, dry_run: bool) -> Result<Outcome, OvnError> {
    let desired = render(spec);
    converge_with(db, &spec.ovsdb, dry_run, &|o| reconcile(&desired, o)).await
}

/// Removes what Hearth created for an `ovn:` section that is gone ([`cleanup`]) from the
/// database at `endpoint`. A database Hearth never configured is left as it is.
pub async fn remove(
    endpoint: &str,
    tls: Option<crate::ovsdb::Tls>,
    dry_run: bool,
) -> Result<Outcome, OvnError> {
    let client = crate::ovsdb::Client::connect_with(endpoint, tls)
        .await
        .map_err(|source| OvnError::Connect {
            endpoint: endpoint.to_owned(),
            source,
        })?;
    let out = converge_with(&client, endpoint, dry_run, &|o| {
        if o.root.is_none() {
            Vec::new()
        } else {
            cleanup(o)
        }
    })
    .await?;
    if !dry_run && !out.actions.is_empty() && out.failed.is_none() {
        let names: Vec<String> = out.actions.iter().map(describe).collect();
        tracing::info!(endpoint, removed = %names.join("; "), "ovn: section removed; Hearth's OVS configuration removed");
    }
    Ok(out)
}

async fn converge_with(
    db: &dyn Ovsdb,
    endpoint: &str,
    dry_run: bool,
    plan: &(dyn Fn(&tables::OvsState) -> Vec<Action> + Sync),
) -> Result<Outcome, OvnError> {
    let endpoint = endpoint.to_owned();
    let observed = tables::read(db).await.map_err(|source| OvnError::Observe {
        endpoint: endpoint.clone(),
        source,
    })?;
    let Some(root) = observed.root.as_ref() else {
        let actions = plan(&observed);
        if actions.is_empty() {
            return Ok(Outcome::default());
        }
        // A fresh database (`ovsdb-tool create` only): make the root row, as `ovs-vsctl init`.
        if dry_run {
            return Err(OvnError::NoRoot { endpoint });
        }
        db.transact(
            DB,
            vec![crate::ovsdb::datum::insert(
                "Open_vSwitch",
                serde_json::json!({}),
                "root",
            )],
        )
        .await
        .map_err(|source| OvnError::Transact {
            endpoint: endpoint.clone(),
            actions: 1,
            source,
        })?;
        return Box::pin(converge_with(db, &endpoint, dry_run, plan)).await;
    };
    let actions = plan(&observed);
    let mut failed = None;
    if !dry_run && !actions.is_empty() {
        let ops = to_ops(&root.uuid, &actions);
        match db.transact(DB, ops).await {
            Ok(_) => tracing::info!(actions = actions.len(), "ovn configuration applied"),
            Err(source) => {
                failed = Some(OvnError::Transact {
                    endpoint,
                    actions: actions.len(),
                    source,
                });
            }
        }
    }
    Ok(Outcome { actions, failed })
}

/// A line per action for `hearth net apply`'s plan: what changes, from what to what.
pub fn describe(a: &Action) -> String {
    match a {
        Action::SetExternalIds { set, remove, was } => {
            let old = |k: &String| match was.get(k) {
                Some(v) => format!(" (was {v})"),
                None => String::new(),
            };
            let mut parts: Vec<String> = set
                .iter()
                .map(|(k, v)| format!("{k}={v}{}", old(k)))
                .collect();
            parts.extend(remove.iter().map(|k| format!("-{k}{}", old(k))));
            let sign = if set.is_empty() { '-' } else { '~' };
            format!("{sign} ovs external_ids {}", parts.join(" "))
        }
        Action::CreateBridge(b) => {
            format!("+ ovs bridge {} datapath_type={}", b.name, b.datapath_type)
        }
        Action::SetDatapathType {
            bridge,
            from,
            datapath_type,
            ..
        } => {
            format!("~ ovs bridge {bridge}: datapath_type {from} -> {datapath_type}")
        }
        Action::AddPort { bridge, port, .. } => format!("+ ovs port {} on {bridge}", port.name),
        Action::UpdateInterface { port, changes, .. } => {
            format!("~ ovs interface {}: {}", port.name, changes.join(", "))
        }
        Action::RemovePort { name, .. } => format!("- ovs port {name}"),
        Action::RemoveBridge { name, .. } => format!("- ovs bridge {name}"),
    }
}

/// `hearth net apply`'s OVN step: when the file has an `ovn:` section, run [`node_pass`] and
/// add the section's netlink objects and sysctls to `file`; without one, remove what Hearth
/// created at `gone` (the database of a section that was removed), when that is reachable.
pub async fn for_network_file(
    file: &mut crate::spec::NetworkFile,
    gone: &str,
    dry_run: bool,
    wait: std::time::Duration,
) -> Result<Outcome, OvnError> {
    let Some(spec) = file.ovn.clone() else {
        return match remove(gone, None, dry_run).await {
            Err(OvnError::Connect { endpoint, source }) => {
                tracing::debug!(%endpoint, %source, "no local OVSDB: nothing of OVN to remove");
                Ok(Outcome::default())
            }
            other => other,
        };
    };
    let outcome = node_pass(&spec, dry_run, wait).await?;
    super::netfile::merge(&spec, file);
    Ok(outcome)
}

/// One OVN pass of a node: converge the local OVSDB (a fresh connection each pass, so a
/// restarted ovsdb-server needs no special handling), then wait up to `wait` for ovs-vswitchd
/// to create the join interface and set it up (the address and routes come after, from the
/// netlink reconciler).
pub async fn node_pass(
    spec: &OvnSpec,
    dry_run: bool,
    wait: std::time::Duration,
) -> Result<Outcome, OvnError> {
    let client = crate::ovsdb::Client::connect_with(&spec.ovsdb, spec.tls()?)
        .await
        .map_err(|source| OvnError::Connect {
            endpoint: spec.ovsdb.clone(),
            source,
        })?;
    let outcome = converge(&client, spec, dry_run).await?;
    let Some(j) = spec.join.as_ref().filter(|_| !dry_run) else {
        return Ok(outcome);
    };
    let exists = || {
        std::path::Path::new("/sys/class/net")
            .join(&j.name.0)
            .exists()
    };
    let deadline = std::time::Instant::now() + wait;
    while !exists() && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    if !exists() {
        return Ok(outcome); // not yet: the next pass (on its netlink event) sets it up
    }
    // ovs-vswitchd creates the internal port down; routes via the gateway need it up. Write
    // only when it is down: a write is a netlink event, which starts another pass.
    let flags = std::fs::read_to_string(
        std::path::Path::new("/sys/class/net")
            .join(&j.name.0)
            .join("flags"),
    )
    .ok()
    .and_then(|f| u32::from_str_radix(f.trim().trim_start_matches("0x"), 16).ok());
    if flags.is_some_and(|f| f & libc::IFF_UP as u32 != 0) {
        return Ok(outcome);
    }
    let netlink = RtNetlink::open().map_err(|source| OvnError::JoinUp {
        dev: j.name.0.clone(),
        source,
    })?;
    let op = Op::SetLink {
        index: 0,
        name: j.name.0.clone(),
        mtu: None,
        up: Some(true),
        master: None,
        mac: None,
        alias: None,
    };
    if let Some(Err(source)) = netlink.write(vec![op]).await.into_iter().next() {
        return Err(OvnError::JoinUp {
            dev: j.name.0.clone(),
            source,
        });
    }
    Ok(outcome)
}
