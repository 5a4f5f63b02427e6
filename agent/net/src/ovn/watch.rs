//! Following the local Open_vSwitch database: one long-lived connection with a `monitor` on
//! the columns Hearth writes, so that drift (another tool changing `ovn-encap-ip`, a deleted
//! port) starts a pass when its update arrives, not at the next resync. It only reads; the
//! passes write over their own connections.

use serde_json::json;
use tokio::sync::mpsc::UnboundedReceiver;

use super::{OvnError, OvnSpec};
use crate::ovsdb::client::Update;
use crate::ovsdb::tables::DB;
use crate::ovsdb::Client;

/// A monitor on the columns Hearth owns. Dropping it closes the connection.
#[derive(Debug)]
pub struct Watch {
    /// The connection the monitor lives on (kept open, reconnecting on its own).
    _client: Client,
    updates: UnboundedReceiver<Update>,
}

/// The monitored columns: those Hearth writes and the row sets that hold its rows, and not
/// the statistics and status columns ovs-vswitchd keeps updating.
fn requests() -> serde_json::Value {
    json!({
        "Open_vSwitch": {"columns": ["external_ids", "bridges"]},
        "Bridge": {"columns": ["name", "datapath_type", "ports", "external_ids"]},
        "Port": {"columns": ["name", "interfaces", "external_ids"]},
        "Interface": {"columns": ["name", "type", "mac", "mtu_request", "external_ids"]},
    })
}

impl Watch {
    /// Connects to the section's local database and registers the monitor.
    pub async fn start(spec: &OvnSpec) -> Result<Self, OvnError> {
        let endpoint = spec.ovsdb.clone();
        let client = Client::connect_with(&endpoint, spec.tls()?)
            .await
            .map_err(|source| OvnError::Connect {
                endpoint: endpoint.clone(),
                source,
            })?;
        let Some(updates) = client.take_updates() else {
            return Err(OvnError::NoRoot { endpoint });
        };
        client
            .monitor(DB, json!("hearth-watch"), requests())
            .await
            .map_err(|source| OvnError::Observe { endpoint, source })?;
        Ok(Self {
            _client: client,
            updates,
        })
    }

    /// The next change (or the contents after a reconnection); `None` when the connection's
    /// task ended.
    pub async fn changed(&mut self) -> Option<Update> {
        self.updates.recv().await
    }
}

/// Waits for the next change of `watch`, or forever without one.
pub async fn next(watch: &mut Option<Watch>) -> Option<Update> {
    match watch {
        Some(w) => w.changed().await,
        None => std::future::pending().await,
    }
}
