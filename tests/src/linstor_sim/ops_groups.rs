//! Resource groups: create (with a select filter and properties), modify (properties,
//! description, filter keys), delete (refused with `FAIL_EXISTS_RSC_DFN` while definitions
//! use the group).
//!
//! Owns: these state changes.

use serde_json::Value;

use super::consts::*;
use super::parse::{bad, change_props, check_name, props_of, str_of};
use super::reply::{Fail, Rc};
use super::state::{Group, State};

/// `FAIL_NOT_FOUND_RSC_GRP`.
pub fn rg_not_found(name: &str) -> Fail {
    Fail(
        Rc::err(
            0,
            obj::RSC_GRP,
            FAIL_NOT_FOUND_RSC_GRP,
            format!("Resource group '{name}' not found."),
        )
        .obj("RscGrp", name),
    )
}

impl State {
    /// `POST /v1/resource-groups`.
    pub fn create_group(&mut self, body: &Value) -> Result<Vec<Rc>, Fail> {
        let name = str_of(body, "name").ok_or_else(|| bad("resource group name missing"))?;
        check_name(&name, "resource group")?;
        if self.groups.contains_key(&name) {
            return Err(Fail(
                Rc::err(
                    OP_CREATE,
                    obj::RSC_GRP,
                    FAIL_EXISTS_RSC_GRP,
                    format!("Resource group '{name}' already exists."),
                )
                .obj("RscGrp", &name),
            ));
        }
        let filter = match body.get("select_filter") {
            Some(Value::Object(m)) => m.clone(),
            None | Some(Value::Null) => serde_json::Map::new(),
            Some(_) => return Err(bad("select_filter must be an object")),
        };
        let group = Group {
            name: name.clone(),
            description: str_of(body, "description").unwrap_or_default(),
            props: props_of(body, "props")?,
            filter,
            uuid: self.uuid(),
        };
        self.groups.insert(name.clone(), group);
        Ok(vec![Rc::ok(
            OP_CREATE,
            obj::RSC_GRP,
            CREATED,
            format!("New resource group '{name}' created."),
        )
        .obj("RscGrp", &name)])
    }

    /// `PUT /v1/resource-groups/{rg}`.
    pub fn modify_group(&mut self, name: &str, body: &Value) -> Result<Vec<Rc>, Fail> {
        let group = self
            .groups
            .get_mut(name)
            .ok_or_else(|| rg_not_found(name))?;
        let mut out = change_props(&mut group.props, body, obj::RSC_GRP)?;
        if let Some(d) = str_of(body, "description") {
            group.description = d;
        }
        match body.get("select_filter") {
            Some(Value::Object(m)) => group.filter.extend(m.clone()),
            None | Some(Value::Null) => {}
            Some(_) => return Err(bad("select_filter must be an object")),
        }
        out.push(
            Rc::ok(
                OP_MODIFY,
                obj::RSC_GRP,
                MODIFIED,
                format!("Resource group '{name}' modified."),
            )
            .obj("RscGrp", name),
        );
        Ok(out)
    }

    /// `DELETE /v1/resource-groups/{rg}`. As `CtrlRscGrpApiCallHandler.delete`: refused
    /// with `FAIL_EXISTS_RSC_DFN` while any resource definition belongs to the group, one
    /// kept only for its snapshots too.
    pub fn delete_group(&mut self, name: &str) -> Result<Vec<Rc>, Fail> {
        if !self.groups.contains_key(name) {
            return Err(rg_not_found(name));
        }
        if self.rds.values().any(|rd| rd.group == name) {
            return Err(Fail(Rc::err(OP_DELETE, obj::RSC_GRP, FAIL_EXISTS_RSC_DFN, format!("Cannot delete resource group '{name}' because it has existing resource definitions.")).obj("RscGrp", name)));
        }
        self.groups.remove(name);
        Ok(vec![Rc::ok(
            OP_DELETE,
            obj::RSC_GRP,
            DELETED,
            format!("Resource group '{name}' deleted."),
        )
        .obj("RscGrp", name)])
    }
}
