//! Node identity on the agent API by projected ServiceAccount token.
//!
//! The node pod sends a token that kubelet projects for it (an audience of Hearth's choosing,
//! short expiry, rotated by kubelet). The coordinator asks the API server about it with a
//! TokenReview and takes the node from what the token is bound to: the pod's node
//! (`authentication.kubernetes.io/node-name`, Kubernetes 1.32+), or else the node of the pod
//! it names (read from the API, the pod's UID checked). The name in the Hello must be that
//! node; the agent's own claim is never trusted. The pure checks are [`check`] and
//! [`matches`]; the API calls sit behind [`TokenReviewer`].

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

/// The audience Hearth's node tokens are issued for.
pub const DEFAULT_AUDIENCE: &str = "hearth.dev/coordinator";
/// TokenReview extra key: the node the token's pod runs on (bound tokens, 1.32+).
pub const NODE_NAME_KEY: &str = "authentication.kubernetes.io/node-name";
/// TokenReview extra key: the pod the token is bound to.
pub const POD_NAME_KEY: &str = "authentication.kubernetes.io/pod-name";
/// TokenReview extra key: the UID of the pod the token is bound to.
pub const POD_UID_KEY: &str = "authentication.kubernetes.io/pod-uid";

/// Errors of asking the API server.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The API call failed.
    #[error("kubernetes API: {0}")]
    Api(String),
}

/// What the API server said about a token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Review {
    /// Whether the token is valid.
    pub authenticated: bool,
    /// The user it authenticates, `system:serviceaccount:NS:NAME` for a ServiceAccount.
    pub username: String,
    /// The audiences (of those asked for) the token is valid for.
    pub audiences: Vec<String>,
    /// Extra attributes: the bound pod and node.
    pub extra: BTreeMap<String, Vec<String>>,
    /// The API server's error, when not authenticated.
    pub error: Option<String>,
}

/// A pod as far as identity cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodInfo {
    /// The pod's UID.
    pub uid: String,
    /// The node it is scheduled on, if any.
    pub node: Option<String>,
}

/// The Kubernetes API calls of node authentication.
#[async_trait::async_trait]
pub trait TokenReviewer: Send + Sync + fmt::Debug + 'static {
    /// Reviews `token` for `audiences`.
    async fn review(&self, token: &str, audiences: &[String]) -> Result<Review, AuthError>;
    /// The pod `namespace/name`, `None` when it does not exist.
    async fn pod(&self, namespace: &str, name: &str) -> Result<Option<PodInfo>, AuthError>;
}

/// Who may open a session: tokens of this ServiceAccount for this audience.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// The audience the token must be valid for.
    pub audience: String,
    /// The node ServiceAccount's namespace.
    pub namespace: String,
    /// The node ServiceAccount's name.
    pub service_account: String,
}

/// Why a session was refused. Never carries the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No bearer token in the request.
    #[error("no bearer token")]
    NoToken,
    /// The API server did not authenticate the token.
    #[error("the token is not valid: {0}")]
    NotAuthenticated(String),
    /// The token is not for Hearth's audience.
    #[error("the token is not valid for audience {0:?}")]
    Audience(String),
    /// The token belongs to another user or ServiceAccount.
    #[error("the token belongs to {0:?}, not the node ServiceAccount")]
    ServiceAccount(String),
    /// The token is not bound to a pod on a node.
    #[error("the token is not bound to a pod on a node")]
    Unbound,
    /// The proven node is not the node claimed in the Hello.
    #[error("the token proves node {proven:?}, the Hello claims {claimed:?}")]
    NodeMismatch {
        /// From the API server.
        proven: String,
        /// From the agent.
        claimed: String,
    },
    /// The client certificate does not name the claimed node (mTLS mode).
    #[error("the client certificate does not name node {0:?}")]
    Certificate(String),
    /// The API server could not be asked.
    #[error("reviewing the token: {0}")]
    Review(String),
}

impl Refusal {
    /// The reason as a metric label.
    pub fn reason(&self) -> &'static str {
        match self {
            Refusal::NoToken => "no_token",
            Refusal::NotAuthenticated(_) => "not_authenticated",
            Refusal::Audience(_) => "audience",
            Refusal::ServiceAccount(_) => "service_account",
            Refusal::Unbound => "unbound",
            Refusal::NodeMismatch { .. } => "node_mismatch",
            Refusal::Certificate(_) => "certificate",
            Refusal::Review(_) => "review_failed",
        }
    }
}

/// What a valid token is bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bound {
    /// The node, as the API server says.
    Node(String),
    /// Only a pod (API servers before 1.32): its node must be read.
    Pod {
        /// Pod name.
        name: String,
        /// Pod UID, when given.
        uid: Option<String>,
    },
}

fn first<'a>(review: &'a Review, key: &str) -> Option<&'a str> {
    review
        .extra
        .get(key)
        .and_then(|v| v.first())
        .map(String::as_str)
        .filter(|s| !s.is_empty())
}

/// Checks a review against the policy: authenticated, for the audience, of the node
/// ServiceAccount, bound to a pod. Pure.
pub fn check(review: &Review, policy: &Policy) -> Result<Bound, Refusal> {
    if !review.authenticated {
        return Err(Refusal::NotAuthenticated(
            review.error.clone().unwrap_or_else(|| "rejected".into()),
        ));
    }
    if !review.audiences.iter().any(|a| a == &policy.audience) {
        return Err(Refusal::Audience(policy.audience.clone()));
    }
    let want = format!(
        "system:serviceaccount:{}:{}",
        policy.namespace, policy.service_account
    );
    if review.username != want {
        return Err(Refusal::ServiceAccount(review.username.clone()));
    }
    if let Some(node) = first(review, NODE_NAME_KEY) {
        return Ok(Bound::Node(node.to_owned()));
    }
    match first(review, POD_NAME_KEY) {
        Some(pod) => Ok(Bound::Pod {
            name: pod.to_owned(),
            uid: first(review, POD_UID_KEY).map(str::to_owned),
        }),
        None => Err(Refusal::Unbound),
    }
}

/// The proven node must be the claimed one. Pure.
pub fn matches(proven: &str, claimed: &str) -> Result<(), Refusal> {
    if proven == claimed {
        Ok(())
    } else {
        Err(Refusal::NodeMismatch {
            proven: proven.to_owned(),
            claimed: claimed.to_owned(),
        })
    }
}

/// Extracts the token from an `authorization` header value. Pure.
pub fn bearer(header: Option<&str>) -> Result<&str, Refusal> {
    header
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or(Refusal::NoToken)
}

/// Authenticates nodes by token: review, check, resolve the node.
#[derive(Debug, Clone)]
pub struct TokenAuth {
    reviewer: Arc<dyn TokenReviewer>,
    policy: Policy,
}

impl TokenAuth {
    /// Over `reviewer` with `policy`.
    pub fn new(reviewer: Arc<dyn TokenReviewer>, policy: Policy) -> Self {
        Self { reviewer, policy }
    }

    /// The node `token` proves.
    pub async fn node_of(&self, token: &str) -> Result<String, Refusal> {
        let review = self
            .reviewer
            .review(token, std::slice::from_ref(&self.policy.audience))
            .await
            .map_err(|e| Refusal::Review(e.to_string()))?;
        match check(&review, &self.policy)? {
            Bound::Node(n) => Ok(n),
            Bound::Pod { name, uid } => {
                let pod = self
                    .reviewer
                    .pod(&self.policy.namespace, &name)
                    .await
                    .map_err(|e| Refusal::Review(e.to_string()))?
                    .ok_or(Refusal::Unbound)?;
                if uid.is_some_and(|u| u != pod.uid) {
                    return Err(Refusal::Unbound);
                }
                pod.node.ok_or(Refusal::Unbound)
            }
        }
    }
}

/// Refused sessions since start, by reason (for `/metrics`).
#[derive(Debug, Default)]
pub struct Refusals {
    counts: Mutex<BTreeMap<&'static str, u64>>,
}

impl Refusals {
    /// Counts and logs one refusal.
    pub fn record(&self, refusal: &Refusal, peer: Option<std::net::SocketAddr>) {
        tracing::warn!(reason = refusal.reason(), peer = ?peer, "node session refused: {refusal}");
        if let Ok(mut c) = self.counts.lock() {
            *c.entry(refusal.reason()).or_default() += 1;
        }
    }

    /// The counts by reason.
    pub fn counts(&self) -> BTreeMap<String, u64> {
        self.counts
            .lock()
            .map(|c| c.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect())
            .unwrap_or_default()
    }
}

/// The real [`TokenReviewer`]: TokenReview and pod reads through the kube client.
#[derive(Clone)]
pub struct KubeTokenReviewer {
    client: kube::Client,
}

impl fmt::Debug for KubeTokenReviewer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KubeTokenReviewer")
    }
}

impl KubeTokenReviewer {
    /// Over `client`.
    pub fn new(client: kube::Client) -> Self {
        Self { client }
    }

    /// From the in-cluster config or KUBECONFIG.
    pub async fn connect() -> Result<Self, AuthError> {
        let client = crate::kube_client::connect()
            .await
            .map_err(AuthError::Api)?;
        Ok(Self::new(client))
    }
}

#[async_trait::async_trait]
impl TokenReviewer for KubeTokenReviewer {
    async fn review(&self, token: &str, audiences: &[String]) -> Result<Review, AuthError> {
        use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
        let api: kube::Api<TokenReview> = kube::Api::all(self.client.clone());
        let request = TokenReview {
            spec: TokenReviewSpec {
                token: token.to_owned(),
                audiences: Some(audiences.to_vec()),
            },
            ..TokenReview::default()
        };
        let answer = api
            .create(&kube::api::PostParams::default(), &request)
            .await
            .map_err(|e| AuthError::Api(format!("TokenReview: {e}")))?;
        let status = answer.status.unwrap_or_default();
        let user = status.user.unwrap_or_default();
        Ok(Review {
            authenticated: status.authenticated.unwrap_or(false),
            username: user.username.unwrap_or_default(),
            audiences: status.audiences.unwrap_or_default(),
            extra: user.extra.unwrap_or_default().into_iter().collect(),
            error: status.error,
        })
    }

    async fn pod(&self, namespace: &str, name: &str) -> Result<Option<PodInfo>, AuthError> {
        use k8s_openapi::api::core::v1::Pod;
        let api: kube::Api<Pod> = kube::Api::namespaced(self.client.clone(), namespace);
        let pod = api
            .get_opt(name)
            .await
            .map_err(|e| AuthError::Api(format!("reading pod {namespace}/{name}: {e}")))?;
        Ok(pod.map(|p| PodInfo {
            uid: p.metadata.uid.unwrap_or_default(),
            node: p.spec.and_then(|s| s.node_name),
        }))
    }
}

/// A fake [`TokenReviewer`]: tokens and pods set by the test.
#[derive(Debug, Default)]
pub struct FakeReviewer {
    /// Token -> the review the API server would give (for any audience asked; the review's
    /// own `audiences` are intersected with the asked ones).
    pub tokens: Mutex<BTreeMap<String, Review>>,
    /// `namespace/name` -> pod.
    pub pods: Mutex<BTreeMap<String, PodInfo>>,
    /// When set, every call fails with this.
    pub fail: Mutex<Option<String>>,
}

#[async_trait::async_trait]
impl TokenReviewer for FakeReviewer {
    async fn review(&self, token: &str, audiences: &[String]) -> Result<Review, AuthError> {
        if let Some(e) = self.fail.lock().ok().and_then(|f| f.clone()) {
            return Err(AuthError::Api(e));
        }
        let known = self.tokens.lock().ok().and_then(|t| t.get(token).cloned());
        Ok(match known {
            Some(mut r) => {
                r.audiences.retain(|a| audiences.contains(a));
                if r.audiences.is_empty() {
                    Review {
                        error: Some("token audiences are invalid".into()),
                        ..Review::default()
                    }
                } else {
                    r
                }
            }
            None => Review {
                error: Some("invalid bearer token".into()),
                ..Review::default()
            },
        })
    }

    async fn pod(&self, namespace: &str, name: &str) -> Result<Option<PodInfo>, AuthError> {
        if let Some(e) = self.fail.lock().ok().and_then(|f| f.clone()) {
            return Err(AuthError::Api(e));
        }
        Ok(self
            .pods
            .lock()
            .ok()
            .and_then(|p| p.get(&format!("{namespace}/{name}")).cloned()))
    }
}

#[cfg(test)]
#[path = "node_auth_tests.rs"]
mod tests;
