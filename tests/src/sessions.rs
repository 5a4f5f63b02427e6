//! The coordinator at cluster scale: a real `hearth coordinator` (plaintext on loopback, SQLite)
//! and N simulated node agents in this process, each with its own HTTP/2 connection and
//! `Session` stream, reporting every report interval as a real agent does. Measures the
//! coordinator's CPU per second and memory, the lease-grant latency (report sent → its Lease
//! received), and the failover of one node's floating IPs when its stream is dropped (the time
//! until other simulated agents have been assigned all of them). The simulated agents share the
//! machine's cores with the coordinator, so the latencies include their own scheduling.

use std::collections::{BTreeSet, HashMap};
use std::io::BufRead as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use hearth_proto::hearth::v1::{
    coordinator_client::CoordinatorClient, coordinator_message, node_message, Capacity, Hello,
    NodeMessage, Report,
};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// What a run measured.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Figures {
    /// Sessions open during the measurement.
    pub sessions: usize,
    /// Floating IPs.
    pub floating_ips: usize,
    /// The coordinator's CPU time per wall second over the window (1.0 = one core).
    pub cpu_cores: f64,
    /// Its resident memory at the end, MiB.
    pub rss_mib: f64,
    /// Leases received in the window.
    pub grants: usize,
    /// Lease-grant latency, ms: p50, p99, max.
    pub grant_ms: [f64; 3],
    /// Per failover, ms from dropping the owner's stream until others were assigned all its IPs.
    pub failover_ms: Vec<f64>,
    /// How many IPs each failover moved.
    pub moved: Vec<usize>,
}

#[derive(Default)]
struct Shared {
    /// Lease latencies in µs, while `measuring`.
    latencies: Mutex<Vec<u32>>,
    measuring: std::sync::atomic::AtomicBool,
    /// Floating IP name → the simulated node last assigned it, and when.
    owners: Mutex<HashMap<String, (usize, Instant)>>,
    /// Sessions that got their Welcome.
    open: std::sync::atomic::AtomicUsize,
}

async fn agent(
    i: usize,
    url: String,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let channel = tonic::transport::Endpoint::from_shared(url)?
        .tcp_nodelay(true)
        .connect()
        .await?;
    let mut client = CoordinatorClient::new(channel);
    let (tx, rx) = mpsc::channel::<NodeMessage>(16);
    tx.send(NodeMessage {
        msg: Some(node_message::Msg::Hello(Hello {
            node_name: format!("sim-{i:04}"),
            version: "sim".into(),
            capacity: Some(Capacity::default()),
            ..Hello::default()
        })),
    })
    .await?;
    let mut inbound = client
        .session(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await?
        .into_inner();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (mut seq, mut sent) = (0u64, std::collections::VecDeque::<(u64, Instant)>::new());
    loop {
        tokio::select! {
            _ = stop.changed() => return Ok(()),
            _ = tick.tick() => {
                seq += 1;
                sent.push_back((seq, Instant::now()));
                if sent.len() > 64 {
                    sent.pop_front();
                }
                let report = Report { seq, healthy: true, ..Report::default() };
                if tx.send(NodeMessage { msg: Some(node_message::Msg::Report(report)) }).await.is_err() {
                    return Ok(());
                }
            }
            m = inbound.message() => match m?.and_then(|m| m.msg) {
                None => return Ok(()),
                Some(coordinator_message::Msg::Welcome(_)) => {
                    shared.open.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                Some(coordinator_message::Msg::Lease(l)) => {
                    if let Some((_, at)) = sent.iter().find(|(s, _)| *s == l.seq) {
                        if shared.measuring.load(std::sync::atomic::Ordering::Relaxed) {
                            let us = u32::try_from(at.elapsed().as_micros()).unwrap_or(u32::MAX);
                            if let Ok(mut v) = shared.latencies.lock() {
                                v.push(us);
                            }
                        }
                    }
                }
                Some(coordinator_message::Msg::Assignments(a)) => {
                    let now = Instant::now();
                    if let Ok(mut o) = shared.owners.lock() {
                        for f in a.floating_ips {
                            o.insert(f.name, (i, now));
                        }
                    }
                }
                Some(_) => {}
            },
        }
    }
}

/// CPU ticks (user + system) of `pid`.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

fn rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

/// Raises this process's open-file limit to its hard limit (children inherit it): a thousand
/// connections need more than the usual 1,024 descriptors on each side.
fn raise_nofile() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid rlimit to write into.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 {
        lim.rlim_cur = lim.rlim_max;
        // SAFETY: `lim` is a valid rlimit.
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
    }
}

struct Coordinator(Child);

impl Drop for Coordinator {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn pct(sorted: &[u32], p: f64) -> f64 {
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // a rank in range
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    f64::from(sorted[rank.clamp(1, sorted.len()) - 1]) / 1000.0
}

/// Runs the bench: `sessions` simulated agents, `fips` floating IPs, CPU measured over
/// `window`, then `failovers` dropped owners.
pub async fn run(
    bin: &Path,
    dir: &Path,
    sessions: usize,
    fips: usize,
    window: Duration,
    failovers: usize,
) -> anyhow::Result<Figures> {
    raise_nofile();
    let mut config =
        String::from("floatingIPPools:\n  - {name: lan, cidrs: [10.200.0.0/16], interface: eth0}\nfloatingIPs:\n");
    for i in 0..fips {
        config.push_str(&format!("  - {{name: ip{i:05}, pool: lan}}\n"));
    }
    std::fs::write(dir.join("coordinator.yaml"), config)?;
    let sock = format!("unix://{}", dir.join("csi.sock").display());
    let mut child = Command::new(bin)
        .args([
            "coordinator",
            "--csi-endpoint",
            &sock,
            "--listen",
            "127.0.0.1:0",
        ])
        .arg("--state-dir")
        .arg(dir)
        .arg("--config")
        .arg(dir.join("coordinator.yaml"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.join("coordinator.log"))?)
        .spawn()
        .context("starting hearth coordinator")?;
    let stdout = child.stdout.take().context("coordinator stdout")?;
    let pid = child.id();
    let _guard = Coordinator(child);
    let addr = std::io::BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find_map(|l| l.strip_prefix("agent API listening on ").map(str::to_owned))
        .context("the coordinator did not print its address")?;
    let url = format!("http://{addr}");
    let shared = Arc::new(Shared::default());
    let mut stops = Vec::new();
    for i in 0..sessions {
        let (stop_tx, stop_rx) = watch::channel(false);
        stops.push(stop_tx);
        let (url, shared) = (url.clone(), Arc::clone(&shared));
        tokio::spawn(async move {
            if let Err(e) = agent(i, url, shared, stop_rx).await {
                eprintln!("sim-{i:04}: {e}");
            }
        });
        if i % 50 == 49 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let all_open = async {
        while shared.open.load(std::sync::atomic::Ordering::Relaxed) < sessions
            || shared.owners.lock().map_or(0, |o| o.len()) < fips
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(120), all_open)
        .await
        .context("sessions did not all open, or floating IPs not all assigned, within 120 s")?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    shared
        .measuring
        .store(true, std::sync::atomic::Ordering::Relaxed);
    let (t0, c0) = (std::time::Instant::now(), cpu_ticks(pid).unwrap_or(0));
    tokio::time::sleep(window).await;
    let (t1, c1) = (std::time::Instant::now(), cpu_ticks(pid).unwrap_or(0));
    shared
        .measuring
        .store(false, std::sync::atomic::Ordering::Relaxed);
    // SAFETY: sysconf takes no pointers.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1);
    #[allow(clippy::cast_precision_loss)] // tick counts are small
    let cpu_cores = (c1 - c0) as f64 / hz as f64 / (t1 - t0).as_secs_f64();
    let mut lat = shared
        .latencies
        .lock()
        .map(|v| v.clone())
        .unwrap_or_default();
    lat.sort_unstable();
    let grant_ms = if lat.is_empty() {
        [0.0; 3]
    } else {
        [
            pct(&lat, 50.0),
            pct(&lat, 99.0),
            f64::from(lat[lat.len() - 1]) / 1000.0,
        ]
    };
    let (mut failover_ms, mut moved) = (Vec::new(), Vec::new());
    let mut dropped = BTreeSet::new();
    for _ in 0..failovers {
        let owned = |node: usize| -> Vec<String> {
            shared.owners.lock().map_or_else(
                |_| Vec::new(),
                |o| {
                    o.iter()
                        .filter(|(_, (n, _))| *n == node)
                        .map(|(k, _)| k.clone())
                        .collect()
                },
            )
        };
        let Some(victim) = (0..sessions).find(|n| !dropped.contains(n) && !owned(*n).is_empty())
        else {
            break;
        };
        let ips = owned(victim);
        dropped.insert(victim);
        let start = Instant::now();
        let _ = stops[victim].send(true);
        let all_moved = async {
            loop {
                let done = shared.owners.lock().is_ok_and(|o| {
                    ips.iter()
                        .all(|ip| o.get(ip).is_some_and(|(n, at)| *n != victim && *at > start))
                });
                if done {
                    return start.elapsed();
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        };
        match tokio::time::timeout(Duration::from_secs(10), all_moved).await {
            Ok(took) => failover_ms.push(took.as_secs_f64() * 1000.0),
            Err(_) => {
                let left = shared.owners.lock().map_or(0, |o| {
                    ips.iter()
                        .filter(|ip| {
                            o.get(*ip)
                                .is_none_or(|(n, at)| *n == victim || *at <= start)
                        })
                        .count()
                });
                eprintln!(
                    "sim-{victim:04}: {left} of {} floating IPs not moved in 10 s",
                    ips.len()
                );
                failover_ms.push(f64::NAN);
            }
        }
        moved.push(ips.len());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(Figures {
        sessions,
        floating_ips: fips,
        cpu_cores,
        rss_mib: rss_mib(pid).unwrap_or(0.0),
        grants: lat.len(),
        grant_ms,
        failover_ms,
        moved,
    })
}
