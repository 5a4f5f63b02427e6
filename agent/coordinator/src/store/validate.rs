//! Checks both stores apply before writing, so that they refuse the same records.

use super::{FloatingIp, FloatingIpPool, FloatingIpState, StoreError, VolumeLocation};

/// The longest CSI volume ID the CSI spec allows (bytes).
const MAX_VOLUME_ID: usize = 128;

/// `name` is a DNS-1123 subdomain: at most 253 characters of lowercase alphanumerics, `-` and
/// `.`, starting and ending with an alphanumeric (the rule for Kubernetes object names).
pub(crate) fn is_dns1123_subdomain(name: &str) -> bool {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    !name.is_empty()
        && name.len() <= 253
        && name.starts_with(alnum)
        && name.ends_with(alnum)
        && name.chars().all(|c| alnum(c) || c == '-' || c == '.')
}

fn name(what: &str, name: &str) -> Result<(), StoreError> {
    if is_dns1123_subdomain(name) {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "{what} name {name:?} is not a DNS-1123 subdomain (lowercase a-z, 0-9, '-', '.')"
        )))
    }
}

/// A pool's name.
pub(crate) fn pool(pool: &FloatingIpPool) -> Result<(), StoreError> {
    name("pool", &pool.name)
}

/// A floating IP's name and pool reference.
pub(crate) fn floating_ip(fip: &FloatingIp) -> Result<(), StoreError> {
    name("floating IP", &fip.name)?;
    name("pool", &fip.pool)
}

/// A pool name used as a key (delete).
pub(crate) fn pool_name(pool: &str) -> Result<(), StoreError> {
    name("pool", pool)
}

/// A floating IP name used as a key (delete).
pub(crate) fn floating_ip_name(fip: &str) -> Result<(), StoreError> {
    name("floating IP", fip)
}

/// A state to swap in after `expected_epoch`.
pub(crate) fn state(expected_epoch: u64, state: &FloatingIpState) -> Result<(), StoreError> {
    name("floating IP", &state.name)?;
    if state.epoch <= expected_epoch {
        return Err(StoreError::Invalid(format!(
            "floating IP {}: new epoch {} does not grow past {expected_epoch}",
            state.name, state.epoch
        )));
    }
    if i64::try_from(state.epoch).is_err() {
        return Err(StoreError::Invalid(format!(
            "floating IP {}: epoch {} out of range",
            state.name, state.epoch
        )));
    }
    Ok(())
}

/// A volume ID: non-empty, at most 128 bytes (CSI).
pub(crate) fn volume_id(id: &str) -> Result<(), StoreError> {
    if id.is_empty() || id.len() > MAX_VOLUME_ID {
        return Err(StoreError::Invalid(format!(
            "volume ID {id:?} must be 1 to {MAX_VOLUME_ID} bytes"
        )));
    }
    Ok(())
}

/// A volume record.
pub(crate) fn volume(volume: &VolumeLocation) -> Result<(), StoreError> {
    volume_id(&volume.id)?;
    if i64::try_from(volume.size_bytes).is_err() {
        return Err(StoreError::Invalid(format!(
            "volume {}: size {} out of range",
            volume.id, volume.size_bytes
        )));
    }
    Ok(())
}

/// A replacement of the volume record `expected` by `volume`.
pub(crate) fn volume_update(
    expected: &VolumeLocation,
    volume: &VolumeLocation,
) -> Result<(), StoreError> {
    self::volume(volume)?;
    if expected.id != volume.id {
        return Err(StoreError::Invalid(format!(
            "volume {}: an update cannot change the ID (to {})",
            expected.id, volume.id
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::is_dns1123_subdomain;

    #[test]
    fn dns1123_subdomains() {
        for ok in ["a", "web", "pool-1", "a.b-c.d", "0abc"] {
            assert!(is_dns1123_subdomain(ok), "{ok}");
        }
        let long = "a".repeat(254);
        for bad in ["", "Web", "-a", "a-", "a_b", "pvc/x", ".a", long.as_str()] {
            assert!(!is_dns1123_subdomain(bad), "{bad}");
        }
    }
}
