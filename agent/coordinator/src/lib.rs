//! The coordinator: the agent API (node sessions and leases, [`server`], [`engine`]), volume
//! placement and floating-IP allocation and failover, the pure decisions ([`config`], [`pools`],
//! [`assign`], [`placement`]) and the durable state ([`store`]). Flags and the wiring of the
//! role live in the agent (`hearth_agent::roles::coordinator`).

pub mod assign;
pub mod calls;
pub mod closes;
pub mod config;
pub mod decide;
pub mod engine;
pub mod hash;
pub mod kube_client;
pub mod labels;
pub mod leadership;
pub mod linstor_placer;
pub mod node_auth;
pub mod ovn_nat;
pub mod placement;
pub mod pools;
pub mod server;
pub mod sessions;
pub mod store;
pub mod volumes;
