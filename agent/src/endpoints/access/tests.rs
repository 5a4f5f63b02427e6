//! Tests of status access: which requests must be reviewed, the refusal paths over the fake
//! API server, the cache in front of it, and [`Guarded`] answering 401/403/503.

use std::sync::atomic::{AtomicU64, Ordering};

use super::*;

fn peer(s: &str) -> Option<SocketAddr> {
    Some(s.parse().unwrap())
}

#[test]
fn probes_and_loopback_need_no_review_everything_else_does() {
    for path in ["/healthz", "/readyz"] {
        assert!(!needs_review(path, peer("192.0.2.7:1234")));
        assert!(!needs_review(path, None));
    }
    for p in [
        "127.0.0.1:5",
        "127.1.2.3:5",
        "[::1]:5",
        "[::ffff:127.0.0.1]:5",
    ] {
        assert!(!needs_review("/status", peer(p)), "{p}");
    }
    for p in ["192.0.2.7:5", "[2001:db8::1]:5", "[::ffff:192.0.2.7]:5"] {
        assert!(needs_review("/status", peer(p)), "{p}");
        assert!(needs_review("/metrics", peer(p)), "{p}");
        assert!(needs_review("/nodes/n1/status", peer(p)), "{p}");
    }
    // An unknown peer is not trusted.
    assert!(needs_review("/status", None));
}

#[test]
fn bearer_takes_the_token_and_nothing_else() {
    assert_eq!(bearer(Some("Bearer abc")), Some("abc"));
    assert_eq!(bearer(Some("bearer abc ")), Some("abc"));
    assert_eq!(bearer(Some("Basic abc")), None);
    assert_eq!(bearer(Some("Bearer ")), None);
    assert_eq!(bearer(None), None);
}

fn fake() -> Arc<FakeAccessReviewer> {
    let f = FakeAccessReviewer::with("scraper", "system:serviceaccount:vm:vmagent", &["/metrics"]);
    f.add("admin", "alice", &[], &["/status", "/metrics"]);
    Arc::new(f)
}

#[tokio::test]
async fn a_token_allowed_the_path_passes_and_the_refusals_name_their_reason() {
    let auth = StatusAuth::new(fake(), Vec::new());
    assert_eq!(
        auth.check(Some("scraper"), "/metrics").await,
        Ok("system:serviceaccount:vm:vmagent".into())
    );
    assert_eq!(
        auth.check(Some("admin"), "/status").await,
        Ok("alice".into())
    );
    let forbidden = auth.check(Some("scraper"), "/status").await.unwrap_err();
    assert_eq!(forbidden.status(), StatusCode::FORBIDDEN);
    assert!(
        forbidden
            .to_string()
            .contains("vmagent may not get /status"),
        "{forbidden}"
    );
    let none = auth.check(None, "/status").await.unwrap_err();
    assert_eq!(none.status(), StatusCode::UNAUTHORIZED);
    let bad = auth.check(Some("made-up"), "/status").await.unwrap_err();
    assert_eq!(bad, Denied::Unauthenticated("invalid bearer token".into()));
    assert_eq!(bad.status(), StatusCode::UNAUTHORIZED);
    assert!(!bad.to_string().contains("made-up"));
}

#[tokio::test]
async fn a_token_for_another_audience_is_refused() {
    let f = Arc::new(FakeAccessReviewer::default());
    f.add("api-token", "bob", &[], &["/status"]);
    f.add("hearth-token", "bob", &["hearth.dev/status"], &["/status"]);
    let auth = StatusAuth::new(f, vec!["hearth.dev/status".into()]);
    assert_eq!(
        auth.check(Some("hearth-token"), "/status").await,
        Ok("bob".into())
    );
    assert_eq!(
        auth.check(Some("api-token"), "/status")
            .await
            .unwrap_err()
            .status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn the_api_server_down_is_503_and_not_cached() {
    let f = fake();
    *f.fail.lock().unwrap() = Some("connection refused".into());
    let auth = StatusAuth::new(Arc::clone(&f) as Arc<dyn AccessReviewer>, Vec::new());
    let e = auth.check(Some("scraper"), "/metrics").await.unwrap_err();
    assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE);
    *f.fail.lock().unwrap() = None;
    assert!(auth.check(Some("scraper"), "/metrics").await.is_ok());
}

#[tokio::test]
async fn outcomes_are_cached_briefly() {
    let f = fake();
    let secs = Arc::new(AtomicU64::new(0));
    let t0 = Instant::now();
    let clock: Clock = {
        let secs = Arc::clone(&secs);
        Arc::new(move || t0 + Duration::from_secs(secs.load(Ordering::SeqCst)))
    };
    let auth = StatusAuth::with_clock(Arc::clone(&f) as Arc<dyn AccessReviewer>, Vec::new(), clock);
    for _ in 0..5 {
        assert!(auth.check(Some("scraper"), "/metrics").await.is_ok());
        assert!(auth.check(Some("scraper"), "/status").await.is_err());
    }
    // One TokenReview and one SubjectAccessReview per (token, path), not per request.
    assert_eq!(*f.calls.lock().unwrap(), (2, 2));
    // A refusal is asked again after DENIED_TTL; the allowed outcome is still reused.
    secs.store(cache::DENIED_TTL.as_secs(), Ordering::SeqCst);
    f.grants
        .lock()
        .unwrap()
        .push(("system:serviceaccount:vm:vmagent".into(), "/status".into()));
    assert!(auth.check(Some("scraper"), "/status").await.is_ok());
    assert!(auth.check(Some("scraper"), "/metrics").await.is_ok());
    assert_eq!(*f.calls.lock().unwrap(), (3, 3));
    // A grant taken back stops working once the allowed outcome expires.
    f.grants.lock().unwrap().clear();
    secs.store(
        cache::DENIED_TTL.as_secs() + cache::ALLOWED_TTL.as_secs(),
        Ordering::SeqCst,
    );
    assert_eq!(
        auth.check(Some("scraper"), "/metrics")
            .await
            .unwrap_err()
            .status(),
        StatusCode::FORBIDDEN
    );
}

/// Routes that answer 200 "inner" to everything.
struct Inner;

#[async_trait::async_trait]
impl Routes for Inner {
    async fn route(&self, _req: &Request<()>) -> Response<Full<Bytes>> {
        text_reply(StatusCode::OK, "inner\n".into())
    }
}

fn request(path: &str, from: &str, token: Option<&str>) -> Request<()> {
    let mut b = Request::get(path);
    if let Some(t) = token {
        b = b.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let mut req = b.body(()).unwrap();
    req.extensions_mut().insert(Peer(from.parse().unwrap()));
    req
}

#[tokio::test]
async fn guarded_routes_answer_401_403_or_the_inner_routes() {
    let g = Guarded {
        inner: Arc::new(Inner),
        auth: Arc::new(StatusAuth::new(fake(), Vec::new())),
    };
    let far = "192.0.2.7:40000";
    let code = |r: Response<Full<Bytes>>| r.status();
    let unauth = g.route(&request("/status", far, None)).await;
    assert_eq!(unauth.status(), StatusCode::UNAUTHORIZED);
    assert!(unauth.headers().contains_key(header::WWW_AUTHENTICATE));
    assert_eq!(
        code(g.route(&request("/status", far, Some("scraper"))).await),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        code(g.route(&request("/metrics", far, Some("scraper"))).await),
        StatusCode::OK
    );
    assert_eq!(
        code(g.route(&request("/healthz", far, None)).await),
        StatusCode::OK
    );
    assert_eq!(
        code(g.route(&request("/status", "127.0.0.1:40000", None)).await),
        StatusCode::OK
    );
    // No peer known: reviewed.
    let mut req = Request::get("/status").body(()).unwrap();
    req.extensions_mut().clear();
    assert_eq!(code(g.route(&req).await), StatusCode::UNAUTHORIZED);
}
