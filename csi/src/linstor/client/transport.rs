//! One HTTP exchange with the controller, with a timeout, bounded retries and a call counter.
//!
//! **Retry rule.** Every try counts as one REST call. A failure is retried (exponential
//! backoff with jitter, at most [`RetryPolicy::attempts`] tries) only when replaying the
//! request is safe:
//! - [`Replay::Read`] (GET): connect errors, timeouts, other transport errors, and HTTP 500,
//!   502, 503, 504.
//! - [`Replay::Replayable`] (PUT, DELETE, and the POSTs that create one named object or make
//!   a resource available): connect errors, timeouts, other transport errors, and HTTP 502,
//!   503, 504 — never 500, which carries the controller's own verdict. A replay of a request
//!   that did land is answered by the controller with a typed error the caller already maps:
//!   a create becomes [`LinstorError::AlreadyExists`], a delete [`LinstorError::NotFound`]; a
//!   modify sets the same values again.
//! - [`Replay::Once`] (POSTs with side effects that a replay would repeat, such as shipping a
//!   backup): only connect errors, where the request never left this host.
//!
//! Owns: the reqwest client and the counter. It does not interpret bodies beyond handing them
//! to [`super::rc`] and serde.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use reqwest::{Method, Url};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::config::{ClientConfig, RetryPolicy};
use super::error::LinstorError;
use super::rc::{self, ApiCallRc};
use super::tls;

/// Which failures a request may be retried after; see the module doc.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replay {
    /// A read: anything transient, and HTTP 500.
    Read,
    /// A mutation whose replay is harmless or answered with a typed error.
    Replayable,
    /// A mutation that must not run twice: only connect errors.
    Once,
}

/// A status and the whole body.
#[derive(Debug)]
pub struct Answer {
    /// The request, as `METHOD /path`.
    pub op: String,
    /// The HTTP status.
    pub status: u16,
    /// The body.
    pub body: Vec<u8>,
}

/// The HTTP side of the client.
#[derive(Debug)]
pub struct Transport {
    http: reqwest::Client,
    base: Url,
    retry: RetryPolicy,
    request_timeout: Duration,
    calls: AtomicU64,
}

impl Transport {
    /// Builds the HTTP client for `config` (no request is sent).
    pub fn new(config: &ClientConfig) -> Result<Self, LinstorError> {
        let base = config.base_url()?;
        let tls = tls::client_config(&config.tls)?;
        let http = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .connect_timeout(config.connect_timeout)
            .no_proxy()
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| LinstorError::Build {
                url: base.to_string(),
                reason: error_chain(&e),
            })?;
        Ok(Self {
            http,
            base,
            retry: config.retry,
            request_timeout: config.request_timeout,
            calls: AtomicU64::new(0),
        })
    }

    /// The normalised base URL.
    pub fn base(&self) -> &Url {
        &self.base
    }

    /// REST calls sent so far (each retry counts).
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// `base/v1/<segments...>?<query>`, each segment percent-encoded.
    pub fn url(&self, segments: &[&str], query: &[(&str, &str)]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.clear().push("v1").extend(segments);
        }
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    /// GET and decode the body as `T`.
    pub async fn get<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        query: &[(&str, &str)],
    ) -> Result<T, LinstorError> {
        let answer = self
            .send(Method::GET, segments, query, None, Replay::Read)
            .await?;
        decode_ok(answer)
    }

    /// A mutation answered with a list of `ApiCallRc`; an error entry is an error even under
    /// a 2xx status.
    pub async fn mutate<B: Serialize + ?Sized>(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, &str)],
        body: Option<&B>,
        replay: Replay,
    ) -> Result<Vec<ApiCallRc>, LinstorError> {
        let body = body.map(|b| encode(b, &method, segments)).transpose()?;
        let answer = self.send(method, segments, query, body, replay).await?;
        let rcs = rc::decode_list(&answer.body).map_err(|e| LinstorError::Decode {
            op: answer.op.clone(),
            status: answer.status,
            reason: e.to_string(),
        })?;
        rc::check(&answer.op, answer.status, &rcs)?;
        for w in rcs.iter().filter(|rc| rc.kind() == rc::RcKind::Warning) {
            tracing::warn!(op = %answer.op, ret_code = w.ret_code, message = %w.message, "LINSTOR warning");
        }
        Ok(rcs)
    }

    /// A POST answered with an object `T` on success and `ApiCallRc`s on failure.
    pub async fn post_for<B: Serialize + ?Sized, T: DeserializeOwned>(
        &self,
        segments: &[&str],
        body: &B,
        replay: Replay,
    ) -> Result<T, LinstorError> {
        let bytes = encode(body, &Method::POST, segments)?;
        let answer = self
            .send(Method::POST, segments, &[], Some(bytes), replay)
            .await?;
        decode_ok(answer)
    }

    /// Sends with retries; returns the last answer (any status) or the last transport error.
    async fn send(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, &str)],
        body: Option<Vec<u8>>,
        replay: Replay,
    ) -> Result<Answer, LinstorError> {
        let url = self.url(segments, query);
        let op = format!("{method} {}", url.path());
        let attempts = self.retry.attempts.max(1);
        let mut attempt = 0;
        loop {
            attempt += 1;
            self.calls.fetch_add(1, Ordering::Relaxed);
            let started = Instant::now();
            let outcome = self.try_once(&method, &url, &op, body.as_deref()).await;
            let retry = attempt < attempts
                && match &outcome {
                    Ok(a) => retry_status(a.status, replay),
                    Err(f) => f.retryable(replay),
                };
            tracing::debug!(op = %op, attempt, elapsed_ms = started.elapsed().as_millis() as u64,
                status = outcome.as_ref().map(|a| a.status).unwrap_or(0), retry, "LINSTOR call");
            if !retry {
                return outcome.map_err(|f| f.error);
            }
            let delay = self.retry.delay(attempt, rand::random_range(0.5..=1.0));
            match &outcome {
                Ok(a) => {
                    tracing::warn!(op = %op, status = a.status, attempt, ?delay, "LINSTOR call failed, retrying")
                }
                Err(f) => {
                    tracing::warn!(op = %op, error = %f.error, attempt, ?delay, "LINSTOR call failed, retrying")
                }
            }
            tokio::time::sleep(delay).await;
        }
    }

    async fn try_once(
        &self,
        method: &Method,
        url: &Url,
        op: &str,
        body: Option<&[u8]>,
    ) -> Result<Answer, Failure> {
        let mut req = self
            .http
            .request(method.clone(), url.clone())
            .timeout(self.request_timeout)
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(b) = body {
            req = req
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(b.to_vec());
        }
        let resp = req.send().await.map_err(|e| self.failure(op, &e))?;
        let status = resp.status().as_u16();
        let body = resp.bytes().await.map_err(|e| self.failure(op, &e))?;
        Ok(Answer {
            op: op.to_owned(),
            status,
            body: body.to_vec(),
        })
    }

    fn failure(&self, op: &str, e: &reqwest::Error) -> Failure {
        let error = if e.is_timeout() {
            LinstorError::Timeout {
                op: op.to_owned(),
                after: self.request_timeout,
            }
        } else {
            LinstorError::Transport {
                op: op.to_owned(),
                reason: error_chain(e),
            }
        };
        Failure {
            connect: e.is_connect(),
            error,
        }
    }
}

/// A failed try: whether the request never left (connect error), and the error.
struct Failure {
    connect: bool,
    error: LinstorError,
}

impl Failure {
    fn retryable(&self, replay: Replay) -> bool {
        self.connect || replay != Replay::Once
    }
}

/// HTTP statuses worth another try under `replay`.
fn retry_status(status: u16, replay: Replay) -> bool {
    match replay {
        Replay::Read => matches!(status, 500 | 502..=504),
        Replay::Replayable => matches!(status, 502..=504),
        Replay::Once => false,
    }
}

fn encode<B: Serialize + ?Sized>(
    body: &B,
    method: &Method,
    segments: &[&str],
) -> Result<Vec<u8>, LinstorError> {
    serde_json::to_vec(body).map_err(|e| LinstorError::Decode {
        op: format!("{method} /v1/{}", segments.join("/")),
        status: 0,
        reason: format!("encode the request body: {e}"),
    })
}

/// A 2xx answer decoded as `T`; anything else mapped through its `ApiCallRc`s.
fn decode_ok<T: DeserializeOwned>(answer: Answer) -> Result<T, LinstorError> {
    let decode_err = |reason: String| LinstorError::Decode {
        op: answer.op.clone(),
        status: answer.status,
        reason,
    };
    if (200..300).contains(&answer.status) {
        return serde_json::from_slice(&answer.body).map_err(|e| decode_err(e.to_string()));
    }
    // An error answer whose body is not ApiCallRc JSON still maps by its status.
    let rcs = rc::decode_list(&answer.body).unwrap_or_default();
    rc::check(&answer.op, answer.status, &rcs)?;
    Err(decode_err("error status without an error entry".into()))
}

/// An error and its sources, joined with ": " (reqwest hides the useful part in the chain).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_rules() {
        assert!(retry_status(500, Replay::Read));
        assert!(!retry_status(500, Replay::Replayable));
        assert!(retry_status(503, Replay::Replayable));
        assert!(!retry_status(503, Replay::Once));
        assert!(!retry_status(404, Replay::Read));
        let f = |connect| Failure {
            connect,
            error: LinstorError::Transport {
                op: "x".into(),
                reason: "y".into(),
            },
        };
        assert!(f(true).retryable(Replay::Once));
        assert!(!f(false).retryable(Replay::Once));
        assert!(f(false).retryable(Replay::Replayable));
    }

    #[test]
    fn urls_encode_segments() {
        let t = Transport::new(&ClientConfig::new("http://127.0.0.1:1")).unwrap();
        let u = t.url(&["resource-definitions", "a b/c"], &[("nodes", "n1")]);
        assert_eq!(
            u.as_str(),
            "http://127.0.0.1:1/v1/resource-definitions/a%20b%2Fc?nodes=n1"
        );
    }

    #[test]
    fn error_answers_map_by_status_without_body() {
        let a = Answer {
            op: "GET /v1/x".into(),
            status: 404,
            body: b"<html>".to_vec(),
        };
        let e = decode_ok::<serde_json::Value>(a).unwrap_err();
        assert!(e.is_not_found(), "{e}");
        let a = Answer {
            op: "GET /v1/x".into(),
            status: 200,
            body: b"{".to_vec(),
        };
        let e = decode_ok::<serde_json::Value>(a).unwrap_err();
        assert!(matches!(e, LinstorError::Decode { status: 200, .. }), "{e}");
    }
}
