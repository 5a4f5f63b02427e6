//! [`KubeStore`] against a real kube-apiserver: the same contract as on the fake, and the Lease
//! handover on the real clock. Ignored by default; `tests/cluster/run` starts a cluster for it
//! (without Hearth installed, with the CRDs of `deploy/crds/`):
//!
//! ```sh
//! HEARTH_CLUSTER_SKIP_HEARTH=1 tests/cluster/run -- \
//!   cargo test -p hearth-coordinator --lib store::kube::apiserver_tests -- --ignored --test-threads=1
//! ```

use std::time::Duration;

use kube::Client;

use super::KubeStore;
use crate::store::contract_tests;

async fn client() -> Client {
    assert!(
        std::env::var_os("KUBECONFIG").is_some(),
        "KUBECONFIG must name the test cluster (run under tests/cluster/run)"
    );
    Client::try_default().await.expect("kubeconfig client")
}

#[tokio::test]
#[ignore = "needs a real API server: tests/cluster/run"]
async fn contract_on_a_real_apiserver() {
    let store = KubeStore::new(client().await, "default", "hearth-contract");
    contract_tests::check_store(&store).await;
}

#[tokio::test]
#[ignore = "needs a real API server: tests/cluster/run"]
async fn lease_handover_on_a_real_apiserver() {
    let c = client().await;
    let a = KubeStore::new(c.clone(), "default", "hearth-contract-lease");
    let b = KubeStore::new(c, "default", "hearth-contract-lease");
    // The contract's TTL is 15 s: a lapses when it stops renewing for that long.
    contract_tests::check_exclusive_lead(&a, &b, || std::thread::sleep(Duration::from_secs(16)))
        .await;
}
