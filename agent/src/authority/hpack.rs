//! One client header block, decoded with the connection's HPACK decoder and written again
//! without the dynamic table: every field a "literal never indexed" (RFC 7541 §6.2.3) with the
//! static table's index for its name when there is one, no Huffman coding. An `:authority`
//! that h2 would refuse (a socket path) becomes `localhost`, as grpc-go sends.

use loona_hpack::Decoder;

/// What h2 gets for an `:authority` it cannot parse.
pub const LOCALHOST: &[u8] = b"localhost";

/// Header list size (RFC 7541 §4.1: name + value + 32 per field) past which a block is not
/// rewritten. h2 under tonic refuses lists over 16 KiB anyway; this bounds what one block of
/// dynamic-table references can make the rewriter copy.
pub const MAX_LIST: usize = 256 << 10;

/// Why a block was not rewritten (the connection then passes through unchanged, and h2 judges).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum HpackError {
    /// The block does not decode.
    #[error("header block does not decode: {0}")]
    Decode(String),
    /// The decoded list is larger than [`MAX_LIST`].
    #[error("header list of {0} bytes or more")]
    TooLarge(usize),
}

/// The names of RFC 7541 Appendix A's static table, index 1 to 61.
const STATIC_NAMES: [&[u8]; 61] = [
    b":authority",
    b":method",
    b":method",
    b":path",
    b":path",
    b":scheme",
    b":scheme",
    b":status",
    b":status",
    b":status",
    b":status",
    b":status",
    b":status",
    b":status",
    b"accept-charset",
    b"accept-encoding",
    b"accept-language",
    b"accept-ranges",
    b"accept",
    b"access-control-allow-origin",
    b"age",
    b"allow",
    b"authorization",
    b"cache-control",
    b"content-disposition",
    b"content-encoding",
    b"content-language",
    b"content-length",
    b"content-location",
    b"content-range",
    b"content-type",
    b"cookie",
    b"date",
    b"etag",
    b"expect",
    b"expires",
    b"from",
    b"host",
    b"if-match",
    b"if-modified-since",
    b"if-none-match",
    b"if-range",
    b"if-unmodified-since",
    b"last-modified",
    b"link",
    b"location",
    b"max-forwards",
    b"proxy-authenticate",
    b"proxy-authorization",
    b"range",
    b"referer",
    b"refresh",
    b"retry-after",
    b"server",
    b"set-cookie",
    b"strict-transport-security",
    b"transfer-encoding",
    b"user-agent",
    b"vary",
    b"via",
    b"www-authenticate",
];

/// A decoder for one connection's client blocks, with the dynamic table size h2 allows by
/// default (4096; tonic does not change it).
pub fn decoder() -> Decoder<'static> {
    let mut d = Decoder::new();
    d.set_max_allowed_table_size(4096);
    d
}

/// Whether h2 refuses this `:authority` value (it parses it as a URI authority).
pub fn authority_refused(value: &[u8]) -> bool {
    http::uri::Authority::try_from(value).is_err()
}

/// Decodes `block` with `decoder` and returns it written again (see the module doc);
/// `replaced` tells whether an `:authority` was replaced.
pub fn rewrite(
    decoder: &mut Decoder<'static>,
    block: &[u8],
    replaced: &mut bool,
) -> Result<Vec<u8>, HpackError> {
    let mut out = Vec::with_capacity(block.len() + 64);
    let mut size = 0usize;
    decoder
        .decode_with_cb(block, |name, value| {
            size = size.saturating_add(name.len() + value.len() + 32);
            if size > MAX_LIST {
                return;
            }
            let value: &[u8] = if &*name == b":authority" && authority_refused(&value) {
                *replaced = true;
                LOCALHOST
            } else {
                &value
            };
            encode_field(&mut out, &name, value);
        })
        .map_err(|e| HpackError::Decode(e.to_string()))?;
    if size > MAX_LIST {
        return Err(HpackError::TooLarge(size));
    }
    Ok(out)
}

/// One field as a literal never indexed: `0001` + the static name index (4-bit prefix), or
/// `0x10` + the name as a string; then the value as a string.
pub fn encode_field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    match STATIC_NAMES.iter().position(|n| *n == name) {
        Some(i) => integer(out, 0x10, 4, i + 1),
        None => {
            out.push(0x10);
            string(out, name);
        }
    }
    string(out, value);
}

/// A string literal without Huffman coding (RFC 7541 §5.2).
fn string(out: &mut Vec<u8>, s: &[u8]) {
    integer(out, 0x00, 7, s.len());
    out.extend_from_slice(s);
}

/// An integer with an N-bit prefix (RFC 7541 §5.1); `first` holds the bits above the prefix.
fn integer(out: &mut Vec<u8>, first: u8, prefix_bits: u8, value: usize) {
    let max = (1usize << prefix_bits) - 1;
    if value < max {
        // value < 2^prefix_bits <= 128: fits in the byte.
        out.push(first | value as u8);
        return;
    }
    out.push(first | max as u8);
    let mut rest = value - max;
    while rest >= 0x80 {
        out.push((rest & 0x7f) as u8 | 0x80);
        rest >>= 7;
    }
    out.push(rest as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_follow_rfc7541_c1() {
        let mut out = Vec::new();
        integer(&mut out, 0, 5, 10);
        assert_eq!(out, [0x0a]);
        out.clear();
        integer(&mut out, 0, 5, 1337);
        assert_eq!(out, [0x1f, 0x9a, 0x0a]);
        out.clear();
        integer(&mut out, 0, 8, 42);
        assert_eq!(out, [0x2a]);
    }

    #[test]
    fn a_socket_path_authority_becomes_localhost_and_others_stay() {
        let mut enc = loona_hpack::Encoder::new();
        let block = enc.encode([
            (&b":method"[..], &b"POST"[..]),
            (
                b":authority",
                b"/var/lib/kubelet/plugins/csi.hearth.dev/csi.sock",
            ),
            (b":path", b"/csi.v1.Identity/Probe"),
            (b"te", b"trailers"),
        ]);
        let mut d = decoder();
        let out = rewrite(&mut d, &block, &mut false).unwrap();
        let got = Decoder::new().decode(&out).unwrap();
        assert_eq!(got[1], (b":authority".to_vec(), LOCALHOST.to_vec()));
        assert_eq!(got[2].1, b"/csi.v1.Identity/Probe");
        assert_eq!(got.len(), 4);
        for ok in [&b"localhost"[..], b"[::1]:50051", b"csi.hearth.dev", b"a:1"] {
            assert!(!authority_refused(ok), "{ok:?}");
        }
        for bad in [&b"/run/csi.sock"[..], b"", b"unix:/run/x y"] {
            assert!(authority_refused(bad), "{bad:?}");
        }
    }

    #[test]
    fn a_block_that_does_not_decode_or_is_too_large_is_refused() {
        let mut d = decoder();
        assert!(matches!(
            rewrite(&mut d, &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff], &mut false),
            Err(HpackError::Decode(_))
        ));
        let big = vec![b'x'; 4000];
        let mut enc = loona_hpack::Encoder::new();
        // One literal added to the dynamic table, then referenced many times (one byte each).
        let mut block = enc.encode([(&b"x-big"[..], &big[..])]);
        block.extend(std::iter::repeat_n(0xbe, 100));
        assert!(matches!(
            rewrite(&mut decoder(), &block, &mut false),
            Err(HpackError::TooLarge(_))
        ));
    }
}
