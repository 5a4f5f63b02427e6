//! Tests of node authentication: the pure checks and the token flow over the fake reviewer.

use std::sync::Arc;

use super::*;

fn policy() -> Policy {
    Policy {
        audience: DEFAULT_AUDIENCE.into(),
        namespace: "hearth".into(),
        service_account: "hearth-node".into(),
    }
}

fn node_review(node: &str) -> Review {
    let mut extra = BTreeMap::new();
    extra.insert(NODE_NAME_KEY.to_owned(), vec![node.to_owned()]);
    extra.insert(POD_NAME_KEY.to_owned(), vec![format!("hearth-node-{node}")]);
    extra.insert(POD_UID_KEY.to_owned(), vec![format!("uid-{node}")]);
    Review {
        authenticated: true,
        username: "system:serviceaccount:hearth:hearth-node".into(),
        audiences: vec![DEFAULT_AUDIENCE.into()],
        extra,
        error: None,
    }
}

#[test]
fn a_bound_token_of_the_node_service_account_proves_its_node() {
    assert_eq!(
        check(&node_review("n1"), &policy()),
        Ok(Bound::Node("n1".into()))
    );
}

#[test]
fn an_unauthenticated_token_is_refused_with_the_api_servers_reason() {
    let r = Review {
        error: Some("token has expired".into()),
        ..node_review("n1")
    };
    let r = Review {
        authenticated: false,
        ..r
    };
    let e = check(&r, &policy()).unwrap_err();
    assert_eq!(e.reason(), "not_authenticated");
    assert!(e.to_string().contains("expired"), "{e}");
}

#[test]
fn a_token_for_another_audience_is_refused() {
    let r = Review {
        audiences: vec!["https://kubernetes.default.svc".into()],
        ..node_review("n1")
    };
    assert_eq!(check(&r, &policy()).unwrap_err().reason(), "audience");
}

#[test]
fn a_token_of_another_service_account_or_namespace_is_refused() {
    for user in [
        "system:serviceaccount:hearth:default",
        "system:serviceaccount:other:hearth-node",
        "system:node:n1",
        "admin",
    ] {
        let r = Review {
            username: user.into(),
            ..node_review("n1")
        };
        assert_eq!(
            check(&r, &policy()),
            Err(Refusal::ServiceAccount(user.into()))
        );
    }
}

#[test]
fn a_token_bound_to_nothing_is_refused_and_one_bound_to_a_pod_only_names_the_pod() {
    let mut r = node_review("n1");
    r.extra.remove(NODE_NAME_KEY);
    assert_eq!(
        check(&r, &policy()),
        Ok(Bound::Pod {
            name: "hearth-node-n1".into(),
            uid: Some("uid-n1".into())
        })
    );
    r.extra.clear();
    assert_eq!(check(&r, &policy()), Err(Refusal::Unbound));
}

#[test]
fn the_claimed_node_must_be_the_proven_one() {
    assert_eq!(matches("n1", "n1"), Ok(()));
    let e = matches("n1", "n2").unwrap_err();
    assert_eq!(e.reason(), "node_mismatch");
}

#[test]
fn bearer_takes_the_token_and_refuses_anything_else() {
    assert_eq!(bearer(Some("Bearer abc")), Ok("abc"));
    assert_eq!(bearer(None), Err(Refusal::NoToken));
    assert_eq!(bearer(Some("Basic abc")), Err(Refusal::NoToken));
    assert_eq!(bearer(Some("Bearer  ")), Err(Refusal::NoToken));
}

#[test]
fn refusals_never_print_the_token() {
    let fake = FakeReviewer::default();
    let auth = TokenAuth::new(Arc::new(fake), policy());
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let e = rt.block_on(auth.node_of("s3cret-token")).unwrap_err();
    assert!(!e.to_string().contains("s3cret"), "{e}");
}

#[tokio::test]
async fn the_token_flow_resolves_the_node_directly_or_through_the_pod() {
    let fake = Arc::new(FakeReviewer::default());
    fake.tokens
        .lock()
        .unwrap()
        .insert("t1".into(), node_review("n1"));
    let mut old = node_review("n2");
    old.extra.remove(NODE_NAME_KEY);
    fake.tokens.lock().unwrap().insert("t2".into(), old);
    fake.pods.lock().unwrap().insert(
        "hearth/hearth-node-n2".into(),
        PodInfo {
            uid: "uid-n2".into(),
            node: Some("n2".into()),
        },
    );
    let auth = TokenAuth::new(fake.clone(), policy());
    assert_eq!(auth.node_of("t1").await, Ok("n1".into()));
    assert_eq!(auth.node_of("t2").await, Ok("n2".into()));
    // A pod of the same name recreated since (another UID) proves nothing.
    fake.pods.lock().unwrap().insert(
        "hearth/hearth-node-n2".into(),
        PodInfo {
            uid: "uid-new".into(),
            node: Some("n3".into()),
        },
    );
    assert_eq!(auth.node_of("t2").await, Err(Refusal::Unbound));
    assert_eq!(
        auth.node_of("unknown").await.unwrap_err().reason(),
        "not_authenticated"
    );
    *fake.fail.lock().unwrap() = Some("connection refused".into());
    assert_eq!(
        auth.node_of("t1").await.unwrap_err().reason(),
        "review_failed"
    );
}

#[tokio::test]
async fn a_token_for_another_audience_is_refused_by_the_fake_api_server_too() {
    let fake = Arc::new(FakeReviewer::default());
    let mut r = node_review("n1");
    r.audiences = vec!["https://kubernetes.default.svc".into()];
    fake.tokens.lock().unwrap().insert("t".into(), r);
    let auth = TokenAuth::new(fake, policy());
    assert_eq!(
        auth.node_of("t").await.unwrap_err().reason(),
        "not_authenticated"
    );
}

#[test]
fn refusals_are_counted_by_reason() {
    let r = Refusals::default();
    r.record(&Refusal::NoToken, None);
    r.record(&Refusal::NoToken, None);
    r.record(&matches("a", "b").unwrap_err(), None);
    let c = r.counts();
    assert_eq!(c.get("no_token"), Some(&2));
    assert_eq!(c.get("node_mismatch"), Some(&1));
}
