//! A small OVSDB client (RFC 7047 JSON-RPC over a unix socket or TCP; SSL is not done yet):
//! get_schema, transact with typed helpers for the Open_vSwitch tables, monitor /
//! monitor_cond / monitor_cond_since with update notifications, answers to `echo`, and
//! reconnects with backoff.
//!
//! Owns the connection and the JSON encoding of OVSDB data. It must not decide what to write:
//! the callers (the OVN node configuration) build the operations.

pub mod client;
pub mod datum;
pub mod endpoint;
pub mod framing;
pub mod tables;

use async_trait::async_trait;
use serde_json::Value;

pub use client::Client;
pub use endpoint::Endpoint;

/// Why an OVSDB call failed.
#[derive(Debug, thiserror::Error)]
pub enum OvsdbError {
    /// The endpoint string is not `unix:PATH` or `tcp:HOST:PORT`.
    #[error("endpoint {0:?}: expected unix:PATH or tcp:HOST:PORT")]
    Endpoint(String),
    /// Connecting failed.
    #[error("connecting to {endpoint}: {source}")]
    Connect {
        /// The endpoint.
        endpoint: String,
        /// The errno.
        source: std::io::Error,
    },
    /// Writing a request failed.
    #[error("writing {method} to {endpoint}: {source}")]
    Write {
        /// The endpoint.
        endpoint: String,
        /// The method.
        method: String,
        /// The errno.
        source: std::io::Error,
    },
    /// The byte stream is not OVSDB JSON-RPC.
    #[error("framing: {0}")]
    Frame(String),
    /// The connection closed before the answer came; the client reconnects.
    #[error("{method} on {endpoint}: disconnected before the reply")]
    Disconnected {
        /// The endpoint.
        endpoint: String,
        /// The method.
        method: String,
    },
    /// No reply in time.
    #[error("{method} on {endpoint}: no reply within {secs}s")]
    Timeout {
        /// The endpoint.
        endpoint: String,
        /// The method.
        method: String,
        /// The timeout.
        secs: u64,
    },
    /// The server answered the request with an error.
    #[error("{method} on {db}: {error}")]
    Rpc {
        /// The method.
        method: String,
        /// The database.
        db: String,
        /// The error object.
        error: Value,
    },
    /// One operation of a transaction failed (the whole transaction was rolled back).
    #[error("transact on {db}: operation {index} failed: {error}")]
    Transact {
        /// The database.
        db: String,
        /// The index of the failed operation (or of the commit).
        index: usize,
        /// The error object of that operation.
        error: Value,
    },
    /// A reply does not have the shape RFC 7047 gives it.
    #[error("{method} on {db}: unexpected reply {reply}")]
    Reply {
        /// The method.
        method: String,
        /// The database.
        db: String,
        /// The reply.
        reply: String,
    },
}

/// The narrow interface the OVN configuration uses; [`Client`] is its one implementation.
#[async_trait]
pub trait Ovsdb: Send + Sync {
    /// Runs operations as one transaction and returns one result per operation.
    async fn transact(&self, db: &str, ops: Vec<Value>) -> Result<Vec<Value>, OvsdbError>;
    /// The schema of a database.
    async fn get_schema(&self, db: &str) -> Result<Value, OvsdbError>;
}

#[async_trait]
impl Ovsdb for Client {
    async fn transact(&self, db: &str, ops: Vec<Value>) -> Result<Vec<Value>, OvsdbError> {
        Client::transact(self, db, ops).await
    }
    async fn get_schema(&self, db: &str) -> Result<Value, OvsdbError> {
        Client::get_schema(self, db).await
    }
}
