//! `hearth net`: `apply` applies one node network file once in the current network namespace
//! and prints the plan; `run` keeps the namespace converged and announces floating IPs until
//! stopped. Thin: flags in, library calls, plan out, errors mapped to exit codes.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::UsageError;
use hearth_net::announce::{Announcer, PacketSocket, Schedule};
use hearth_net::apply::converge;
use hearth_net::controller::{self, ControllerError, Options};
use hearth_net::netlink::{Netlink, Owner, RtNetlink};
use hearth_net::render::render;
use hearth_net::spec::{self, SpecError};
use hearth_net::sysctl::ProcSys;

/// Flags of `hearth net`.
#[derive(Debug, Args)]
pub struct NetArgs {
    /// What to do.
    #[command(subcommand)]
    pub command: NetCommand,
}

/// `hearth net` commands.
#[derive(Debug, Subcommand)]
pub enum NetCommand {
    /// Apply a node network file once in the current network namespace and print the plan.
    Apply(ApplyArgs),
    /// Keep the current network namespace converged to a node network file and announce its
    /// floating IPs, until SIGTERM. The file is reloaded when it changes or on SIGHUP.
    Run(RunArgs),
}

/// Flags of `hearth net apply`.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The node network file (YAML).
    #[arg(long, env = "HEARTH_FILE")]
    pub file: PathBuf,
    /// Print the plan without changing anything.
    #[arg(long, env = "HEARTH_DRY_RUN")]
    pub dry_run: bool,
}

/// Flags of `hearth net run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The node network file (YAML).
    #[arg(long, env = "HEARTH_FILE")]
    pub file: PathBuf,
    /// Full resync period, like 30s or 500ms (events trigger passes in between).
    #[arg(long, env = "HEARTH_RESYNC_INTERVAL", default_value = "30s", value_parser = parse_duration)]
    pub resync_interval: Duration,
    /// Floating-IP refresh period after the initial burst.
    #[arg(long, env = "HEARTH_ANNOUNCE_REFRESH", default_value = "30s", value_parser = parse_duration)]
    pub announce_refresh: Duration,
}

/// Parses `250ms`, `10s`, `2m`, or a bare number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("{s:?} is not a duration like 500ms, 10s or 2m");
    let (num, mult) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else {
        (s, 1.0)
    };
    let v: f64 = num.trim().parse().map_err(|_| bad())?;
    if !v.is_finite() || v <= 0.0 {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(v * mult))
}

fn usage(path: &std::path::Path, e: SpecError) -> anyhow::Error {
    UsageError(format!("{}: {e}", path.display())).into()
}

/// Runs a `hearth net` command.
pub async fn run(args: NetArgs) -> anyhow::Result<()> {
    match args.command {
        NetCommand::Apply(a) => apply(a).await,
        NetCommand::Run(r) => {
            let opts = Options {
                resync: r.resync_interval,
                schedule: Schedule {
                    refresh: r.announce_refresh,
                    ..Schedule::default()
                },
                ..Options::default()
            };
            controller::run(r.file, opts).await.map_err(|e| match e {
                ControllerError::Load { path, source } => usage(&path, source),
                other => other.into(),
            })
        }
    }
}

async fn apply(args: ApplyArgs) -> anyhow::Result<()> {
    let start = std::time::Instant::now();
    let mut file = spec::load(&args.file).map_err(|e| usage(&args.file, e))?;
    let ovn_lines =
        hearth_net::ovn::apply::for_network_file(&mut file, args.dry_run, Duration::from_secs(10))
            .await
            .map_err(|e| match e {
                e @ hearth_net::ovn::OvnError::Spec { .. } => {
                    usage(&args.file, SpecError::Parse(e.to_string()))
                }
                e => e.into(),
            })?;
    let desired = render(&file);
    tracing::debug!(took = ?start.elapsed(), "file parsed and rendered");
    let netlink = Arc::new(RtNetlink::open()?);
    let outcome = converge(&*netlink, &ProcSys::default(), &desired, args.dry_run).await?;

    // Floating IPs: the announcer's own plan, then one immediate announcement round.
    let have = netlink.addresses().await?;
    let mut fip_lines = Vec::new();
    for f in &desired.floating_ips {
        let present = have.iter().any(|a| {
            a.owner == Owner::Floating && a.item.dev == f.dev && a.item.prefix.addr == f.address
        });
        if !present {
            fip_lines.push(format!("+ floating IP {} dev {}", f.address, f.dev));
        }
    }
    for a in have.iter().filter(|a| a.owner == Owner::Floating) {
        if !desired
            .floating_ips
            .iter()
            .any(|f| f.dev == a.item.dev && f.address == a.item.prefix.addr)
        {
            fip_lines.push(format!(
                "- floating IP {} dev {}",
                a.item.prefix.addr, a.item.dev
            ));
        }
    }
    let mut errors: Vec<String> = outcome
        .report
        .failures
        .iter()
        .map(ToString::to_string)
        .collect();
    if !args.dry_run && (!fip_lines.is_empty() || !desired.floating_ips.is_empty()) {
        let schedule = Schedule {
            burst: vec![Duration::ZERO],
            refresh: Duration::from_secs(3600),
        };
        let announcer = Announcer::new(
            Arc::clone(&netlink),
            Arc::new(PacketSocket::open()?),
            schedule,
        );
        errors.extend(
            announcer
                .sync(&desired.floating_ips)
                .await
                .iter()
                .map(ToString::to_string),
        );
    }

    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for l in &ovn_lines {
        writeln!(out, "{l}")?;
    }
    for a in &outcome.plan.actions {
        writeln!(out, "{a}")?;
    }
    for l in &fip_lines {
        writeln!(out, "{l}")?;
    }
    for c in &outcome.plan.conflicts {
        writeln!(out, "{c}")?;
    }
    let (add, change, remove) = outcome.plan.counts();
    write!(
        out,
        "plan: {add} to add, {change} to change, {remove} to remove"
    )?;
    if !fip_lines.is_empty() {
        write!(out, ", {} floating IP changes", fip_lines.len())?;
    }
    if !outcome.plan.conflicts.is_empty() {
        write!(
            out,
            ", {} blocked by objects Hearth does not own",
            outcome.plan.conflicts.len()
        )?;
    }
    writeln!(out)?;
    if args.dry_run {
        writeln!(out, "dry run: nothing changed")?;
    } else {
        writeln!(out, "applied: {} writes", outcome.report.writes)?;
    }
    out.flush().context("writing the plan")?;
    drop(out);
    for e in &errors {
        eprintln!("hearth: {e}");
    }
    if !errors.is_empty() {
        anyhow::bail!("{} steps failed", errors.len());
    }
    if !outcome.plan.conflicts.is_empty() {
        anyhow::bail!(
            "{} desired objects are blocked by objects Hearth does not own",
            outcome.plan.conflicts.len()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("3").unwrap(), Duration::from_secs(3));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("fast").is_err());
    }
}
