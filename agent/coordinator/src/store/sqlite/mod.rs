//! [`SqliteStore`]: the embedded store, one SQLite file in WAL mode.
//!
//! Every call runs on tokio's blocking pool over one connection behind a mutex, and every
//! write is one `BEGIN IMMEDIATE` transaction, so a crash leaves either the old or the new
//! state. Leadership is an exclusive `flock` on `<path>-lead`: two coordinators pointed at the
//! same file (a restart that overlaps the old process) never both lead. This module owns the
//! database file and its lock file, nothing else.

mod lead;
mod schema;

#[cfg(test)]
mod crash_tests;

use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{
    params, Connection, ErrorCode, OptionalExtension, Transaction, TransactionBehavior,
};

use super::{
    validate, FloatingIp, FloatingIpPool, FloatingIpState, Store, StoreError, VolumeRecord,
};

/// The embedded store: a SQLite database file.
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    lead: lead::LeadLock,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("lead_lock", &self.lead.path())
            .finish_non_exhaustive()
    }
}

/// A rusqlite error at `step`; a constraint violation (a taken address) is a conflict.
pub(super) fn sqlite_err(step: &str, err: rusqlite::Error) -> StoreError {
    match err.sqlite_error_code() {
        Some(ErrorCode::ConstraintViolation) => StoreError::Conflict(format!("{step}: {err}")),
        _ => StoreError::Backend(format!("sqlite {step}: {err}")),
    }
}

fn json_err(step: &str, err: serde_json::Error) -> StoreError {
    StoreError::Backend(format!("sqlite {step}: bad JSON in the database: {err}"))
}

impl SqliteStore {
    /// Opens (or creates) the database at `path`: WAL, `synchronous=FULL`, foreign keys on,
    /// and the schema brought to this binary's version.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let lead = lead::LeadLock::beside(&path);
        let conn = tokio::task::spawn_blocking(move || {
            let mut conn = Connection::open(&path)
                .map_err(|e| sqlite_err(&format!("open {}", path.display()), e))?;
            schema::prepare(&mut conn)?;
            Ok::<_, StoreError>(conn)
        })
        .await
        .map_err(|e| StoreError::Backend(format!("sqlite open: {e}")))??;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            lead,
        })
    }

    /// Runs `f` with the connection on the blocking pool.
    async fn with_conn<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let conn = Arc::clone(&self.conn);
        tokio::task::spawn_blocking(move || {
            let mut conn = conn
                .lock()
                .map_err(|_| StoreError::Backend("sqlite: connection mutex poisoned".into()))?;
            f(&mut conn)
        })
        .await
        .map_err(|e| StoreError::Backend(format!("sqlite task: {e}")))?
    }

    /// Runs `f` in one `BEGIN IMMEDIATE` transaction and commits it; `f`'s error rolls back.
    async fn write<T, F>(&self, step: &'static str, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, StoreError> + Send + 'static,
    {
        self.with_conn(move |conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(|e| sqlite_err(step, e))?;
            let out = f(&tx)?;
            tx.commit().map_err(|e| sqlite_err(step, e))?;
            Ok(out)
        })
        .await
    }

    /// Releases leadership as if the process had exited.
    #[cfg(test)]
    pub(crate) fn release_lead(&self) {
        self.lead.release();
    }
}

fn records<T: serde::de::DeserializeOwned>(
    conn: &Connection,
    step: &'static str,
    sql: &str,
) -> Result<Vec<T>, StoreError> {
    let mut stmt = conn.prepare(sql).map_err(|e| sqlite_err(step, e))?;
    let rows = stmt
        .query_map([], |row| row.get::<_, String>(0))
        .map_err(|e| sqlite_err(step, e))?;
    rows.map(|row| {
        let text = row.map_err(|e| sqlite_err(step, e))?;
        serde_json::from_str(&text).map_err(|e| json_err(step, e))
    })
    .collect()
}

fn to_json<T: serde::Serialize>(step: &str, value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Backend(format!("{step}: {e}")))
}

#[async_trait]
impl Store for SqliteStore {
    async fn pools(&self) -> Result<Vec<FloatingIpPool>, StoreError> {
        self.with_conn(|c| records(c, "list pools", "SELECT record FROM pools ORDER BY name"))
            .await
    }

    async fn put_pool(&self, pool: &FloatingIpPool) -> Result<(), StoreError> {
        validate::pool(pool)?;
        let (name, record) = (pool.name.clone(), to_json("put pool", pool)?);
        self.write("put pool", move |tx| {
            tx.execute(
                "INSERT INTO pools (name, record) VALUES (?1, ?2)
                 ON CONFLICT (name) DO UPDATE SET record = excluded.record",
                params![name, record],
            )
            .map_err(|e| sqlite_err("put pool", e))?;
            Ok(())
        })
        .await
    }

    async fn delete_pool(&self, name: &str) -> Result<(), StoreError> {
        validate::pool_name(name)?;
        let name = name.to_owned();
        self.write("delete pool", move |tx| {
            tx.execute("DELETE FROM pools WHERE name = ?1", [name])
                .map_err(|e| sqlite_err("delete pool", e))?;
            Ok(())
        })
        .await
    }

    async fn floating_ips(&self) -> Result<Vec<FloatingIp>, StoreError> {
        self.with_conn(|c| {
            records(
                c,
                "list floating IPs",
                "SELECT record FROM floating_ips ORDER BY name",
            )
        })
        .await
    }

    async fn put_floating_ip(&self, fip: &FloatingIp) -> Result<(), StoreError> {
        validate::floating_ip(fip)?;
        let (name, record) = (fip.name.clone(), to_json("put floating IP", fip)?);
        // An upsert, not INSERT OR REPLACE: a replace deletes the row first, and the cascade
        // would drop the floating IP's state.
        self.write("put floating IP", move |tx| {
            tx.execute(
                "INSERT INTO floating_ips (name, record) VALUES (?1, ?2)
                 ON CONFLICT (name) DO UPDATE SET record = excluded.record",
                params![name, record],
            )
            .map_err(|e| sqlite_err("put floating IP", e))?;
            Ok(())
        })
        .await
    }

    async fn delete_floating_ip(&self, name: &str) -> Result<(), StoreError> {
        validate::floating_ip_name(name)?;
        let name = name.to_owned();
        self.write("delete floating IP", move |tx| {
            // The foreign key cascades too; deleting the state explicitly keeps this correct
            // even on a connection where foreign keys were left off.
            tx.execute("DELETE FROM floating_ip_states WHERE name = ?1", [&name])
                .map_err(|e| sqlite_err("delete floating IP state", e))?;
            tx.execute("DELETE FROM floating_ips WHERE name = ?1", [&name])
                .map_err(|e| sqlite_err("delete floating IP", e))?;
            Ok(())
        })
        .await
    }

    async fn floating_ip_states(&self) -> Result<Vec<FloatingIpState>, StoreError> {
        self.with_conn(|conn| {
            let step = "list floating IP states";
            let mut stmt = conn
                .prepare("SELECT name, address, node, epoch FROM floating_ip_states ORDER BY name")
                .map_err(|e| sqlite_err(step, e))?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get(2)?,
                        r.get::<_, i64>(3)?,
                    ))
                })
                .map_err(|e| sqlite_err(step, e))?;
            rows.map(|row| {
                let (name, address, node, epoch) = row.map_err(|e| sqlite_err(step, e))?;
                let address: IpAddr = address.parse().map_err(|e| {
                    StoreError::Backend(format!("{step}: {name}: bad address {address:?}: {e}"))
                })?;
                let epoch = u64::try_from(epoch)
                    .map_err(|e| StoreError::Backend(format!("{step}: {name}: epoch: {e}")))?;
                Ok(FloatingIpState {
                    name,
                    address,
                    node,
                    epoch,
                })
            })
            .collect()
        })
        .await
    }

    async fn swap_floating_ip_state(
        &self,
        expected_epoch: u64,
        state: &FloatingIpState,
    ) -> Result<(), StoreError> {
        validate::state(expected_epoch, state)?;
        let state = state.clone();
        self.write("swap floating IP state", move |tx| {
            swap(tx, expected_epoch, &state)
        })
        .await
    }

    async fn volumes(&self) -> Result<Vec<VolumeRecord>, StoreError> {
        self.with_conn(|conn| {
            let step = "list volumes";
            let mut stmt = conn
                .prepare("SELECT id, nodes, size_bytes FROM volumes ORDER BY id")
                .map_err(|e| sqlite_err(step, e))?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, i64>(2)?,
                    ))
                })
                .map_err(|e| sqlite_err(step, e))?;
            rows.map(|row| {
                let (id, nodes, size) = row.map_err(|e| sqlite_err(step, e))?;
                Ok(VolumeRecord {
                    nodes: serde_json::from_str(&nodes).map_err(|e| json_err(step, e))?,
                    size_bytes: u64::try_from(size)
                        .map_err(|e| StoreError::Backend(format!("{step}: {id}: size: {e}")))?,
                    id,
                })
            })
            .collect()
        })
        .await
    }

    async fn put_volume(&self, volume: &VolumeRecord) -> Result<(), StoreError> {
        validate::volume(volume)?;
        let nodes = to_json("put volume", &volume.nodes)?;
        let (id, size) = (volume.id.clone(), volume.size_bytes as i64);
        self.write("put volume", move |tx| {
            tx.execute(
                "INSERT INTO volumes (id, nodes, size_bytes) VALUES (?1, ?2, ?3)
                 ON CONFLICT (id) DO UPDATE SET nodes = excluded.nodes,
                                                size_bytes = excluded.size_bytes",
                params![id, nodes, size],
            )
            .map_err(|e| sqlite_err("put volume", e))?;
            Ok(())
        })
        .await
    }

    async fn delete_volume(&self, id: &str) -> Result<(), StoreError> {
        validate::volume_id(id)?;
        let id = id.to_owned();
        self.write("delete volume", move |tx| {
            tx.execute("DELETE FROM volumes WHERE id = ?1", [id])
                .map_err(|e| sqlite_err("delete volume", e))?;
            Ok(())
        })
        .await
    }

    /// `holder` and `ttl` do not matter here: the store that holds the lock file leads until
    /// its process exits (the kernel drops the lock with the process).
    async fn lead(&self, _holder: &str, _ttl: Duration) -> Result<bool, StoreError> {
        self.lead.try_hold().await
    }
}

/// The compare-and-swap of a floating IP's state, inside the caller's transaction.
fn swap(tx: &Transaction<'_>, expected: u64, state: &FloatingIpState) -> Result<(), StoreError> {
    let step = "swap floating IP state";
    let name = state.name.as_str();
    let declared = tx
        .query_row("SELECT 1 FROM floating_ips WHERE name = ?1", [name], |_| {
            Ok(())
        })
        .optional()
        .map_err(|e| sqlite_err(step, e))?;
    if declared.is_none() {
        return Err(StoreError::NotFound(format!("floating IP {name}")));
    }
    let current: i64 = tx
        .query_row(
            "SELECT epoch FROM floating_ip_states WHERE name = ?1",
            [name],
            |r| r.get(0),
        )
        .optional()
        .map_err(|e| sqlite_err(step, e))?
        .unwrap_or(0);
    if u64::try_from(current).ok() != Some(expected) {
        return Err(StoreError::Conflict(format!(
            "floating IP {name}: epoch is {current}, expected {expected}"
        )));
    }
    let address = state.address.to_string();
    let holder: Option<String> = tx
        .query_row(
            "SELECT name FROM floating_ip_states WHERE address = ?1 AND name <> ?2",
            [&address, name],
            |r| r.get(0),
        )
        .optional()
        .map_err(|e| sqlite_err(step, e))?;
    if let Some(holder) = holder {
        return Err(StoreError::Conflict(format!(
            "floating IP {name}: address {address} is held by floating IP {holder}"
        )));
    }
    tx.execute(
        "INSERT INTO floating_ip_states (name, address, node, epoch) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (name) DO UPDATE SET address = excluded.address, node = excluded.node,
                                          epoch = excluded.epoch",
        params![name, address, state.node, state.epoch as i64],
    )
    .map_err(|e| sqlite_err(step, e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::SqliteStore;
    use crate::store::contract_tests;

    #[tokio::test]
    async fn contract() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("state.db"))
            .await
            .unwrap();
        contract_tests::check_store(&store).await;
    }

    #[tokio::test]
    async fn lead_is_exclusive_across_stores_on_one_file() {
        let dir = tempfile::tempdir().unwrap();
        let first = SqliteStore::open(dir.path().join("state.db"))
            .await
            .unwrap();
        let second = SqliteStore::open(dir.path().join("state.db"))
            .await
            .unwrap();
        contract_tests::check_exclusive_lead(&first, &second, || first.release_lead()).await;
    }

    #[tokio::test]
    async fn reopen_keeps_records_and_refuses_a_newer_schema() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        {
            let store = SqliteStore::open(&path).await.unwrap();
            contract_tests::fill(&store).await;
        }
        let store = SqliteStore::open(&path).await.unwrap();
        contract_tests::check_filled(&store).await;
        drop(store);
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute("UPDATE schema_version SET version = 99", [])
            .unwrap();
        drop(conn);
        let err = SqliteStore::open(&path).await.unwrap_err();
        assert!(err.to_string().contains("schema version 99"), "{err}");
    }
}
