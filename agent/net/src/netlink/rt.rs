//! The real [`Netlink`]: a NETLINK_ROUTE socket opened in the caller's network namespace,
//! driven on tokio's blocking pool. Dumps and batches are strictly one at a time.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use netlink_packet_route::address::AddressMessage;
use netlink_packet_route::link::LinkMessage;
use netlink_packet_route::neighbour::{NeighbourFlags, NeighbourMessage};
use netlink_packet_route::route::RouteMessage;
use netlink_packet_route::rule::RuleMessage;
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage as Msg};

use super::decode::{self, Names};
use super::socket::NlSocket;
use super::{encode, Netlink, NetlinkError, Observed, Op, Seen, SeenLink};
use crate::model::Address;

/// Netlink over a real socket. The namespace is fixed when [`RtNetlink::open`] runs.
#[derive(Debug, Clone)]
pub struct RtNetlink {
    sock: Arc<Mutex<NlSocket>>,
}

impl RtNetlink {
    /// Opens a socket in the current thread's network namespace.
    pub fn open() -> Result<Self, NetlinkError> {
        Ok(Self {
            sock: Arc::new(Mutex::new(NlSocket::open().map_err(NetlinkError::Open)?)),
        })
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut NlSocket) -> Result<T, NetlinkError> + Send + 'static,
    ) -> Result<T, NetlinkError> {
        let sock = Arc::clone(&self.sock);
        tokio::task::spawn_blocking(move || {
            let mut guard = sock
                .lock()
                .map_err(|_| NetlinkError::Worker("socket lock poisoned".into()))?;
            f(&mut guard)
        })
        .await
        .map_err(|e| NetlinkError::Worker(e.to_string()))?
    }
}

fn dump(s: &mut NlSocket, what: &'static str, req: Msg) -> Result<Vec<Msg>, NetlinkError> {
    s.dump(req)
        .map_err(|source| NetlinkError::Dump { what, source })
}

fn dump_links(s: &mut NlSocket) -> Result<(Vec<SeenLink>, Names), NetlinkError> {
    let msgs: Vec<LinkMessage> = dump(s, "links", Msg::GetLink(LinkMessage::default()))?
        .into_iter()
        .filter_map(|m| match m {
            Msg::NewLink(l) => Some(l),
            _ => None,
        })
        .collect();
    let links = super::decode_link::links(&msgs);
    let names = links
        .iter()
        .map(|l| (l.index, l.link.name.clone()))
        .collect();
    Ok((links, names))
}

fn dump_addresses(s: &mut NlSocket, names: &Names) -> Result<Vec<Seen<Address>>, NetlinkError> {
    Ok(
        dump(s, "addresses", Msg::GetAddress(AddressMessage::default()))?
            .iter()
            .filter_map(|m| match m {
                Msg::NewAddress(a) => decode::address(a, names),
                _ => None,
            })
            .collect(),
    )
}

fn observe(s: &mut NlSocket) -> Result<Observed, NetlinkError> {
    let (links, names) = dump_links(s)?;
    let addresses = dump_addresses(s, &names)?;
    let mut routes = Vec::new();
    let mut neighbours = Vec::new();
    let mut rules = Vec::new();
    for fam in [AddressFamily::Inet, AddressFamily::Inet6] {
        let mut r = RouteMessage::default();
        r.header.address_family = fam;
        for m in dump(s, "routes", Msg::GetRoute(r))? {
            if let Msg::NewRoute(m) = m {
                routes.extend(decode::route(&m, &names));
            }
        }
        for proxy in [false, true] {
            let mut n = NeighbourMessage::default();
            n.header.family = fam;
            if proxy {
                n.header.flags = NeighbourFlags::Proxy;
            }
            for m in dump(s, "neighbours", Msg::GetNeighbour(n))? {
                if let Msg::NewNeighbour(m) = m {
                    neighbours.extend(decode::neighbour(&m, &names));
                }
            }
        }
        let mut r = RuleMessage::default();
        r.header.family = fam;
        for m in dump(s, "rules", Msg::GetRule(r))? {
            if let Msg::NewRule(m) = m {
                rules.extend(decode::rule(&m));
            }
        }
    }
    Ok(Observed {
        links,
        addresses,
        routes,
        neighbours,
        rules,
        sysctls: Default::default(),
    })
}

#[async_trait]
impl Netlink for RtNetlink {
    async fn observe(&self) -> Result<Observed, NetlinkError> {
        self.blocking(observe).await
    }

    async fn links(&self) -> Result<Vec<SeenLink>, NetlinkError> {
        self.blocking(|s| dump_links(s).map(|(l, _)| l)).await
    }

    async fn addresses(&self) -> Result<Vec<Seen<Address>>, NetlinkError> {
        self.blocking(|s| {
            let (_, names) = dump_links(s)?;
            dump_addresses(s, &names)
        })
        .await
    }

    async fn write(&self, ops: Vec<Op>) -> Vec<Result<(), NetlinkError>> {
        let n = ops.len();
        let out = self
            .blocking(move |s| {
                let reqs = ops.iter().map(encode::encode).collect();
                let acks = s.batch(reqs).map_err(NetlinkError::Send)?;
                Ok(ops
                    .iter()
                    .zip(acks)
                    .map(|(op, ack)| {
                        ack.map_err(|(errno, text)| NetlinkError::Kernel {
                            op: op.to_string(),
                            errno,
                            message: text.unwrap_or_else(|| {
                                std::io::Error::from_raw_os_error(errno).to_string()
                            }),
                        })
                    })
                    .collect::<Vec<_>>())
            })
            .await;
        match out {
            Ok(v) => v,
            Err(e) => {
                let msg = e.to_string();
                (0..n)
                    .map(|_| Err(NetlinkError::Worker(msg.clone())))
                    .collect()
            }
        }
    }
}
