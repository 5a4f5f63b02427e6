//! `linstor-sim`: the LINSTOR controller simulator (see `hearth_tests::linstor_sim`), for tests
//! and `hearth dev --backend linstor` demos. Not LINSTOR.
//!
//! ```text
//! linstor-sim --listen 127.0.0.1:3370 [--state-dir DIR] [--nodes n1,n2,n3] [--pool-size 10GiB]
//! ```
//! Prints `linstor-sim listening on URL`; runs until SIGTERM/SIGINT, then frees its loop
//! devices and files. Exit codes: 0 after a clean stop, 1 when it cannot start, 2 on bad flags.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use hearth_tests::linstor_sim::{parse_size_kib, DeviceMode, SimConfig, Simulator, TlsFiles};

#[derive(Debug, Parser)]
#[command(
    name = "linstor-sim",
    about = "A LINSTOR controller simulator for tests (not LINSTOR)"
)]
struct Args {
    /// Address to listen on (port 0: any free port).
    #[arg(long, env = "HEARTH_SIM_LISTEN", default_value = "127.0.0.1:3370")]
    listen: SocketAddr,
    /// Directory for volume and snapshot images (a temporary one when absent).
    #[arg(long, env = "HEARTH_SIM_STATE_DIR")]
    state_dir: Option<PathBuf>,
    /// Node names, comma-separated.
    #[arg(
        long,
        env = "HEARTH_SIM_NODES",
        value_delimiter = ',',
        default_value = "node-a,node-b,node-c"
    )]
    nodes: Vec<String>,
    /// Storage pools per node as NAME:KIND, comma-separated (KIND: LVM_THIN, LVM, ZFS, ZFS_THIN).
    #[arg(
        long,
        env = "HEARTH_SIM_POOLS",
        value_delimiter = ',',
        default_value = "data:LVM_THIN"
    )]
    pools: Vec<String>,
    /// Size of each storage pool (KiB, or with K/M/G/T, optionally "iB").
    #[arg(long, env = "HEARTH_SIM_POOL_SIZE", default_value = "10GiB")]
    pool_size: String,
    /// Back volumes with loop devices (`loop`, needs root), or report /dev/drbdN only (`none`);
    /// `auto` picks `loop` when running as root.
    #[arg(long, env = "HEARTH_SIM_DEVICES", default_value = "auto")]
    devices: String,
    /// Serve HTTPS with this certificate (needs --tls-key and --tls-client-ca).
    #[arg(long, env = "HEARTH_SIM_TLS_CERT", requires_all = ["tls_key", "tls_client_ca"])]
    tls_cert: Option<PathBuf>,
    /// The server key for HTTPS.
    #[arg(long, env = "HEARTH_SIM_TLS_KEY")]
    tls_key: Option<PathBuf>,
    /// The CA that client certificates must chain to.
    #[arg(long, env = "HEARTH_SIM_TLS_CLIENT_CA")]
    tls_client_ca: Option<PathBuf>,
}

fn config(args: Args) -> Result<SimConfig, String> {
    let pool_size_kib = parse_size_kib(&args.pool_size)
        .ok_or_else(|| format!("bad --pool-size {:?}", args.pool_size))?;
    let pools = args
        .pools
        .iter()
        .map(|p| {
            p.split_once(':')
                .map(|(n, k)| (n.to_owned(), k.to_owned()))
                .ok_or_else(|| format!("bad --pools entry {p:?}; want NAME:KIND"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let devices = match args.devices.as_str() {
        "loop" => DeviceMode::Loop,
        "none" => DeviceMode::None,
        "auto" if nix::unistd::Uid::effective().is_root() => DeviceMode::Loop,
        "auto" => DeviceMode::None,
        other => return Err(format!("bad --devices {other:?}; want loop, none or auto")),
    };
    let tls = match (args.tls_cert, args.tls_key, args.tls_client_ca) {
        (Some(cert), Some(key), Some(client_ca)) => Some(TlsFiles {
            cert,
            key,
            client_ca,
        }),
        (None, None, None) => None,
        _ => return Err("--tls-cert, --tls-key and --tls-client-ca go together".into()),
    };
    if args.nodes.is_empty() {
        return Err("--nodes must name at least one node".into());
    }
    Ok(SimConfig {
        listen: args.listen,
        state_dir: args.state_dir,
        nodes: args.nodes,
        pools,
        pool_size_kib,
        devices,
        tls,
        record: false,
    })
}

fn main() -> ExitCode {
    let args = Args::parse();
    let config = match config(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("linstor-sim: {e}");
            return ExitCode::from(2);
        }
    };
    let sim = match Simulator::start(config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("linstor-sim: {e}");
            return ExitCode::from(1);
        }
    };
    println!("linstor-sim listening on {}", sim.url());
    let waited = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map(|rt| {
            rt.block_on(async {
                use tokio::signal::unix::{signal, SignalKind};
                match (
                    signal(SignalKind::terminate()),
                    signal(SignalKind::interrupt()),
                ) {
                    (Ok(mut term), Ok(mut int)) => {
                        tokio::select! {
                            _ = term.recv() => {}
                            _ = int.recv() => {}
                        }
                    }
                    _ => std::future::pending::<()>().await,
                }
            });
        });
    if let Err(e) = waited {
        eprintln!("linstor-sim: signal handling: {e}");
    }
    let errors = sim.stop();
    for e in &errors {
        eprintln!("linstor-sim: cleanup: {e}");
    }
    if errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
