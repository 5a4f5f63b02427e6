//! Crash tests: a child process (this test binary, re-executed) writes through a
//! [`SqliteStore`] in a loop and is SIGKILLed mid-way; the parent reopens the file and checks
//! that it holds exactly the acknowledged writes, plus at most the one in flight, in full.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::SqliteStore;
use crate::store::{
    FloatingIp, FloatingIpPool, FloatingIpState, Store, StoreError, VolumeLocation,
};

/// Set in the child: the database path.
const CHILD_DB: &str = "HEARTH_TEST_CRASH_CHILD_DB";
/// Set in the child: the seed of its operation sequence.
const CHILD_SEED: &str = "HEARTH_TEST_CRASH_CHILD_SEED";
/// Prefix of the child's protocol lines (libtest prints to stdout too).
const TAG: &str = "CRASH ";
const FIPS: [&str; 4] = ["f0", "f1", "f2", "f3"];

/// What the database should hold: declared floating IPs, their states, volume sizes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Model {
    declared: BTreeSet<String>,
    states: BTreeMap<String, (u64, String, Option<String>)>,
    volumes: BTreeMap<String, u64>,
}

/// One store call; the child prints it before the call, and `ok` or `conflict` after.
#[derive(Debug, Clone)]
enum Op {
    Declare(String),
    Delete(String),
    Swap(String, u64, String, Option<String>),
    Volume(String, u64),
}

impl Op {
    fn line(&self) -> String {
        match self {
            Op::Declare(n) => format!("declare {n}"),
            Op::Delete(n) => format!("delete {n}"),
            Op::Swap(n, e, a, node) => {
                format!("swap {n} {e} {a} {}", node.as_deref().unwrap_or("-"))
            }
            Op::Volume(id, size) => format!("volume {id} {size}"),
        }
    }

    fn parse(line: &str) -> Op {
        let w: Vec<&str> = line.split(' ').collect();
        match w[..] {
            ["declare", n] => Op::Declare(n.into()),
            ["delete", n] => Op::Delete(n.into()),
            ["swap", n, e, a, node] => Op::Swap(
                n.into(),
                e.parse().unwrap(),
                a.into(),
                (node != "-").then(|| node.into()),
            ),
            ["volume", id, size] => Op::Volume(id.into(), size.parse().unwrap()),
            _ => panic!("bad op line {line:?}"),
        }
    }

    fn apply(&self, m: &mut Model) {
        match self {
            Op::Declare(n) => {
                m.declared.insert(n.clone());
            }
            Op::Delete(n) => {
                m.declared.remove(n);
                m.states.remove(n);
            }
            Op::Swap(n, e, a, node) => {
                m.states.insert(n.clone(), (*e, a.clone(), node.clone()));
            }
            Op::Volume(id, size) => {
                m.volumes.insert(id.clone(), *size);
            }
        }
    }
}

async fn read_model(store: &dyn Store) -> Model {
    Model {
        declared: store
            .floating_ips()
            .await
            .unwrap()
            .into_iter()
            .map(|f| f.name)
            .collect(),
        states: store
            .floating_ip_states()
            .await
            .unwrap()
            .into_iter()
            .map(|s| (s.name, (s.epoch, s.address.to_string(), s.node)))
            .collect(),
        volumes: store
            .volumes()
            .await
            .unwrap()
            .into_iter()
            .map(|v| (v.id, v.size_bytes))
            .collect(),
    }
}

/// The child: writes until it is killed. Ignored in normal runs; the parent runs it.
#[test]
#[ignore = "the child process of sqlite_survives_sigkill_mid_write"]
fn crash_child_writer() {
    let Some(path) = std::env::var_os(CHILD_DB) else {
        return; // run with --include-ignored, not by the parent
    };
    let mut seed: u64 = std::env::var(CHILD_SEED).unwrap().parse().unwrap();
    let mut next = move |n: u64| {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 33) % n
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = SqliteStore::open(path).await.unwrap();
        let public = FloatingIpPool {
            name: "public".into(),
            cidrs: vec!["203.0.113.0/29".into()],
            ranges: vec![],
            exclude: vec![],
            interface: "eth0".into(),
            node_selector: BTreeMap::new(),
        };
        store.put_pool(&public).await.unwrap();
        let mut model = read_model(&store).await;
        for i in 0u64.. {
            let name = FIPS[next(4) as usize].to_string();
            let op = match next(10) {
                _ if !model.declared.contains(&name) => Op::Declare(name),
                0 => Op::Delete(name),
                1 | 2 => Op::Volume(format!("vol-{}", next(8)), i),
                _ => {
                    let epoch = model.states.get(&name).map_or(0, |s| s.0) + 1;
                    let node = (epoch % 5 != 0).then(|| format!("node-{epoch}"));
                    // A stored state keeps its address; a new one may collide with another's.
                    let address = model
                        .states
                        .get(&name)
                        .map_or_else(|| format!("203.0.113.{}", next(6) + 1), |s| s.1.clone());
                    Op::Swap(name, epoch, address, node)
                }
            };
            println!("{TAG}{}", op.line());
            let result = match &op {
                Op::Declare(n) => {
                    let fip = FloatingIp {
                        name: n.clone(),
                        pool: "public".into(),
                        address: None,
                        node_selector: BTreeMap::new(),
                        target: None,
                    };
                    store.put_floating_ip(&fip).await
                }
                Op::Delete(n) => store.delete_floating_ip(n).await,
                Op::Swap(n, e, a, node) => {
                    let state = FloatingIpState {
                        name: n.clone(),
                        address: a.parse().unwrap(),
                        node: node.clone(),
                        epoch: *e,
                        term: 0,
                    };
                    store.swap_floating_ip_state(e - 1, &state).await
                }
                Op::Volume(id, size) => {
                    let v = VolumeLocation {
                        id: id.clone(),
                        nodes: vec!["node-a".into()],
                        size_bytes: *size,
                    };
                    let stored = store.volumes().await.unwrap();
                    match stored.iter().find(|s| s.id == v.id) {
                        Some(old) => store.update_volume(old, &v).await,
                        None => store.create_volume(&v).await,
                    }
                }
            };
            match result {
                Ok(()) => {
                    op.apply(&mut model);
                    println!("{TAG}ok");
                }
                Err(StoreError::Conflict(_)) => println!("{TAG}conflict"),
                Err(e) => panic!("{}: {e}", op.line()),
            }
        }
    });
}

/// Runs the child against `db` until it has acknowledged `writes` operations, SIGKILLs it,
/// and returns the acknowledged model and the operation in flight.
fn run_child_and_kill(
    db: &Path,
    seed: u64,
    mut acked: Model,
    writes: usize,
) -> (Model, Option<Op>) {
    let test = concat!(module_path!(), "::crash_child_writer");
    let test = test.split_once("::").unwrap().1;
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            test,
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DB, db)
        .env(CHILD_SEED, seed.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let (mut inflight, mut oks, mut killed) = (None::<Op>, 0, false);
    for line in stdout.lines() {
        // libtest's "test ... " header may share the first line: find the tag anywhere.
        let line = line.unwrap();
        let Some(at) = line.find(TAG) else { continue };
        let line = line[at + TAG.len()..].to_owned();
        match line.as_str() {
            "ok" => {
                inflight.take().expect("ok without an op").apply(&mut acked);
                oks += 1;
            }
            "conflict" => assert!(inflight.take().is_some(), "conflict without an op"),
            op => inflight = Some(Op::parse(op)),
        }
        if oks >= writes && !killed {
            // Let the child run on for a varying while, so the kill lands anywhere in a write.
            std::thread::sleep(Duration::from_micros(seed * 1_237 % 4_000));
            child.kill().unwrap(); // SIGKILL: no destructors, no SQLite cleanup.
            killed = true;
        }
    }
    let status = child.wait().unwrap();
    assert!(
        killed,
        "the child stopped by itself after {oks} writes: {status}"
    );
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(libc::SIGKILL)
    );
    (acked, inflight)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_survives_sigkill_mid_write() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("state.db");
    let mut model = Model::default();
    for round in 0..8 {
        let (acked, inflight) =
            tokio::task::block_in_place(|| run_child_and_kill(&db, round + 1, model.clone(), 150));
        let store = SqliteStore::open(&db).await.unwrap();
        let found = read_model(&store).await;
        let mut with_inflight = acked.clone();
        if let Some(op) = &inflight {
            op.apply(&mut with_inflight);
        }
        assert!(
            found == acked || found == with_inflight,
            "round {round}: the database holds neither the acknowledged state nor that plus \
             the write in flight ({inflight:?}):\nfound {found:#?}\nacked {acked:#?}"
        );
        let addresses: BTreeSet<_> = found.states.values().map(|s| s.1.clone()).collect();
        assert_eq!(
            addresses.len(),
            found.states.len(),
            "addresses are unique: {found:#?}"
        );
        for (name, (epoch, _, node)) in &found.states {
            assert!(
                found.declared.contains(name),
                "state without declaration: {name}"
            );
            let want = (epoch % 5 != 0).then(|| format!("node-{epoch}"));
            assert_eq!(node, &want, "{name}: owner and epoch were written together");
            let acked_epoch = acked.states.get(name).map_or(0, |s| s.0);
            assert!(
                *epoch >= acked_epoch,
                "{name}: epoch went back from {acked_epoch} to {epoch}"
            );
        }
        let conn = rusqlite::Connection::open(&db).unwrap();
        let integrity: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(integrity, "ok");
        let fk_violations: i64 = conn
            .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(fk_violations, 0);
        // The store goes on from what it found.
        if let Some((name, (epoch, address, _))) = found.states.iter().next() {
            let state = FloatingIpState {
                name: name.clone(),
                address: address.parse().unwrap(),
                node: ((epoch + 1) % 5 != 0).then(|| format!("node-{}", epoch + 1)),
                epoch: epoch + 1,
                term: 0,
            };
            store
                .swap_floating_ip_state(*epoch + 1, &state)
                .await
                .unwrap_err();
            store.swap_floating_ip_state(*epoch, &state).await.unwrap();
        }
        model = read_model(&store).await;
    }
}
