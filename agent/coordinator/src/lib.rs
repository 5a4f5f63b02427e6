//! The coordinator role: the agent API (node sessions and leases), volume placement and
//! floating-IP allocation and failover.

pub mod assign;
pub mod config;
pub mod engine;
pub mod hash;
pub mod labels;
pub mod linstor_placer;
pub mod node_auth;
pub mod placement;
pub mod pools;
pub mod server;
pub mod store;
pub mod volumes;
