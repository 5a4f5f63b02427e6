//! `hearth net`: `apply` applies one node network file once in the current network namespace
//! and prints the plan; `run` keeps the namespace converged and announces floating IPs until
//! stopped. Thin: flags in, library calls, plan out, errors mapped to exit codes.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::error::UsageError;
use hearth_net::announce::{self, Announcer, PacketSocket, Schedule};
use hearth_net::apply::converge;
use hearth_net::controller::{self, ControllerError, Options};
use hearth_net::netlink::{Netlink, Owner, RtNetlink};
use hearth_net::render::render;
use hearth_net::spec::host::Host;
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
    /// The local Open_vSwitch database to remove Hearth's OVN configuration from when the file
    /// has no `ovn:` section (with one, its `ovsdb` is used). Nothing happens when it is not
    /// there.
    #[arg(
        long,
        env = "HEARTH_OVSDB",
        default_value = "unix:/run/openvswitch/db.sock"
    )]
    pub ovsdb: String,
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

/// What `hearth net apply` did, counted over netlink, sysctls, OVSDB and floating IPs.
#[derive(Debug, Default, PartialEq, Eq)]
struct Tally {
    writes: usize,
    failed: usize,
}

impl Tally {
    /// `applied: N writes`, or `applied: A of N writes, F failed`.
    fn line(&self) -> String {
        if self.failed == 0 {
            format!("applied: {} writes", self.writes)
        } else {
            format!(
                "applied: {} of {} writes, {} failed",
                self.writes.saturating_sub(self.failed),
                self.writes,
                self.failed
            )
        }
    }
}

/// `plan: A to add, C to change, R to remove`, counted over every line of the plan.
fn plan_line(lines: &[String], conflicts: usize) -> String {
    let count = |c: char| lines.iter().filter(|l| l.starts_with(c)).count();
    let mut out = format!(
        "plan: {} to add, {} to change, {} to remove",
        count('+'),
        count('~'),
        count('-')
    );
    if conflicts > 0 {
        out.push_str(&format!(
            ", {conflicts} blocked by objects Hearth does not own"
        ));
    }
    out
}

async fn apply(args: ApplyArgs) -> anyhow::Result<()> {
    let start = std::time::Instant::now();
    let text = std::fs::read_to_string(&args.file).map_err(|source| {
        usage(
            &args.file,
            SpecError::Read {
                path: args.file.clone(),
                source,
            },
        )
    })?;
    let mut file = spec::parse(&text).map_err(|e| usage(&args.file, e))?;
    let netlink = Arc::new(RtNetlink::open()?);
    // One observation before anything changes: the checks against the node and the
    // floating-IP plan, the same for a dry run and a real one.
    let have = netlink.addresses().await?;
    let host = Host {
        links: netlink
            .links()
            .await?
            .into_iter()
            .map(|l| l.link.name)
            .collect(),
        addresses: have.iter().map(|a| a.item.prefix.addr).collect(),
    };
    spec::host::check(&file, &host).map_err(|e| usage(&args.file, e.at_line(&text)))?;
    let ovn = hearth_net::ovn::apply::for_network_file(
        &mut file,
        &args.ovsdb,
        args.dry_run,
        Duration::from_secs(10),
    )
    .await
    .map_err(|e| match e {
        hearth_net::ovn::OvnError::Spec(e) => usage(&args.file, e),
        e => e.into(),
    })?;
    let desired = render(&file);
    tracing::debug!(took = ?start.elapsed(), "file parsed and rendered");
    let fips = announce::plan(&desired.floating_ips, &have, Owner::Floating);
    let outcome = converge(&*netlink, &ProcSys::default(), &desired, args.dry_run).await?;

    let mut errors: Vec<String> = Vec::new();
    let mut tally = Tally::default();
    if !args.dry_run {
        tally.writes = outcome.report.writes + ovn.actions.len() + fips.len();
        tally.failed = outcome.report.failed_writes() + (ovn.actions.len() - ovn.applied());
    }
    errors.extend(outcome.report.failures.iter().map(ToString::to_string));
    errors.extend(ovn.failed.iter().map(ToString::to_string));
    if !args.dry_run && (!fips.is_empty() || !desired.floating_ips.is_empty()) {
        let schedule = Schedule {
            burst: vec![Duration::ZERO],
            refresh: Duration::from_secs(3600),
        };
        let announcer = Announcer::new(
            Arc::clone(&netlink),
            Arc::new(PacketSocket::open()?),
            schedule,
        );
        let failed = announcer.sync(&desired.floating_ips).await;
        tally.failed += failed.len().min(fips.len());
        errors.extend(failed.iter().map(ToString::to_string));
    }

    let mut lines: Vec<String> = ovn
        .actions
        .iter()
        .map(hearth_net::ovn::apply::describe)
        .collect();
    lines.extend(outcome.plan.actions.iter().map(ToString::to_string));
    lines.extend(fips.iter().map(ToString::to_string));
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    for l in &lines {
        writeln!(out, "{l}")?;
    }
    for c in &outcome.plan.conflicts {
        writeln!(out, "{c}")?;
    }
    writeln!(out, "{}", plan_line(&lines, outcome.plan.conflicts.len()))?;
    if args.dry_run {
        writeln!(out, "dry run: nothing changed")?;
    } else {
        writeln!(out, "{}", tally.line())?;
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
    fn failed_writes_are_not_counted_as_applied() {
        let t = Tally {
            writes: 3,
            failed: 2,
        };
        assert_eq!(t.line(), "applied: 1 of 3 writes, 2 failed");
        assert_eq!(
            Tally {
                writes: 3,
                failed: 0
            }
            .line(),
            "applied: 3 writes"
        );
    }

    #[test]
    fn the_plan_counts_every_line() {
        let lines: Vec<String> = [
            "~ ovs external_ids ovn-encap-ip=10.0.0.11 (was 10.9.9.9)",
            "- floating IP 10.0.0.5 dev eth0",
            "+ link br-ext (bridge, up)",
        ]
        .map(String::from)
        .into();
        assert_eq!(
            plan_line(&lines, 0),
            "plan: 1 to add, 1 to change, 1 to remove"
        );
    }

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
