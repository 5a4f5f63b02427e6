//! Hearth's agent, the `hearth` binary's library: flags ([`cli`]), the wiring of the dev, node
//! and coordinator roles ([`roles`], the one place that builds the pieces), the node's session
//! client ([`node`]), its kubelet plugin registration ([`registration`]), its health snapshot ([`health`]) and the HTTP endpoints ([`endpoints`]),
//! the admin commands, and the exit codes ([`error`]). Storage logic lives in `hearth-csi`,
//! networking in `hearth-net`, the coordinator and its store in `hearth-coordinator`.

pub mod authority;
pub mod cli;
pub mod client;
pub mod cluster_view;
pub mod csi_cmd;
pub mod endpoints;
pub mod error;
pub mod health;
pub mod logging;
pub mod net_cmd;
pub mod node;
pub mod registration;
pub mod roles;
pub mod serve;
pub mod status_cmd;

use cli::{Cli, Command};

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
