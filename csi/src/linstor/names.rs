//! How CSI names and IDs map to LINSTOR names, and the properties Hearth keeps on LINSTOR
//! objects. Pure: touches nothing.
//!
//! A volume's ID is its resource definition's name. A CSI name that is a valid LINSTOR name
//! (the usual `pvc-<uuid>`) is used as it is, so an admin sees the PV name in `linstor r l`;
//! any other name is hashed into `hearth-<hex>`. The mapping is a pure function, so a retried
//! CreateVolume always lands on the same resource definition: no local catalog is needed.
//! A snapshot's ID is `<resource definition>/<snapshot name>`.

use sha2::{Digest, Sha256};

/// Properties Hearth sets on resource definitions (LINSTOR's `Aux/` namespace is free for
/// users).
pub mod props {
    /// The CSI name the volume was created with.
    pub const CSI_NAME: &str = "Aux/hearth.dev/csi-name";
    /// A digest of the StorageClass parameters, to tell a compatible retry from a conflict.
    pub const PARAMS: &str = "Aux/hearth.dev/params";
    /// The content source, `snapshot:<id>` or `volume:<id>`.
    pub const SOURCE: &str = "Aux/hearth.dev/source";
    /// Whether volumes may be attached disklessly on nodes without a replica.
    pub const REMOTE_ACCESS: &str = "Aux/hearth.dev/remote-access";
    /// Comma-separated nodes the volume is published to (ControllerPublish).
    pub const ATTACHED: &str = "Aux/hearth.dev/attached";
    /// Comma-separated nodes whose diskless replica a publish created (removed on unpublish).
    pub const TEMP_DISKLESS: &str = "Aux/hearth.dev/temp-diskless";
    /// Comma-separated nodes the volume is published to read-only (a publish with another
    /// readonly flag is ALREADY_EXISTS, as the CSI spec says).
    pub const READONLY: &str = "Aux/hearth.dev/readonly";
    /// Set while DeleteVolume has run but snapshots keep the resource definition; the last
    /// DeleteSnapshot removes it.
    pub const DELETED: &str = "Aux/hearth.dev/deleted";
    /// The CSI name of a volume whose CreateVolume has not finished: it survives LINSTOR's
    /// copy of the source's properties in a restore or clone (a finished source never has
    /// it), so a retry knows the definition as its own.
    pub const BUILDING: &str = "Aux/hearth.dev/building";
    /// Properties that belong to one volume's life and never carry over to a restore or a
    /// clone (LINSTOR copies every resource-definition property into both).
    pub const TRANSIENT: &[&str] = &[
        ATTACHED,
        TEMP_DISKLESS,
        READONLY,
        DELETED,
        TWO_PRIMARIES,
        PROTOCOL,
    ];
    /// Set by LINSTOR's DRBD layer: two primaries for live migration.
    pub const TWO_PRIMARIES: &str = "DrbdOptions/Net/allow-two-primaries";
    /// Set with two primaries: DRBD's synchronous protocol.
    pub const PROTOCOL: &str = "DrbdOptions/Net/protocol";
    /// The resource property LINSTOR reads for a diskful replica's storage pool.
    pub const STOR_POOL: &str = "StorPoolName";
}

/// True when `s` is a valid LINSTOR object name (resource definitions, snapshots, groups).
pub fn is_linstor_name(s: &str) -> bool {
    let mut bytes = s.bytes();
    let first_ok = bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_');
    first_ok
        && (2..=48).contains(&s.len())
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn hashed(prefix: &str, name: &str) -> String {
    let digest = Sha256::digest(name.as_bytes());
    let hex: String = digest.iter().take(12).map(|b| format!("{b:02x}")).collect();
    format!("{prefix}{hex}")
}

/// The resource definition for a CSI volume name.
pub fn resource_definition(csi_name: &str) -> String {
    if is_linstor_name(csi_name) {
        csi_name.to_owned()
    } else {
        hashed("hearth-", csi_name)
    }
}

/// The LINSTOR snapshot name for a CSI snapshot name.
pub fn snapshot_name(csi_name: &str) -> String {
    if is_linstor_name(csi_name) {
        csi_name.to_owned()
    } else {
        hashed("snap-", csi_name)
    }
}

/// The CSI ID of a snapshot.
pub fn snapshot_id(rd: &str, snapshot: &str) -> String {
    format!("{rd}/{snapshot}")
}

/// Splits a snapshot ID into resource definition and snapshot name, if it is one of Hearth's.
pub fn parse_snapshot_id(id: &str) -> Option<(&str, &str)> {
    let (rd, snap) = id.split_once('/')?;
    (is_linstor_name(rd) && is_linstor_name(snap)).then_some((rd, snap))
}

/// A comma-separated node list, parsed.
pub fn node_list(value: Option<&String>) -> Vec<String> {
    value
        .map(|v| {
            v.split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// KiB, rounded up, from bytes.
pub fn kib(bytes: u64) -> u64 {
    bytes.div_ceil(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_stably_and_safely() {
        let pvc = "pvc-3f1c2a9e-8d1b-4c8e-9a7f-0123456789ab";
        assert_eq!(resource_definition(pvc), pvc);
        let odd = resource_definition("my volume/with spaces");
        assert!(is_linstor_name(&odd) && odd.starts_with("hearth-"), "{odd}");
        assert_eq!(odd, resource_definition("my volume/with spaces"));
        assert!(!is_linstor_name("9starts-with-digit"));
        assert!(!is_linstor_name(&"x".repeat(49)));
        let id = snapshot_id(pvc, &snapshot_name("snapshot-1"));
        assert_eq!(parse_snapshot_id(&id), Some((pvc, "snapshot-1")));
        assert_eq!(parse_snapshot_id("../x"), None);
        assert_eq!(node_list(Some(&"a,,b".to_string())), ["a", "b"]);
        assert_eq!(kib(1), 1);
        assert_eq!(kib(2048), 2);
    }
}
