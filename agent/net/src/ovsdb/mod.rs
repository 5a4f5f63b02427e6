//! A small OVSDB client (RFC 7047 JSON-RPC over a unix socket, TCP, or TLS with a client
//! certificate as OVS's `ssl:`): get_schema, transact with typed helpers for the Open_vSwitch tables, monitor /
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
pub mod tls;
pub mod verifier;

use async_trait::async_trait;
use serde_json::Value;

pub use client::Client;
pub use endpoint::Endpoint;
pub use tls::{Tls, TlsFile, TlsFiles};

/// Why an OVSDB call failed.
#[derive(Debug, thiserror::Error)]
pub enum OvsdbError {
    /// The endpoint string is not `unix:PATH`, `tcp:HOST:PORT` or `ssl:HOST:PORT`.
    #[error("endpoint {0:?}: expected unix:PATH, tcp:HOST:PORT or ssl:HOST:PORT")]
    Endpoint(String),
    /// An `ssl:` endpoint was given no certificates.
    #[error("{endpoint}: ssl: needs a CA certificate, a client certificate and its key")]
    TlsRequired {
        /// The endpoint.
        endpoint: String,
    },
    /// Reading one of the TLS files failed.
    #[error("{file} {path}: {reason}")]
    Tls {
        /// Which file.
        file: TlsFile,
        /// Its path.
        path: std::path::PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The TLS handshake failed (the server's certificate is not from the CA, or it refused
    /// ours, or it does not speak TLS).
    #[error("TLS handshake with {endpoint}: {source}")]
    Handshake {
        /// The endpoint.
        endpoint: String,
        /// The cause (rustls' error inside).
        source: std::io::Error,
    },
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
    #[error("{method} on {endpoint}: disconnected before the reply ({reason})")]
    Disconnected {
        /// The endpoint.
        endpoint: String,
        /// The method.
        method: String,
        /// Why the connection was lost (a TLS alert when the server refused our certificate).
        reason: String,
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
