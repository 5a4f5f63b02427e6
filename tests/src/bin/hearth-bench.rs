//! `hearth-bench`: full CSI lifecycles (Create -> Stage -> Publish -> Unpublish -> Unstage ->
//! Delete) against a real `hearth dev`, at several concurrencies, for block and ext4 volumes.
//! Prints cycles/s, p50/p99 per RPC and the daemon's peak RSS (VmHWM). Needs root.
//!
//! ```text
//! cargo run --release -p hearth-tests --bin hearth-bench -- --cycles 200 --concurrency 1,16
//! ```

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser;
use hearth_proto::csi::v1::VolumeCapability;
use hearth_tests::requests::*;
use hearth_tests::{connect, CsiClient, Daemon, Mode, Sandbox};

#[derive(Debug, Parser)]
struct Args {
    /// Lifecycles per (mode, concurrency) run.
    #[arg(long, default_value_t = 200)]
    cycles: usize,
    /// Concurrency levels, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,16")]
    concurrency: Vec<usize>,
    /// Volume modes: block, ext4, xfs.
    #[arg(long, value_delimiter = ',', default_value = "block,ext4")]
    modes: Vec<String>,
    /// Volume size in MiB.
    #[arg(long, default_value_t = 64)]
    size_mib: i64,
}

type Samples = Arc<Mutex<BTreeMap<&'static str, Vec<Duration>>>>;

async fn timed<T>(
    samples: &Samples,
    rpc: &'static str,
    fut: impl std::future::Future<Output = Result<T, tonic::Status>>,
) -> anyhow::Result<T> {
    let start = Instant::now();
    let out = fut.await?;
    let took = start.elapsed();
    samples
        .lock()
        .map_err(|_| anyhow::anyhow!("poisoned"))?
        .entry(rpc)
        .or_default()
        .push(took);
    Ok(out)
}

async fn cycle(
    mut c: CsiClient,
    sb_kubelet: std::path::PathBuf,
    name: String,
    cap: VolumeCapability,
    block: bool,
    bytes: i64,
    samples: Samples,
) -> anyhow::Result<()> {
    let staging = sb_kubelet.join(format!("plugins/bench/{name}/globalmount"));
    std::fs::create_dir_all(&staging)?;
    let target = sb_kubelet.join(format!(
        "pods/{name}/{}",
        if block { "dev" } else { "mount" }
    ));
    let (staging, target) = (staging.display().to_string(), target.display().to_string());
    let v = timed(
        &samples,
        "CreateVolume",
        c.controller
            .create_volume(create(&name, bytes, cap.clone())),
    )
    .await?;
    let id = v.into_inner().volume.unwrap_or_default().volume_id;
    timed(
        &samples,
        "NodeStageVolume",
        c.node.node_stage_volume(stage(&id, &staging, cap.clone())),
    )
    .await?;
    timed(
        &samples,
        "NodePublishVolume",
        c.node
            .node_publish_volume(publish(&id, &staging, &target, cap.clone(), false)),
    )
    .await?;
    timed(
        &samples,
        "NodeUnpublishVolume",
        c.node.node_unpublish_volume(unpublish(&id, &target)),
    )
    .await?;
    timed(
        &samples,
        "NodeUnstageVolume",
        c.node.node_unstage_volume(unstage(&id, &staging)),
    )
    .await?;
    timed(
        &samples,
        "DeleteVolume",
        c.controller.delete_volume(delete(&id)),
    )
    .await?;
    Ok(())
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)].as_secs_f64() * 1e3
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        nix::unistd::Uid::effective().is_root(),
        "hearth-bench needs root (loop devices and mounts)"
    );
    let sb = Sandbox::new();
    let daemon = Daemon::start(&sb, &[]);
    let client = connect(daemon.socket()).await?;
    let bytes = args.size_mib << 20;
    println!(
        "hearth-bench: {} cycles per run, {} MiB volumes, daemon pid {}",
        args.cycles,
        args.size_mib,
        daemon.pid()
    );
    let mut total_cycles = 0;
    for mode in &args.modes {
        let (cap, block) = match mode.as_str() {
            "block" => (block_cap(Mode::SingleNodeWriter), true),
            fs @ ("ext4" | "xfs") => (mount_cap(fs, Mode::SingleNodeWriter), false),
            other => anyhow::bail!("unknown mode {other}"),
        };
        for &conc in &args.concurrency {
            let samples: Samples = Arc::default();
            let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let start = Instant::now();
            let mut tasks = Vec::new();
            for _ in 0..conc.max(1) {
                let (client, next, samples, cap, kubelet) = (
                    client.clone(),
                    next.clone(),
                    samples.clone(),
                    cap.clone(),
                    sb.kubelet_dir(),
                );
                let (cycles, mode) = (args.cycles, mode.clone());
                tasks.push(tokio::spawn(async move {
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if i >= cycles {
                            return anyhow::Ok(());
                        }
                        let name = format!("bench-{mode}-{conc}-{i}");
                        cycle(
                            client.clone(),
                            kubelet.clone(),
                            name,
                            cap.clone(),
                            block,
                            bytes,
                            samples.clone(),
                        )
                        .await?;
                    }
                }));
            }
            for t in tasks {
                t.await??;
            }
            let elapsed = start.elapsed().as_secs_f64();
            total_cycles += args.cycles;
            println!(
                "\n{mode} concurrency {conc}: {} cycles in {elapsed:.2} s = {:.1} cycles/s",
                args.cycles,
                args.cycles as f64 / elapsed
            );
            println!(
                "  {:<22} {:>9} {:>9} {:>9}",
                "rpc", "p50 ms", "p99 ms", "max ms"
            );
            let guard = samples.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
            for (rpc, v) in guard.iter() {
                let mut v = v.clone();
                v.sort();
                println!(
                    "  {rpc:<22} {:>9.2} {:>9.2} {:>9.2}",
                    pct(&v, 0.5),
                    pct(&v, 0.99),
                    pct(&v, 1.0)
                );
            }
        }
    }
    println!(
        "\nhearth dev peak RSS (VmHWM) after {total_cycles} lifecycles: {:.1} MiB",
        daemon.peak_rss_kib() as f64 / 1024.0
    );
    anyhow::ensure!(
        sb.mounts().is_empty() && sb.loop_devices().is_empty(),
        "the benchmark leaked mounts or loop devices"
    );
    Ok(())
}
