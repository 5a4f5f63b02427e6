//! The simulator's own copy of LINSTOR's `ApiCallRc` numbers, written from LINSTOR's
//! published `ApiConsts` independently of the client's constants, so that a shared mistake
//! cannot hide in both.
//!
//! Owns: numbers only.

/// Severity bits: error (bits 63 and 62).
pub const ERROR: u64 = 0xC000_0000_0000_0000;
/// Severity bits: warning (bit 63).
pub const WARN: u64 = 0x8000_0000_0000_0000;
/// Severity bits: info (bit 62).
pub const INFO: u64 = 0x4000_0000_0000_0000;

/// Operation bits: create.
pub const OP_CREATE: u64 = 1 << 24;
/// Operation bits: modify.
pub const OP_MODIFY: u64 = 2 << 24;
/// Operation bits: delete.
pub const OP_DELETE: u64 = 3 << 24;

/// Object bits (bits 18-22), LINSTOR's `MASK_*` object types.
pub mod obj {
    /// Resource group.
    pub const RSC_GRP: u64 = 0x11 << 18;
    /// Node.
    pub const NODE: u64 = 0x0F << 18;
    /// Resource definition.
    pub const RSC_DFN: u64 = 0x0E << 18;
    /// Resource.
    pub const RSC: u64 = 0x0D << 18;
    /// Volume definition.
    pub const VLM_DFN: u64 = 0x0C << 18;
    /// Volume.
    pub const VLM: u64 = 0x0B << 18;
    /// Storage pool.
    pub const STOR_POOL: u64 = 0x05 << 18;
    /// Controller configuration.
    pub const CTRL_CONF: u64 = 0x04 << 18;
    /// Snapshot.
    pub const SNAPSHOT: u64 = 0x03 << 18;
    /// Backup.
    pub const BACKUP: u64 = 0x02 << 18;
    /// Remote.
    pub const REMOTE: u64 = 0x01 << 18;
}

/// Success codes.
pub const CREATED: u64 = 1;
/// Deleted.
pub const DELETED: u64 = 2;
/// Modified.
pub const MODIFIED: u64 = 3;

/// Invalid input: name.
pub const FAIL_INVLD_RSC_NAME: u64 = 202;
/// Invalid input: volume size.
pub const FAIL_INVLD_VLM_SIZE: u64 = 206;
/// Invalid input: place count.
pub const FAIL_INVLD_PLACE_COUNT: u64 = 219;
/// Invalid input: the request itself (bad JSON, missing fields).
pub const FAIL_INVLD_REQUEST: u64 = 234;

/// Not found: node.
pub const FAIL_NOT_FOUND_NODE: u64 = 300;
/// Not found: resource definition.
pub const FAIL_NOT_FOUND_RSC_DFN: u64 = 301;
/// Not found: resource.
pub const FAIL_NOT_FOUND_RSC: u64 = 302;
/// Not found: volume definition.
pub const FAIL_NOT_FOUND_VLM_DFN: u64 = 303;
/// Not found: volume.
pub const FAIL_NOT_FOUND_VLM: u64 = 304;
/// Not found: storage pool.
pub const FAIL_NOT_FOUND_STOR_POOL: u64 = 310;
/// Not found: snapshot definition.
pub const FAIL_NOT_FOUND_SNAPSHOT_DFN: u64 = 313;
/// Not found: resource group.
pub const FAIL_NOT_FOUND_RSC_GRP: u64 = 317;
/// Not found: remote.
pub const FAIL_NOT_FOUND_REMOTE: u64 = 321;
/// Not found: backup.
pub const FAIL_NOT_FOUND_BACKUP: u64 = 322;

/// Exists: resource definition.
pub const FAIL_EXISTS_RSC_DFN: u64 = 501;
/// Exists: resource.
pub const FAIL_EXISTS_RSC: u64 = 502;
/// Exists: volume definition.
pub const FAIL_EXISTS_VLM_DFN: u64 = 503;
/// Exists: snapshot definition.
pub const FAIL_EXISTS_SNAPSHOT_DFN: u64 = 514;
/// Exists: resource group.
pub const FAIL_EXISTS_RSC_GRP: u64 = 522;
/// Exists: remote.
pub const FAIL_EXISTS_REMOTE: u64 = 527;

/// Not enough free space in a storage pool.
pub const FAIL_NOT_ENOUGH_FREE_SPACE: u64 = 980;
/// Autoplace found too few nodes.
pub const FAIL_NOT_ENOUGH_NODES: u64 = 996;
/// The object is in use.
pub const FAIL_IN_USE: u64 = 997;
/// Something went wrong on the controller.
pub const FAIL_UNKNOWN_ERROR: u64 = 998;

/// Warning: the property to delete was not set.
pub const WARN_DEL_UNSET_PROP: u64 = 1005;
/// Warning: the resource is already deployed there.
pub const WARN_RSC_ALREADY_DEPLOYED: u64 = 1006;
/// Info: nothing to do.
pub const INFO_NOOP: u64 = 10007;
/// Warning: no node for the quorum tiebreaker.
pub const WARN_NOT_ENOUGH_NODES_FOR_TIE_BREAKER: u64 = 1013;
/// Warning: a resize to the size the volume definition has already (no satellite update).
pub const WARN_VLMDFN_RESIZE_SAME_SIZE: u64 = 1023;
/// Info: a tiebreaker was added.
pub const INFO_TIE_BREAKER_CREATED: u64 = 10003;
/// Info: a diskless replica being deleted was kept as the tiebreaker.
pub const INFO_TIE_BREAKER_TAKEOVER: u64 = 10006;
/// Info: a tiebreaker is being removed.
pub const INFO_TIE_BREAKER_DELETING: u64 = 10004;
/// The layer stack cannot do what was asked (a diskless replica without DRBD, say).
pub const FAIL_INVLD_LAYER_STACK: u64 = 225;
/// A resize while a DRBD replica is not UpToDate.
pub const FAIL_NOT_ALL_UPTODATE: u64 = 974;

/// The first DRBD minor number LINSTOR hands out.
pub const MINOR_FIRST: u32 = 1000;
/// The last DRBD minor number.
pub const MINOR_LAST: u32 = 49999;
/// The REST API version the simulator reports.
pub const REST_API_VERSION: &str = "1.28.0";
