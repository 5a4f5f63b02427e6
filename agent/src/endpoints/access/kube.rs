//! The real [`AccessReviewer`]: a TokenReview (`authentication.k8s.io/v1`) and a
//! SubjectAccessReview (`authorization.k8s.io/v1`, non-resource attributes) through the kube
//! client. The pod's ServiceAccount needs `create` on both (the chart's
//! `<fullname>-status-auth` ClusterRole, as `system:auth-delegator` grants). Touches nothing
//! but those two review calls.

use std::fmt;

use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec};
use k8s_openapi::api::authorization::v1::{
    NonResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::api::PostParams;
use kube::Api;

use super::{AccessError, AccessReviewer, User};

/// TokenReview and SubjectAccessReview through the kube client.
#[derive(Clone)]
pub struct KubeAccessReviewer {
    client: kube::Client,
}

impl fmt::Debug for KubeAccessReviewer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KubeAccessReviewer")
    }
}

impl KubeAccessReviewer {
    /// Over `client`.
    pub fn new(client: kube::Client) -> Self {
        Self { client }
    }

    /// From the in-cluster config or KUBECONFIG.
    pub async fn connect() -> Result<Self, AccessError> {
        let client = kube::Client::try_default()
            .await
            .map_err(|e| AccessError::Api(format!("kubernetes client: {e}")))?;
        Ok(Self::new(client))
    }
}

#[async_trait::async_trait]
impl AccessReviewer for KubeAccessReviewer {
    async fn authenticate(
        &self,
        token: &str,
        audiences: &[String],
    ) -> Result<Result<User, String>, AccessError> {
        let api: Api<TokenReview> = Api::all(self.client.clone());
        let request = TokenReview {
            spec: TokenReviewSpec {
                token: token.to_owned(),
                audiences: (!audiences.is_empty()).then(|| audiences.to_vec()),
            },
            ..TokenReview::default()
        };
        let answer = api
            .create(&PostParams::default(), &request)
            .await
            .map_err(|e| AccessError::Api(format!("TokenReview: {e}")))?;
        let status = answer.status.unwrap_or_default();
        if !status.authenticated.unwrap_or(false) {
            return Ok(Err(status.error.unwrap_or_else(|| "rejected".into())));
        }
        // An audience asked for must be among those the token is valid for.
        let valid = status.audiences.unwrap_or_default();
        if !audiences.is_empty() && !audiences.iter().any(|a| valid.contains(a)) {
            return Ok(Err(format!("the token is not valid for {audiences:?}")));
        }
        let user = status.user.unwrap_or_default();
        Ok(Ok(User {
            name: user.username.unwrap_or_default(),
            uid: user.uid,
            groups: user.groups.unwrap_or_default(),
            extra: user.extra.unwrap_or_default().into_iter().collect(),
        }))
    }

    async fn authorize(
        &self,
        user: &User,
        path: &str,
        verb: &str,
    ) -> Result<Result<(), String>, AccessError> {
        let api: Api<SubjectAccessReview> = Api::all(self.client.clone());
        let request = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: Some(user.name.clone()),
                uid: user.uid.clone(),
                groups: Some(user.groups.clone()),
                extra: Some(user.extra.clone().into_iter().collect()),
                non_resource_attributes: Some(NonResourceAttributes {
                    path: Some(path.to_owned()),
                    verb: Some(verb.to_owned()),
                }),
                ..SubjectAccessReviewSpec::default()
            },
            ..SubjectAccessReview::default()
        };
        let answer = api
            .create(&PostParams::default(), &request)
            .await
            .map_err(|e| AccessError::Api(format!("SubjectAccessReview: {e}")))?;
        let status = answer.status.unwrap_or_default();
        if status.allowed {
            Ok(Ok(()))
        } else {
            Ok(Err(status
                .reason
                .or(status.evaluation_error)
                .unwrap_or_default()))
        }
    }
}
