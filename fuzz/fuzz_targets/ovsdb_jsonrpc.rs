//! Fuzzes the OVSDB JSON-RPC framing and decoding: the input is split at a point taken from
//! its first byte and fed in two reads; the messages must equal those of a single read, and
//! the datum decoders must not panic on any message's params or result.
#![no_main]

use hearth_net::ovsdb::datum::{decode_map, decode_optional, decode_strings, decode_uuids};
use hearth_net::ovsdb::framing::{Decoder, Message};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&cut, data)) = data.split_first() else {
        return;
    };
    let whole = Decoder::default().push(data);
    let at = usize::from(cut) % (data.len() + 1);
    let mut d = Decoder::default();
    let split = d.push(&data[..at]).and_then(|mut a| {
        a.extend(d.push(&data[at..])?);
        Ok(a)
    });
    if let (Ok(w), Ok(s)) = (&whole, &split) {
        assert_eq!(w, s, "a split read changed the messages");
    }
    for m in whole.into_iter().flatten() {
        let v = match m {
            Message::Request { params, .. } => params,
            Message::Response { result, .. } => result,
        };
        for item in v.as_array().into_iter().flatten().chain([&v]) {
            let _ = (
                decode_map(item),
                decode_uuids(item),
                decode_optional(item),
                decode_strings(item),
            );
        }
    }
});
