//! Hearth's agent: the wiring of the node, coordinator and dev roles, the admin commands, and
//! the small HTTP status server. Storage logic lives in `hearth-csi`; this crate only builds
//! the pieces from flags and serves them.

pub mod cli;
pub mod client;
pub mod csi_cmd;
pub mod endpoints;
pub mod health;
pub mod logging;
pub mod net_cmd;
pub mod node;
pub mod roles;
pub mod serve;
pub mod status_cmd;

use cli::{Cli, Command};

/// An error a person can fix by changing the command line or input files; exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// The exit code for an error: 2 for bad input, 1 otherwise.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    if err.downcast_ref::<UsageError>().is_some() {
        2
    } else {
        1
    }
}

/// Runs a parsed command to completion.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::FenceGuard => return node::fence::run_guard(),
        Command::Crds => return print_crds(),
        _ => {}
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .max_blocking_threads(64)
        .thread_stack_size(512 * 1024)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match cli.command {
            Command::Dev(args) => roles::dev(args).await,
            Command::Node(args) => roles::node(args).await,
            Command::Coordinator(args) => roles::coordinator(args).await,
            Command::Csi(args) => csi_cmd::run(args).await,
            Command::Net(args) => net_cmd::run(args).await,
            Command::Status(args) => Ok(status_cmd::run(args).await?),
            Command::FenceGuard | Command::Crds => Ok(()),
        }
    })
}

/// `hearth crds`: every CRD, sorted by name, each document starting with `---`.
fn print_crds() -> anyhow::Result<()> {
    use std::io::Write;
    let yaml = hearth_coordinator::store::kube::crds_yaml()?;
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(yaml.as_bytes())?;
    stdout.flush()?;
    Ok(())
}
