//! `hearth status`: fetches `/status` from a status endpoint — a node's, `hearth dev`'s or a
//! coordinator's, told apart by the document (`role: coordinator`) — and prints it as a table
//! with headers (`table`, `wide`) or as the JSON itself (`json`). Exits 1 when a check fails (a
//! node's required checks; a coordinator's nodes, owners and volumes), so scripts can test
//! readiness too; each failed check is printed with the next thing to look at. Owns one plain
//! HTTP/1.0 GET (with `--token-file`, carrying the token as `Authorization: Bearer`, for an
//! endpoint served with `--status-auth kubernetes` reached from beyond loopback; over TLS for
//! `--addr https://…`, [`tls`]); touches nothing else.

mod tls;

use std::time::Duration;

use clap::{Args, ValueEnum};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::cluster_view::{self, CoordinatorDoc};
use crate::health::snapshot::Snapshot;
use crate::health::text;

/// The longest the whole fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);
/// The largest answer read.
const MAX_ANSWER: u64 = 64 * 1024 * 1024;

/// Output formats.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum Output {
    /// Checks, volumes, floating IPs and DRBD peers.
    Table,
    /// The `/status` JSON (docs/status.md).
    Json,
    /// The table with paths, conditions and links.
    Wide,
}

/// Flags of `hearth status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// The `--status-addr` of a node, a coordinator or `hearth dev`.
    #[arg(long, env = "HEARTH_ADDR", default_value = "127.0.0.1:9810")]
    pub addr: String,
    /// Output format.
    #[arg(
        long,
        short,
        env = "HEARTH_OUTPUT",
        value_enum,
        default_value = "table"
    )]
    pub output: Output,
    /// A bearer token to send (a ServiceAccount token allowed to get /status), for an
    /// endpoint with `--status-auth kubernetes` reached from beyond loopback; re-read each run.
    #[arg(long, env = "HEARTH_TOKEN_FILE")]
    pub token_file: Option<std::path::PathBuf>,
    /// With `--addr https://HOST:PORT` (a listener with `--status-tls-*`): the CA certificates
    /// (PEM) the server's certificate must chain to.
    #[arg(
        long,
        env = "HEARTH_CA_FILE",
        conflicts_with = "insecure_skip_tls_verify"
    )]
    pub ca_file: Option<std::path::PathBuf>,
    /// With `--addr https://…`: accept any server certificate (the self-signed one of
    /// `--status-tls-self-signed`); the answer is still encrypted.
    #[arg(long, env = "HEARTH_INSECURE_SKIP_TLS_VERIFY")]
    pub insecure_skip_tls_verify: bool,
}

/// A failed step of `hearth status`.
#[derive(Debug, thiserror::Error)]
pub enum StatusCmdError {
    /// Connecting, sending or reading failed.
    #[error("fetching {addr}/status: {source} (is the agent running with that --status-addr?)")]
    Fetch {
        /// The address.
        addr: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// No answer within the timeout.
    #[error("{0}/status did not answer within {FETCH_TIMEOUT:?}")]
    Timeout(String),
    /// The answer was not HTTP 200 with a snapshot.
    #[error("{addr}/status answered something else: {what}")]
    Answer {
        /// The address.
        addr: String,
        /// What was wrong.
        what: String,
    },
    /// The endpoint refused the request (401, 403).
    #[error("{addr}/status refused the request (HTTP {code}): {body} (give --token-file with a token allowed to get /status, or ask from the node itself on 127.0.0.1)")]
    Refused {
        /// The address.
        addr: String,
        /// 401 or 403.
        code: u16,
        /// The endpoint's reason.
        body: String,
    },
    /// The token file could not be read.
    #[error("--token-file {path}: {source}")]
    TokenFile {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Required checks fail (already printed).
    #[error("not ready: {0}")]
    NotReady(String),
}

/// The request head `hearth status` sends.
pub fn request(addr: &str, token: Option<&str>) -> String {
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    format!("GET /status HTTP/1.0\r\nHost: {addr}\r\nAccept: application/json\r\n{auth}\r\n")
}

async fn fetch(args: &StatusArgs, token: Option<&str>) -> Result<Vec<u8>, std::io::Error> {
    if let Some(addr) = args.addr.strip_prefix("https://") {
        let addr = addr.trim_end_matches('/');
        let trust =
            match (&args.ca_file, args.insecure_skip_tls_verify) {
                (Some(ca), _) => tls::Trust::Ca(ca),
                (None, true) => tls::Trust::Insecure,
                (None, false) => return Err(std::io::Error::other(
                    "https:// needs --ca-file (or --insecure-skip-tls-verify for a self-signed \
                     certificate)",
                )),
            };
        let req = request(addr, token);
        return tls::fetch(addr, req.as_bytes(), trust, MAX_ANSWER).await;
    }
    let addr = args.addr.strip_prefix("http://").unwrap_or(&args.addr);
    let addr = addr.trim_end_matches('/');
    let mut stream = TcpStream::connect(addr).await?;
    let req = request(addr, token);
    stream.write_all(req.as_bytes()).await?;
    let mut buf = Vec::new();
    stream.take(MAX_ANSWER).read_to_end(&mut buf).await?;
    Ok(buf)
}

/// Splits an HTTP/1.x answer into status code and body.
pub fn parse_answer(raw: &[u8]) -> Option<(u16, &[u8])> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let code = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((code, &raw[end + 4..]))
}

/// Runs `hearth status`.
pub async fn run(args: StatusArgs) -> Result<(), StatusCmdError> {
    // The URL the messages name.
    let addr = if args.addr.contains("://") {
        args.addr.trim_end_matches('/').to_owned()
    } else {
        format!("http://{}", args.addr)
    };
    let token = match &args.token_file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .map_err(|source| StatusCmdError::TokenFile {
                    path: path.display().to_string(),
                    source,
                })?
                .trim()
                .to_owned(),
        ),
        None => None,
    };
    let raw = tokio::time::timeout(FETCH_TIMEOUT, fetch(&args, token.as_deref()))
        .await
        .map_err(|_| StatusCmdError::Timeout(addr.clone()))?
        .map_err(|source| StatusCmdError::Fetch {
            addr: addr.clone(),
            source,
        })?;
    let answer = |what: String| StatusCmdError::Answer {
        addr: addr.clone(),
        what,
    };
    let (code, body) = parse_answer(&raw).ok_or_else(|| answer("not HTTP".into()))?;
    if code == 401 || code == 403 {
        return Err(StatusCmdError::Refused {
            addr: addr.clone(),
            code,
            body: String::from_utf8_lossy(body)
                .trim()
                .chars()
                .take(300)
                .collect(),
        });
    }
    if code != 200 {
        return Err(answer(format!("HTTP {code}")));
    }
    let doc: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| answer(format!("not JSON: {e}")))?;
    let failing = if doc.get("role").and_then(serde_json::Value::as_str) == Some("coordinator") {
        let c: CoordinatorDoc = serde_json::from_value(doc)
            .map_err(|e| answer(format!("not a coordinator's status: {e}")))?;
        print_as(args.output, body, || {
            cluster_view::render(&c, args.output == Output::Wide)
        });
        cluster_view::checks(&c)
            .into_iter()
            .filter(|c| !c.ok)
            .map(|c| c.name)
            .collect::<Vec<_>>()
    } else {
        let snap: Snapshot = serde_json::from_value(doc)
            .map_err(|e| answer(format!("not a node's or a coordinator's status: {e}")))?;
        print_as(args.output, body, || {
            text::render(&snap, args.output == Output::Wide)
        });
        crate::health::checks::not_ready(&snap)
            .into_iter()
            .map(|c| c.name.clone())
            .collect()
    };
    if failing.is_empty() {
        Ok(())
    } else {
        Err(StatusCmdError::NotReady(failing.join(", ")))
    }
}

fn print_as(output: Output, body: &[u8], table: impl FnOnce() -> String) {
    match output {
        Output::Json => println!("{}", String::from_utf8_lossy(body).trim_end()),
        Output::Table | Output::Wide => print!("{}", table()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_an_http_answer() {
        let raw = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n{}";
        assert_eq!(parse_answer(raw), Some((200, &b"{}"[..])));
        assert_eq!(parse_answer(b"garbage"), None);
    }

    #[test]
    fn the_token_goes_in_an_authorization_header_only_when_given() {
        assert!(!request("a:1", None).contains("Authorization"));
        let r = request("a:1", Some("tok"));
        assert!(r.contains("\r\nAuthorization: Bearer tok\r\n\r\n"), "{r}");
    }
}
