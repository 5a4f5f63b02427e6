//! Node identity on the agent API by token: a real coordinator (engine + gRPC server on
//! loopback) with a fake TokenReview. The node's proven name comes from the review, never
//! from its Hello; refusals are counted by reason.

#![allow(clippy::tests_outside_test_module)] // an integration-test file is a test-only crate

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use hearth_coordinator::engine::{Engine, Timing};
use hearth_coordinator::node_auth::{
    FakeReviewer, Policy, Refusals, Review, TokenAuth, DEFAULT_AUDIENCE, NODE_NAME_KEY,
    POD_NAME_KEY,
};
use hearth_coordinator::server::{self, AgentApi, NodeAuth};
use hearth_coordinator::store::sqlite::SqliteStore;
use hearth_proto::hearth::v1::coordinator_client::CoordinatorClient;
use hearth_proto::hearth::v1::{coordinator_message, node_message, Hello, NodeMessage};
use tonic::Code;

fn review(user: &str, node: &str) -> Review {
    let mut extra = BTreeMap::new();
    extra.insert(NODE_NAME_KEY.to_owned(), vec![node.to_owned()]);
    extra.insert(POD_NAME_KEY.to_owned(), vec![format!("hearth-node-{node}")]);
    Review {
        authenticated: true,
        username: format!("system:serviceaccount:hearth:{user}"),
        audiences: vec![DEFAULT_AUDIENCE.into()],
        extra,
        error: None,
    }
}

struct Coordinator {
    url: String,
    refusals: Arc<Refusals>,
    _dir: tempfile::TempDir,
}

async fn coordinator() -> Coordinator {
    let fake = FakeReviewer::default();
    {
        let mut t = fake.tokens.lock().expect("lock");
        t.insert("tok-n1".into(), review("hearth-node", "n1"));
        t.insert("tok-other-sa".into(), review("default", "n1"));
        let mut wrong = review("hearth-node", "n1");
        wrong.audiences = vec!["https://kubernetes.default.svc".into()];
        t.insert("tok-api-audience".into(), wrong);
    }
    let auth = TokenAuth::new(
        Arc::new(fake),
        Policy {
            audience: DEFAULT_AUDIENCE.into(),
            namespace: "hearth".into(),
            service_account: "hearth-node".into(),
        },
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open(dir.path().join("c.db"))
        .await
        .expect("store");
    let engine = Engine::new(Arc::new(store), Timing::default(), "test");
    tokio::spawn(Arc::clone(&engine).run());
    for _ in 0..200 {
        if engine.leading() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(engine.leading(), "the engine never led");
    let listener = server::bind("127.0.0.1:0".parse().expect("addr"), false)
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let refusals = Arc::new(Refusals::default());
    let api = AgentApi::with_auth(
        engine,
        NodeAuth::Token(Arc::new(auth)),
        Arc::clone(&refusals),
    );
    tokio::spawn(server::serve(api, listener, None));
    Coordinator {
        url,
        refusals,
        _dir: dir,
    }
}

/// Opens a session claiming `node` with `token`; Ok when the Welcome comes.
async fn open(url: &str, node: &str, token: Option<&str>) -> Result<(), tonic::Status> {
    let mut client = CoordinatorClient::connect(url.to_owned())
        .await
        .expect("connect");
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    tx.send(NodeMessage {
        msg: Some(node_message::Msg::Hello(Hello {
            node_name: node.into(),
            version: "test".into(),
            ..Hello::default()
        })),
    })
    .await
    .expect("send");
    let mut request = tonic::Request::new(tokio_stream::wrappers::ReceiverStream::new(rx));
    if let Some(t) = token {
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {t}").parse().expect("header"),
        );
    }
    let mut inbound = client.session(request).await?.into_inner();
    let first = inbound.message().await?;
    drop(tx);
    match first.and_then(|m| m.msg) {
        Some(coordinator_message::Msg::Welcome(_)) => Ok(()),
        other => panic!("expected a Welcome, got {other:?}"),
    }
}

#[tokio::test]
async fn the_node_whose_token_proves_it_opens_a_session() {
    let c = coordinator().await;
    open(&c.url, "n1", Some("tok-n1")).await.expect("accepted");
    assert!(c.refusals.counts().is_empty(), "{:?}", c.refusals.counts());
}

#[tokio::test]
async fn a_node_claiming_another_nodes_name_is_refused_and_counted() {
    let c = coordinator().await;
    let e = open(&c.url, "n2", Some("tok-n1")).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    assert!(e.message().contains("\"n1\""), "{e:?}");
    assert!(!e.message().contains("tok-n1"), "the token leaked: {e:?}");
    assert_eq!(c.refusals.counts().get("node_mismatch"), Some(&1));
}

#[tokio::test]
async fn no_token_a_bad_token_another_audience_or_service_account_are_refused() {
    let c = coordinator().await;
    for (token, reason, count) in [
        (None, "no_token", 1),
        (Some("garbage"), "not_authenticated", 1),
        (Some("tok-api-audience"), "not_authenticated", 2),
        (Some("tok-other-sa"), "service_account", 1),
    ] {
        let e = open(&c.url, "n1", token).await.unwrap_err();
        assert_eq!(e.code(), Code::Unauthenticated, "{token:?}: {e:?}");
        assert_eq!(
            c.refusals.counts().get(reason),
            Some(&count),
            "{token:?}: {:?}",
            c.refusals.counts()
        );
    }
}
