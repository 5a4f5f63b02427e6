//! Address uniqueness on Kubernetes: one [`FloatingIPClaim`] per address, named after the
//! address ([`claim_object_name`]) and created with create-only semantics before a floating
//! IP's state may name the address. Of two writers that give one address to two floating IPs
//! (two coordinators that both believe they lead), the apiserver lets exactly one create the
//! claim; the other gets 409 and is refused, never overwrites.
//!
//! A claim names its floating IP by name and uid. It is released when that floating IP is
//! deleted (and carries an ownerReference, so the garbage collector removes it too). A claim
//! whose floating IP is gone (no object of that uid), or whose floating IP holds another
//! address (a claim left by a write that failed after claiming; a stored address never
//! changes), is stale and may be taken over: deleted with its uid as precondition, then
//! created anew. This module touches only `floatingipclaims`; it reads FloatingIPs.

use std::net::IpAddr;

use kube::api::{Api, PostParams};
use kube::{Resource, ResourceExt};

use super::crd::{claim_object_name, FloatingIPClaim, FloatingIpClaimSpec};
use super::{is_status, kube_err, only_if_uid, FloatingIP};
use crate::store::StoreError;

/// How many times a claim is retried after it was found stale or raced for.
const ATTEMPTS: usize = 3;

/// Whether `claim` belongs to `fip`.
fn owned_by(claim: &FloatingIPClaim, fip: &FloatingIP) -> bool {
    claim.spec.floating_ip == fip.name_any()
        && Some(claim.spec.floating_ip_uid.as_str()) == fip.metadata.uid.as_deref()
}

/// Whether `claim` may be taken over: its floating IP is gone, or holds another address.
async fn stale(fips: &Api<FloatingIP>, claim: &FloatingIPClaim) -> Result<bool, StoreError> {
    let owner = &claim.spec.floating_ip;
    let fip = fips
        .get_opt(owner)
        .await
        .map_err(|e| kube_err(&format!("get floating IP {owner} of a claim"), e))?;
    Ok(match fip {
        None => true,
        Some(f) if f.metadata.uid.as_deref() != Some(claim.spec.floating_ip_uid.as_str()) => true,
        Some(f) => f
            .status
            .as_ref()
            .is_some_and(|s| s.address != claim.spec.address),
    })
}

/// Deletes `claim` if it is still the object that was read (uid precondition).
async fn delete_exact(
    claims: &Api<FloatingIPClaim>,
    claim: &FloatingIPClaim,
) -> Result<(), StoreError> {
    let dp = only_if_uid(claim.uid());
    let name = claim.name_any();
    match claims.delete(&name, &dp).await {
        Ok(_) => Ok(()),
        // Gone, or replaced by another claim since: either way not ours to delete now.
        Err(e) if is_status(&e, 404) || is_status(&e, 409) => Ok(()),
        Err(e) => Err(kube_err(&format!("delete claim {name}"), e)),
    }
}

/// Makes sure `address` is claimed by `fip` (which must carry its uid): `Ok` if it is already
/// or the claim is created now; `Conflict` if another floating IP holds it.
pub(super) async fn claim(
    claims: &Api<FloatingIPClaim>,
    fips: &Api<FloatingIP>,
    address: IpAddr,
    fip: &FloatingIP,
) -> Result<(), StoreError> {
    let name = claim_object_name(address);
    let fip_name = fip.name_any();
    let uid = fip.metadata.uid.clone().ok_or_else(|| {
        StoreError::Backend(format!("floating IP {fip_name} was read without a uid"))
    })?;
    let step = |op: &str| format!("{op} claim {name} of {address} for floating IP {fip_name}");
    for _ in 0..ATTEMPTS {
        let existing = claims
            .get_opt(&name)
            .await
            .map_err(|e| kube_err(&step("get"), e))?;
        match existing {
            Some(c) if owned_by(&c, fip) => return Ok(()),
            Some(c) => {
                if !stale(fips, &c).await? {
                    return Err(StoreError::Conflict(format!(
                        "floating IP {fip_name}: address {address} is claimed by floating IP {}",
                        c.spec.floating_ip
                    )));
                }
                tracing::info!(%address, stale_owner = %c.spec.floating_ip, to = %fip_name,
                    "taking over a stale address claim");
                delete_exact(claims, &c).await?;
            }
            None => {
                let mut object = FloatingIPClaim::new(
                    &name,
                    FloatingIpClaimSpec {
                        address,
                        floating_ip: fip_name.clone(),
                        floating_ip_uid: uid.clone(),
                    },
                );
                object.metadata.owner_references = fip.owner_ref(&()).map(|o| vec![o]);
                match claims.create(&PostParams::default(), &object).await {
                    Ok(_) => return Ok(()),
                    // Created by someone else since the read: look again.
                    Err(e) if is_status(&e, 409) => {}
                    Err(e) => return Err(kube_err(&step("create"), e)),
                }
            }
        }
    }
    Err(StoreError::Conflict(format!(
        "{}: lost {ATTEMPTS} races in a row",
        step("write")
    )))
}

/// Deletes the claim of `address` if the floating IP `fip_name` of uid `uid` holds it.
pub(super) async fn release(
    claims: &Api<FloatingIPClaim>,
    address: IpAddr,
    fip_name: &str,
    uid: &str,
) -> Result<(), StoreError> {
    let name = claim_object_name(address);
    let existing = claims
        .get_opt(&name)
        .await
        .map_err(|e| kube_err(&format!("get claim {name}"), e))?;
    match existing {
        Some(c) if c.spec.floating_ip == fip_name && c.spec.floating_ip_uid == uid => {
            delete_exact(claims, &c).await
        }
        _ => Ok(()),
    }
}
