use std::time::Instant;

use proptest::prelude::*;

use super::*;

fn pool(cidrs: &[&str], ranges: &[&str], exclude: &[&str]) -> Pool {
    Pool::parse(&def(cidrs, ranges, exclude)).unwrap()
}

fn def(cidrs: &[&str], ranges: &[&str], exclude: &[&str]) -> FloatingIpPool {
    let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect();
    FloatingIpPool {
        name: "p".to_owned(),
        cidrs: s(cidrs),
        ranges: s(ranges),
        exclude: s(exclude),
        interface: "eth0".to_owned(),
        node_selector: Default::default(),
    }
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn all(p: &Pool) -> Vec<IpAddr> {
    let mut taken = BTreeSet::new();
    while let Ok(a) = allocate(p, None, &taken) {
        taken.insert(a);
    }
    taken.into_iter().collect()
}

#[test]
fn ipv4_cidr_skips_network_and_broadcast() {
    let p = pool(&["203.0.113.0/29"], &[], &[]);
    assert_eq!(p.size(), 6);
    assert_eq!(all(&p).first(), Some(&ip("203.0.113.1")));
    assert_eq!(all(&p).last(), Some(&ip("203.0.113.6")));
    assert!(!p.contains(ip("203.0.113.0")) && !p.contains(ip("203.0.113.7")));
    assert_eq!(pool(&["203.0.113.0/31"], &[], &[]).size(), 2);
    assert_eq!(pool(&["203.0.113.5/32"], &[], &[]).size(), 1);
    // IPv6 has no broadcast: every address of a prefix is usable.
    assert_eq!(pool(&["2001:db8::/126"], &[], &[]).size(), 4);
}

#[test]
fn ranges_and_exclusions() {
    let p = pool(
        &["2001:db8::/120"],
        &["203.0.113.10-203.0.113.14", "203.0.113.12 - 203.0.113.20"],
        &["203.0.113.11", "203.0.113.16/30", "2001:db8::/127"],
    );
    let v4: Vec<String> = all(&p)
        .iter()
        .filter(|a| a.is_ipv4())
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        v4,
        ["10", "12", "13", "14", "15", "20"].map(|x| format!("203.0.113.{x}"))
    );
    assert_eq!(p.size(), 6 + 254);
    assert!(p.is_excluded(ip("203.0.113.17")) && !p.contains(ip("203.0.113.17")));
    assert_eq!(allocate(&p, None, &BTreeSet::new()), Ok(ip("203.0.113.10")));
}

#[test]
fn bad_entries_are_named() {
    let e = |d: FloatingIpPool| Pool::parse(&d).unwrap_err();
    let err = e(def(&["203.0.113.0/28", "203.0.113.5/28"], &[], &[]));
    assert_eq!((err.field, err.index), ("cidrs", 1));
    assert!(err.message.contains("203.0.113.0/28"), "{err}");
    assert_eq!(e(def(&["nope"], &[], &[])).field, "cidrs");
    let err = e(def(&[], &["203.0.113.9-203.0.113.1"], &[]));
    assert!(err.message.contains("greater"), "{err}");
    let err = e(def(&[], &["203.0.113.1-2001:db8::1"], &[]));
    assert!(err.message.contains("families"), "{err}");
    let err = e(def(&[], &["203.0.113.1"], &[]));
    assert!(err.message.contains("range"), "{err}");
    let err = e(def(&["203.0.113.0/28"], &[], &["x/1"]));
    assert_eq!((err.field, err.index), ("exclude", 0));
}

#[test]
fn requested_address() {
    let p = pool(&["203.0.113.0/28"], &[], &["203.0.113.3"]);
    let taken = BTreeSet::from([ip("203.0.113.1")]);
    assert_eq!(
        allocate(&p, Some(ip("203.0.113.9")), &taken),
        Ok(ip("203.0.113.9"))
    );
    assert!(matches!(
        allocate(&p, Some(ip("203.0.113.1")), &taken),
        Err(AllocError::Taken { .. })
    ));
    assert!(matches!(
        allocate(&p, Some(ip("203.0.113.3")), &taken),
        Err(AllocError::Excluded { .. })
    ));
    for outside in ["203.0.113.0", "203.0.113.15", "198.51.100.1", "2001:db8::1"] {
        assert!(matches!(
            allocate(&p, Some(ip(outside)), &taken),
            Err(AllocError::NotInPool { .. })
        ));
    }
    assert_eq!(allocate(&p, None, &taken), Ok(ip("203.0.113.2")));
}

#[test]
fn exhausted_pool_is_an_error() {
    let p = pool(&["203.0.113.0/30"], &[], &[]);
    let taken = BTreeSet::from([ip("203.0.113.1"), ip("203.0.113.2")]);
    let err = allocate(&p, None, &taken).unwrap_err();
    assert_eq!(
        err,
        AllocError::Exhausted {
            pool: "p".to_owned(),
            size: 2
        }
    );
    assert!(err.to_string().contains("no free address"));
    let empty = pool(&["203.0.113.0/30"], &[], &["203.0.113.0/30"]);
    assert_eq!(empty.size(), 0);
    assert!(allocate(&empty, None, &BTreeSet::new()).is_err());
}

#[test]
fn huge_ipv6_pools_are_instant() {
    let p = pool(&["2001:db8::/64", "::/0"], &[], &["2001:db8::/112"]);
    // 2^128 addresses less the excluded /112.
    assert_eq!(p.size(), u128::MAX - 65535);
    let start = Instant::now();
    let mut taken = BTreeSet::new();
    for _ in 0..2000 {
        let a = allocate(&p, None, &taken).unwrap();
        assert!(taken.insert(a));
    }
    // The ::/0 block starts at ::, so the lowest free addresses are ::, ::1, ...
    assert_eq!(taken.iter().next(), Some(&ip("::")));
    let p64 = pool(&["2001:db8::/64"], &[], &[]);
    let taken: BTreeSet<IpAddr> = (0..2000u128)
        .map(|i| IpAddr::V6(Ipv6Addr::from(u128::from(ip_v6("2001:db8::")) + i)))
        .collect();
    assert_eq!(allocate(&p64, None, &taken), Ok(ip("2001:db8::7d0")));
    assert!(start.elapsed().as_secs() < 2, "{:?}", start.elapsed());
    let top = pool(
        &[],
        &["ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"],
        &[],
    );
    let taken = BTreeSet::from([
        ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe"),
        ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
    ]);
    assert!(matches!(
        allocate(&top, None, &taken),
        Err(AllocError::Exhausted { .. })
    ));
}

fn ip_v6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

#[test]
fn overlap_between_pools() {
    let a = pool(&["203.0.113.0/28"], &[], &[]);
    let b = pool(&[], &["203.0.113.14-203.0.113.20"], &[]);
    let c = pool(&["203.0.113.16/28", "2001:db8::/64"], &[], &[]);
    assert_eq!(a.overlap(&b), Some(ip("203.0.113.14")));
    assert_eq!(b.overlap(&a), Some(ip("203.0.113.14")));
    assert_eq!(a.overlap(&c), None);
    assert_eq!(b.overlap(&c), Some(ip("203.0.113.17")));
}

/// A small IPv4 pool (inside 10.0.0.0/24) with exclusions, as written in a config.
fn small_pool() -> impl Strategy<Value = FloatingIpPool> {
    let cidr = (0u8..=255, 26u8..=32).prop_map(|(a, len)| {
        let mask = if len == 32 {
            255
        } else {
            !((1u8 << (32 - len)) - 1)
        };
        format!("10.0.0.{}/{len}", a & mask)
    });
    let range = (0u8..=255, 0u8..20)
        .prop_map(|(a, n)| format!("10.0.0.{a}-10.0.0.{}", a.saturating_add(n)));
    let excl = (0u8..=255, prop::bool::ANY).prop_map(|(a, net)| {
        if net {
            format!("10.0.0.{}/30", a & !3)
        } else {
            format!("10.0.0.{a}")
        }
    });
    (
        prop::collection::vec(cidr, 0..3),
        prop::collection::vec(range, 0..3),
        prop::collection::vec(excl, 0..6),
    )
        .prop_map(|(cidrs, ranges, exclude)| FloatingIpPool {
            name: "p".to_owned(),
            cidrs,
            ranges,
            exclude,
            interface: "eth0".to_owned(),
            node_selector: Default::default(),
        })
}

/// The pool's addresses by brute force over 10.0.0.0/24, from the record's text.
fn brute_force(d: &FloatingIpPool) -> BTreeSet<IpAddr> {
    let nets = |v: &[String]| -> Vec<IpNet> {
        v.iter()
            .map(|s| {
                s.parse()
                    .unwrap_or_else(|_| format!("{s}/32").parse().unwrap())
            })
            .collect()
    };
    let (cidrs, excl) = (nets(&d.cidrs), nets(&d.exclude));
    (0..=255u8)
        .map(|i| IpAddr::V4(Ipv4Addr::new(10, 0, 0, i)))
        .filter(|a| {
            let in_cidr = cidrs.iter().any(|n| {
                n.contains(a)
                    && (n.prefix_len() >= 31 || (*a != n.network() && *a != n.broadcast()))
            });
            let in_range = d.ranges.iter().any(|r| {
                let (x, y) = r.split_once('-').unwrap();
                (ip(x)..=ip(y)).contains(a)
            });
            (in_cidr || in_range) && !excl.iter().any(|n| n.contains(a))
        })
        .collect()
}

proptest! {
    #[test]
    fn allocations_are_unique_inside_and_exhaust(d in small_pool(), pre in prop::collection::btree_set(0u8..=255, 0..40)) {
        let p = Pool::parse(&d).unwrap();
        let expected = brute_force(&d);
        prop_assert_eq!(p.size(), expected.len() as u128);
        let mut taken: BTreeSet<IpAddr> = pre.iter().map(|i| IpAddr::V4(Ipv4Addr::new(10, 0, 0, *i))).collect();
        let free = expected.difference(&taken).count();
        let mut got = Vec::new();
        loop {
            match allocate(&p, None, &taken) {
                Ok(a) => {
                    prop_assert!(expected.contains(&a), "{} outside the pool", a);
                    prop_assert!(!p.is_excluded(a));
                    // The lowest free one.
                    prop_assert_eq!(Some(&a), expected.difference(&taken).next());
                    prop_assert!(taken.insert(a), "{} handed out twice", a);
                    got.push(a);
                }
                Err(e) => {
                    prop_assert!(matches!(e, AllocError::Exhausted { .. }), "{}", e);
                    break;
                }
            }
        }
        prop_assert_eq!(got.len(), free);
    }

    #[test]
    fn requests_are_honoured_only_when_valid(d in small_pool(), req in 0u8..=255, pre in prop::collection::btree_set(0u8..=255, 0..40)) {
        let p = Pool::parse(&d).unwrap();
        let expected = brute_force(&d);
        let taken: BTreeSet<IpAddr> = pre.iter().map(|i| IpAddr::V4(Ipv4Addr::new(10, 0, 0, *i))).collect();
        let a = IpAddr::V4(Ipv4Addr::new(10, 0, 0, req));
        let ok = expected.contains(&a) && !taken.contains(&a);
        prop_assert_eq!(allocate(&p, Some(a), &taken).is_ok(), ok);
    }

    #[test]
    fn ipv6_allocations_never_repeat(prefix in 64u8..=124, n in 1usize..200, excl in prop::collection::vec(0u128..256, 0..10)) {
        let base: u128 = u128::from(ip_v6("2001:db8::"));
        let exclude: Vec<String> = excl.iter().map(|i| Ipv6Addr::from(base + i).to_string()).collect();
        let d = FloatingIpPool { exclude, ..def(&[&format!("2001:db8::/{prefix}")], &[], &[]) };
        let p = Pool::parse(&d).unwrap();
        let mut taken = BTreeSet::new();
        for _ in 0..n {
            match allocate(&p, None, &taken) {
                Ok(a) => {
                    prop_assert!(p.contains(a) && !p.is_excluded(a));
                    prop_assert!(taken.insert(a));
                }
                Err(_) => {
                    prop_assert_eq!(taken.len() as u128, p.size());
                    break;
                }
            }
        }
    }
}
