//! `failover-bench`: floating-IP failover with the real binaries, over many trials, in the
//! [`FailoverLab`] (a coordinator, node agents and a client on one bridge, mTLS). Needs root.
//! Not a timed test; figures go to docs/benchmarks.md.
//!
//! ```text
//! cargo build -p hearth-agent --bin hearth && cargo build -p hearth-tests --bin failover-bench
//! ./target/debug/failover-bench --trials 100 --container-trials 100 --sigterm-trials 100 \
//!     --partition-trials 50
//! ./target/debug/failover-bench --trials 0 --container-trials 0 --sigterm-trials 0 \
//!     --partition-trials 0 --sessions 1000
//! ```
//!
//! Kill trials: SIGKILL the owner's agent; the figure is the time from the kill to the first
//! ARP reply for the floating IP from another node's MAC (the client sends a who-has every
//! millisecond). A violation is a reply from the killed node after that, or any two nodes
//! answering in turn ([`dual_answers`]). Partition trials: blackhole the owner from the
//! coordinator (the client still reaches it) until another node holds the IP, probe 300 ms
//! more, heal, and probe `--after-heal-ms` more. Container trials SIGKILL the agent's process
//! group (agent and fence guard at one instant); SIGTERM trials let the agent hand over, and
//! the figure that matters is the silent gap between the old owner's last reply and the new
//! owner's first. `--sessions N` first runs the coordinator at scale ([`hearth_tests::sessions`]):
//! N simulated agents in this process against a real `hearth coordinator` (no root needed
//! when every trial count is 0). Setting up each lab and letting it settle
//! between trials is not in the figures. Everything the bench starts is killed by PID and the
//! namespaces are deleted when the lab drops, also on panic and on SIGINT/SIGTERM.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use clap::Parser;
use hearth_tests::netns::arp::{dual_answers, ArpProbe, Reply};
use hearth_tests::netns::failover::{node_name, FailoverLab};

const CONFIG: &str = "floatingIPPools:\n  - {name: lan, cidrs: [10.9.1.0/24], interface: eth0}\n\
                      floatingIPs:\n  - {name: web, pool: lan}\n";
const FIP: &str = "10.9.1.1";
/// How often the bench asks the nodes (`ip addr`) who holds the IP; the figures come from the
/// ARP replies, so this only bounds how long a trial runs, and is kept slow to leave the CPUs
/// to the agents.
const POLL: Duration = Duration::from_millis(20);

#[derive(Debug, Parser)]
struct Args {
    /// Kill trials.
    #[arg(long, default_value_t = 100)]
    trials: usize,
    /// Partition trials.
    #[arg(long, default_value_t = 100)]
    partition_trials: usize,
    /// Whole-container kill trials (the agent and its fence guard, one SIGKILL to the group).
    #[arg(long, default_value_t = 100)]
    container_trials: usize,
    /// SIGTERM hand-over trials (a rolling update).
    #[arg(long, default_value_t = 100)]
    sigterm_trials: usize,
    /// Node agents in the lab.
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// Probing before the kill or partition, to see the old owner answer.
    #[arg(long, default_value_t = 100)]
    lead_ms: u64,
    /// Probing after the new owner holds the IP.
    #[arg(long, default_value_t = 300)]
    tail_ms: u64,
    /// Probing after the partition heals (replies then are counted apart).
    #[arg(long, default_value_t = 500)]
    after_heal_ms: u64,
    /// Pause after a restarted agent's session opens, or after a heal, before the next trial.
    #[arg(long, default_value_t = 1000)]
    settle_ms: u64,
    /// Simulated node sessions for the coordinator-at-scale run (0: skip it).
    #[arg(long, default_value_t = 0)]
    sessions: usize,
    /// Floating IPs in the coordinator-at-scale run.
    #[arg(long, default_value_t = 1000)]
    session_fips: usize,
    /// Seconds over which the coordinator's CPU and the grant latency are measured.
    #[arg(long, default_value_t = 10)]
    session_window_s: u64,
    /// Dropped sessions (one node's floating IPs each) in the coordinator-at-scale run.
    #[arg(long, default_value_t = 5)]
    session_failovers: usize,
    /// Print the results as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// Keep the lab directories (PKI, state, coordinator and agent logs) and print their paths.
    #[arg(long)]
    keep: bool,
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

/// SIGINT and SIGTERM end the run after the current trial, so the lab's Drop cleans up.
fn catch_signals() -> anyhow::Result<()> {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let action = SigAction::new(
        SigHandler::Handler(on_signal),
        SaFlags::empty(),
        SigSet::empty(),
    );
    for sig in [Signal::SIGINT, Signal::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe { sigaction(sig, &action) }.with_context(|| format!("sigaction {sig}"))?;
    }
    Ok(())
}

/// What one trial's probe saw, relative to the moment of the kill or partition (`t0`).
#[derive(Debug, Default)]
struct Seen {
    /// First reply from a MAC other than the old owner's, after `t0`.
    moved: Option<Duration>,
    /// Last reply from the old owner after `t0` (when it stopped answering).
    old_last: Option<Duration>,
    /// Replies from the old owner after the first reply from another node.
    old_after_new: usize,
    /// Dual answers (a succeeded MAC answering again) before `split`, and from `split` on.
    dual_before: usize,
    dual_after: usize,
    /// Whether the old owner answered before `t0` (the probe worked).
    baseline: bool,
}

fn analyse(replies: &[Reply], t0: Instant, old: [u8; 6], split: Option<Instant>) -> Seen {
    let first_new = replies.iter().find(|r| r.mac != old && r.at >= t0);
    let dual = dual_answers(replies);
    let before = |at: Instant| split.is_none_or(|s| at < s);
    Seen {
        moved: first_new.map(|r| r.at - t0),
        old_last: replies
            .iter()
            .rev()
            .find(|r| r.mac == old && r.at >= t0)
            .map(|r| r.at - t0),
        old_after_new: first_new.map_or(0, |f| {
            replies
                .iter()
                .filter(|r| r.mac == old && r.at > f.at)
                .count()
        }),
        dual_before: dual.iter().filter(|d| before(d.2)).count(),
        dual_after: dual.iter().filter(|d| !before(d.2)).count(),
        baseline: replies.iter().any(|r| r.mac == old && r.at < t0),
    }
}

/// The single node holding the floating IP, once exactly one does.
fn owner(lab: &FailoverLab, timeout: Duration) -> anyhow::Result<usize> {
    poll(timeout, || match lab.holders(FIP).as_slice() {
        [one] => Some(*one),
        _ => None,
    })
    .with_context(|| format!("no single holder of {FIP}: {:?}", lab.holders(FIP)))
}

fn poll<T>(timeout: Duration, f: impl FnMut() -> Option<T>) -> Option<T> {
    FailoverLab::poll_every(POLL, timeout, f)
}

/// Waits until a node other than `old` holds the IP (a node whose every Hearth process was
/// killed keeps its address on `lo`, unanswered).
fn moved_off(lab: &FailoverLab, old: usize) -> Option<usize> {
    poll(Duration::from_secs(5), || lab.holder_besides(FIP, old))
}

/// How a kill trial ends the owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// SIGKILL to the agent alone (its fence guard sees the pipe close).
    Agent,
    /// SIGKILL to the agent's process group: agent and fence guard at one instant.
    Container,
    /// SIGTERM: the agent hands its floating IPs over.
    Sigterm,
}

impl End {
    fn what(self) -> &'static str {
        match self {
            Self::Agent => "kill",
            Self::Container => "container kill",
            Self::Sigterm => "sigterm",
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn show(d: Option<Duration>) -> String {
    d.map_or_else(|| "-".to_owned(), |d| format!("{:.1} ms", ms(d)))
}

fn lab(tag: &str, args: &Args) -> anyhow::Result<FailoverLab> {
    let mut lab = FailoverLab::new(tag, args.nodes, CONFIG);
    if args.keep {
        lab.dir.disable_cleanup(true);
        eprintln!("{tag}: lab directory {}", lab.dir.path().display());
    }
    lab.start_coordinator();
    for i in 0..args.nodes {
        lab.start_agent(i);
    }
    owner(&lab, Duration::from_secs(30)).context("lab start")?;
    Ok(lab)
}

/// One trial's outcome: the move time (None: no move within 5 s) and the probe's view.
#[derive(Debug)]
struct Trial {
    moved: Option<Duration>,
    seen: Seen,
    violation: bool,
}

fn kill_trials(args: &Args, end: End) -> anyhow::Result<Vec<Trial>> {
    let (tag, count) = match end {
        End::Agent => ("fbk", args.trials),
        End::Container => ("fbc", args.container_trials),
        End::Sigterm => ("fbt", args.sigterm_trials),
    };
    if count == 0 {
        return Ok(Vec::new());
    }
    let mut lab = lab(tag, args)?;
    let mut trials = Vec::new();
    while trials.len() < count && !STOP.load(Ordering::Relaxed) {
        let n = trials.len() + 1;
        let old = owner(&lab, Duration::from_secs(15))?;
        let old_mac = lab.mac(old);
        let probe = ArpProbe::start(lab.client(), "eth0", FailoverLab::client_ip(), FIP.parse()?);
        std::thread::sleep(Duration::from_millis(args.lead_ms));
        let t0 = Instant::now();
        match end {
            End::Agent => lab.kill_agent(old),
            End::Container => lab.kill_container(old),
            End::Sigterm => lab.terminate_agent(old),
        }
        let new = moved_off(&lab, old);
        std::thread::sleep(Duration::from_millis(args.tail_ms));
        let seen = analyse(&probe.stop(), t0, old_mac, None);
        let violation = seen.old_after_new > 0 || seen.dual_before > 0;
        eprintln!(
            "{} {n}/{count}: {} ended; old owner silent after {}; {} answered after {}{}{}",
            end.what(),
            node_name(old),
            show(seen.old_last),
            new.map_or_else(|| "nobody".to_owned(), node_name),
            show(seen.moved),
            if seen.baseline {
                ""
            } else {
                " (no baseline reply)"
            },
            if violation { " VIOLATION" } else { "" },
        );
        trials.push(Trial {
            moved: new.and(seen.moved),
            seen,
            violation,
        });
        lab.start_agent(old);
        let name = node_name(old);
        poll(Duration::from_secs(15), || {
            lab.log(&name)
                .contains("coordinator session open")
                .then_some(())
        })
        .with_context(|| format!("{name} did not reconnect after its restart"))?;
        std::thread::sleep(Duration::from_millis(args.settle_ms));
    }
    Ok(trials)
}

fn partition_trials(args: &Args) -> anyhow::Result<(Vec<Trial>, usize)> {
    let lab = lab("fbp", args)?;
    let (mut trials, mut moved_back) = (Vec::new(), 0);
    while trials.len() < args.partition_trials && !STOP.load(Ordering::Relaxed) {
        let n = trials.len() + 1;
        let old = owner(&lab, Duration::from_secs(15))?;
        let old_mac = lab.mac(old);
        let probe = ArpProbe::start(lab.client(), "eth0", FailoverLab::client_ip(), FIP.parse()?);
        std::thread::sleep(Duration::from_millis(args.lead_ms));
        let t0 = Instant::now();
        lab.partition(old);
        let new = moved_off(&lab, old);
        std::thread::sleep(Duration::from_millis(args.tail_ms));
        let healed = Instant::now();
        lab.heal(old);
        std::thread::sleep(Duration::from_millis(args.after_heal_ms));
        let seen = analyse(&probe.stop(), t0, old_mac, Some(healed));
        let violation = seen.dual_before > 0;
        std::thread::sleep(Duration::from_millis(args.settle_ms));
        let back = new.is_some_and(|new| lab.holders(FIP) != [new]);
        moved_back += usize::from(back);
        eprintln!(
            "partition {n}/{}: {} cut off; old owner silent after {}, {} answered after {}; dual \
             answers {} before heal, {} after{}",
            args.partition_trials,
            node_name(old),
            show(seen.old_last),
            new.map_or_else(|| "nobody".to_owned(), node_name),
            show(seen.moved),
            seen.dual_before,
            seen.dual_after,
            if back { "; moved after heal" } else { "" },
        );
        trials.push(Trial {
            moved: new.and(seen.moved),
            seen,
            violation,
        });
    }
    Ok((trials, moved_back))
}

/// Nearest-rank percentile of sorted samples.
fn pct(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn summary(what: &str, trials: &[Trial]) -> serde_json::Value {
    let mut moves: Vec<Duration> = trials.iter().filter_map(|t| t.moved).collect();
    moves.sort();
    let failed = trials.len() - moves.len();
    let violations = trials.iter().filter(|t| t.violation).count();
    let dual_after = trials.iter().filter(|t| t.seen.dual_after > 0).count();
    let no_baseline = trials.iter().filter(|t| !t.seen.baseline).count();
    let old_last = trials.iter().filter_map(|t| t.seen.old_last).max();
    // The silence between the old owner's last reply and the new owner's first: the safety
    // margin seen on the wire (negative would mean overlap).
    let gap = trials
        .iter()
        .filter_map(|t| Some(ms(t.seen.moved?) - ms(t.seen.old_last.unwrap_or_default())))
        .reduce(f64::min);
    println!(
        "{what}: {} trials, {failed} without a move within 5 s",
        trials.len()
    );
    let mut json = serde_json::json!({
        "trials": trials.len(), "no_move": failed, "violations": violations,
        "dual_after_heal": dual_after, "no_baseline": no_baseline,
        "old_last_reply_max_ms": old_last.map(ms), "silence_min_ms": gap,
    });
    if let (Some(min), Some(max)) = (moves.first(), moves.last()) {
        let [p50, p90, p99] = [50.0, 90.0, 99.0].map(|p| pct(&moves, p));
        let mean = moves.iter().sum::<Duration>() / u32::try_from(moves.len()).unwrap_or(1);
        println!(
            "  move (to the first ARP reply from the new owner): p50 {:.1} ms, p90 {:.1}, \
             p99 {:.1}, max {:.1} (min {:.1}, mean {:.1})",
            ms(p50),
            ms(p90),
            ms(p99),
            ms(*max),
            ms(*min),
            ms(mean)
        );
        json["move_ms"] = serde_json::json!({
            "p50": ms(p50), "p90": ms(p90), "p99": ms(p99), "max": ms(*max),
            "min": ms(*min), "mean": ms(mean),
        });
    }
    // The silent gap per trial: from the old owner's last reply (or t0) to the new owner's first.
    let mut gaps: Vec<Duration> = trials
        .iter()
        .filter_map(|t| {
            let last = t.seen.old_last.unwrap_or_default();
            t.seen.moved.map(|m| m.saturating_sub(last))
        })
        .collect();
    gaps.sort();
    if let Some(max) = gaps.last() {
        let [p50, p99] = [50.0, 99.0].map(|p| pct(&gaps, p));
        println!(
            "  silent gap (old owner's last reply to the new owner's first): p50 {:.1} ms, \
             p99 {:.1}, max {:.1}",
            ms(p50),
            ms(p99),
            ms(*max)
        );
        json["gap_ms"] = serde_json::json!({"p50": ms(p50), "p99": ms(p99), "max": ms(*max)});
    }
    println!(
        "  violations: {violations}; old owner's last reply at most {} after t0; shortest \
         silence between old and new owner {}; trials without a baseline reply: {no_baseline}",
        show(old_last),
        gap.map_or_else(|| "-".to_owned(), |g| format!("{g:.1} ms")),
    );
    json
}

fn sessions(args: &Args) -> anyhow::Result<serde_json::Value> {
    let dir = tempfile::tempdir()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let f = runtime.block_on(hearth_tests::sessions::run(
        &hearth_tests::hearth_bin(),
        dir.path(),
        args.sessions,
        args.session_fips,
        Duration::from_secs(args.session_window_s),
        args.session_failovers,
    ))?;
    println!(
        "coordinator with {} sessions and {} floating IPs: CPU {:.3} cores, RSS {:.1} MiB; {} \
         grants, latency p50 {:.2} ms, p99 {:.2}, max {:.2}; failovers (ms, IPs moved): {:?}",
        f.sessions,
        f.floating_ips,
        f.cpu_cores,
        f.rss_mib,
        f.grants,
        f.grant_ms[0],
        f.grant_ms[1],
        f.grant_ms[2],
        f.failover_ms
            .iter()
            .zip(&f.moved)
            .map(|(t, n)| format!("{t:.1}/{n}"))
            .collect::<Vec<_>>()
    );
    Ok(serde_json::to_value(&f)?)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let scale = if args.sessions > 0 {
        Some(sessions(&args)?)
    } else {
        None
    };
    if args.trials + args.container_trials + args.sigterm_trials + args.partition_trials == 0 {
        if let (true, Some(s)) = (args.json, &scale) {
            println!("{s:#}");
        }
        return Ok(());
    }
    if !nix::unistd::Uid::effective().is_root() {
        bail!("failover-bench needs root (network namespaces, raw sockets)");
    }
    if args.nodes < 2 || args.nodes > 80 {
        bail!("--nodes must be 2..=80");
    }
    eprintln!("hearth binary: {}", hearth_tests::hearth_bin().display());
    catch_signals()?;
    let kills = kill_trials(&args, End::Agent)?;
    let containers = kill_trials(&args, End::Container)?;
    let sigterms = kill_trials(&args, End::Sigterm)?;
    let (parts, moved_back) = if STOP.load(Ordering::Relaxed) || args.partition_trials == 0 {
        (Vec::new(), 0)
    } else {
        partition_trials(&args)?
    };
    let mut json = serde_json::json!({
        "kill": summary("kill -9 of the owning agent", &kills),
        "container_kill": summary("kill -9 of the owner's whole process group", &containers),
        "sigterm": summary("SIGTERM of the owning agent (hand-over)", &sigterms),
    });
    json["partition"] = summary("owner partitioned from the coordinator", &parts);
    if let Some(s) = scale {
        json["sessions"] = s;
    }
    json["partition"]["moved_after_heal"] = moved_back.into();
    println!(
        "  dual answers after the heal: {}; the IP moved again after the heal: {moved_back}",
        json["partition"]["dual_after_heal"]
    );
    if args.json {
        println!("{json:#}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(pct(&v, 50.0), Duration::from_millis(50));
        assert_eq!(pct(&v, 99.0), Duration::from_millis(99));
        assert_eq!(pct(&v[..1], 99.0), Duration::from_millis(1));
    }

    #[test]
    fn analysis_times_the_move_and_finds_the_old_owner_answering_late() {
        let t0 = Instant::now();
        let (a, b) = ([1; 6], [2; 6]);
        let at = |ms| t0 + Duration::from_millis(ms);
        let r = |ms, mac| Reply { at: at(ms), mac };
        let clean = [r(0, a), r(10, a), r(400, b), r(401, b)];
        let s = analyse(&clean, at(5), a, None);
        assert_eq!(s.moved, Some(Duration::from_millis(395)));
        assert_eq!(s.old_last, Some(Duration::from_millis(5)));
        assert_eq!((s.old_after_new, s.dual_before), (0, 0));
        assert!(s.baseline);
        assert!(!analyse(&clean[1..], at(5), a, None).baseline);
        let late = [r(0, a), r(400, b), r(410, a), r(900, a)];
        let s = analyse(&late, at(5), a, Some(at(800)));
        assert_eq!(s.old_after_new, 2);
        assert_eq!((s.dual_before, s.dual_after), (1, 1));
        assert!(s.baseline);
    }
}
