//! The CPU cost of the snapshot's pure parts at scale: joining 1,000 volumes with mountinfo,
//! converting a dump with 1,000 floating IPs, and encoding `/status` and `/metrics`. Ignored
//! by default; run with `cargo test -p hearth-agent --release --lib bench -- --ignored
//! --nocapture`. The end-to-end figure with a real `hearth dev` is in tests/tests/health_bench.rs.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use hearth_csi::mount::mountinfo;

use super::csi_ops::CsiRecorder;
use super::snapshot::{Section, Snapshot};
use super::{metrics, network, storage};
use hearth_net::model::{Address, Prefix};
use hearth_net::netlink::{Observed, Owner, Seen};

#[test]
#[ignore = "benchmark"]
fn bench_snapshot_1000_volumes_1000_floating_ips() {
    let n = 1000;
    let vols: Vec<(String, u64)> = (0..n).map(|i| (format!("vol-{i:032}"), 1 << 30)).collect();
    let devices: HashMap<String, PathBuf> = (0..n)
        .map(|i| {
            (
                format!("vol-{i:032}"),
                PathBuf::from(format!("/dev/loop{i}")),
            )
        })
        .collect();
    let text: String = (0..n)
        .map(|i| {
            format!(
                "{} 1 7:{i} / /k/plugins/{i}/globalmount rw - ext4 /dev/loop{i} rw\n",
                100 + i
            )
        })
        .collect();
    let mounts = mountinfo::parse(&text).expect("fixture");
    let observed = Observed {
        addresses: (0..n)
            .map(|i| Seen {
                item: Address {
                    dev: "br-ext".into(),
                    prefix: Prefix {
                        addr: IpAddr::V4(Ipv4Addr::from(0xcb00_7100_u32 + i)),
                        len: 32,
                    },
                    nodad: false,
                },
                owner: Owner::Floating,
            })
            .collect(),
        ..Observed::default()
    };
    let rec = CsiRecorder::default();
    let rounds = 50;
    let start = Instant::now();
    let mut bytes = 0;
    for _ in 0..rounds {
        let volumes = storage::local_view(&vols, &devices, &mounts, Path::new("/k"));
        let net = network::convert(&observed);
        let mut snap = Snapshot::default();
        if let Some(st) = Some(super::snapshot::Storage {
            volumes,
            ..Default::default()
        }) {
            snap.storage = Section::ok(st);
        }
        snap.network = Section::ok(net);
        let snap = Arc::new(snap);
        bytes = serde_json::to_vec(&*snap).expect("json").len();
        bytes += metrics::render(snap, rec.counters()).len();
    }
    let per = start.elapsed() / rounds;
    println!("snapshot+json+metrics, 1000 volumes + 1000 floating IPs: {per:?} per scrape, {bytes} bytes");
}
