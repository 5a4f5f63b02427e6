//! How to reach a LINSTOR controller: the endpoint URL (with LINSTOR's own schemes), the TLS
//! files, timeouts and the retry policy.
//!
//! Owns: [`ClientConfig`], [`TlsFiles`], [`RetryPolicy`] and the URL normalisation. Reading
//! the TLS files is [`super::tls`]'s job; nothing here does I/O.

use std::path::PathBuf;
use std::time::Duration;

use reqwest::Url;

use super::error::LinstorError;

/// The controller's plain-HTTP port, used when a `linstor://` or `http://` URL names none.
pub const DEFAULT_HTTP_PORT: u16 = 3370;
/// The controller's HTTPS port, used when a `linstor+ssl://` or `https://` URL names none.
pub const DEFAULT_HTTPS_PORT: u16 = 3371;

/// Files for HTTPS: the CA that signed the controller's certificate, and the client
/// certificate and key the controller checks (Cozystack deploys LINSTOR this way).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsFiles {
    /// PEM file with the CA certificate(s) to trust; `None` trusts the system's roots.
    pub ca_file: Option<PathBuf>,
    /// PEM file with the client certificate chain; needs `key_file`.
    pub cert_file: Option<PathBuf>,
    /// PEM file with the client private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: Option<PathBuf>,
}

/// Bounded retries with exponential backoff and jitter (see [`super::transport`] for which
/// failures are retried on which calls).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Tries in all, the first included (1: no retries).
    pub attempts: u32,
    /// The delay before the first retry; doubled for each further one.
    pub base_delay: Duration,
    /// The longest delay between two tries.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            attempts: 4,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
        }
    }
}

impl RetryPolicy {
    /// The delay before retry number `retry` (1-based): `base * 2^(retry-1)`, capped at
    /// `max_delay`, then scaled by `jitter` (drawn from 0.5..=1.0 by the caller).
    pub fn delay(&self, retry: u32, jitter: f64) -> Duration {
        let exp = retry.saturating_sub(1).min(16);
        let raw = self.base_delay.saturating_mul(1u32 << exp);
        raw.min(self.max_delay).mul_f64(jitter.clamp(0.0, 1.0))
    }
}

/// Everything the client needs to reach a controller.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `http://`, `https://`, `linstor://` (= http) or `linstor+ssl://` (= https); a missing
    /// port is 3370 for plain HTTP and 3371 for HTTPS.
    pub url: String,
    /// TLS files for `https`/`linstor+ssl`; ignored for plain HTTP.
    pub tls: TlsFiles,
    /// Time for one HTTP request, from sending to the end of the body.
    pub request_timeout: Duration,
    /// Time to establish a connection (TCP and TLS).
    pub connect_timeout: Duration,
    /// Retries of transient failures.
    pub retry: RetryPolicy,
}

impl ClientConfig {
    /// A configuration with default timeouts (10 s per request, 3 s to connect) and retries.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            tls: TlsFiles::default(),
            request_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(3),
            retry: RetryPolicy::default(),
        }
    }

    /// The same configuration with TLS files.
    pub fn with_tls(mut self, tls: TlsFiles) -> Self {
        self.tls = tls;
        self
    }

    /// The base URL to send requests to, with LINSTOR's schemes mapped to http/https and the
    /// default port filled in.
    pub fn base_url(&self) -> Result<Url, LinstorError> {
        normalise(&self.url)
    }
}

/// Maps `linstor://` and `linstor+ssl://` to `http://` and `https://`, fills in the default
/// port, and refuses paths, queries, credentials and other schemes.
pub fn normalise(raw: &str) -> Result<Url, LinstorError> {
    let bad = |reason: &str| LinstorError::Endpoint {
        url: raw.to_owned(),
        reason: reason.to_owned(),
    };
    let trimmed = raw.trim();
    let (scheme, rest) = trimmed
        .split_once("://")
        .ok_or_else(|| bad("no scheme; use http://, https://, linstor:// or linstor+ssl://"))?;
    let (scheme, port) = match scheme.to_ascii_lowercase().as_str() {
        "http" | "linstor" => ("http", DEFAULT_HTTP_PORT),
        "https" | "linstor+ssl" => ("https", DEFAULT_HTTPS_PORT),
        _ => {
            return Err(bad(
                "unknown scheme; use http, https, linstor or linstor+ssl",
            ))
        }
    };
    let mut url =
        Url::parse(&format!("{scheme}://{rest}")).map_err(|e| bad(&format!("parse: {e}")))?;
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("credentials in the URL are not supported"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("a query or fragment is not allowed"));
    }
    if url.path() != "/" && !url.path().is_empty() {
        return Err(bad("a path is not allowed; the API lives at /v1/"));
    }
    if url.port().is_none() {
        url.set_port(Some(port))
            .map_err(|()| bad("cannot set the default port"))?;
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_and_default_ports() {
        let cases = [
            ("http://ctrl", "http://ctrl:3370/"),
            ("linstor://ctrl", "http://ctrl:3370/"),
            ("linstor+ssl://ctrl", "https://ctrl:3371/"),
            ("LINSTOR+SSL://ctrl:9000", "https://ctrl:9000/"),
            ("https://10.0.0.1", "https://10.0.0.1:3371/"),
            ("http://127.0.0.1:3370/", "http://127.0.0.1:3370/"),
            ("http://[::1]", "http://[::1]:3370/"),
        ];
        for (raw, want) in cases {
            assert_eq!(normalise(raw).unwrap().as_str(), want, "{raw}");
        }
    }

    #[test]
    fn refuses_bad_urls() {
        for raw in [
            "ctrl:3370",
            "ftp://ctrl",
            "http://",
            "http://u:p@ctrl",
            "http://ctrl/v1",
            "http://ctrl?x=1",
        ] {
            let e = normalise(raw).unwrap_err();
            assert!(matches!(e, LinstorError::Endpoint { .. }), "{raw}: {e}");
        }
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let p = RetryPolicy::default();
        assert_eq!(p.delay(1, 1.0), Duration::from_millis(100));
        assert_eq!(p.delay(2, 1.0), Duration::from_millis(200));
        assert_eq!(p.delay(3, 0.5), Duration::from_millis(200));
        assert_eq!(p.delay(30, 1.0), Duration::from_secs(2));
    }
}
