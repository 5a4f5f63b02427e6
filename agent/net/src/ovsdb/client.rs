//! The connection: one reader task that routes replies to their callers, answers `echo`,
//! forwards update notifications, and reconnects with backoff (failing the calls in flight and
//! re-registering the monitors, `monitor_cond_since` from the last transaction it saw).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

use super::endpoint::{Endpoint, Reader, Writer};
use super::framing::{Decoder, Message};
use super::{OvsdbError, Tls};

/// How long a call waits for its reply.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest pause between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// An update notification: `update` (monitor), `update2` (monitor_cond) or `update3`
/// (monitor_cond_since), with its params as sent; or `resync`, the initial contents after a
/// reconnection re-registered a monitor (params `[monitor_id, reply]`).
#[derive(Debug, Clone)]
pub struct Update {
    /// The notification method.
    pub method: String,
    /// Its params.
    pub params: Value,
}

enum Waiter {
    Reply(oneshot::Sender<(Value, Value)>),
    Resync(Value),
}

struct Shared {
    endpoint: Endpoint,
    tls: Option<Tls>,
    /// Why the connection was last lost, for the calls it failed.
    lost: Mutex<String>,
    writer: tokio::sync::Mutex<Option<Writer>>,
    pending: Mutex<HashMap<u64, Waiter>>,
    next_id: AtomicU64,
    monitors: Mutex<Vec<(String, Value)>>,
    updates: mpsc::UnboundedSender<Update>,
}

/// An OVSDB connection. Dropping it stops the reader task.
pub struct Client {
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
    updates: Mutex<Option<mpsc::UnboundedReceiver<Update>>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ovsdb::Client({})", self.shared.endpoint)
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Client {
    /// Connects to a `unix:` or `tcp:` endpoint (once; later losses of the connection are
    /// retried in the background). `ssl:` needs [`Self::connect_with`].
    pub async fn connect(endpoint: &str) -> Result<Self, OvsdbError> {
        Self::connect_with(endpoint, None).await
    }

    /// Like [`Self::connect`]; `tls` is what an `ssl:` endpoint uses (and keeps for its
    /// reconnections), ignored by the other kinds.
    pub async fn connect_with(endpoint: &str, tls: Option<Tls>) -> Result<Self, OvsdbError> {
        let endpoint = Endpoint::parse(endpoint)?;
        let (reader, writer) = endpoint.open(tls.as_ref()).await?;
        let (tx, rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            endpoint,
            tls,
            lost: Mutex::new("not connected".into()),
            writer: tokio::sync::Mutex::new(Some(writer)),
            pending: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            monitors: Mutex::new(Vec::new()),
            updates: tx,
        });
        let task = tokio::spawn(run(shared.clone(), reader));
        Ok(Self {
            shared,
            task,
            updates: Mutex::new(Some(rx)),
        })
    }

    /// The update notifications of every monitor; the first caller takes the receiver.
    pub fn take_updates(&self) -> Option<mpsc::UnboundedReceiver<Update>> {
        self.updates.lock().ok()?.take()
    }

    /// `list_dbs`.
    pub async fn list_dbs(&self) -> Result<Vec<String>, OvsdbError> {
        let r = self.call("list_dbs", json!([]), "").await?;
        serde_json::from_value(r.clone()).map_err(|_| reply("list_dbs", "", &r))
    }

    /// `get_schema`.
    pub async fn get_schema(&self, db: &str) -> Result<Value, OvsdbError> {
        self.call("get_schema", json!([db]), db).await
    }

    /// `transact`: one result per operation; any failed operation is an error.
    pub async fn transact(&self, db: &str, ops: Vec<Value>) -> Result<Vec<Value>, OvsdbError> {
        let n = ops.len();
        let mut params = vec![json!(db)];
        params.extend(ops);
        let r = self.call("transact", Value::Array(params), db).await?;
        let Value::Array(results) = r else {
            return Err(reply("transact", db, &r));
        };
        for (index, res) in results.iter().enumerate() {
            if let Some(error) = res.get("error").filter(|e| !e.is_null()) {
                return Err(OvsdbError::Transact {
                    db: db.into(),
                    index,
                    error: error.clone(),
                });
            }
        }
        if results.len() < n {
            return Err(reply("transact", db, &Value::Array(results)));
        }
        Ok(results)
    }

    /// `monitor`: returns the initial contents; later changes arrive as `update`.
    pub async fn monitor(&self, db: &str, id: Value, requests: Value) -> Result<Value, OvsdbError> {
        self.register("monitor", json!([db, id, requests]), db)
            .await
    }

    /// `monitor_cond`: like `monitor`, with conditions; changes arrive as `update2`.
    pub async fn monitor_cond(
        &self,
        db: &str,
        id: Value,
        requests: Value,
    ) -> Result<Value, OvsdbError> {
        self.register("monitor_cond", json!([db, id, requests]), db)
            .await
    }

    /// `monitor_cond_since`: returns `[found, last_txn_id, updates2]`; changes arrive as
    /// `update3`. After a reconnection it resumes from the last transaction seen.
    pub async fn monitor_cond_since(
        &self,
        db: &str,
        id: Value,
        requests: Value,
        last_txn_id: Option<&str>,
    ) -> Result<Value, OvsdbError> {
        let last = last_txn_id.unwrap_or("00000000-0000-0000-0000-000000000000");
        let r = self
            .register("monitor_cond_since", json!([db, id, requests, last]), db)
            .await?;
        if let (Some(txn), Ok(mut m)) = (r.get(1).cloned(), self.shared.monitors.lock()) {
            if let Some(entry) = m
                .iter_mut()
                .rev()
                .find(|(meth, p)| meth == "monitor_cond_since" && p.get(1) == Some(&id))
            {
                entry.1[3] = txn;
            }
        }
        Ok(r)
    }

    async fn register(&self, method: &str, params: Value, db: &str) -> Result<Value, OvsdbError> {
        let r = self.call(method, params.clone(), db).await?;
        if let Ok(mut m) = self.shared.monitors.lock() {
            m.push((method.to_owned(), params));
        }
        Ok(r)
    }

    /// Sends a request and waits for its reply.
    pub async fn call(&self, method: &str, params: Value, db: &str) -> Result<Value, OvsdbError> {
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        if let Ok(mut p) = self.shared.pending.lock() {
            p.insert(id, Waiter::Reply(tx));
        }
        let msg = Message::Request {
            id: json!(id),
            method: method.into(),
            params,
        };
        let disconnected = || OvsdbError::Disconnected {
            endpoint: self.shared.endpoint.to_string(),
            method: method.into(),
            reason: self
                .shared
                .lost
                .lock()
                .map(|r| r.clone())
                .unwrap_or_default(),
        };
        if let Err(e) = send(&self.shared, &msg).await {
            if let Ok(mut p) = self.shared.pending.lock() {
                p.remove(&id);
            }
            return Err(e.unwrap_or_else(disconnected));
        }
        let (result, error) = match tokio::time::timeout(CALL_TIMEOUT, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => return Err(disconnected()),
            Err(_) => {
                if let Ok(mut p) = self.shared.pending.lock() {
                    p.remove(&id);
                }
                return Err(OvsdbError::Timeout {
                    endpoint: self.shared.endpoint.to_string(),
                    method: method.into(),
                    secs: CALL_TIMEOUT.as_secs(),
                });
            }
        };
        if !error.is_null() {
            return Err(OvsdbError::Rpc {
                method: method.into(),
                db: db.into(),
                error,
            });
        }
        Ok(result)
    }
}

fn reply(method: &str, db: &str, v: &Value) -> OvsdbError {
    let mut reply = v.to_string();
    reply.truncate(200);
    OvsdbError::Reply {
        method: method.into(),
        db: db.into(),
        reply,
    }
}

/// Writes one message; `Err(None)` when there is no connection right now.
async fn send(shared: &Shared, msg: &Message) -> Result<(), Option<OvsdbError>> {
    let mut w = shared.writer.lock().await;
    let Some(writer) = w.as_mut() else {
        return Err(None);
    };
    let bytes = msg.to_value().to_string();
    let res = async {
        writer.write_all(bytes.as_bytes()).await?;
        writer.flush().await
    }
    .await;
    res.map_err(|source| {
        let method = match msg {
            Message::Request { method, .. } => method.clone(),
            Message::Response { .. } => "reply".into(),
        };
        Some(OvsdbError::Write {
            endpoint: shared.endpoint.to_string(),
            method,
            source,
        })
    })
}

/// The reader task: reads until the connection drops, then reconnects with backoff.
async fn run(shared: Arc<Shared>, mut reader: Reader) {
    loop {
        let err = read_loop(&shared, &mut reader).await;
        tracing::warn!(endpoint = %shared.endpoint, error = %err, "ovsdb connection lost; reconnecting");
        *shared.writer.lock().await = None;
        if let Ok(mut l) = shared.lost.lock() {
            *l = err; // before the calls in flight fail, so that they carry it
        }
        if let Ok(mut p) = shared.pending.lock() {
            p.clear(); // dropping the senders fails the calls in flight with Disconnected
        }
        let mut backoff = Duration::from_millis(50);
        reader = loop {
            tokio::time::sleep(backoff).await;
            match shared.endpoint.open(shared.tls.as_ref()).await {
                Ok((r, w)) => {
                    *shared.writer.lock().await = Some(w);
                    break r;
                }
                Err(e) => {
                    tracing::debug!(error = %e, "ovsdb reconnect failed");
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        };
        let monitors = shared
            .monitors
            .lock()
            .map(|m| m.clone())
            .unwrap_or_default();
        for (method, params) in monitors {
            let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
            if let Ok(mut p) = shared.pending.lock() {
                p.insert(
                    id,
                    Waiter::Resync(params.get(1).cloned().unwrap_or(Value::Null)),
                );
            }
            let _ = send(
                &shared,
                &Message::Request {
                    id: json!(id),
                    method,
                    params,
                },
            )
            .await;
        }
    }
}

async fn read_loop(shared: &Shared, reader: &mut Reader) -> String {
    let mut decoder = Decoder::default();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match reader.read(&mut buf).await {
            Ok(0) => return "end of stream".into(),
            Ok(n) => n,
            Err(e) => return e.to_string(),
        };
        let msgs = match decoder.push(&buf[..n]) {
            Ok(m) => m,
            Err(e) => return e.to_string(),
        };
        for msg in msgs {
            dispatch(shared, msg).await;
        }
    }
}

async fn dispatch(shared: &Shared, msg: Message) {
    match msg {
        Message::Response { id, result, error } => {
            let waiter = id
                .as_u64()
                .and_then(|id| shared.pending.lock().ok()?.remove(&id));
            match waiter {
                Some(Waiter::Reply(tx)) => {
                    let _ = tx.send((result, error));
                }
                Some(Waiter::Resync(monitor)) if error.is_null() => {
                    let params = json!([monitor, result]);
                    let _ = shared.updates.send(Update {
                        method: "resync".into(),
                        params,
                    });
                }
                _ => {}
            }
        }
        Message::Request { id, method, params } if method == "echo" => {
            let _ = send(
                shared,
                &Message::Response {
                    id,
                    result: params,
                    error: Value::Null,
                },
            )
            .await;
        }
        Message::Request { method, params, .. } => {
            if method == "update3" {
                if let (Some(mid), Some(txn), Ok(mut m)) =
                    (params.get(0), params.get(1), shared.monitors.lock())
                {
                    for (meth, p) in m.iter_mut() {
                        if meth == "monitor_cond_since" && p.get(1) == Some(mid) {
                            p[3] = txn.clone();
                        }
                    }
                }
            }
            let _ = shared.updates.send(Update { method, params });
        }
    }
}
