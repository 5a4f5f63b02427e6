//! Fuzzes the HTTP/2 rewriter in front of the CSI socket (`agent/src/authority`) with a
//! client's byte stream: the HTTP/2 preface followed by the input, fed in pieces whose sizes
//! come from the input's first byte.
//!
//! Checks beyond "no panic": what h2 reads does not depend on how the client's bytes were cut
//! into reads, and a connection that fell back to pass-through ends with the client's bytes.
#![no_main]

use hearth_agent::authority::frames::{Rewriter, PREFACE};
use libfuzzer_sys::fuzz_target;

fn feed(bytes: &[u8], piece: usize) -> (Vec<u8>, bool) {
    let mut r = Rewriter::default();
    let mut out = Vec::new();
    for chunk in bytes.chunks(piece.max(1)) {
        r.push(chunk, &mut out);
    }
    r.finish(&mut out);
    (out, r.passing_through())
}

fuzz_target!(|data: &[u8]| {
    let Some((&cut, rest)) = data.split_first() else {
        return;
    };
    let mut bytes = PREFACE.to_vec();
    bytes.extend_from_slice(rest);
    let (whole, raw) = feed(&bytes, bytes.len());
    let (pieces, _) = feed(&bytes, usize::from(cut));
    assert_eq!(whole, pieces, "the output depends on the read sizes");
    assert!(raw, "finish always ends in pass-through");
    assert!(whole.starts_with(PREFACE));
});
