//! LINSTOR's `ApiCallRc` return-code numbers: the severity, operation and object masks and the
//! failure codes Hearth tells apart.
//!
//! Source: LINBIT's `ApiConsts` (linstor-server `ApiConsts.java`, generated into golinstor's
//! `apiconsts.go` by `genconsts.py`). The layout of a `ret_code` (a signed 64-bit number on the
//! wire):
//! - bits 62-63: severity (`MASK_ERROR` = both bits, warning = bit 63, info = bit 62);
//! - bits 24-25: operation (create, modify, delete);
//! - bits 18-22: object type (node, resource definition, resource, ...);
//! - bits 0-14: the code itself.
//!
//! Owns: numbers only. Decoding lives in [`super::rc`]; nothing here does I/O.

/// Bits 62 and 63: the message-type (severity) bits.
pub const MASK_BITS_TYPE: u64 = 0xC000_0000_0000_0000;
/// Both type bits: an error.
pub const MASK_ERROR: u64 = 0xC000_0000_0000_0000;
/// Bit 63 only: a warning.
pub const MASK_WARN: u64 = 0x8000_0000_0000_0000;
/// Bit 62 only: an informational message.
pub const MASK_INFO: u64 = 0x4000_0000_0000_0000;

/// Bits 24-25: the operation.
pub const MASK_BITS_OP: u64 = 0x0000_0000_0300_0000;
/// Operation: create.
pub const MASK_CRT: u64 = 0x0000_0000_0100_0000;
/// Operation: modify.
pub const MASK_MOD: u64 = 0x0000_0000_0200_0000;
/// Operation: delete.
pub const MASK_DEL: u64 = 0x0000_0000_0300_0000;

/// Bits 18-22: the object type.
pub const MASK_BITS_OBJ: u64 = 0x0000_0000_007C_0000;
/// Object: resource group.
pub const MASK_RSC_GRP: u64 = 0x0000_0000_0044_0000;
/// Object: node.
pub const MASK_NODE: u64 = 0x0000_0000_003C_0000;
/// Object: resource definition.
pub const MASK_RSC_DFN: u64 = 0x0000_0000_0038_0000;
/// Object: resource.
pub const MASK_RSC: u64 = 0x0000_0000_0034_0000;
/// Object: volume definition.
pub const MASK_VLM_DFN: u64 = 0x0000_0000_0030_0000;
/// Object: volume.
pub const MASK_VLM: u64 = 0x0000_0000_002C_0000;
/// Object: storage pool.
pub const MASK_STOR_POOL: u64 = 0x0000_0000_0014_0000;
/// Object: snapshot.
pub const MASK_SNAPSHOT: u64 = 0x0000_0000_000C_0000;
/// Object: backup.
pub const MASK_BACKUP: u64 = 0x0000_0000_0008_0000;
/// Object: remote.
pub const MASK_REMOTE: u64 = 0x0000_0000_0004_0000;

/// Bits 0-14: the code.
pub const MASK_BITS_CODE: u64 = 0x0000_0000_0000_7FFF;

// Codes, without masks (compare against `ret_code & MASK_BITS_CODE`).

/// Success: created.
pub const CREATED: u64 = 1;
/// Success: deleted.
pub const DELETED: u64 = 2;
/// Success: modified.
pub const MODIFIED: u64 = 3;

/// `FAIL_NODE_HAS_USED_RSC`: a node still has resources in use.
pub const FAIL_NODE_HAS_USED_RSC: u64 = 233;

/// First and last "dependency not found" code (`FAIL_NOT_FOUND_*`).
pub const NOT_FOUND_RANGE: std::ops::RangeInclusive<u64> = 300..=399;
/// `FAIL_NOT_FOUND_NODE`.
pub const FAIL_NOT_FOUND_NODE: u64 = 300;
/// `FAIL_NOT_FOUND_RSC_DFN`.
pub const FAIL_NOT_FOUND_RSC_DFN: u64 = 301;
/// `FAIL_NOT_FOUND_RSC`.
pub const FAIL_NOT_FOUND_RSC: u64 = 302;
/// `FAIL_NOT_FOUND_VLM_DFN`.
pub const FAIL_NOT_FOUND_VLM_DFN: u64 = 303;
/// `FAIL_NOT_FOUND_STOR_POOL`.
pub const FAIL_NOT_FOUND_STOR_POOL: u64 = 310;
/// `FAIL_NOT_FOUND_SNAPSHOT_DFN`.
pub const FAIL_NOT_FOUND_SNAPSHOT_DFN: u64 = 313;
/// `FAIL_NOT_FOUND_RSC_GRP`.
pub const FAIL_NOT_FOUND_RSC_GRP: u64 = 317;
/// `FAIL_NOT_FOUND_REMOTE`.
pub const FAIL_NOT_FOUND_REMOTE: u64 = 321;
/// `FAIL_NOT_FOUND_BACKUP`.
pub const FAIL_NOT_FOUND_BACKUP: u64 = 322;

/// First and last "access denied" code (`FAIL_ACC_DENIED_*`).
pub const ACCESS_DENIED_RANGE: std::ops::RangeInclusive<u64> = 400..=499;

/// `FAIL_EXISTS_NODE`.
pub const FAIL_EXISTS_NODE: u64 = 500;
/// `FAIL_EXISTS_RSC_DFN`: the code that makes a retried create idempotent.
pub const FAIL_EXISTS_RSC_DFN: u64 = 501;
/// `FAIL_EXISTS_RSC`.
pub const FAIL_EXISTS_RSC: u64 = 502;
/// `FAIL_EXISTS_VLM_DFN`.
pub const FAIL_EXISTS_VLM_DFN: u64 = 503;
/// `FAIL_EXISTS_VLM`.
pub const FAIL_EXISTS_VLM: u64 = 504;
/// `FAIL_EXISTS_STOR_POOL`.
pub const FAIL_EXISTS_STOR_POOL: u64 = 510;
/// `FAIL_EXISTS_SNAPSHOT_DFN`.
pub const FAIL_EXISTS_SNAPSHOT_DFN: u64 = 514;
/// `FAIL_EXISTS_SNAPSHOT`.
pub const FAIL_EXISTS_SNAPSHOT: u64 = 516;
/// `FAIL_EXISTS_RSC_GRP`.
pub const FAIL_EXISTS_RSC_GRP: u64 = 522;
/// `FAIL_EXISTS_VLM_GRP`.
pub const FAIL_EXISTS_VLM_GRP: u64 = 523;
/// `FAIL_EXISTS_SNAPSHOT_SHIPPING`: a shipment of this snapshot is already running.
pub const FAIL_EXISTS_SNAPSHOT_SHIPPING: u64 = 525;
/// `FAIL_EXISTS_REMOTE`.
pub const FAIL_EXISTS_REMOTE: u64 = 527;

/// Every `FAIL_EXISTS_*` code in 500-599 (`FAIL_LOST_STOR_POOL` = 521 is not one).
pub const EXISTS_CODES: &[u64] = &[
    500, 501, 502, 503, 504, 505, 506, 507, 508, 509, 510, 511, 512, 513, 514, 516, 517, 518, 519,
    522, 523, 524, 525, 526, 527, 528,
];

/// `FAIL_NOT_ENOUGH_FREE_SPACE`.
pub const FAIL_NOT_ENOUGH_FREE_SPACE: u64 = 980;
/// `FAIL_RSC_BUSY`: the resource is busy (for example a DRBD primary elsewhere).
pub const FAIL_RSC_BUSY: u64 = 992;
/// `FAIL_NOT_ENOUGH_NODES`: autoplace found too few candidates.
pub const FAIL_NOT_ENOUGH_NODES: u64 = 996;
/// `FAIL_IN_USE`: the object is in use (a mounted or opened DRBD device).
pub const FAIL_IN_USE: u64 = 997;
/// `FAIL_UNKNOWN_ERROR`.
pub const FAIL_UNKNOWN_ERROR: u64 = 998;

/// Codes that mean "in use": [`FAIL_IN_USE`], [`FAIL_RSC_BUSY`], [`FAIL_NODE_HAS_USED_RSC`].
pub const IN_USE_CODES: &[u64] = &[FAIL_IN_USE, FAIL_RSC_BUSY, FAIL_NODE_HAS_USED_RSC];
