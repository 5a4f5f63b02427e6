//! `net-bench`: Hearth's netlink apply against `ip -batch` doing the same work, in throwaway
//! network namespaces, and the floating-IP move time. Needs root.
//!
//! ```text
//! cargo build --release -p hearth-agent -p hearth-tests --bins
//! HEARTH_BIN=$PWD/target/release/hearth ./target/release/net-bench --trials 5 --moves 50
//! ```
//!
//! Process timings are wall time from spawn to exit of `hearth net apply --file F` and of
//! `ip -batch F`, both started from a thread inside the namespace (no `ip netns exec`
//! overhead for either). In-process timings call the library directly (no process start and
//! no YAML parse): that is what the long-running agent pays per pass.

use std::fmt::Write as _;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use hearth_net::apply::converge;
use hearth_net::netlink::RtNetlink;
use hearth_net::sysctl::ProcSys;
use hearth_tests::netns::{MoveLab, NetNs};

#[derive(Debug, Parser)]
struct Args {
    /// Trials per measurement (the median is reported).
    #[arg(long, default_value_t = 5)]
    trials: usize,
    /// Routes in the route benchmarks.
    #[arg(long, default_value_t = 10_000)]
    routes: usize,
    /// Addresses in the address benchmark.
    #[arg(long, default_value_t = 1_000)]
    addresses: usize,
    /// veth pairs in the link benchmark.
    #[arg(long, default_value_t = 500)]
    veths: usize,
    /// Floating-IP moves.
    #[arg(long, default_value_t = 50)]
    moves: usize,
    /// Also time moves without announcements (address moves only), this many times.
    #[arg(long, default_value_t = 3)]
    silent_moves: usize,
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

/// Runs a command from a thread inside `ns` and returns its wall time.
fn timed(ns: &NetNs, program: &Path, args: &[&str]) -> Duration {
    let (program, args) = (
        program.to_owned(),
        args.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
    );
    ns.thread(move || {
        let start = Instant::now();
        let st = Command::new(&program)
            .args(&args)
            .stdout(Stdio::null())
            .status()
            .expect("spawn");
        let took = start.elapsed();
        assert!(st.success(), "{} {args:?} failed: {st}", program.display());
        took
    })
    .join()
    .expect("thread")
}

/// A namespace with bridge br0 (10.0.0.1/16) made by the bench, not by Hearth.
fn lab() -> NetNs {
    let ns = NetNs::new("bench");
    ns.ip(&["link", "add", "br0", "type", "bridge"]);
    ns.ip(&["link", "set", "br0", "up"]);
    ns.ip(&["addr", "add", "10.0.0.1/16", "dev", "br0"]);
    ns
}

struct Work {
    yaml: String,
    batch: String,
    redo_batch: Option<String>,
}

fn routes(n: usize) -> Work {
    let (mut yaml, mut batch, mut redo) = ("routes:\n".to_owned(), String::new(), String::new());
    for i in 0..n {
        let dst = format!("172.{}.{}.0/24", 16 + i / 256, i % 256);
        let _ = writeln!(yaml, "  - {{dst: {dst}, via: 10.0.0.2, dev: br0}}");
        let _ = writeln!(batch, "route add {dst} via 10.0.0.2 dev br0 proto 72");
        let _ = writeln!(redo, "route replace {dst} via 10.0.0.2 dev br0 proto 72");
    }
    Work {
        yaml,
        batch,
        redo_batch: Some(redo),
    }
}

fn addresses(n: usize) -> Work {
    let (mut yaml, mut batch) = ("addresses:\n".to_owned(), String::new());
    for i in 0..n {
        let a = format!("10.1.{}.{}/32", i / 250, 1 + i % 250);
        let _ = writeln!(yaml, "  - {{address: {a}, dev: br0}}");
        let _ = writeln!(batch, "addr add {a} dev br0");
    }
    Work {
        yaml,
        batch,
        redo_batch: None,
    }
}

fn veths(n: usize) -> Work {
    let (mut yaml, mut batch) = ("links:\n".to_owned(), String::new());
    for i in 0..n {
        let _ = writeln!(yaml, "  - {{name: va{i}, kind: veth, peer: vb{i}}}");
        let _ = writeln!(batch, "link add va{i} type veth peer name vb{i}");
        let _ = writeln!(batch, "link set va{i} up");
        let _ = writeln!(batch, "link set vb{i} up");
    }
    Work {
        yaml,
        batch,
        redo_batch: None,
    }
}

fn bench_work(name: &str, work: &Work, trials: usize, report: &mut String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (yaml, batch) = (
        dir.path().join("desired.yaml"),
        dir.path().join("batch.txt"),
    );
    std::fs::write(&yaml, &work.yaml).expect("write");
    std::fs::write(&batch, &work.batch).expect("write");
    let hearth = hearth_tests::hearth_bin();
    let ip = if Path::new("/usr/sbin/ip").exists() {
        Path::new("/usr/sbin/ip")
    } else {
        Path::new("/sbin/ip")
    };
    let y = yaml.display().to_string();
    let b = batch.display().to_string();
    let (mut h, mut i, mut h2, mut i2, mut lib2) = (vec![], vec![], vec![], vec![], vec![]);
    for _ in 0..trials {
        let ns = lab();
        i.push(timed(&ns, ip, &["-batch", &b]));
        if let Some(redo) = &work.redo_batch {
            let r = dir.path().join("redo.txt");
            std::fs::write(&r, redo).expect("write");
            i2.push(timed(&ns, ip, &["-batch", &r.display().to_string()]));
        }
        drop(ns);
        let ns = lab();
        h.push(timed(&ns, &hearth, &["net", "apply", "--file", &y]));
        h2.push(timed(&ns, &hearth, &["net", "apply", "--file", &y]));
        let file = hearth_net::spec::load(&yaml).expect("valid file");
        let desired = Arc::new(hearth_net::render::render(&file));
        let rt = ns.runtime();
        lib2.push(rt.run(move || async move {
            let nl = RtNetlink::open().expect("netlink");
            let start = Instant::now();
            let out = converge(&nl, &ProcSys::default(), &desired, false)
                .await
                .expect("converge");
            assert_eq!(out.report.writes, 0, "re-apply must not write");
            start.elapsed()
        }));
    }
    let (h, i) = (median(h), median(i));
    let _ = writeln!(
        report,
        "| {name}: apply | {} ms | {} ms | {:.2}× |",
        ms(h),
        ms(i),
        h.as_secs_f64() / i.as_secs_f64()
    );
    let redo = if i2.is_empty() {
        "—".to_owned()
    } else {
        format!("{} ms (`replace`)", ms(median(i2)))
    };
    let _ = writeln!(
        report,
        "| {name}: re-apply (no-op), process | {} ms | {redo} | |",
        ms(median(h2))
    );
    let _ = writeln!(
        report,
        "| {name}: re-apply (no-op), in-process pass | {} ms | | |",
        ms(median(lib2))
    );
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        nix::unistd::Uid::effective().is_root(),
        "net-bench needs root (network namespaces)"
    );
    let mut report = String::from("| work | hearth | ip -batch | ratio |\n|---|---|---|---|\n");
    bench_work(
        &format!("{} routes", args.routes),
        &routes(args.routes),
        args.trials,
        &mut report,
    );
    bench_work(
        &format!("{} addresses", args.addresses),
        &addresses(args.addresses),
        args.trials,
        &mut report,
    );
    bench_work(
        &format!("{} veth pairs", args.veths),
        &veths(args.veths),
        args.trials,
        &mut report,
    );
    println!("{report}");
    for v6 in [false, true] {
        moves(v6, args.moves, args.silent_moves);
    }
    Ok(())
}

fn pct(v: &[Duration], p: f64) -> Duration {
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// Floating-IP moves back and forth between two nodes while the client sends every 1 ms.
fn moves(v6: bool, n: usize, silent: usize) {
    let lab = MoveLab::new(v6);
    lab.announce(1);
    assert!(
        lab.first_arrival(1, Instant::now(), Duration::from_secs(5))
            .is_some(),
        "client traffic never reached node A"
    );
    let mut got = Vec::new();
    let mut lost = 0;
    for i in 0..n {
        match lab.move_to(if i % 2 == 0 { 2 } else { 1 }) {
            Some(d) => got.push(d),
            None => lost += 1,
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    got.sort();
    let fam = if v6 {
        "IPv6 (unsolicited NA)"
    } else {
        "IPv4 (gratuitous ARP)"
    };
    println!(
        "floating-IP move, {fam}: {} moves, to first client packet: median {} ms, p95 {} ms, max {} ms, {lost} never arrived",
        got.len(),
        ms(median(got.clone())),
        ms(pct(&got, 0.95)),
        ms(*got.last().unwrap_or(&Duration::ZERO))
    );
    // Leave the address where the next silent move expects it: on node A.
    if n % 2 == 1 {
        let _ = lab.move_to(1);
    }
    let mut quiet = Vec::new();
    for i in 0..silent {
        let to = if i % 2 == 0 { 2 } else { 1 };
        quiet.push(lab.move_silently(to, Duration::from_secs(30)));
        lab.announce(to);
        std::thread::sleep(Duration::from_millis(100));
    }
    if silent > 0 {
        let text: Vec<String> = quiet
            .iter()
            .map(|d| d.map_or("> 30000".into(), ms))
            .collect();
        println!(
            "  the same move without announcements (address only, as ip addr add): {} ms",
            text.join(", ")
        );
    }
}
