//! Fuzzes the coordinator config parser (an operator's file, or CRDs in YAML) and the pools it
//! yields.
//!
//! Checks beyond "no panic": a config that parses has unique floating-IP names, and every
//! address allocated from its pools (requested or the lowest free) lies in its pool and is
//! never handed out twice.
#![no_main]

use std::collections::BTreeSet;

use hearth_coordinator::config;
use hearth_coordinator::pools::allocate;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let Ok(cfg) = config::parse(&text) else {
        return;
    };
    let names: BTreeSet<&str> = cfg.file.floating_ips.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names.len(), cfg.file.floating_ips.len(), "duplicate names accepted");
    let mut taken = BTreeSet::new();
    for fip in &cfg.file.floating_ips {
        let Some(pool) = cfg.pools.get(&fip.pool) else {
            panic!("floating IP {} names a missing pool", fip.name);
        };
        if let Ok(address) = allocate(pool, fip.address, &taken) {
            assert!(pool.contains(address), "{address} outside pool {}", pool.name());
            assert!(taken.insert(address), "{address} handed out twice");
        }
    }
});
