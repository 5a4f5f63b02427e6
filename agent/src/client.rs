//! A CSI client over a unix socket, for `hearth csi`, tests and benchmarks.

use std::path::{Path, PathBuf};

use hearth_proto::csi::v1::controller_client::ControllerClient;
use hearth_proto::csi::v1::identity_client::IdentityClient;
use hearth_proto::csi::v1::node_client::NodeClient;
use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;
use tonic::transport::{Channel, Endpoint, Uri};

/// Clients of the three CSI services over one connection.
#[derive(Debug, Clone)]
pub struct CsiClient {
    /// Identity.
    pub identity: IdentityClient<Channel>,
    /// Controller.
    pub controller: ControllerClient<Channel>,
    /// Node.
    pub node: NodeClient<Channel>,
}

/// Connects to the CSI socket at `socket`.
pub async fn connect(socket: &Path) -> Result<CsiClient, tonic::transport::Error> {
    let path: PathBuf = socket.to_owned();
    // The URI is required by the API but unused: the connector dials the socket.
    let channel = Endpoint::from_static("http://[::1]:50051")
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move { Ok::<_, std::io::Error>(TokioIo::new(UnixStream::connect(path).await?)) }
        }))
        .await?;
    Ok(CsiClient {
        identity: IdentityClient::new(channel.clone()),
        controller: ControllerClient::new(channel.clone()),
        node: NodeClient::new(channel),
    })
}
