//! S3 remotes (create, delete) and backups shipped to them (create, taking a snapshot when
//! none is named; delete by ID or resource). Nothing is uploaded anywhere: a backup is a
//! record.
//!
//! Owns: these state changes.

use serde_json::Value;

use super::consts::*;
use super::ops_defs::rd_not_found;
use super::ops_snap::snap_not_found;
use super::parse::{bad, bool_of, check_name, str_of};
use super::reply::{Fail, Rc};
use super::state::{now_ms, BackupRec, Remote, State};

/// `FAIL_NOT_FOUND_REMOTE`.
pub fn remote_not_found(name: &str) -> Fail {
    Fail(
        Rc::err(
            0,
            obj::REMOTE,
            FAIL_NOT_FOUND_REMOTE,
            format!("Remote '{name}' not found."),
        )
        .obj("RemoteName", name),
    )
}

impl State {
    /// `POST /v1/remotes/s3`.
    pub fn create_s3_remote(&mut self, body: &Value) -> Result<Vec<Rc>, Fail> {
        let name = str_of(body, "remote_name").ok_or_else(|| bad("remote_name missing"))?;
        check_name(&name, "remote")?;
        if self.remotes.contains_key(&name) {
            return Err(Fail(
                Rc::err(
                    OP_CREATE,
                    obj::REMOTE,
                    FAIL_EXISTS_REMOTE,
                    format!("Remote '{name}' already exists."),
                )
                .obj("RemoteName", &name),
            ));
        }
        let field = |k: &str| str_of(body, k).unwrap_or_default();
        let remote = Remote {
            name: name.clone(),
            endpoint: field("endpoint"),
            bucket: field("bucket"),
            region: field("region"),
            use_path_style: bool_of(body, "use_path_style"),
        };
        self.remotes.insert(name.clone(), remote);
        Ok(vec![Rc::ok(
            OP_CREATE,
            obj::REMOTE,
            CREATED,
            format!("Remote '{name}' created."),
        )
        .obj("RemoteName", &name)])
    }

    /// `DELETE /v1/remotes?remote_name=`.
    pub fn delete_remote(&mut self, name: &str) -> Result<Vec<Rc>, Fail> {
        self.remotes
            .remove(name)
            .ok_or_else(|| remote_not_found(name))?;
        self.backups.remove(name);
        Ok(vec![Rc::ok(
            OP_DELETE,
            obj::REMOTE,
            DELETED,
            format!("Remote '{name}' deleted."),
        )
        .obj("RemoteName", name)])
    }

    /// `POST /v1/remotes/{remote}/backups`: ships a snapshot (taking one when none is named).
    pub fn create_backup(&mut self, remote: &str, body: &Value) -> Result<Vec<Rc>, Fail> {
        if !self.remotes.contains_key(remote) {
            return Err(remote_not_found(remote));
        }
        let rd = str_of(body, "rsc_name").ok_or_else(|| bad("rsc_name missing"))?;
        let r = self.rds.get(&rd).ok_or_else(|| rd_not_found(&rd))?;
        let start = now_ms();
        let mut out = Vec::new();
        let snap = match str_of(body, "snap_name") {
            Some(s) => {
                r.snaps.get(&s).ok_or_else(|| snap_not_found(&rd, &s))?;
                s
            }
            None => {
                let s = format!("back_{start}");
                let nodes = self.snapshot_nodes(&rd, &s, &[])?;
                out.push(self.take_snapshot(&rd, &s, nodes)?);
                s
            }
        };
        let node = str_of(body, "node_name")
            .or_else(|| {
                self.rds
                    .get(&rd)
                    .and_then(|r| r.snaps.get(&snap))
                    .and_then(|s| s.nodes.first().cloned())
            })
            .unwrap_or_default();
        let id = format!("{rd}_{snap}");
        let list = self.backups.entry(remote.to_owned()).or_default();
        if list.iter().any(|b| b.id == id) {
            return Err(Fail(Rc::err(
                OP_CREATE,
                obj::BACKUP,
                525,
                format!("Backup '{id}' was already shipped to '{remote}'."),
            )));
        }
        list.push(BackupRec {
            id: id.clone(),
            rsc: rd.clone(),
            snap,
            node,
            start_ms: start,
            finished_ms: now_ms(),
        });
        out.push(
            Rc::ok(
                OP_CREATE,
                obj::BACKUP,
                CREATED,
                format!("Backup '{id}' of '{rd}' shipped to remote '{remote}'."),
            )
            .obj("RscDfn", &rd)
            .obj("RemoteName", remote),
        );
        Ok(out)
    }

    /// `DELETE /v1/remotes/{remote}/backups?id=|resource_name=`.
    pub fn delete_backups(
        &mut self,
        remote: &str,
        id: Option<&str>,
        rsc: Option<&str>,
    ) -> Result<Vec<Rc>, Fail> {
        if !self.remotes.contains_key(remote) {
            return Err(remote_not_found(remote));
        }
        if id.is_none() && rsc.is_none() {
            return Err(bad("give id or resource_name"));
        }
        let list = self.backups.entry(remote.to_owned()).or_default();
        let before = list.len();
        list.retain(|b| !(id.is_none_or(|i| b.id == i) && rsc.is_none_or(|r| b.rsc == r)));
        if list.len() == before {
            return Err(Fail(
                Rc::err(
                    OP_DELETE,
                    obj::BACKUP,
                    FAIL_NOT_FOUND_BACKUP,
                    format!("No matching backup on remote '{remote}'."),
                )
                .obj("RemoteName", remote),
            ));
        }
        Ok(vec![Rc::ok(
            OP_DELETE,
            obj::BACKUP,
            DELETED,
            format!(
                "{} backup(s) deleted from remote '{remote}'.",
                before - list.len()
            ),
        )
        .obj("RemoteName", remote)])
    }
}
