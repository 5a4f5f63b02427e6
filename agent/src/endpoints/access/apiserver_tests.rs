//! [`KubeAccessReviewer`] and the coordinator's [`KubeTokenReviewer`] against a real
//! kube-apiserver: a ServiceAccount, its tokens (`kubectl create token`, one bound to a pod on
//! the cluster's node) and a ClusterRole for `/metrics` made with kubectl, then reviewed.
//! Ignored by default; `tests/cluster/run` starts a cluster for it:
//!
//! ```sh
//! HEARTH_CLUSTER_SKIP_HEARTH=1 tests/cluster/run -- \
//!   cargo test -p hearth-agent --lib endpoints::access::apiserver_tests -- --ignored --test-threads=1
//! ```

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hearth_coordinator::node_auth::{KubeTokenReviewer, Policy, TokenAuth, TokenReviewer};

use super::kube::KubeAccessReviewer;
use super::{AccessReviewer, StatusAuth};

fn kubectl(args: &[&str]) -> String {
    let out = Command::new("kubectl")
        .args(args)
        .output()
        .expect("kubectl");
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Deletes what the test made, also when it fails.
struct Made(String);

impl Drop for Made {
    fn drop(&mut self) {
        let n = self.0.as_str();
        for args in [
            vec!["delete", "pod", n, "-n", "default", "--wait=false"],
            vec!["delete", "clusterrolebinding", n],
            vec!["delete", "clusterrole", n],
            vec!["delete", "serviceaccount", n, "-n", "default"],
        ] {
            let _ = Command::new("kubectl")
                .args(&args)
                .arg("--ignore-not-found")
                .output();
        }
    }
}

async fn client() -> kube::Client {
    assert!(
        std::env::var_os("KUBECONFIG").is_some(),
        "KUBECONFIG must name the test cluster (run under tests/cluster/run)"
    );
    kube::Client::try_default()
        .await
        .expect("kubeconfig client")
}

#[tokio::test]
#[ignore = "needs a real API server: tests/cluster/run"]
async fn reviews_on_a_real_apiserver() {
    let name = format!("hearth-access-{}", std::process::id());
    let _made = Made(name.clone());
    let user = format!("system:serviceaccount:default:{name}");
    kubectl(&["create", "serviceaccount", &name, "-n", "default"]);
    kubectl(&[
        "create",
        "clusterrole",
        &name,
        "--verb=get",
        "--non-resource-url=/metrics",
    ]);
    kubectl(&[
        "create",
        "clusterrolebinding",
        &name,
        &format!("--clusterrole={name}"),
        &format!("--serviceaccount=default:{name}"),
    ]);
    let c = client().await;
    let access = KubeAccessReviewer::new(c.clone());

    // TokenReview: the API server's audience by default, or the one asked for.
    let token = kubectl(&["create", "token", &name, "-n", "default"]);
    let proven = access
        .authenticate(&token, &[])
        .await
        .expect("review")
        .expect("authenticated");
    assert_eq!(proven.name, user);
    assert!(
        proven.groups.iter().any(|g| g == "system:serviceaccounts"),
        "{proven:?}"
    );
    assert!(access
        .authenticate("made-up", &[])
        .await
        .expect("review")
        .is_err());
    let aud = "hearth.dev/status".to_owned();
    let status_token = kubectl(&[
        "create",
        "token",
        &name,
        "-n",
        "default",
        "--audience",
        &aud,
    ]);
    assert!(access
        .authenticate(&status_token, std::slice::from_ref(&aud))
        .await
        .expect("review")
        .is_ok());
    assert!(access
        .authenticate(&token, std::slice::from_ref(&aud))
        .await
        .expect("review")
        .is_err());
    assert!(access
        .authenticate(&status_token, &[])
        .await
        .expect("review")
        .is_err());

    // SubjectAccessReview: /metrics granted (RBAC may take a moment to see the binding),
    // /status not.
    let deadline = Instant::now() + Duration::from_secs(30);
    while access
        .authorize(&proven, "/metrics", "get")
        .await
        .expect("review")
        .is_err()
    {
        assert!(Instant::now() < deadline, "{user} never got /metrics");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(access
        .authorize(&proven, "/status", "get")
        .await
        .expect("review")
        .is_err());
    let auth = StatusAuth::new(Arc::new(access), Vec::new());
    assert_eq!(auth.check(Some(&token), "/metrics").await, Ok(user.clone()));
    assert_eq!(
        auth.check(Some(&token), "/status")
            .await
            .unwrap_err()
            .status(),
        http::StatusCode::FORBIDDEN
    );

    // The coordinator's node identity: a token bound to a pod on the cluster's node proves
    // that node; unbound, or for another audience or ServiceAccount, it proves nothing.
    let node = kubectl(&["get", "nodes", "-o", "jsonpath={.items[0].metadata.name}"]);
    let overrides = format!(
        r#"{{"spec":{{"serviceAccountName":"{name}","nodeName":"{node}","automountServiceAccountToken":false}}}}"#
    );
    kubectl(&[
        "run",
        &name,
        "-n",
        "default",
        "--restart=Never",
        "--image=localhost/hearth-test/busybox:latest",
        "--image-pull-policy=Never",
        &format!("--overrides={overrides}"),
        "--",
        "sleep",
        "3600",
    ]);
    let coordinator_aud = hearth_coordinator::node_auth::DEFAULT_AUDIENCE;
    let bound = kubectl(&[
        "create",
        "token",
        &name,
        "-n",
        "default",
        "--audience",
        coordinator_aud,
        "--bound-object-kind=Pod",
        &format!("--bound-object-name={name}"),
    ]);
    let unbound = kubectl(&[
        "create",
        "token",
        &name,
        "-n",
        "default",
        "--audience",
        coordinator_aud,
    ]);
    let reviewer = KubeTokenReviewer::new(c);
    let pod = reviewer
        .pod("default", &name)
        .await
        .expect("pod")
        .expect("the pod exists");
    assert_eq!(pod.node.as_deref(), Some(node.as_str()));
    let policy = Policy {
        audience: coordinator_aud.to_owned(),
        namespace: "default".into(),
        service_account: name.clone(),
    };
    let tokens = TokenAuth::new(Arc::new(reviewer.clone()), policy.clone());
    assert_eq!(tokens.node_of(&bound).await, Ok(node.clone()));
    assert_eq!(
        tokens.node_of(&unbound).await.unwrap_err().reason(),
        "unbound"
    );
    let wrong_audience = tokens.node_of(&token).await.unwrap_err().reason();
    assert!(
        ["not_authenticated", "audience"].contains(&wrong_audience),
        "{wrong_audience}"
    );
    let other_sa = TokenAuth::new(
        Arc::new(reviewer),
        Policy {
            service_account: "hearth-node".into(),
            ..policy
        },
    );
    assert_eq!(
        other_sa.node_of(&bound).await.unwrap_err().reason(),
        "service_account"
    );
}
