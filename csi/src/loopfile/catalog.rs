//! The loopfile catalog: the records of volumes and snapshots, in a SQLite file under the state
//! directory (bundled SQLite, WAL journal, `synchronous=FULL`).
//!
//! Each record carries a state (`creating`, `ready`, `deleting`) so that a crash at any point
//! leaves a record that says what to finish or undo. The catalog owns only the database file; the
//! image files are the backend's.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::backend::ContentSource;

/// A failed catalog step.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// Opening or migrating the database failed.
    #[error("opening catalog {path}: {source}")]
    Open {
        /// The database file.
        path: PathBuf,
        /// The SQLite error.
        source: rusqlite::Error,
    },
    /// A query failed.
    #[error("catalog {step}: {source}")]
    Query {
        /// What was being done.
        step: &'static str,
        /// The SQLite error.
        source: rusqlite::Error,
    },
    /// A stored row could not be decoded.
    #[error("catalog row {id}: {reason}")]
    Corrupt {
        /// The record's ID.
        id: String,
        /// What is wrong with it.
        reason: String,
    },
}

/// Where a record is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordState {
    /// The record exists; its file may be half made.
    Creating,
    /// The file is complete.
    Ready,
    /// The file may be half removed.
    Deleting,
}

impl RecordState {
    fn as_str(self) -> &'static str {
        match self {
            Self::Creating => "creating",
            Self::Ready => "ready",
            Self::Deleting => "deleting",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s {
            "creating" => Some(Self::Creating),
            "ready" => Some(Self::Ready),
            "deleting" => Some(Self::Deleting),
            _ => None,
        }
    }
}

/// A volume record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeRecord {
    /// The plugin's ID.
    pub id: String,
    /// The CO's name.
    pub name: String,
    /// The size in bytes.
    pub capacity_bytes: u64,
    /// StorageClass parameters.
    pub parameters: BTreeMap<String, String>,
    /// Where its data came from.
    pub source: Option<ContentSource>,
    /// Its state.
    pub state: RecordState,
}

/// A snapshot record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotRecord {
    /// The plugin's ID.
    pub id: String,
    /// The CO's name.
    pub name: String,
    /// The volume it was taken from.
    pub source_volume_id: String,
    /// The size of the source when taken.
    pub size_bytes: u64,
    /// When it was taken.
    pub created: SystemTime,
    /// Its state.
    pub state: RecordState,
}

/// The catalog database.
#[derive(Debug)]
pub struct Catalog {
    conn: Mutex<Connection>,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS volumes (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    capacity_bytes INTEGER NOT NULL,
    parameters TEXT NOT NULL,
    source_kind TEXT,
    source_id TEXT,
    state TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS snapshots (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    source_volume_id TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    created_ns INTEGER NOT NULL,
    state TEXT NOT NULL
);
";

fn q(step: &'static str) -> impl FnOnce(rusqlite::Error) -> CatalogError {
    move |source| CatalogError::Query { step, source }
}

impl Catalog {
    /// Opens (creating if needed) the catalog at `path`.
    pub fn open(path: &Path) -> Result<Self, CatalogError> {
        let open = |source| CatalogError::Open {
            path: path.to_owned(),
            source,
        };
        let conn = Connection::open(path).map_err(open)?;
        conn.busy_timeout(Duration::from_secs(5)).map_err(open)?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(open)?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(open)?;
        conn.execute_batch(SCHEMA).map_err(open)?;
        Ok(Self {
            conn: Mutex::new(conn),
        })
    }

    fn with<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, CatalogError>,
    ) -> Result<T, CatalogError> {
        let conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        f(&conn)
    }

    /// Runs one statement.
    fn exec(
        &self,
        step: &'static str,
        sql: &str,
        p: impl rusqlite::Params,
    ) -> Result<(), CatalogError> {
        self.with(|c| {
            c.prepare_cached(sql)
                .and_then(|mut s| s.execute(p))
                .map(drop)
                .map_err(q(step))
        })
    }

    /// Reads at most one row and decodes it.
    fn one<R, T>(
        &self,
        step: &'static str,
        sql: &str,
        key: &str,
        raw: fn(&Row<'_>) -> rusqlite::Result<R>,
        decode: fn(R) -> Result<T, CatalogError>,
    ) -> Result<Option<T>, CatalogError> {
        self.with(|c| {
            let row = c
                .prepare_cached(sql)
                .and_then(|mut s| s.query_row(params![key], raw).optional());
            row.map_err(q(step))?.map(decode).transpose()
        })
    }

    /// Reads and decodes every row.
    fn all<R, T>(
        &self,
        step: &'static str,
        sql: &str,
        raw: fn(&Row<'_>) -> rusqlite::Result<R>,
        decode: fn(R) -> Result<T, CatalogError>,
    ) -> Result<Vec<T>, CatalogError> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(sql).map_err(q(step))?;
            let rows = stmt.query_map([], raw).map_err(q(step))?;
            rows.map(|r| r.map_err(q(step)).and_then(decode)).collect()
        })
    }

    /// Inserts a new volume record.
    pub fn insert_volume(&self, v: &VolumeRecord) -> Result<(), CatalogError> {
        let params_json =
            serde_json::to_string(&v.parameters).map_err(|e| CatalogError::Corrupt {
                id: v.id.clone(),
                reason: e.to_string(),
            })?;
        let (kind, src) = match &v.source {
            None => (None, None),
            Some(ContentSource::Snapshot(s)) => (Some("snapshot"), Some(s.as_str())),
            Some(ContentSource::Volume(s)) => (Some("volume"), Some(s.as_str())),
        };
        self.exec(
            "inserting a volume",
            "INSERT INTO volumes (id, name, capacity_bytes, parameters, source_kind, source_id, state)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![v.id, v.name, crate::validate::to_i64(v.capacity_bytes), params_json, kind, src, v.state.as_str()],
        )
    }

    /// Sets a volume's state.
    pub fn set_volume_state(&self, id: &str, state: RecordState) -> Result<(), CatalogError> {
        let sql = "UPDATE volumes SET state = ?2 WHERE id = ?1";
        self.exec(
            "updating a volume's state",
            sql,
            params![id, state.as_str()],
        )
    }

    /// Sets a volume's size.
    pub fn set_volume_capacity(&self, id: &str, capacity_bytes: u64) -> Result<(), CatalogError> {
        let sql = "UPDATE volumes SET capacity_bytes = ?2 WHERE id = ?1";
        self.exec(
            "updating a volume's size",
            sql,
            params![id, crate::validate::to_i64(capacity_bytes)],
        )
    }

    /// Removes a volume record.
    pub fn remove_volume(&self, id: &str) -> Result<(), CatalogError> {
        self.exec(
            "removing a volume",
            "DELETE FROM volumes WHERE id = ?1",
            params![id],
        )
    }

    /// The volume with this ID.
    pub fn volume(&self, id: &str) -> Result<Option<VolumeRecord>, CatalogError> {
        let sql = "SELECT * FROM volumes WHERE id = ?1";
        self.one("reading a volume", sql, id, raw_volume, decode_volume)
    }

    /// The volume with this name.
    pub fn volume_by_name(&self, name: &str) -> Result<Option<VolumeRecord>, CatalogError> {
        let sql = "SELECT * FROM volumes WHERE name = ?1";
        self.one("reading a volume", sql, name, raw_volume, decode_volume)
    }

    /// Every volume, ordered by ID.
    pub fn volumes(&self) -> Result<Vec<VolumeRecord>, CatalogError> {
        let sql = "SELECT * FROM volumes ORDER BY id";
        self.all("listing volumes", sql, raw_volume, decode_volume)
    }

    /// Inserts a new snapshot record.
    pub fn insert_snapshot(&self, s: &SnapshotRecord) -> Result<(), CatalogError> {
        let ns = s
            .created
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        self.exec(
            "inserting a snapshot",
            "INSERT INTO snapshots (id, name, source_volume_id, size_bytes, created_ns, state)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                s.id,
                s.name,
                s.source_volume_id,
                crate::validate::to_i64(s.size_bytes),
                i64::try_from(ns).unwrap_or(i64::MAX),
                s.state.as_str()
            ],
        )
    }

    /// Sets a snapshot's state.
    pub fn set_snapshot_state(&self, id: &str, state: RecordState) -> Result<(), CatalogError> {
        let sql = "UPDATE snapshots SET state = ?2 WHERE id = ?1";
        self.exec(
            "updating a snapshot's state",
            sql,
            params![id, state.as_str()],
        )
    }

    /// Removes a snapshot record.
    pub fn remove_snapshot(&self, id: &str) -> Result<(), CatalogError> {
        self.exec(
            "removing a snapshot",
            "DELETE FROM snapshots WHERE id = ?1",
            params![id],
        )
    }

    /// The snapshot with this ID.
    pub fn snapshot(&self, id: &str) -> Result<Option<SnapshotRecord>, CatalogError> {
        let sql = "SELECT * FROM snapshots WHERE id = ?1";
        self.one("reading a snapshot", sql, id, raw_snapshot, decode_snapshot)
    }

    /// The snapshot with this name.
    pub fn snapshot_by_name(&self, name: &str) -> Result<Option<SnapshotRecord>, CatalogError> {
        let sql = "SELECT * FROM snapshots WHERE name = ?1";
        self.one(
            "reading a snapshot",
            sql,
            name,
            raw_snapshot,
            decode_snapshot,
        )
    }

    /// Every snapshot, ordered by ID.
    pub fn snapshots(&self) -> Result<Vec<SnapshotRecord>, CatalogError> {
        let sql = "SELECT * FROM snapshots ORDER BY id";
        self.all("listing snapshots", sql, raw_snapshot, decode_snapshot)
    }
}

type RawVolume = (
    String,
    String,
    i64,
    String,
    Option<String>,
    Option<String>,
    String,
);

fn raw_volume(r: &Row<'_>) -> rusqlite::Result<RawVolume> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
    ))
}

fn decode_volume(raw: RawVolume) -> Result<VolumeRecord, CatalogError> {
    let (id, name, capacity, params_json, kind, src, state) = raw;
    let corrupt = |reason: String| CatalogError::Corrupt {
        id: id.clone(),
        reason,
    };
    let parameters = serde_json::from_str(&params_json).map_err(|e| corrupt(e.to_string()))?;
    let source = match (kind.as_deref(), src) {
        (None, _) => None,
        (Some("snapshot"), Some(s)) => Some(ContentSource::Snapshot(s)),
        (Some("volume"), Some(s)) => Some(ContentSource::Volume(s)),
        (Some(k), _) => return Err(corrupt(format!("unknown source kind {k:?}"))),
    };
    let state =
        RecordState::parse(&state).ok_or_else(|| corrupt(format!("unknown state {state:?}")))?;
    let capacity_bytes =
        u64::try_from(capacity).map_err(|_| corrupt(format!("negative size {capacity}")))?;
    Ok(VolumeRecord {
        id,
        name,
        capacity_bytes,
        parameters,
        source,
        state,
    })
}

type RawSnapshot = (String, String, String, i64, i64, String);

fn raw_snapshot(r: &Row<'_>) -> rusqlite::Result<RawSnapshot> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
    ))
}

fn decode_snapshot(raw: RawSnapshot) -> Result<SnapshotRecord, CatalogError> {
    let (id, name, source_volume_id, size, created_ns, state) = raw;
    let corrupt = |reason: String| CatalogError::Corrupt {
        id: id.clone(),
        reason,
    };
    let state =
        RecordState::parse(&state).ok_or_else(|| corrupt(format!("unknown state {state:?}")))?;
    let size_bytes = u64::try_from(size).map_err(|_| corrupt(format!("negative size {size}")))?;
    let created = UNIX_EPOCH + Duration::from_nanos(u64::try_from(created_ns).unwrap_or(0));
    Ok(SnapshotRecord {
        id,
        name,
        source_volume_id,
        size_bytes,
        created,
        state,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vol(id: &str, name: &str) -> VolumeRecord {
        VolumeRecord {
            id: id.into(),
            name: name.into(),
            capacity_bytes: 1 << 20,
            parameters: BTreeMap::from([("k".into(), "v".into())]),
            source: Some(ContentSource::Snapshot("snap-1".into())),
            state: RecordState::Creating,
        }
    }

    #[test]
    fn records_survive_reopen_and_names_are_unique() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hearth.db");
        {
            let cat = Catalog::open(&path).unwrap();
            cat.insert_volume(&vol("vol-a", "pvc-a")).unwrap();
            assert!(cat.insert_volume(&vol("vol-b", "pvc-a")).is_err());
            cat.set_volume_state("vol-a", RecordState::Ready).unwrap();
            cat.set_volume_capacity("vol-a", 2 << 20).unwrap();
            let snap = SnapshotRecord {
                id: "snap-a".into(),
                name: "s".into(),
                source_volume_id: "vol-a".into(),
                size_bytes: 2 << 20,
                created: UNIX_EPOCH + Duration::from_secs(1_700_000_000),
                state: RecordState::Ready,
            };
            cat.insert_snapshot(&snap).unwrap();
        }
        let cat = Catalog::open(&path).unwrap();
        let v = cat.volume_by_name("pvc-a").unwrap().unwrap();
        assert_eq!(v.state, RecordState::Ready);
        assert_eq!(v.capacity_bytes, 2 << 20);
        assert_eq!(v.source, Some(ContentSource::Snapshot("snap-1".into())));
        assert_eq!(cat.snapshots().unwrap().len(), 1);
        assert_eq!(
            cat.snapshot_by_name("s").unwrap().unwrap().source_volume_id,
            "vol-a"
        );
        cat.remove_volume("vol-a").unwrap();
        assert!(cat.volume("vol-a").unwrap().is_none());
    }
}
