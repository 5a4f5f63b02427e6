//! A stable 64-bit hash for deterministic tie-breaks (rendezvous hashing) in placement and
//! floating-IP assignment. Pure; owns no state.
//!
//! std's hashers are either randomized per process or not promised to stay the same across
//! Rust releases, so they cannot decide anything the coordinator persists. This one is fixed:
//! FNV-1a over the bytes, then the splitmix64 finalizer so that near-identical names spread
//! over the whole range. Changing it changes which node wins a tie for *new* decisions (never
//! existing ones), so treat it as a contract and keep the golden test below passing.

/// FNV-1a (64-bit) over `bytes`, finished with splitmix64.
pub fn stable_hash(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    mix(h)
}

/// The rendezvous weight of `node` for `key`, from their precomputed [`stable_hash`]es. Not
/// symmetric: `weight(a, b) != weight(b, a)` in general.
pub fn weight(key_hash: u64, node_hash: u64) -> u64 {
    mix(key_hash
        ^ node_hash
            .rotate_left(29)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

/// The rendezvous weight of `node` for `key`: the node with the highest weight wins a tie.
pub fn rendezvous(key: &str, node: &str) -> u64 {
    weight(stable_hash(key.as_bytes()), stable_hash(node.as_bytes()))
}

/// The splitmix64 finalizer.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Golden values: if these change, every tie in the cluster may be decided differently.
    #[test]
    fn values_are_stable() {
        assert_eq!(stable_hash(b""), 0xf52a_15e9_a9b5_e89b);
        assert_eq!(stable_hash(b"node-a"), 0x8299_5e46_723a_0e5f);
        assert_eq!(rendezvous("web", "node-a"), 0x7aaf_2035_ad0f_f3fe);
    }

    #[test]
    fn rendezvous_depends_on_both_sides() {
        assert_ne!(rendezvous("web", "node-a"), rendezvous("web", "node-b"));
        assert_ne!(rendezvous("web", "node-a"), rendezvous("db", "node-a"));
        assert_ne!(rendezvous("a", "b"), rendezvous("b", "a"));
    }
}
