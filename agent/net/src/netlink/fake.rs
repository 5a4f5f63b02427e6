//! A recording fake of [`Netlink`] for unit tests: a tiny in-memory kernel that applies ops
//! to an [`Observed`] state and records every op it was sent.

use std::sync::Mutex;

use async_trait::async_trait;

use super::{Netlink, NetlinkError, Observed, Op, Owner, Seen, SeenLink};
use crate::model::{Address, Link, LinkKind, Mac};
use crate::{FLOATING_PROTO, HEARTH_PROTO, LEASED_PROTO, LINK_ALIAS};

/// The fake kernel.
#[derive(Debug, Default)]
pub struct FakeNetlink {
    /// The state `observe` returns.
    pub state: Mutex<Observed>,
    /// Every op sent, in order.
    pub ops: Mutex<Vec<Op>>,
}

fn kernel_error(op: &Op, errno: i32) -> NetlinkError {
    NetlinkError::Kernel {
        op: op.to_string(),
        errno,
        message: "fake".into(),
    }
}

impl FakeNetlink {
    /// A fake holding `state`.
    pub fn with(state: Observed) -> Self {
        Self {
            state: Mutex::new(state),
            ops: Mutex::new(Vec::new()),
        }
    }

    /// Ops sent so far.
    pub fn sent(&self) -> Vec<Op> {
        self.ops.lock().unwrap().clone()
    }

    fn apply(&self, op: &Op) -> Result<(), NetlinkError> {
        let mut s = self.state.lock().unwrap();
        let name_of = |s: &Observed, i: u32| {
            s.links
                .iter()
                .find(|l| l.index == i)
                .map(|l| l.link.name.clone())
        };
        match op {
            Op::CreateLink { link, master, .. } => {
                if s.links.iter().any(|l| l.link.name == link.name) {
                    return Err(kernel_error(op, libc::EEXIST));
                }
                let next = s.links.iter().map(|l| l.index).max().unwrap_or(1) + 1;
                let mut l = link.clone();
                l.master = master.and_then(|m| name_of(&s, m));
                l.implied = false;
                if l.mac.is_none() {
                    l.mac = Some(Mac([2, 0, 0, 0, 0, next as u8]));
                }
                if let LinkKind::Veth { peer } = &link.kind {
                    l.up = false;
                    let p = Link {
                        name: peer.clone(),
                        kind: LinkKind::Veth {
                            peer: link.name.clone(),
                        },
                        mtu: link.mtu,
                        up: false,
                        master: None,
                        mac: Some(Mac([2, 0, 0, 0, 1, next as u8])),
                        implied: false,
                    };
                    s.links.push(SeenLink {
                        index: next + 1,
                        link: p,
                        owned: false,
                        peer_elsewhere: false,
                    });
                }
                s.links.push(SeenLink {
                    index: next,
                    link: l,
                    owned: false,
                    peer_elsewhere: false,
                });
            }
            Op::SetLink {
                index,
                name,
                mtu,
                up,
                master,
                mac,
                alias,
            } => {
                let m = master.and_then(|m| {
                    if m == 0 {
                        Some(None)
                    } else {
                        name_of(&s, m).map(Some)
                    }
                });
                let l = s
                    .links
                    .iter_mut()
                    .find(|l| {
                        if *index == 0 {
                            l.link.name == *name
                        } else {
                            l.index == *index
                        }
                    })
                    .ok_or_else(|| kernel_error(op, libc::ENODEV))?;
                if let Some(v) = mtu {
                    l.link.mtu = Some(*v);
                }
                if let Some(v) = up {
                    l.link.up = *v;
                }
                if let Some(v) = m {
                    l.link.master = v;
                }
                if let Some(v) = mac {
                    l.link.mac = Some(*v);
                }
                if let Some(a) = alias {
                    l.owned = a == LINK_ALIAS;
                }
            }
            Op::DeleteLink { index, .. } => {
                let Some(pos) = s.links.iter().position(|l| l.index == *index) else {
                    return Err(kernel_error(op, libc::ENODEV));
                };
                let gone = s.links.remove(pos);
                if let LinkKind::Veth { peer } = &gone.link.kind {
                    s.links.retain(|l| l.link.name != *peer);
                }
                s.addresses.retain(|a| a.item.dev != gone.link.name);
            }
            Op::AddAddress {
                address,
                proto,
                replace,
                ..
            } => {
                let owner = match *proto {
                    HEARTH_PROTO => Owner::Hearth,
                    FLOATING_PROTO => Owner::Floating,
                    LEASED_PROTO => Owner::Leased,
                    _ => Owner::Foreign,
                };
                let pos = s
                    .addresses
                    .iter()
                    .position(|a| a.item.dev == address.dev && a.item.prefix == address.prefix);
                match (pos, replace) {
                    (Some(_), false) => return Err(kernel_error(op, libc::EEXIST)),
                    (Some(p), true) => {
                        s.addresses[p] = Seen {
                            item: address.clone(),
                            owner,
                        }
                    }
                    (None, _) => s.addresses.push(Seen {
                        item: address.clone(),
                        owner,
                    }),
                }
            }
            Op::DeleteAddress { address, .. } => {
                let before = s.addresses.len();
                s.addresses
                    .retain(|a| !(a.item.dev == address.dev && a.item.prefix == address.prefix));
                if s.addresses.len() == before {
                    return Err(kernel_error(op, libc::EADDRNOTAVAIL));
                }
            }
            Op::AddRoute { route, replace, .. } => {
                let pos = s.routes.iter().position(|r| r.item.key == route.key);
                match (pos, replace) {
                    (Some(_), false) => return Err(kernel_error(op, libc::EEXIST)),
                    (Some(p), true) => {
                        s.routes[p] = Seen {
                            item: route.clone(),
                            owner: Owner::Hearth,
                        }
                    }
                    (None, _) => s.routes.push(Seen {
                        item: route.clone(),
                        owner: Owner::Hearth,
                    }),
                }
            }
            Op::DeleteRoute { route } => s
                .routes
                .retain(|r| !(r.item.key == route.key && r.owner == Owner::Hearth)),
            Op::AddNeighbour { neighbour, .. } => {
                s.neighbours.retain(|n| {
                    !(n.item.dev == neighbour.dev
                        && n.item.address == neighbour.address
                        && n.item.proxy == neighbour.proxy)
                });
                s.neighbours.push(Seen {
                    item: neighbour.clone(),
                    owner: Owner::Hearth,
                });
            }
            Op::DeleteNeighbour { neighbour, .. } => s.neighbours.retain(|n| n.item != *neighbour),
            Op::AddRule { rule } => s.rules.push(Seen {
                item: rule.clone(),
                owner: Owner::Hearth,
            }),
            Op::DeleteRule { rule } => s
                .rules
                .retain(|r| !(r.item == *rule && r.owner == Owner::Hearth)),
        }
        Ok(())
    }
}

#[async_trait]
impl Netlink for FakeNetlink {
    async fn observe(&self) -> Result<Observed, NetlinkError> {
        Ok(self.state.lock().unwrap().clone())
    }

    async fn links(&self) -> Result<Vec<SeenLink>, NetlinkError> {
        Ok(self.state.lock().unwrap().links.clone())
    }

    async fn addresses(&self) -> Result<Vec<Seen<Address>>, NetlinkError> {
        Ok(self.state.lock().unwrap().addresses.clone())
    }

    async fn write(&self, ops: Vec<Op>) -> Vec<Result<(), NetlinkError>> {
        self.ops.lock().unwrap().extend(ops.iter().cloned());
        ops.iter().map(|op| self.apply(op)).collect()
    }
}
