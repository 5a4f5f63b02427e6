//! One reconcile pass against a live OVSDB: read, diff, transact only the difference. The
//! OVSDB access goes through the [`Ovsdb`] trait.

use crate::netlink::{Netlink, Op, RtNetlink};
use crate::ovsdb::tables::{self, DB};
use crate::ovsdb::Ovsdb;

use super::reconcile::{reconcile, to_ops, Action};
use super::render::render;
use super::{OvnError, OvnSpec};

/// What one pass did.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// The actions carried out (empty when the database already matched).
    pub actions: Vec<Action>,
}

/// Reads the Open_vSwitch tables, diffs them with the section's render, and (unless
/// `dry_run`) applies the difference in one transaction.
pub async fn converge(db: &dyn Ovsdb, spec: &OvnSpec, dry_run: bool) -> Result<Outcome, OvnError> {
    let endpoint = spec.ovsdb.clone();
    let observed = tables::read(db).await.map_err(|source| OvnError::Observe {
        endpoint: endpoint.clone(),
        source,
    })?;
    let Some(root) = observed.root.as_ref() else {
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
        return Box::pin(converge(db, spec, dry_run)).await;
    };
    let actions = reconcile(&render(spec), &observed);
    if !dry_run && !actions.is_empty() {
        let ops = to_ops(&root.uuid, &actions);
        db.transact(DB, ops)
            .await
            .map_err(|source| OvnError::Transact {
                endpoint,
                actions: actions.len(),
                source,
            })?;
        tracing::info!(system_id = %spec.system_id, actions = actions.len(), "ovn configuration applied");
    }
    Ok(Outcome { actions })
}

/// A line per action for `hearth net apply`'s plan.
pub fn describe(a: &Action) -> String {
    match a {
        Action::SetExternalIds { set, remove } => {
            let mut parts: Vec<String> = set.iter().map(|(k, v)| format!("{k}={v}")).collect();
            parts.extend(remove.iter().map(|k| format!("-{k}")));
            format!("~ ovs external_ids {}", parts.join(" "))
        }
        Action::CreateBridge(b) => {
            format!("+ ovs bridge {} datapath_type={}", b.name, b.datapath_type)
        }
        Action::SetDatapathType {
            bridge,
            datapath_type,
            ..
        } => {
            format!("~ ovs bridge {bridge} datapath_type={datapath_type}")
        }
        Action::AddPort { bridge, port, .. } => format!("+ ovs port {} on {bridge}", port.name),
        Action::UpdateInterface { port, .. } => format!("~ ovs interface {}", port.name),
        Action::RemovePort { name, .. } => format!("- ovs port {name}"),
        Action::RemoveBridge { name, .. } => format!("- ovs bridge {name}"),
    }
}

/// `hearth net apply`'s OVN step: when the file has an `ovn:` section, run [`node_pass`] and
/// add the section's netlink objects and sysctls to `file`. Returns the plan lines.
pub async fn for_network_file(
    file: &mut crate::spec::NetworkFile,
    dry_run: bool,
    wait: std::time::Duration,
) -> Result<Vec<String>, OvnError> {
    let Some(section) = &file.ovn else {
        return Ok(vec![]);
    };
    let spec = OvnSpec::from_yaml(section)?;
    let actions = node_pass(&spec, dry_run, wait).await?;
    super::netfile::merge(&spec, file);
    Ok(actions.iter().map(describe).collect())
}

/// One OVN pass of a node: converge the local OVSDB (a fresh connection each pass, so a
/// restarted ovsdb-server needs no special handling), then wait up to `wait` for ovs-vswitchd
/// to create the join interface and set it up (the address and routes come after, from the
/// netlink reconciler).
pub async fn node_pass(
    spec: &OvnSpec,
    dry_run: bool,
    wait: std::time::Duration,
) -> Result<Vec<Action>, OvnError> {
    let client = crate::ovsdb::Client::connect_with(&spec.ovsdb, spec.tls()?)
        .await
        .map_err(|source| OvnError::Connect {
            endpoint: spec.ovsdb.clone(),
            source,
        })?;
    let outcome = converge(&client, spec, dry_run).await?;
    let Some(j) = spec.join.as_ref().filter(|_| !dry_run) else {
        return Ok(outcome.actions);
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
        return Ok(outcome.actions); // not yet: the next pass (on its netlink event) sets it up
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
        return Ok(outcome.actions);
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
    Ok(outcome.actions)
}
