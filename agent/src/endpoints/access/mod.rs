//! Who may read `/status` and `/metrics` (`--status-auth kubernetes`), the way
//! controller-runtime's secure metrics serving and kube-rbac-proxy decide it: the client's
//! `Authorization: Bearer` token is checked with a TokenReview, and the user it proves is
//! checked with a SubjectAccessReview for the request's path as a non-resource URL, verb `get`.
//! Outcomes are cached briefly ([`cache`]). `/healthz` and `/readyz` stay open (kubelet's probes
//! carry no token), and so is every path to a client on a loopback address (`hearth status` on
//! the node or in the pod). The API calls sit behind [`AccessReviewer`] ([`kube`] has the real
//! one); the decisions ([`needs_review`], [`StatusAuth::check`]) are unit-tested over
//! [`FakeAccessReviewer`]. Owns the decision only; the routes it guards are [`Guarded`]'s.

#[cfg(test)]
mod apiserver_tests;
pub mod cache;
pub mod kube;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http::{header, Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Bytes;
use tokio::sync::Semaphore;

use super::{text_reply, Peer, Routes};
use cache::{Cache, Key};

/// Paths served to anyone: kubelet's probes.
pub const OPEN_PATHS: &[&str] = &["/healthz", "/readyz"];
/// The verb every request is authorized for (the endpoints are GET only).
pub const VERB: &str = "get";
/// The longest one review (both API calls, waiting for a turn included) may take.
const REVIEW_TIMEOUT: Duration = Duration::from_secs(5);
/// Reviews in flight at once: a flood of made-up tokens costs the API server little.
const MAX_REVIEWS: usize = 4;

/// Errors of asking the API server.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    /// The API call failed.
    #[error("kubernetes API: {0}")]
    Api(String),
}

/// The user a token proves, as the SubjectAccessReview needs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct User {
    /// The user name (`system:serviceaccount:NS:NAME` for a ServiceAccount).
    pub name: String,
    /// The user's UID.
    pub uid: Option<String>,
    /// The groups.
    pub groups: Vec<String>,
    /// Extra attributes.
    pub extra: BTreeMap<String, Vec<String>>,
}

/// The Kubernetes API calls of status access.
#[async_trait::async_trait]
pub trait AccessReviewer: Send + Sync + fmt::Debug + 'static {
    /// The user `token` proves for `audiences` (the API server's own when empty), `Err(why)`
    /// inside `Ok` when the API server says it proves no one.
    async fn authenticate(
        &self,
        token: &str,
        audiences: &[String],
    ) -> Result<Result<User, String>, AccessError>;
    /// Whether `user` may `verb` the non-resource URL `path`; `Err(reason)` inside `Ok` when not.
    async fn authorize(
        &self,
        user: &User,
        path: &str,
        verb: &str,
    ) -> Result<Result<(), String>, AccessError>;
}

/// Why a request is refused. Never carries the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    /// No bearer token (401).
    #[error("a bearer token is required (a ServiceAccount token allowed to get {0})")]
    NoToken(String),
    /// The API server did not authenticate the token (401).
    #[error("the token is not valid: {0}")]
    Unauthenticated(String),
    /// The user may not get the path (403).
    #[error("{user} may not get {path}: {reason}")]
    Forbidden {
        /// The user the token proved.
        user: String,
        /// The path asked for.
        path: String,
        /// The authorizer's reason, if it gave one.
        reason: String,
    },
    /// The API server could not be asked (503; not cached).
    #[error("reviewing the token: {0}")]
    Review(String),
}

impl Denied {
    /// The HTTP status of the refusal.
    pub fn status(&self) -> StatusCode {
        match self {
            Denied::NoToken(_) | Denied::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
            Denied::Forbidden { .. } => StatusCode::FORBIDDEN,
            Denied::Review(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// Whether a request for `path` from `peer` must prove it may read it: everything but the
/// probes, unless the peer is on a loopback address. An unknown peer must. Pure.
pub fn needs_review(path: &str, peer: Option<SocketAddr>) -> bool {
    if OPEN_PATHS.contains(&path) {
        return false;
    }
    !peer.is_some_and(|p| match p.ip() {
        std::net::IpAddr::V4(v4) => v4.is_loopback(),
        std::net::IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    })
}

/// Extracts the token from an `authorization` header value. Pure.
pub fn bearer(header: Option<&str>) -> Option<&str> {
    header
        .and_then(|h| {
            h.strip_prefix("Bearer ")
                .or_else(|| h.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// The clock of the cache (tests bring their own).
pub type Clock = Arc<dyn Fn() -> Instant + Send + Sync>;

/// Status access by TokenReview and SubjectAccessReview, with the outcomes cached.
pub struct StatusAuth {
    reviewer: Arc<dyn AccessReviewer>,
    audiences: Vec<String>,
    cache: Mutex<Cache>,
    turns: Semaphore,
    clock: Clock,
}

impl fmt::Debug for StatusAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StatusAuth")
            .field("reviewer", &self.reviewer)
            .field("audiences", &self.audiences)
            .finish_non_exhaustive()
    }
}

impl StatusAuth {
    /// Over `reviewer`; tokens must be valid for `audiences` (the API server's own when empty).
    pub fn new(reviewer: Arc<dyn AccessReviewer>, audiences: Vec<String>) -> Self {
        Self::with_clock(reviewer, audiences, Arc::new(Instant::now))
    }

    /// As [`StatusAuth::new`], with the cache on `clock`.
    pub fn with_clock(
        reviewer: Arc<dyn AccessReviewer>,
        audiences: Vec<String>,
        clock: Clock,
    ) -> Self {
        Self {
            reviewer,
            audiences,
            cache: Mutex::new(Cache::default()),
            turns: Semaphore::new(MAX_REVIEWS),
            clock,
        }
    }

    /// The user that `token` proves, if that user may get `path`.
    pub async fn check(&self, token: Option<&str>, path: &str) -> Result<String, Denied> {
        let token = token.ok_or_else(|| Denied::NoToken(path.to_owned()))?;
        let key = Key::new(token, path);
        if let Some(known) = self
            .cache
            .lock()
            .ok()
            .and_then(|c| c.get(&key, (self.clock)()))
        {
            return known;
        }
        let outcome = tokio::time::timeout(REVIEW_TIMEOUT, self.review(token, path))
            .await
            .map_err(|_| Denied::Review(format!("no answer within {REVIEW_TIMEOUT:?}")))?;
        if !matches!(outcome, Err(Denied::Review(_))) {
            if let Ok(mut c) = self.cache.lock() {
                c.put(key, outcome.clone(), (self.clock)());
            }
        }
        outcome
    }

    async fn review(&self, token: &str, path: &str) -> Result<String, Denied> {
        let _turn = self
            .turns
            .acquire()
            .await
            .map_err(|e| Denied::Review(e.to_string()))?;
        let api = |e: AccessError| Denied::Review(e.to_string());
        let user = self
            .reviewer
            .authenticate(token, &self.audiences)
            .await
            .map_err(api)?
            .map_err(Denied::Unauthenticated)?;
        self.reviewer
            .authorize(&user, path, VERB)
            .await
            .map_err(api)?
            .map_err(|reason| Denied::Forbidden {
                user: user.name.clone(),
                path: path.to_owned(),
                reason,
            })?;
        Ok(user.name)
    }
}

/// Routes that answer only those [`StatusAuth`] allows (beyond loopback and the probes).
pub struct Guarded<R> {
    /// The routes guarded.
    pub inner: Arc<R>,
    /// The decision.
    pub auth: Arc<StatusAuth>,
}

/// A refusal as the client sees it: 401 with `WWW-Authenticate`, 403 or 503.
pub fn refusal(denied: &Denied) -> Response<Full<Bytes>> {
    let mut resp = text_reply(denied.status(), format!("{denied}\n"));
    if denied.status() == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer realm=\"hearth\""),
        );
    }
    resp
}

#[async_trait::async_trait]
impl<R: Routes> Routes for Guarded<R> {
    async fn route(&self, req: &Request<()>) -> Response<Full<Bytes>> {
        let path = req.uri().path();
        let peer = req.extensions().get::<Peer>().map(|p| p.0);
        if !needs_review(path, peer) {
            return self.inner.route(req).await;
        }
        let token = bearer(
            req.headers()
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok()),
        );
        match self.auth.check(token, path).await {
            Ok(user) => {
                tracing::trace!(%user, path, "status access allowed");
                self.inner.route(req).await
            }
            Err(denied) => {
                // Outside input triggers this: debug only, and never the token.
                tracing::debug!(peer = ?peer, path, "status access refused: {denied}");
                refusal(&denied)
            }
        }
    }
}

/// A fake [`AccessReviewer`]: tokens and grants set by the test; counts its calls.
#[derive(Debug, Default)]
pub struct FakeAccessReviewer {
    /// Token -> (the user it proves, the audiences it is valid for; empty: the API server's).
    pub tokens: Mutex<BTreeMap<String, (User, Vec<String>)>>,
    /// (user name, path) pairs allowed `get`.
    pub grants: Mutex<Vec<(String, String)>>,
    /// When set, every call fails with this.
    pub fail: Mutex<Option<String>>,
    /// TokenReviews and SubjectAccessReviews made.
    pub calls: Mutex<(usize, usize)>,
}

impl FakeAccessReviewer {
    /// A fake that knows `token` as `user`, allowed to get `paths`.
    pub fn with(token: &str, user: &str, paths: &[&str]) -> Self {
        let fake = Self::default();
        fake.add(token, user, &[], paths);
        fake
    }

    /// Adds `token` proving `user` for `audiences`, allowed to get `paths`.
    pub fn add(&self, token: &str, user: &str, audiences: &[&str], paths: &[&str]) {
        let u = User {
            name: user.to_owned(),
            ..User::default()
        };
        let auds = audiences.iter().map(|a| (*a).to_owned()).collect();
        if let Ok(mut t) = self.tokens.lock() {
            t.insert(token.to_owned(), (u, auds));
        }
        if let Ok(mut g) = self.grants.lock() {
            g.extend(paths.iter().map(|p| (user.to_owned(), (*p).to_owned())));
        }
    }

    fn failing(&self) -> Result<(), AccessError> {
        match self.fail.lock().ok().and_then(|f| f.clone()) {
            Some(e) => Err(AccessError::Api(e)),
            None => Ok(()),
        }
    }
}

#[async_trait::async_trait]
impl AccessReviewer for FakeAccessReviewer {
    async fn authenticate(
        &self,
        token: &str,
        audiences: &[String],
    ) -> Result<Result<User, String>, AccessError> {
        if let Ok(mut c) = self.calls.lock() {
            c.0 += 1;
        }
        self.failing()?;
        let known = self.tokens.lock().ok().and_then(|t| t.get(token).cloned());
        Ok(match known {
            None => Err("invalid bearer token".into()),
            Some((user, auds)) => {
                let fits = if audiences.is_empty() {
                    auds.is_empty()
                } else {
                    audiences.iter().any(|a| auds.contains(a))
                };
                if fits {
                    Ok(user)
                } else {
                    Err("token audiences are invalid".into())
                }
            }
        })
    }

    async fn authorize(
        &self,
        user: &User,
        path: &str,
        verb: &str,
    ) -> Result<Result<(), String>, AccessError> {
        if let Ok(mut c) = self.calls.lock() {
            c.1 += 1;
        }
        self.failing()?;
        let granted = verb == VERB
            && self
                .grants
                .lock()
                .is_ok_and(|g| g.iter().any(|(u, p)| u == &user.name && p == path));
        Ok(if granted { Ok(()) } else { Err(String::new()) })
    }
}

#[cfg(test)]
mod tests;
