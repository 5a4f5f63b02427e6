//! The Kubernetes client of the coordinator: kube's client with every request bounded and TCP
//! keepalives on its connections.
//!
//! kube's default has neither a read timeout nor keepalive, so a request on a connection that
//! died silently (an apiserver host lost, a load-balancer failover) waits for many minutes.
//! Here a request ends after [`REQUEST_TIMEOUT`] without bytes, and an idle pooled connection
//! whose peer is gone is found by the kernel after about [`KEEPALIVE_IDLE`] +
//! [`KEEPALIVE_RETRIES`] × [`KEEPALIVE_INTERVAL`] instead of the kernel's two hours.

use std::time::Duration;

use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use kube::client::ConfigExt;
use tower::{BoxError, ServiceBuilder};

/// The longest one request may wait for the API server's bytes.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest a TCP connect may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Idle time before the first keepalive probe.
pub const KEEPALIVE_IDLE: Duration = Duration::from_secs(10);
/// Time between keepalive probes.
pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(3);
/// Unanswered probes before the kernel drops the connection.
pub const KEEPALIVE_RETRIES: u32 = 3;

/// A client from the in-cluster config or KUBECONFIG.
pub async fn connect() -> Result<kube::Client, String> {
    let config = kube::Config::infer()
        .await
        .map_err(|e| format!("kubernetes client config: {e}"))?;
    from_config(config)
}

/// The TCP connector: keepalives and a connect timeout.
fn connector() -> HttpConnector {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(CONNECT_TIMEOUT));
    http.set_keepalive(Some(KEEPALIVE_IDLE));
    http.set_keepalive_interval(Some(KEEPALIVE_INTERVAL));
    http.set_keepalive_retries(Some(KEEPALIVE_RETRIES));
    http.set_nodelay(true);
    http
}

/// A client over `config` (its cluster URL, TLS and credentials) with the bounds above.
pub fn from_config(config: kube::Config) -> Result<kube::Client, String> {
    let https = config
        .rustls_https_connector_with_connector(connector())
        .map_err(|e| format!("kubernetes TLS: {e}"))?;
    let mut timed = hyper_timeout::TimeoutConnector::new(https);
    timed.set_connect_timeout(Some(CONNECT_TIMEOUT));
    timed.set_read_timeout(Some(REQUEST_TIMEOUT));
    timed.set_write_timeout(Some(REQUEST_TIMEOUT));
    timed.set_reset_reader_on_write(true);
    let http: hyper_util::client::legacy::Client<_, kube::client::Body> =
        hyper_util::client::legacy::Builder::new(TokioExecutor::new()).build(timed);
    let auth = config
        .auth_layer()
        .map_err(|e| format!("kubernetes credentials: {e}"))?;
    let headers = config
        .extra_headers_layer()
        .map_err(|e| format!("kubernetes headers: {e}"))?;
    let service = ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .option_layer(auth)
        .layer(headers)
        .map_err(BoxError::from)
        .service(http);
    Ok(kube::Client::new(service, config.default_namespace))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn connections_carry_keepalives_and_bounds() {
        // The kernel notices a dead peer of an idle connection within half a minute.
        let dead_after = KEEPALIVE_IDLE + KEEPALIVE_INTERVAL * KEEPALIVE_RETRIES;
        assert!(dead_after <= Duration::from_secs(30), "{dead_after:?}");
        // A client builds from a plain config (no cluster needed).
        let config = kube::Config::new("https://127.0.0.1:6443".parse().unwrap());
        assert!(from_config(config).is_ok());
    }
}
