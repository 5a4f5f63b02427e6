//! Label selectors as the coordinator uses them: a node matches a selector (or a CSI topology
//! segment) when its labels contain every key with the same value. Pure.

use std::collections::BTreeMap;

/// Node labels, node selectors and CSI topology segments.
pub type Labels = BTreeMap<String, String>;

/// Whether `labels` contain every key/value of `selector`; an empty selector matches all.
pub fn matches(labels: &Labels, selector: &Labels) -> bool {
    selector.iter().all(|(k, v)| labels.get(k) == Some(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn every_key_must_match() {
        let node = l(&[("zone", "a"), ("disk", "ssd")]);
        assert!(matches(&node, &l(&[])));
        assert!(matches(&node, &l(&[("zone", "a")])));
        assert!(matches(&node, &l(&[("zone", "a"), ("disk", "ssd")])));
        assert!(!matches(&node, &l(&[("zone", "b")])));
        assert!(!matches(&node, &l(&[("zone", "a"), ("gpu", "yes")])));
    }
}
