//! The node role's side of the coordinator: the session that reports and receives leases and
//! assignments ([`session`]), the holder that announces leased floating IPs only while the
//! lease is valid ([`lease`]), and the fence guard process that withdraws them if the agent
//! dies or stops renewing ([`fence`]); the session's connection shuts the answer gate before
//! it closes ([`fenced`]).

pub mod fence;
pub mod fenced;
pub mod lease;
pub mod session;
pub mod term;
pub mod volumes;
