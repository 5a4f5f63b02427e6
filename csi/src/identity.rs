//! The CSI Identity service: plugin name, version, capabilities and readiness.

use std::sync::Arc;

use hearth_proto::csi::v1::identity_server::Identity;
use hearth_proto::csi::v1::plugin_capability::{self, service, volume_expansion};
use hearth_proto::csi::v1::{
    GetPluginCapabilitiesRequest, GetPluginCapabilitiesResponse, GetPluginInfoRequest,
    GetPluginInfoResponse, PluginCapability, ProbeRequest, ProbeResponse,
};
use tonic::{Request, Response, Status};

/// Answers whether the plugin is ready to serve.
pub trait Readiness: Send + Sync + 'static {
    /// Ok when ready, else a reason.
    fn ready(&self) -> Result<(), String>;

    /// Why the plugin is healthy but does not serve yet (a standby coordinator), if so. The
    /// CSI Probe then answers `ready: false`, which the sidecars wait out (csi-lib-utils'
    /// `ProbeForever`), where an error would make them exit.
    fn waiting(&self) -> Option<String> {
        None
    }
}

/// Always ready.
#[derive(Debug, Clone, Copy, Default)]
pub struct AlwaysReady;

impl Readiness for AlwaysReady {
    fn ready(&self) -> Result<(), String> {
        Ok(())
    }
}

/// The Identity service.
#[derive(Clone)]
pub struct IdentityService {
    controller: bool,
    expansion: bool,
    readiness: Arc<dyn Readiness>,
}

impl IdentityService {
    /// An identity for a plugin that serves the controller service when `controller` is true
    /// and can grow volumes online when `expansion` is true.
    pub fn new(controller: bool, expansion: bool, readiness: Arc<dyn Readiness>) -> Self {
        Self {
            controller,
            expansion,
            readiness,
        }
    }
}

fn service(t: service::Type) -> PluginCapability {
    PluginCapability {
        r#type: Some(plugin_capability::Type::Service(
            plugin_capability::Service { r#type: t as i32 },
        )),
    }
}

#[tonic::async_trait]
impl Identity for IdentityService {
    async fn get_plugin_info(
        &self,
        _request: Request<GetPluginInfoRequest>,
    ) -> Result<Response<GetPluginInfoResponse>, Status> {
        Ok(Response::new(GetPluginInfoResponse {
            name: crate::DRIVER_NAME.to_owned(),
            vendor_version: env!("CARGO_PKG_VERSION").to_owned(),
            manifest: Default::default(),
        }))
    }

    async fn get_plugin_capabilities(
        &self,
        _request: Request<GetPluginCapabilitiesRequest>,
    ) -> Result<Response<GetPluginCapabilitiesResponse>, Status> {
        let mut capabilities = vec![service(service::Type::VolumeAccessibilityConstraints)];
        if self.controller {
            capabilities.push(service(service::Type::ControllerService));
        }
        if self.expansion {
            capabilities.push(PluginCapability {
                r#type: Some(plugin_capability::Type::VolumeExpansion(
                    plugin_capability::VolumeExpansion {
                        r#type: volume_expansion::Type::Online as i32,
                    },
                )),
            });
        }
        Ok(Response::new(GetPluginCapabilitiesResponse {
            capabilities,
        }))
    }

    async fn probe(
        &self,
        _request: Request<ProbeRequest>,
    ) -> Result<Response<ProbeResponse>, Status> {
        if let Err(reason) = self.readiness.ready() {
            return Err(Status::failed_precondition(format!("not ready: {reason}")));
        }
        if let Some(reason) = self.readiness.waiting() {
            tracing::debug!("CSI Probe: not ready yet: {reason}");
            return Ok(Response::new(ProbeResponse { ready: Some(false) }));
        }
        Ok(Response::new(ProbeResponse { ready: Some(true) }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fixed {
        ready: Result<(), String>,
        waiting: Option<String>,
    }

    impl Readiness for Fixed {
        fn ready(&self) -> Result<(), String> {
            self.ready.clone()
        }
        fn waiting(&self) -> Option<String> {
            self.waiting.clone()
        }
    }

    async fn probe(ready: Result<(), String>, waiting: Option<&str>) -> Result<bool, Status> {
        let readiness = Arc::new(Fixed {
            ready,
            waiting: waiting.map(str::to_owned),
        });
        let identity = IdentityService::new(true, true, readiness);
        let reply = identity.probe(Request::new(ProbeRequest {})).await?;
        Ok(reply.into_inner().ready.unwrap_or(false))
    }

    #[tokio::test]
    async fn probe_is_ready_not_yet_or_failed() {
        assert!(probe(Ok(()), None).await.unwrap());
        // A standby is healthy but does not serve: `ready: false`, which sidecars wait out.
        assert!(!probe(Ok(()), Some("standby")).await.unwrap());
        // A broken plugin is an error (FAILED_PRECONDITION), whether or not it also waits.
        let err = probe(Err("disk gone".into()), Some("standby"))
            .await
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::FailedPrecondition);
        assert!(err.message().contains("disk gone"), "{}", err.message());
    }
}
