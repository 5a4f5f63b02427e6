//! Thin, safe wrappers over host primitives that are not mounts: block device facts, loop
//! devices and file copies. Nothing here knows about CSI; the callers map these errors to CSI
//! codes.

pub mod blockdev;
pub mod child;
pub mod copy;
pub mod loopdev;
