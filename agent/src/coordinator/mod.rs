//! The coordinator role: the agent API (node sessions and leases), volume placement and
//! floating-IP allocation and failover.

pub mod decide;
pub mod engine;
pub mod role;
pub mod server;
