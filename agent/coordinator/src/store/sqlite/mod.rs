//! [`SqliteStore`]: the embedded store, one SQLite file in WAL mode.
//!
//! Every call runs on tokio's blocking pool over one connection behind a mutex, and every
//! write is one `BEGIN IMMEDIATE` transaction, so a crash leaves either the old or the new
//! state. Leadership is an exclusive `flock` on the database file itself: two coordinators
//! pointed at the same file (a restart that overlaps the old process) never both lead, and
//! each taking of the lock bumps the term in the `leadership` table. This module owns the
//! database file, nothing else.

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
    validate, FloatingIp, FloatingIpPool, FloatingIpState, Store, StoreError, VolumeLocation,
};

/// The embedded store: a SQLite database file.
pub struct SqliteStore {
    conn: Arc<Mutex<Connection>>,
    lead: lead::LeadLock,
    /// The term of the lock this store holds, once taken.
    term: Mutex<Option<u64>>,
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
        let (conn, lead) = tokio::task::spawn_blocking(move || {
            let mut conn = Connection::open(&path)
                .map_err(|e| sqlite_err(&format!("open {}", path.display()), e))?;
            schema::prepare(&mut conn)?;
            let lead = lead::LeadLock::open(&path)?;
            Ok::<_, StoreError>((conn, lead))
        })
        .await
        .map_err(|e| StoreError::Backend(format!("sqlite open: {e}")))??;
        Ok(Self {
            conn: Arc::new(Mutex::new(conn)),
            lead,
            term: Mutex::new(None),
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
        if let Ok(mut t) = self.term.lock() {
            *t = None;
        }
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
                .prepare(
                    "SELECT name, address, node, epoch, term FROM floating_ip_states ORDER BY name",
                )
                .map_err(|e| sqlite_err(step, e))?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get(2)?,
                        r.get::<_, i64>(3)?,
                        r.get::<_, i64>(4)?,
                    ))
                })
                .map_err(|e| sqlite_err(step, e))?;
            rows.map(|row| {
                let (name, address, node, epoch, term) = row.map_err(|e| sqlite_err(step, e))?;
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
                    term: u64::try_from(term).unwrap_or(0),
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

    async fn volumes(&self) -> Result<Vec<VolumeLocation>, StoreError> {
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
                Ok(VolumeLocation {
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

    async fn update_volume(
        &self,
        expected: &VolumeLocation,
        volume: &VolumeLocation,
    ) -> Result<(), StoreError> {
        validate::volume_update(expected, volume)?;
        let step = "update volume";
        let nodes = to_json(step, &volume.nodes)?;
        let old_nodes = to_json(step, &expected.nodes)?;
        let (id, size) = (volume.id.clone(), volume.size_bytes as i64);
        let old_size = i64::try_from(expected.size_bytes).unwrap_or(-1);
        self.write(step, move |tx| {
            // A compare-and-swap on the whole record: of two writers that read one record,
            // the second finds it changed and is refused.
            let n = tx
                .execute(
                    "UPDATE volumes SET nodes = ?2, size_bytes = ?3
                     WHERE id = ?1 AND nodes = ?4 AND size_bytes = ?5",
                    params![id, nodes, size, old_nodes, old_size],
                )
                .map_err(|e| sqlite_err(step, e))?;
            if n == 1 {
                return Ok(());
            }
            let exists = tx
                .query_row("SELECT 1 FROM volumes WHERE id = ?1", [&id], |_| Ok(()))
                .optional()
                .map_err(|e| sqlite_err(step, e))?;
            Err(match exists {
                None => StoreError::NotFound(format!("volume {id}")),
                Some(()) => StoreError::Conflict(format!("volume {id} changed since it was read")),
            })
        })
        .await
    }

    async fn create_volume(&self, volume: &VolumeLocation) -> Result<(), StoreError> {
        validate::volume(volume)?;
        let nodes = to_json("create volume", &volume.nodes)?;
        let (id, size) = (volume.id.clone(), volume.size_bytes as i64);
        self.write("create volume", move |tx| {
            let n = tx
                .execute(
                    "INSERT INTO volumes (id, nodes, size_bytes) VALUES (?1, ?2, ?3)
                     ON CONFLICT (id) DO NOTHING",
                    params![id, nodes, size],
                )
                .map_err(|e| sqlite_err("create volume", e))?;
            if n == 0 {
                return Err(StoreError::Conflict(format!(
                    "volume {id} is recorded already"
                )));
            }
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

    /// `holder` and `ttl` do not matter here: the store that holds the lock on the database
    /// file leads until its process exits (the kernel drops the lock with the process). The
    /// term is bumped once, when the lock is taken.
    async fn lead(&self, _holder: &str, _ttl: Duration) -> Result<Option<u64>, StoreError> {
        if !self.lead.try_hold().await? {
            if let Ok(mut t) = self.term.lock() {
                *t = None;
            }
            return Ok(None);
        }
        if let Some(t) = self.term.lock().ok().and_then(|t| *t) {
            return Ok(Some(t));
        }
        let term = self
            .write("take leadership", |tx| {
                tx.execute(
                    "INSERT INTO leadership (id, term) VALUES (1, 1)
                     ON CONFLICT (id) DO UPDATE SET term = term + 1",
                    [],
                )
                .map_err(|e| sqlite_err("bump term", e))?;
                tx.query_row("SELECT term FROM leadership WHERE id = 1", [], |r| {
                    r.get::<_, i64>(0)
                })
                .map_err(|e| sqlite_err("read term", e))
            })
            .await?;
        let term = u64::try_from(term).unwrap_or(0);
        if let Ok(mut t) = self.term.lock() {
            *t = Some(term);
        }
        Ok(Some(term))
    }

    async fn failovers(&self) -> Result<Option<u64>, StoreError> {
        let step = "read failovers";
        self.write(step, move |tx| {
            schema::counters(tx)?;
            let n: i64 = tx
                .query_row(
                    "SELECT COALESCE((SELECT value FROM counters WHERE name = 'failovers'), 0)",
                    [],
                    |r| r.get(0),
                )
                .map_err(|e| sqlite_err(step, e))?;
            Ok(Some(u64::try_from(n).unwrap_or(0)))
        })
        .await
    }

    async fn add_failovers(&self, n: u64) -> Result<(), StoreError> {
        let step = "count failovers";
        let n = i64::try_from(n).unwrap_or(i64::MAX);
        self.write(step, move |tx| {
            schema::counters(tx)?;
            tx.execute(
                "INSERT INTO counters (name, value) VALUES ('failovers', ?1)
                 ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
                [n],
            )
            .map_err(|e| sqlite_err(step, e))?;
            Ok(())
        })
        .await
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
    let (current, term): (i64, i64) = tx
        .query_row(
            "SELECT epoch, term FROM floating_ip_states WHERE name = ?1",
            [name],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(|e| sqlite_err(step, e))?
        .unwrap_or((0, 0));
    if u64::try_from(current).ok() != Some(expected) {
        return Err(StoreError::Conflict(format!(
            "floating IP {name}: epoch is {current}, expected {expected}"
        )));
    }
    let leading: Option<i64> = tx
        .query_row("SELECT term FROM leadership WHERE id = 1", [], |r| r.get(0))
        .optional()
        .map_err(|e| sqlite_err(step, e))?;
    let term = term.max(leading.unwrap_or(0));
    if u64::try_from(term).unwrap_or(0) > state.term {
        return Err(StoreError::Conflict(format!(
            "floating IP {name}: term {term} is current, this write is of older term {}",
            state.term
        )));
    }
    let address = state.address.to_string();
    let stored: Option<String> = tx
        .query_row(
            "SELECT address FROM floating_ip_states WHERE name = ?1",
            [name],
            |r| r.get(0),
        )
        .optional()
        .map_err(|e| sqlite_err(step, e))?;
    if let Some(stored) = stored.filter(|s| *s != address) {
        return Err(StoreError::Conflict(format!(
            "floating IP {name}: has address {stored}, not {address} (addresses never move)"
        )));
    }
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
        "INSERT INTO floating_ip_states (name, address, node, epoch, term)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (name) DO UPDATE SET address = excluded.address, node = excluded.node,
                                          epoch = excluded.epoch, term = excluded.term",
        params![
            name,
            address,
            state.node,
            state.epoch as i64,
            state.term as i64
        ],
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
