//! `placement-bench`: the coordinator's volume placement, one volume after another on a large
//! cluster, in this process (pure code, no store, no RPC). Not a timed test; figures go to
//! docs/benchmarks.md.
//!
//! ```text
//! cargo run --release -p hearth-tests --bin placement-bench
//! ```
//!
//! The cluster: `--nodes` nodes over 3 zones with 2, 4, 8 or 16 TiB each, a few unhealthy, half
//! of them labelled `disk=ssd`. The volumes: 1–200 GiB; a third ask for their consumer's node
//! first (preferred, like WaitForFirstConsumer), a sixth require one zone, a tenth select
//! `disk=ssd`. Each placement is timed with its commit (free space and counts updated).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use clap::Parser;
use hearth_coordinator::labels::Labels;
use hearth_coordinator::placement::{Cluster, NodeView, VolumeRequest, ZONE_KEY};
use hearth_csi::TOPOLOGY_NODE_KEY;

const GIB: u64 = 1 << 30;
const ZONES: [&str; 3] = ["zone-a", "zone-b", "zone-c"];

#[derive(Debug, Parser)]
struct Args {
    /// Nodes in the cluster.
    #[arg(long, default_value_t = 1000)]
    nodes: usize,
    /// Volumes placed in each run.
    #[arg(long, default_value_t = 10_000)]
    volumes: usize,
}

/// splitmix64: a fixed sequence, so every run places the same volumes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn label(k: &str, v: &str) -> Labels {
    Labels::from([(k.to_owned(), v.to_owned())])
}

fn cluster(n: usize, rng: &mut Rng) -> Vec<NodeView> {
    (0..n)
        .map(|i| {
            let name = format!("node-{i:04}");
            let total = (2 << rng.below(4)) * 1024 * GIB;
            let mut labels = label(TOPOLOGY_NODE_KEY, &name);
            labels.insert(ZONE_KEY.to_owned(), ZONES[i % 3].to_owned());
            labels.insert("kubernetes.io/hostname".to_owned(), name.clone());
            if rng.below(2) == 0 {
                labels.insert("disk".to_owned(), "ssd".to_owned());
            }
            let volumes = rng.below(20) as u32;
            NodeView {
                name,
                labels,
                healthy: rng.below(100) != 0,
                total_bytes: total,
                free_bytes: total - u64::from(volumes) * 50 * GIB,
                volumes,
            }
        })
        .collect()
}

fn request(i: usize, replicas: u32, nodes: usize, rng: &mut Rng) -> VolumeRequest {
    let mut r = VolumeRequest {
        id: format!("pvc-{i:08x}-{replicas}"),
        size_bytes: (1 + rng.below(200)) * GIB,
        replicas,
        ..VolumeRequest::default()
    };
    match rng.below(6) {
        0 | 1 => {
            let consumer = format!("node-{:04}", rng.below(nodes as u64));
            r.preferred = vec![label(TOPOLOGY_NODE_KEY, &consumer)];
        }
        2 => r.requisite = vec![label(ZONE_KEY, ZONES[rng.below(3) as usize])],
        _ => {}
    }
    if rng.below(10) == 0 {
        r.node_selector = label("disk", "ssd");
    }
    r
}

struct Run {
    total: Duration,
    times: Vec<Duration>,
    failed: usize,
    spread_ok: usize,
    placed: usize,
}

fn run(args: &Args, replicas: u32) -> Run {
    let mut rng = Rng(42);
    let mut cluster = Cluster::new(cluster(args.nodes, &mut rng));
    let requests: Vec<VolumeRequest> = (0..args.volumes)
        .map(|i| request(i, replicas, args.nodes, &mut rng))
        .collect();
    let mut times = Vec::with_capacity(requests.len());
    let (mut failed, mut spread_ok, mut placed) = (0, 0, 0);
    let start = Instant::now();
    for r in &requests {
        let t = Instant::now();
        match cluster.place(r) {
            Ok(chosen) => {
                cluster.commit(&chosen, r.size_bytes);
                times.push(t.elapsed());
                placed += 1;
                let zones: BTreeSet<&str> = chosen
                    .iter()
                    .map(|&n| cluster.nodes()[n].labels[ZONE_KEY].as_str())
                    .collect();
                let wanted = if r.requisite.is_empty() {
                    replicas.min(3)
                } else {
                    1
                };
                spread_ok += usize::from(zones.len() == wanted as usize);
            }
            Err(_) => {
                times.push(t.elapsed());
                failed += 1;
            }
        }
    }
    Run {
        total: start.elapsed(),
        times,
        failed,
        spread_ok,
        placed,
    }
}

fn main() {
    let args = Args::parse();
    println!(
        "{} nodes over {} zones, {} volumes per run, one after another (place + commit)",
        args.nodes,
        ZONES.len(),
        args.volumes
    );
    for replicas in [1, 3] {
        let mut r = run(&args, replicas);
        r.times.sort();
        let pct = |p: f64| {
            r.times[((r.times.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1e6
        };
        println!(
            "replicas {replicas}: total {:.1} ms   per placement p50 {:.1} µs  p99 {:.1} µs  max {:.1} µs   \
             placed {} failed {}   zone spread as wanted {}/{}",
            r.total.as_secs_f64() * 1e3,
            pct(0.5),
            pct(0.99),
            pct(1.0),
            r.placed,
            r.failed,
            r.spread_ok,
            r.placed
        );
    }
}
