use super::*;

fn problems(text: &str) -> Vec<String> {
    match parse(text) {
        Err(ConfigError::Validate(p)) => p.iter().map(ToString::to_string).collect(),
        other => panic!("expected validation problems, got {other:?}"),
    }
}

fn has(problems: &[String], needle: &str) -> bool {
    problems.iter().any(|p| p.contains(needle))
}

#[test]
fn the_contract_example_parses() {
    let c = parse(
        "floatingIPPools:\n\
         \x20 - {name: public, cidrs: [203.0.113.0/28], interface: eth0}   # comment\n\
         floatingIPs:\n\
         \x20 - {name: web, pool: public}\n",
    )
    .unwrap();
    assert_eq!(c.file.floating_ip_pools[0].interface, "eth0");
    assert_eq!(c.file.floating_ips[0].address, None);
    assert_eq!(c.pools["public"].size(), 14);
}

#[test]
fn every_optional_field() {
    let c = parse(
        r#"
floatingIPPools:
  - name: public
    cidrs: [203.0.113.0/28, "2001:db8::/64"]
    ranges: ["198.51.100.10-198.51.100.20"]
    exclude: [203.0.113.1, 203.0.113.8/30]
    interface: br-ext
    nodeSelector: {hearth.dev/edge: "true"}
floatingIPs:
  - {name: web, pool: public, address: 198.51.100.12, nodeSelector: {topology.kubernetes.io/zone: a}}
  - {name: db.v6, pool: public, address: "2001:db8::5"}
"#,
    )
    .unwrap();
    let pool = &c.pools["public"];
    assert!(pool.is_excluded("203.0.113.9".parse().unwrap()));
    assert_eq!(requested_addresses(&c).len(), 2);
}

#[test]
fn empty_and_null_are_empty() {
    for text in ["", "floatingIPPools:\nfloatingIPs: null\n", "{}"] {
        let c = parse(text).unwrap();
        assert!(
            c.file.floating_ip_pools.is_empty() && c.pools.is_empty(),
            "{text:?}"
        );
    }
}

#[test]
fn unknown_keys_and_types_name_the_line() {
    let err = parse(
        "floatingIPPools:\n  - {name: p, cidrs: [10.0.0.0/24], interface: eth0, color: red}\n",
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, ConfigError::Parse(_)));
    assert!(msg.contains("color") && msg.contains("line 2"), "{msg}");
    let msg = parse("floatingIPz: []\n").unwrap_err().to_string();
    assert!(msg.contains("floatingIPz"), "{msg}");
    let msg = parse("floatingIPs:\n  - {name: a, pool: p, address: 10.0.0.300}\n")
        .unwrap_err()
        .to_string();
    assert!(msg.contains("line 2"), "{msg}");
}

#[test]
fn pool_problems_name_the_entry_and_field() {
    let p = problems(
        r#"
floatingIPPools:
  - {name: a, cidrs: [10.0.0.0/24], interface: eth0}
  - {name: a, cidrs: [10.1.0.0/24], interface: eth0}
  - {name: b, cidrs: [10.2.0.1/24], interface: eth0}
  - {name: c, ranges: ["10.3.0.9-10.3.0.1"], interface: eth0}
  - {name: d, ranges: ["10.4.0.1-2001:db8::1"], interface: eth0}
  - {name: e, cidrs: [10.5.0.0/24], exclude: [nope], interface: eth0}
  - {name: f, cidrs: [10.6.0.0/24], interface: ""}
  - {name: g, cidrs: [10.7.0.0/24], interface: "a-very-long-interface"}
  - {name: h, interface: eth0}
  - {name: i, cidrs: [10.0.0.128/25], interface: eth0}
  - {name: j, cidrs: [10.9.0.0/30], exclude: [10.9.0.0/30], interface: eth0}
  - {name: Bad_Name, cidrs: [10.10.0.0/24], interface: eth0}
  - {name: k, cidrs: [10.11.0.0/24], interface: eth0, nodeSelector: {"bad key!": x}}
"#,
    );
    assert!(
        has(
            &p,
            "floatingIPPools[1] (a).name: duplicate; first defined at floatingIPPools[0]"
        ),
        "{p:#?}"
    );
    assert!(
        has(
            &p,
            "floatingIPPools[2] (b).cidrs[0]: \"10.2.0.1/24\": host bits"
        ),
        "{p:#?}"
    );
    assert!(has(&p, "floatingIPPools[3] (c).ranges[0]"), "{p:#?}");
    assert!(has(&p, "floatingIPPools[4] (d).ranges[0]"), "{p:#?}");
    assert!(has(&p, "floatingIPPools[5] (e).exclude[0]"), "{p:#?}");
    assert!(has(&p, "floatingIPPools[6] (f).interface"), "{p:#?}");
    assert!(has(&p, "floatingIPPools[7] (g).interface"), "{p:#?}");
    assert!(
        has(&p, "floatingIPPools[8] (h): has no addresses"),
        "{p:#?}"
    );
    assert!(
        has(
            &p,
            "floatingIPPools[9] (i): overlaps pool a (both contain 10.0.0.129)"
        ),
        "{p:#?}"
    );
    assert!(
        has(&p, "floatingIPPools[10] (j): every address is excluded"),
        "{p:#?}"
    );
    assert!(has(&p, "floatingIPPools[11].name"), "{p:#?}");
    assert!(
        has(&p, "floatingIPPools[12] (k).nodeSelector.bad key!"),
        "{p:#?}"
    );
    assert_eq!(p.len(), 12, "{p:#?}");
}

#[test]
fn floating_ip_problems_name_the_entry_and_field() {
    let p = problems(
        r#"
floatingIPPools:
  - {name: public, cidrs: [203.0.113.0/28], exclude: [203.0.113.5], interface: eth0}
  - {name: broken, cidrs: [nope], interface: eth0}
floatingIPs:
  - {name: a, pool: public, address: 203.0.113.2}
  - {name: a, pool: public}
  - {name: b, pool: nowhere}
  - {name: c, pool: public, address: 203.0.113.2}
  - {name: d, pool: public, address: 203.0.113.5}
  - {name: e, pool: public, address: 203.0.113.15}
  - {name: f, pool: public, address: 198.51.100.1}
  - {name: g, pool: broken, address: 198.51.100.2}
"#,
    );
    assert!(has(&p, "floatingIPPools[1] (broken).cidrs[0]"), "{p:#?}");
    assert!(
        has(
            &p,
            "floatingIPs[1] (a).name: duplicate; first defined at floatingIPs[0]"
        ),
        "{p:#?}"
    );
    assert!(
        has(&p, "floatingIPs[2] (b).pool: no pool named \"nowhere\""),
        "{p:#?}"
    );
    assert!(
        has(
            &p,
            "floatingIPs[3] (c).address: 203.0.113.2 is also requested by floating IP a"
        ),
        "{p:#?}"
    );
    assert!(
        has(&p, "floatingIPs[4] (d).address: 203.0.113.5 is excluded"),
        "{p:#?}"
    );
    assert!(
        has(
            &p,
            "floatingIPs[5] (e).address: 203.0.113.15 is not an address of pool public"
        ),
        "{p:#?}"
    );
    assert!(has(&p, "floatingIPs[6] (f).address"), "{p:#?}");
    // g's pool is broken: reported once, at the pool.
    assert_eq!(p.len(), 7, "{p:#?}");
}

#[test]
fn load_names_the_file() {
    let err = load(Path::new("/nonexistent/hearth.yaml")).unwrap_err();
    assert!(err.to_string().contains("/nonexistent/hearth.yaml"));
}
