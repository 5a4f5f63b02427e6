//! CSI operation statistics: a tower layer around the tonic router that counts every call per
//! RPC, its gRPC error codes and a latency histogram. Owns the counters only: it never looks
//! at request or response bodies (so no secrets), and adds one mutex-guarded update per call.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::snapshot::{CsiStats, OperationStats};

/// Upper bounds of the latency buckets, seconds.
pub const BUCKETS: [f64; 12] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0,
];
/// At most this many distinct RPC names are kept; the rest count as `other`.
const MAX_METHODS: usize = 64;

/// One RPC's counters with its histogram.
#[derive(Debug, Clone, Default)]
pub struct OpCounters {
    /// The public part.
    pub stats: OperationStats,
    /// Calls per bucket of [`BUCKETS`] (not cumulative).
    pub buckets: [u64; BUCKETS.len()],
}

/// The shared counters.
#[derive(Debug, Default)]
pub struct CsiRecorder {
    ops: Mutex<BTreeMap<String, OpCounters>>,
}

/// gRPC status code names, by number.
const CODES: [&str; 17] = [
    "Ok",
    "Cancelled",
    "Unknown",
    "InvalidArgument",
    "DeadlineExceeded",
    "NotFound",
    "AlreadyExists",
    "PermissionDenied",
    "ResourceExhausted",
    "FailedPrecondition",
    "Aborted",
    "OutOfRange",
    "Unimplemented",
    "Internal",
    "Unavailable",
    "DataLoss",
    "Unauthenticated",
];

impl CsiRecorder {
    /// Counts one call of `method` that ended with gRPC `code` after `took`.
    pub fn record(&self, method: &str, code: usize, took: Duration) {
        let Ok(mut ops) = self.ops.lock() else { return };
        let key = if ops.contains_key(method) || ops.len() < MAX_METHODS {
            method
        } else {
            "other"
        };
        let op = ops.entry(key.to_owned()).or_default();
        let secs = took.as_secs_f64();
        op.stats.count += 1;
        op.stats.seconds_sum += secs;
        if code != 0 {
            let name = CODES.get(code).copied().unwrap_or("Unknown");
            *op.stats.errors.entry(name.to_owned()).or_default() += 1;
        }
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            op.buckets[i] += 1;
        }
    }

    /// A copy of all counters.
    pub fn counters(&self) -> BTreeMap<String, OpCounters> {
        self.ops.lock().map(|o| o.clone()).unwrap_or_default()
    }

    /// The snapshot part.
    pub fn stats(&self) -> CsiStats {
        let operations = self
            .counters()
            .into_iter()
            .map(|(k, v)| (k, v.stats))
            .collect();
        CsiStats { operations }
    }
}

/// The layer: `Server::builder().layer(CsiStatsLayer::new(recorder))`.
#[derive(Debug, Clone)]
pub struct CsiStatsLayer {
    recorder: Arc<CsiRecorder>,
}

impl CsiStatsLayer {
    /// Records into `recorder`.
    pub fn new(recorder: Arc<CsiRecorder>) -> Self {
        Self { recorder }
    }
}

impl<S> tower::Layer<S> for CsiStatsLayer {
    type Service = CsiStatsService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        CsiStatsService {
            inner,
            recorder: Arc::clone(&self.recorder),
        }
    }
}

/// The service the layer wraps around the router.
#[derive(Debug, Clone)]
pub struct CsiStatsService<S> {
    inner: S,
    recorder: Arc<CsiRecorder>,
}

impl<S: tonic::server::NamedService> tonic::server::NamedService for CsiStatsService<S> {
    const NAME: &'static str = S::NAME;
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B, RB> tower::Service<http::Request<B>> for CsiStatsService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<RB>>,
    S::Future: Send + 'static,
    S::Error: 'static,
    RB: 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let method = req.uri().path().to_owned();
        let recorder = Arc::clone(&self.recorder);
        let start = Instant::now();
        let fut = self.inner.call(req);
        Box::pin(async move {
            let res = fut.await;
            // An error status is sent trailers-only, i.e. in the headers; success has none.
            let code = match &res {
                Ok(resp) => resp
                    .headers()
                    .get("grpc-status")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0),
                Err(_) => 2,
            };
            recorder.record(&method, code, start.elapsed());
            res
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_calls_errors_and_buckets() {
        let r = CsiRecorder::default();
        r.record("/csi.v1.Node/NodeStageVolume", 0, Duration::from_millis(3));
        r.record("/csi.v1.Node/NodeStageVolume", 5, Duration::from_secs(3));
        let c = &r.counters()["/csi.v1.Node/NodeStageVolume"];
        assert_eq!(c.stats.count, 2);
        assert_eq!(c.stats.errors["NotFound"], 1);
        assert_eq!(c.buckets[1], 1);
        assert_eq!(c.buckets[10], 1);
    }

    #[test]
    fn caps_distinct_methods() {
        let r = CsiRecorder::default();
        for i in 0..100 {
            r.record(&format!("/x/{i}"), 12, Duration::ZERO);
        }
        let c = r.counters();
        assert_eq!(c.len(), MAX_METHODS + 1);
        assert_eq!(c["other"].stats.count, 100 - MAX_METHODS as u64);
    }
}
