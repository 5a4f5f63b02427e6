//! Crash safety: `hearth dev` is killed with SIGKILL at random points during 50 volume
//! lifecycles, restarted, and every call is retried the way kubelet and the sidecars retry.
//! Afterwards no mount, loop device or image may be left, and data fsync'd before the crashes
//! must be intact.
#![allow(clippy::tests_outside_test_module)] // an integration-test file is a test-only crate

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::Duration;

use hearth_proto::csi::v1::VolumeCapability;
use hearth_tests::requests::*;
use hearth_tests::{connect, root_or_skip, CsiClient, Daemon, Mode, Sandbox};
use rand::{Rng, SeedableRng};

const CYCLES: usize = 50;
const STEPS: usize = 6;

struct Run {
    sb: Sandbox,
    daemon: Option<Daemon>,
    client: CsiClient,
    kills: usize,
}

impl Run {
    async fn restart(&mut self) {
        if let Some(d) = self.daemon.take() {
            d.kill();
        }
        let d = Daemon::start(&self.sb, &[]);
        self.client = connect(d.socket()).await.expect("reconnect");
        self.daemon = Some(d);
    }
}

struct Cycle {
    name: String,
    id: String,
    cap: VolumeCapability,
    block: bool,
    staging: String,
    target: String,
}

async fn step(c: &mut CsiClient, cy: &mut Cycle, n: usize) -> Result<(), tonic::Status> {
    let t = Duration::from_secs(60);
    let call = async {
        match n {
            0 => {
                let v = c
                    .controller
                    .create_volume(create(&cy.name, 16 << 20, cy.cap.clone()))
                    .await?;
                cy.id = v.into_inner().volume.unwrap_or_default().volume_id;
            }
            1 => drop(
                c.node
                    .node_stage_volume(stage(&cy.id, &cy.staging, cy.cap.clone()))
                    .await?,
            ),
            2 => drop(
                c.node
                    .node_publish_volume(publish(
                        &cy.id,
                        &cy.staging,
                        &cy.target,
                        cy.cap.clone(),
                        false,
                    ))
                    .await?,
            ),
            3 => drop(
                c.node
                    .node_unpublish_volume(unpublish(&cy.id, &cy.target))
                    .await?,
            ),
            4 => drop(
                c.node
                    .node_unstage_volume(unstage(&cy.id, &cy.staging))
                    .await?,
            ),
            _ => drop(c.controller.delete_volume(delete(&cy.id)).await?),
        }
        Ok(())
    };
    tokio::time::timeout(t, call)
        .await
        .unwrap_or_else(|_| Err(tonic::Status::deadline_exceeded("test timeout")))
}

/// Writes a pattern through the published volume, fsyncs it, and reads it back.
fn write_and_check(cy: &Cycle, seed: u8) {
    let data = vec![seed; 64 * 1024];
    if cy.block {
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&cy.target)
            .unwrap();
        f.seek(SeekFrom::Start(4096)).unwrap();
        f.write_all(&data).unwrap();
        f.sync_all().unwrap();
        let mut back = vec![0; data.len()];
        f.seek(SeekFrom::Start(4096)).unwrap();
        f.read_exact(&mut back).unwrap();
        assert_eq!(back, data);
    } else {
        let p = Path::new(&cy.target).join("data");
        let mut f = std::fs::File::create(&p).unwrap();
        f.write_all(&data).unwrap();
        f.sync_all().unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), data);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_random_points_leaks_nothing_and_keeps_fsynced_data() {
    if !root_or_skip("crash") {
        return;
    }
    let seed: u64 = std::env::var("HEARTH_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    eprintln!("crash test seed {seed} (set HEARTH_CRASH_SEED to replay)");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let sb = Sandbox::new();
    let d = Daemon::start(&sb, &[]);
    let client = connect(d.socket()).await.unwrap();
    let mut run = Run {
        sb,
        daemon: Some(d),
        client,
        kills: 0,
    };
    let k = run.sb.kubelet_dir();

    // A canary volume whose fsync'd data must survive every crash.
    let canary_cap = mount_cap("ext4", Mode::SingleNodeWriter);
    let canary_staging = k.join("plugins/canary/globalmount");
    std::fs::create_dir_all(&canary_staging).unwrap();
    let mut canary = Cycle {
        name: "canary".into(),
        id: String::new(),
        cap: canary_cap,
        block: false,
        staging: canary_staging.display().to_string(),
        target: k.join("pods/canary/volumes/mount").display().to_string(),
    };
    for n in 0..3 {
        step(&mut run.client, &mut canary, n).await.unwrap();
    }
    write_and_check(&canary, 0xC4);
    for n in 3..5 {
        step(&mut run.client, &mut canary, n).await.unwrap();
    }

    for i in 0..CYCLES {
        let block = i % 2 == 1;
        let staging = k.join(format!("plugins/c{i}/globalmount"));
        std::fs::create_dir_all(&staging).unwrap();
        let target = if block {
            k.join(format!("pods/c{i}/dev"))
        } else {
            k.join(format!("pods/c{i}/mount"))
        };
        let mut cy = Cycle {
            name: format!("crash-{i}"),
            id: String::new(),
            cap: if block {
                block_cap(Mode::SingleNodeWriter)
            } else {
                mount_cap("ext4", Mode::SingleNodeWriter)
            },
            block,
            staging: staging.display().to_string(),
            target: target.display().to_string(),
        };
        let kill_step = rng.random_range(0..STEPS);
        let delay = Duration::from_micros(rng.random_range(0..30_000));
        for n in 0..STEPS {
            let mut attempts = 0;
            let mut last = None;
            loop {
                attempts += 1;
                assert!(
                    attempts < 50,
                    "cycle {i} step {n} keeps failing: {last:?}\n{}",
                    std::fs::read_to_string(run.sb.path().join("hearth.log"))
                        .unwrap_or_default()
                        .lines()
                        .rev()
                        .take(15)
                        .collect::<Vec<_>>()
                        .join("\n")
                );
                let result = if n == kill_step && attempts == 1 {
                    let pid = nix::unistd::Pid::from_raw(run.daemon.as_ref().unwrap().pid() as i32);
                    let killer = std::thread::spawn(move || {
                        std::thread::sleep(delay);
                        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
                    });
                    let r = step(&mut run.client, &mut cy, n).await;
                    killer.join().unwrap();
                    run.kills += 1;
                    run.restart().await;
                    r
                } else {
                    step(&mut run.client, &mut cy, n).await
                };
                match result {
                    Ok(()) => break,
                    Err(s)
                        if matches!(
                            s.code(),
                            tonic::Code::Unavailable
                                | tonic::Code::Aborted
                                | tonic::Code::Unknown
                                | tonic::Code::Cancelled
                        ) =>
                    {
                        last = Some(s);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    Err(s) => panic!("cycle {i} step {n}: {s:?}"),
                }
            }
            if n == 2 {
                write_and_check(&cy, i as u8);
            }
        }
    }
    eprintln!("{CYCLES} lifecycles, {} kills", run.kills);

    // The canary's data survived every crash.
    for n in 1..3 {
        step(&mut run.client, &mut canary, n).await.unwrap();
    }
    assert_eq!(
        std::fs::read(Path::new(&canary.target).join("data")).unwrap(),
        vec![0xC4; 64 * 1024]
    );
    for n in 3..6 {
        step(&mut run.client, &mut canary, n).await.unwrap();
    }

    assert!(
        run.sb.mounts().is_empty(),
        "leaked mounts: {:?}",
        run.sb.mounts()
    );
    assert!(
        run.sb.loop_devices().is_empty(),
        "leaked loop devices: {:?}",
        run.sb.loop_devices()
    );
    assert!(
        run.sb.images().is_empty(),
        "leaked images: {:?}",
        run.sb.images()
    );
    let listed = run
        .client
        .controller
        .list_volumes(hearth_proto::csi::v1::ListVolumesRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(
        listed.entries.is_empty(),
        "leaked records: {}",
        listed.entries.len()
    );
    let pending = std::fs::read_dir(run.sb.state_dir().join("node/formatting"))
        .unwrap()
        .count();
    assert_eq!(pending, 0, "leaked format markers");
}
