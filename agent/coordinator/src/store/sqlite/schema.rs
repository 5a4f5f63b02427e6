//! The SQLite schema and its version. A database written by a newer binary is refused rather
//! than guessed at; a fresh file gets the current schema in one transaction.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use super::sqlite_err;
use crate::store::StoreError;

/// The schema this binary writes. Bump it with a migration step in [`migrate`].
pub(super) const VERSION: i64 = 1;

const V1: &str = "
CREATE TABLE pools (
    name   TEXT PRIMARY KEY NOT NULL,
    record TEXT NOT NULL            -- FloatingIpPool as JSON
) STRICT;
CREATE TABLE floating_ips (
    name   TEXT PRIMARY KEY NOT NULL,
    record TEXT NOT NULL            -- FloatingIp as JSON
) STRICT;
CREATE TABLE floating_ip_states (
    name    TEXT PRIMARY KEY NOT NULL REFERENCES floating_ips(name) ON DELETE CASCADE,
    address TEXT NOT NULL UNIQUE,   -- canonical text form of the IpAddr
    node    TEXT,
    epoch   INTEGER NOT NULL CHECK (epoch > 0)
) STRICT;
CREATE TABLE volumes (
    id         TEXT PRIMARY KEY NOT NULL,
    nodes      TEXT NOT NULL,       -- JSON array of node names
    size_bytes INTEGER NOT NULL CHECK (size_bytes >= 0)
) STRICT;
";

/// Sets the connection's pragmas and brings the schema to [`VERSION`].
pub(super) fn prepare(conn: &mut Connection) -> Result<(), StoreError> {
    // WAL: readers do not block the writer, and a commit is one append to the log.
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .map_err(|e| sqlite_err("set journal_mode", e))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Backend(format!(
            "sqlite: journal_mode is {mode}, WAL could not be enabled"
        )));
    }
    // FULL, not NORMAL: with NORMAL a power loss may roll back the last commits, and the
    // coordinator may already have handed epoch N+1 of a floating IP to an agent; after the
    // restart it would hand the same epoch to another node. Writes are rare (control plane), so
    // one fsync of the WAL per commit is cheap.
    conn.execute_batch(
        "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;",
    )
    .map_err(|e| sqlite_err("set pragmas", e))?;
    migrate(conn)
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| sqlite_err("begin migration", e))?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_version (
             id      INTEGER PRIMARY KEY CHECK (id = 1),
             version INTEGER NOT NULL
         ) STRICT;",
    )
    .map_err(|e| sqlite_err("create schema_version", e))?;
    let found: Option<i64> = tx
        .query_row("SELECT version FROM schema_version WHERE id = 1", [], |r| {
            r.get(0)
        })
        .optional()
        .map_err(|e| sqlite_err("read schema_version", e))?;
    match found {
        None => {
            tx.execute_batch(V1)
                .map_err(|e| sqlite_err("create schema v1", e))?;
            tx.execute(
                "INSERT INTO schema_version (id, version) VALUES (1, ?1)",
                [VERSION],
            )
            .map_err(|e| sqlite_err("write schema_version", e))?;
        }
        Some(VERSION) => {}
        Some(other) => {
            return Err(StoreError::Backend(format!(
                "sqlite: schema version {other} is not {VERSION}, the version this binary \
                 knows; refusing to touch the database"
            )));
        }
    }
    tx.commit().map_err(|e| sqlite_err("commit migration", e))
}
