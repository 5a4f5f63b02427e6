//! The node role's side of the coordinator: the session that reports and receives leases and
//! assignments ([`session`]), the holder that announces leased floating IPs only while the
//! lease is valid ([`lease`]), and the fence guard process that withdraws them if the agent
//! dies or stops renewing ([`fence`]).

pub mod fence;
pub mod lease;
pub mod session;
pub mod volumes;
