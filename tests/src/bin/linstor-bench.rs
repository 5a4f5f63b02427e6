//! `linstor-bench`: the cost of CreateVolume and ControllerPublish with the LINSTOR backend,
//! against the LINSTOR **simulator** (in this process, no devices): REST calls per operation
//! and wall time. Not a timed test; figures go to docs/benchmarks.md.
//!
//! ```text
//! cargo run --release -p hearth-tests --bin linstor-bench -- --volumes 200
//! ```

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use clap::Parser;
use hearth_csi::backend::{PublishSpec, VolumeBackend, VolumeSpec};
use hearth_csi::linstor::client::{ClientConfig, LinstorClient};
use hearth_csi::linstor::LinstorBackend;
use hearth_tests::linstor_sim::{SimConfig, Simulator};

#[derive(Debug, Parser)]
struct Args {
    /// Volumes to create and publish.
    #[arg(long, default_value_t = 200)]
    volumes: usize,
    /// Replicas per volume.
    #[arg(long, default_value_t = 2)]
    replicas: u32,
}

fn report(what: &str, calls: &[u64], times: &mut [Duration]) {
    times.sort();
    let pct = |p: f64| times[((times.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1e3;
    let avg = calls.iter().sum::<u64>() as f64 / calls.len() as f64;
    let max = calls.iter().max().copied().unwrap_or(0);
    println!(
        "{what:<20} REST calls avg {avg:.1} max {max}   wall p50 {:.2} ms  p99 {:.2} ms",
        pct(0.5),
        pct(0.99)
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let sim = Simulator::start(SimConfig {
        pool_size_kib: 1 << 40,
        ..SimConfig::default()
    })?;
    let client = LinstorClient::connect(&ClientConfig::new(sim.url())).await?;
    let backend = LinstorBackend::new(client);
    let parameters = BTreeMap::from([
        (
            "linstor.csi.linbit.com/storagePool".to_owned(),
            "data".to_owned(),
        ),
        (
            "linstor.csi.linbit.com/autoPlace".to_owned(),
            args.replicas.to_string(),
        ),
        (
            "linstor.csi.linbit.com/layerList".to_owned(),
            "drbd storage".to_owned(),
        ),
    ]);
    let (mut create_calls, mut create_times) = (Vec::new(), Vec::new());
    let (mut publish_calls, mut publish_times) = (Vec::new(), Vec::new());
    for i in 0..args.volumes {
        let spec = VolumeSpec {
            name: format!("pvc-bench-{i}"),
            capacity_bytes: 1 << 30,
            limit_bytes: 0,
            parameters: parameters.clone(),
            source: None,
            requisite: Vec::new(),
            preferred: Vec::new(),
        };
        let (before, start) = (backend.rest_calls(), Instant::now());
        let volume = backend.create_volume(&spec).await?;
        create_times.push(start.elapsed());
        create_calls.push(backend.rest_calls() - before);

        let publish = PublishSpec {
            volume_id: volume.id.clone(),
            node_id: "node-c".into(),
            readonly: false,
            multi_writer: false,
        };
        let (before, start) = (backend.rest_calls(), Instant::now());
        backend.publish(&publish).await?;
        publish_times.push(start.elapsed());
        publish_calls.push(backend.rest_calls() - before);
    }
    println!(
        "linstor-bench: {} volumes, {} replicas each, against the simulator",
        args.volumes, args.replicas
    );
    report("CreateVolume", &create_calls, &mut create_times);
    report("ControllerPublish", &publish_calls, &mut publish_times);
    Ok(())
}
