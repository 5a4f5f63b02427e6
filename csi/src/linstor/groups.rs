//! Hearth's own resource groups: `hearth-<digest>`, one per distinct set of StorageClass
//! parameters, made on the first CreateVolume of a class and deleted when no resource
//! definition uses them any more.
//!
//! LINSTOR is the judge of "unused": it refuses to delete a group that any resource
//! definition belongs to, even one kept only for its snapshots (FAIL_EXISTS_RSC_DFN,
//! `CtrlRscGrpApiCallHandler.delete`), so a delete after each removed definition is safe
//! without a list. A CreateVolume of the same class that races the delete finds its group
//! gone (FAIL_NOT_FOUND_RSC_GRP) and makes it again. An admin's group (`resourceGroup`) is
//! never created nor deleted here.

use std::sync::PoisonError;

use super::backend::{existing_ok, LinstorBackend};
use super::client::consts::{FAIL_EXISTS_RSC_DFN, FAIL_NOT_FOUND_RSC_GRP};
use super::client::{LinstorError, ResourceDefinitionCreate, ResourceGroup};
use super::create::select_filter;
use super::params::StorageClassParams;
use crate::CsiError;

/// The description Hearth gives its groups; only a group with it is ever deleted.
pub(super) const GROUP_DESCRIPTION: &str = "made by Hearth for a StorageClass";

/// True for a name of the shape Hearth gives its groups (`hearth-` and 16 hex digits).
fn is_hearth_group_name(name: &str) -> bool {
    name.strip_prefix("hearth-")
        .is_some_and(|d| d.len() == 16 && d.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// True when LINSTOR refused because the named resource group does not exist.
fn is_group_missing(e: &LinstorError) -> bool {
    e.is_not_found() && e.code() == Some(FAIL_NOT_FOUND_RSC_GRP)
}

impl LinstorBackend {
    /// The resource group of these parameters, created once (an explicit `resourceGroup` must
    /// exist already).
    pub(super) async fn ensure_group(&self, p: &StorageClassParams) -> Result<String, CsiError> {
        let name = p.resource_group_name();
        let known = self
            .groups
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .contains(&name);
        if !known && p.resource_group.is_none() {
            let group = ResourceGroup {
                name: name.clone(),
                description: GROUP_DESCRIPTION.into(),
                props: p.properties.clone(),
                select_filter: select_filter(p),
                ..Default::default()
            };
            existing_ok(self.client.create_resource_group(&group).await)?;
        }
        self.groups
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name.clone());
        Ok(name)
    }

    fn forget_group(&self, name: &str) {
        self.groups
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(name);
    }

    /// Creates a resource definition in the class's group; when a DeleteVolume of the class's
    /// last volume deleted the group meanwhile, makes the group again and retries once.
    pub(super) async fn create_definition(
        &self,
        create: &ResourceDefinitionCreate,
        p: &StorageClassParams,
    ) -> Result<(), CsiError> {
        match existing_ok(self.client.create_resource_definition(create).await) {
            Err(e) if is_group_missing(&e) && p.resource_group.is_none() => {
                self.forget_group(&p.resource_group_name());
                self.ensure_group(p).await?;
                Ok(existing_ok(
                    self.client.create_resource_definition(create).await,
                )?)
            }
            other => Ok(other?),
        }
    }

    /// Starts a clone into the class's group, making the group again if it went meanwhile.
    pub(super) async fn start_clone(
        &self,
        src: &str,
        request: &super::client::CloneRequest,
        p: &StorageClassParams,
    ) -> Result<(), CsiError> {
        match existing_ok(self.client.clone_resource_definition(src, request).await) {
            Err(e) if is_group_missing(&e) && p.resource_group.is_none() => {
                self.forget_group(&p.resource_group_name());
                self.ensure_group(p).await?;
                Ok(existing_ok(
                    self.client.clone_resource_definition(src, request).await,
                )?)
            }
            other => Ok(other?),
        }
    }

    /// After a resource definition in `group` was deleted: deletes the group when it is one
    /// of Hearth's and LINSTOR says no definition uses it. Never fails the caller's delete.
    pub(super) async fn drop_group_if_unused(&self, group: Option<&str>) {
        let Some(name) = group.filter(|g| is_hearth_group_name(g)) else {
            return;
        };
        match self.client.get_resource_group(name).await {
            Ok(g) if g.description == GROUP_DESCRIPTION => {}
            Ok(_) => return,
            Err(e) if e.is_not_found() => return self.forget_group(name),
            Err(e) => {
                tracing::warn!(group = %name, "reading a resource group: {e}");
                return;
            }
        }
        // Forgotten first: a CreateVolume that starts now makes sure the group exists again.
        self.forget_group(name);
        match self.client.delete_resource_group(name).await {
            Ok(_) => tracing::info!(group = %name, "deleted: no volume uses it any more"),
            Err(e) if e.is_not_found() => {}
            // Still used by another definition (FAIL_EXISTS_RSC_DFN): it stays.
            Err(e) if e.code() == Some(FAIL_EXISTS_RSC_DFN) => {}
            Err(e) => tracing::warn!(group = %name, "deleting an unused resource group: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hearths_group_names_are_candidates() {
        assert!(is_hearth_group_name("hearth-0123456789abcdef"));
        assert!(!is_hearth_group_name("hearth-0123456789abcde"));
        assert!(!is_hearth_group_name("hearth-0123456789abcdeg"));
        assert!(!is_hearth_group_name("sc-fast"));
        assert!(!is_hearth_group_name("DfltRscGrp"));
    }
}
