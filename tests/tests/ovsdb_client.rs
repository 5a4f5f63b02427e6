//! Hearth's OVSDB client against a real ovsdb-server (Debian openvswitch-switch) in a temp
//! dir: get_schema, typed transactions, monitor / monitor_cond / monitor_cond_since updates,
//! reconnection after a server restart with the monitors re-registered, and the transact
//! latency (p50/p99, printed for docs/benchmarks.md).
#![allow(clippy::tests_outside_test_module)] // an integration-test file is a test-only crate

use std::time::{Duration, Instant};

use hearth_net::ovsdb::datum::{eq, insert, map, select};
use hearth_net::ovsdb::tables::{read, DB};
use hearth_net::ovsdb::{Client, OvsdbError};
use hearth_tests::ovs::{OvsLab, VSWITCH_SCHEMA};
use serde_json::{json, Value};

fn ready() -> bool {
    hearth_tests::tool_or_skip("ovsdb_client", "ovsdb-server")
        && hearth_tests::tool_or_skip("ovsdb_client", "ovsdb-tool")
}

async fn next_update(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<hearth_net::ovsdb::client::Update>,
    method: &str,
) -> Value {
    loop {
        let u = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("an update in time")
            .expect("updates open");
        if u.method == method {
            return u.params;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schema_transact_monitors_and_reconnect() {
    if !ready() {
        return;
    }
    let mut lab = OvsLab::new();
    let ep = lab.ovsdb("db", VSWITCH_SCHEMA, None);
    let c = Client::connect(&ep).await.unwrap();
    assert!(c.list_dbs().await.unwrap().contains(&DB.to_owned()));
    let schema = c.get_schema(DB).await.unwrap();
    assert_eq!(schema["name"], "Open_vSwitch");
    assert!(schema["tables"]["Bridge"]["columns"]["datapath_type"].is_object());
    assert!(matches!(
        c.get_schema("nope").await,
        Err(OvsdbError::Rpc { .. })
    ));

    let mut rx = c.take_updates().unwrap();
    let cols = json!({"Bridge": {"columns": ["name"]}});
    let init = c.monitor(DB, json!("m1"), cols.clone()).await.unwrap();
    assert_eq!(init, json!({}));
    c.monitor_cond(
        DB,
        json!("m2"),
        json!({"Bridge": [{"columns": ["name"], "where": [["name", "==", "br0"]]}]}),
    )
    .await
    .unwrap();
    let since = c
        .monitor_cond_since(
            DB,
            json!("m3"),
            json!({"Bridge": [{"columns": ["name"]}]}),
            None,
        )
        .await
        .unwrap();
    assert_eq!(since[0], json!(false), "no history for the zero txn id");

    c.transact(DB, vec![insert("Open_vSwitch", json!({}), "root")])
        .await
        .unwrap();
    let root = read(&c).await.unwrap().root.unwrap().uuid;
    let ids = [("k".to_owned(), "v".to_owned())].into();
    let bridge = json!({"name": "br0", "external_ids": map(&ids)});
    c.transact(DB, vec![
        insert("Bridge", bridge, "b"),
        json!({"op": "mutate", "table": "Open_vSwitch", "where": [eq("_uuid", json!(["uuid", root]))],
               "mutations": [["bridges", "insert", ["set", [["named-uuid", "b"]]]]]}),
    ]).await.unwrap();
    let mut seen = std::collections::BTreeMap::new();
    while seen.len() < 3 {
        let u = tokio::time::timeout(Duration::from_secs(10), rx.recv())
            .await
            .expect("updates in time")
            .expect("open");
        eprintln!("update: {} {}", u.method, u.params);
        seen.insert(u.method, u.params);
    }
    assert_eq!(seen["update"][0], "m1");
    assert_eq!(seen["update2"][0], "m2");
    assert_eq!(seen["update3"][0], "m3");
    assert!(
        seen["update3"][1].is_string(),
        "update3 carries the last txn id"
    );
    let state = read(&c).await.unwrap();
    assert_eq!(state.bridges.len(), 1);
    assert_eq!(
        state.bridges[0].external_ids.get("k").map(String::as_str),
        Some("v")
    );

    // A failing operation fails the whole transaction with its index.
    let dup = c
        .transact(
            DB,
            vec![select("Bridge", vec![], &["name"]), json!({"op": "abort"})],
        )
        .await;
    assert!(
        matches!(dup, Err(OvsdbError::Transact { index: 1, .. })),
        "{dup:?}"
    );

    // Restart the server: calls in flight fail, the client reconnects and re-registers monitors.
    lab.stop("db");
    let ep2 = lab.ovsdb("db", VSWITCH_SCHEMA, None);
    assert_eq!(ep, ep2);
    let resync = next_update(&mut rx, "resync").await;
    assert!(
        resync[0] == "m1" || resync[0] == "m2" || resync[0] == "m3",
        "{resync}"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let state = loop {
        match read(&c).await {
            Ok(s) => break s,
            Err(e) => {
                assert!(Instant::now() < deadline, "no reconnection: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    assert_eq!(
        state.bridges.len(),
        1,
        "the database file survived the restart"
    );

    // Transact latency: a read-only select and a small write, 500 each.
    let mut lat = Vec::new();
    for i in 0..500 {
        let op = if i % 2 == 0 {
            select("Bridge", vec![], &["name"])
        } else {
            json!({"op": "mutate", "table": "Open_vSwitch", "where": [eq("_uuid", json!(["uuid", state.root.as_ref().unwrap().uuid]))],
                   "mutations": [["next_cfg", "+=", 1]]})
        };
        let t = Instant::now();
        c.transact(DB, vec![op]).await.unwrap();
        lat.push(t.elapsed());
    }
    lat.sort();
    println!(
        "BENCH ovsdb transact over unix socket: n=500 p50={:?} p99={:?} max={:?}",
        lat[250], lat[495], lat[499]
    );
}

/// A fake server on a socket pair: the client answers `echo` with the same params and keeps
/// parsing when the server splits its messages across writes.
#[tokio::test]
async fn answers_echo_and_parses_split_writes() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fake.sock");
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    let server = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        s.write_all(br#"{"method":"echo","par"#).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        s.write_all(br#"ams":["x"],"id":"e1"}"#).await.unwrap();
        let mut buf = vec![0u8; 4096];
        let mut got = Vec::new();
        while !got.ends_with(b"}") {
            let n = s.read(&mut buf).await.unwrap();
            got.extend_from_slice(&buf[..n]);
        }
        let reply: Value = serde_json::from_slice(&got).unwrap();
        assert_eq!(reply, json!({"id": "e1", "result": ["x"], "error": null}));
        // Now a request from the client: answer it in two pieces.
        got.clear();
        while !got.ends_with(b"}") {
            let n = s.read(&mut buf).await.unwrap();
            got.extend_from_slice(&buf[..n]);
        }
        let req: Value = serde_json::from_slice(&got).unwrap();
        let answer =
            json!({"id": req["id"], "result": ["Open_vSwitch"], "error": null}).to_string();
        let (a, b) = answer.split_at(7);
        s.write_all(a.as_bytes()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        s.write_all(b.as_bytes()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    });
    let c = Client::connect(&format!("unix:{}", path.display()))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(c.list_dbs().await.unwrap(), vec!["Open_vSwitch".to_owned()]);
    server.await.unwrap();
}
