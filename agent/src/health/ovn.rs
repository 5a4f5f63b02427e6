//! The OVN section of the health snapshot: the chassis checks of [`hearth_net::ovn::health`], run
//! against the local OVSDB and the southbound DB named in the node network file. Reads only.

use serde_json::Value;

use super::snapshot::{Section, SectionState};
use hearth_net::ovn::cilium::ProcHost;
use hearth_net::ovn::health::{check, ProcJoin};
use hearth_net::ovn::OvnSpec;
use hearth_net::ovsdb::Client;

/// Reads the chassis state.
#[async_trait::async_trait]
pub trait OvnSource: Send + Sync {
    /// The OVN section.
    async fn ovn(&self) -> Section<Value>;
}

/// The real source: fresh connections to both databases per snapshot.
pub struct OvsdbOvn {
    /// The `ovn:` section of the node network file.
    pub spec: OvnSpec,
}

#[async_trait::async_trait]
impl OvnSource for OvsdbOvn {
    async fn ovn(&self) -> Section<Value> {
        let unavailable = |what: &str, e: &dyn std::fmt::Display| Section {
            state: SectionState::Error,
            reason: Some(format!("{what}: {e}")),
            data: None,
        };
        let tls = match self.spec.tls() {
            Ok(t) => t,
            Err(e) => return unavailable("the OVSDB certificates", &e),
        };
        let local = match Client::connect_with(&self.spec.ovsdb, tls.clone()).await {
            Ok(c) => c,
            Err(e) => return unavailable(&format!("local OVSDB {}", self.spec.ovsdb), &e),
        };
        let sb_addr = self.spec.southbound_db();
        let sb = match Client::connect_with(&sb_addr, tls).await {
            Ok(c) => c,
            Err(e) => return unavailable(&format!("southbound DB {sb_addr}"), &e),
        };
        match check(&self.spec, &sb, &local, &ProcJoin, &ProcHost).await {
            Ok(h) => {
                let problems = h.problems.join("; ");
                let data = serde_json::to_value(&h).unwrap_or(Value::Null);
                if problems.is_empty() {
                    Section {
                        state: SectionState::Ok,
                        reason: None,
                        data: Some(data),
                    }
                } else {
                    Section {
                        state: SectionState::Error,
                        reason: Some(problems),
                        data: Some(data),
                    }
                }
            }
            Err(e) => unavailable("reading the chassis state", &e),
        }
    }
}
