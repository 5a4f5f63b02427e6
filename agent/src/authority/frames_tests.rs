use super::*;
use proptest::prelude::*;

type Fields = Vec<(Vec<u8>, Vec<u8>)>;

/// A frame as the client sends it: HEADERS blocks by their fields, others raw.
#[derive(Debug, Clone)]
enum Sent {
    Block {
        stream: u32,
        fields: Fields,
        end_stream: bool,
        priority: Option<[u8; 5]>,
        pad: u8,
        /// Fragment sizes before the last (the block is cut into HEADERS + CONTINUATIONs).
        cuts: Vec<usize>,
    },
    Other {
        kind: u8,
        flags: u8,
        stream: u32,
        payload: Vec<u8>,
    },
}

fn raw_frame(out: &mut Vec<u8>, kind: u8, flags: u8, stream: u32, payload: &[u8]) {
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
    out.extend_from_slice(&[kind, flags]);
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
}

/// The client's bytes for `frames`, encoded with one stateful encoder (dynamic table on).
fn client_bytes(frames: &[Sent]) -> Vec<u8> {
    let mut enc = loona_hpack::Encoder::new();
    let mut out = PREFACE.to_vec();
    for f in frames {
        match f {
            Sent::Other {
                kind,
                flags,
                stream,
                payload,
            } => raw_frame(&mut out, *kind, *flags, *stream, payload),
            Sent::Block {
                stream,
                fields,
                end_stream,
                priority,
                pad,
                cuts,
            } => {
                let block = enc.encode(fields.iter().map(|(n, v)| (&n[..], &v[..])));
                let mut pieces = Vec::new();
                let mut rest = &block[..];
                for c in cuts {
                    let (a, b) = rest.split_at((*c).min(rest.len()));
                    pieces.push(a);
                    rest = b;
                }
                pieces.push(rest);
                for (i, piece) in pieces.iter().enumerate() {
                    let last = i + 1 == pieces.len();
                    let mut flags = if last { END_HEADERS } else { 0 };
                    if i == 0 {
                        let mut payload = Vec::new();
                        if *pad > 0 {
                            flags |= PADDED;
                            payload.push(*pad);
                        }
                        if let Some(p) = priority {
                            flags |= PRIORITY;
                            payload.extend_from_slice(p);
                        }
                        if *end_stream {
                            flags |= END_STREAM;
                        }
                        payload.extend_from_slice(piece);
                        payload.extend(std::iter::repeat_n(0, usize::from(*pad)));
                        raw_frame(&mut out, HEADERS, flags, *stream, &payload);
                    } else {
                        raw_frame(&mut out, CONTINUATION, flags, *stream, piece);
                    }
                }
            }
        }
    }
    out
}

/// What h2 reads: the frames after the preface, with header blocks joined.
#[derive(Debug, PartialEq)]
enum Seen {
    Block {
        stream: u32,
        fields: Fields,
        end_stream: bool,
        priority: Option<[u8; 5]>,
    },
    Other {
        kind: u8,
        flags: u8,
        stream: u32,
        payload: Vec<u8>,
    },
}

/// Parses the rewritten bytes; every block must decode on its own (a fresh decoder: nothing
/// may lean on the dynamic table) and every frame must fit 16384 bytes.
fn parse_rewritten(bytes: &[u8]) -> Vec<Seen> {
    assert_eq!(&bytes[..24], PREFACE);
    let mut p = &bytes[24..];
    let mut seen = Vec::new();
    // (stream, END_STREAM, priority, fragment) of the block being read.
    type Open = (u32, bool, Option<[u8; 5]>, Vec<u8>);
    let mut open: Option<Open> = None;
    while !p.is_empty() {
        let head = FrameHead::parse(&p[..9]);
        let payload = &p[9..9 + head.len];
        p = &p[9 + head.len..];
        match head.kind {
            HEADERS | CONTINUATION => {
                assert!(head.len <= MAX_FRAME, "frame of {} bytes", head.len);
                assert_eq!(head.flags & PADDED, 0);
                if head.kind == HEADERS {
                    assert!(open.is_none(), "HEADERS inside a block");
                    let (prio, frag) = split_headers(head.flags, payload).unwrap();
                    open = Some((
                        head.stream,
                        head.flags & END_STREAM != 0,
                        prio,
                        frag.to_vec(),
                    ));
                } else {
                    let o = open.as_mut().expect("CONTINUATION outside a block");
                    assert_eq!(o.0, head.stream);
                    o.3.extend_from_slice(payload);
                }
                if head.flags & END_HEADERS != 0 {
                    let (stream, end_stream, priority, frag) = open.take().unwrap();
                    let fields = loona_hpack::Decoder::new()
                        .decode(&frag)
                        .expect("decodes without the dynamic table");
                    seen.push(Seen::Block {
                        stream,
                        fields,
                        end_stream,
                        priority,
                    });
                }
            }
            kind => {
                assert!(open.is_none(), "frame inside a block");
                seen.push(Seen::Other {
                    kind,
                    flags: head.flags,
                    stream: head.stream,
                    payload: payload.to_vec(),
                });
            }
        }
    }
    assert!(open.is_none());
    seen
}

fn expected(frames: &[Sent]) -> Vec<Seen> {
    frames
        .iter()
        .map(|f| match f.clone() {
            Sent::Other {
                kind,
                flags,
                stream,
                payload,
            } => Seen::Other {
                kind,
                flags,
                stream,
                payload,
            },
            Sent::Block {
                stream,
                fields,
                end_stream,
                priority,
                ..
            } => Seen::Block {
                stream,
                fields: fields
                    .into_iter()
                    .map(|(n, v)| {
                        if n == b":authority" && hpack::authority_refused(&v) {
                            (n, hpack::LOCALHOST.to_vec())
                        } else {
                            (n, v)
                        }
                    })
                    .collect(),
                end_stream,
                priority,
            },
        })
        .collect()
}

/// Feeds `bytes` in pieces of the given sizes (cycled), then ends the stream.
fn feed(bytes: &[u8], sizes: &[usize]) -> Vec<u8> {
    let mut r = Rewriter::default();
    let mut out = Vec::new();
    let mut rest = bytes;
    let mut i = 0;
    while !rest.is_empty() {
        let n = sizes[i % sizes.len()].clamp(1, rest.len());
        i += 1;
        r.push(&rest[..n], &mut out);
        rest = &rest[n..];
    }
    r.finish(&mut out);
    out
}

fn field() -> impl Strategy<Value = (Vec<u8>, Vec<u8>)> {
    let name = prop_oneof![
        Just(b":authority".to_vec()),
        Just(b":path".to_vec()),
        Just(b"content-type".to_vec()),
        Just(b"user-agent".to_vec()),
        Just(b"grpc-timeout".to_vec()),
        "x-[a-z]{1,12}".prop_map(String::into_bytes),
    ];
    let value = prop_oneof![
        Just(b"/var/lib/kubelet/plugins/csi.hearth.dev/csi.sock".to_vec()),
        Just(b"localhost".to_vec()),
        Just(b"application/grpc".to_vec()),
        "[ -~]{0,40}".prop_map(String::into_bytes),
        proptest::collection::vec(any::<u8>(), 0..3000),
    ];
    (name, value)
}

fn sent() -> impl Strategy<Value = Sent> {
    let block = (
        1u32..20,
        proptest::collection::vec(field(), 0..12),
        any::<bool>(),
        proptest::option::of(any::<[u8; 5]>()),
        prop_oneof![Just(0u8), any::<u8>()],
        proptest::collection::vec(0usize..200, 0..4),
    )
        .prop_map(
            |(stream, fields, end_stream, priority, pad, cuts)| Sent::Block {
                stream: stream * 2 + 1,
                fields,
                end_stream,
                priority,
                pad,
                cuts,
            },
        );
    let other = (
        prop_oneof![Just(0u8), Just(3), Just(4), Just(6), Just(8)],
        any::<u8>(),
        0u32..40,
        proptest::collection::vec(any::<u8>(), 0..300),
    )
        .prop_map(|(kind, flags, stream, payload)| Sent::Other {
            kind,
            flags,
            stream,
            payload,
        });
    prop_oneof![3 => block, 2 => other]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Whatever the header sets, the framing and the read sizes: h2 reads the same frames
    /// and fields, a refused `:authority` as `localhost`, self-contained blocks, frames that
    /// fit 16384 bytes.
    #[test]
    fn header_blocks_are_rewritten_and_everything_else_kept(
        frames in proptest::collection::vec(sent(), 0..8),
        sizes in proptest::collection::vec(1usize..5000, 1..6),
    ) {
        let bytes = client_bytes(&frames);
        let out = feed(&bytes, &sizes);
        prop_assert_eq!(parse_rewritten(&out), expected(&frames));
        prop_assert_eq!(&out, &feed(&bytes, &[bytes.len().max(1)]));
    }

    /// A stream that is not HTTP/2 from its first byte passes through unchanged.
    #[test]
    fn a_stream_without_the_preface_passes_unchanged(
        bytes in proptest::collection::vec(any::<u8>(), 1..2000),
        sizes in proptest::collection::vec(1usize..300, 1..4),
    ) {
        prop_assume!(!PREFACE.starts_with(&bytes[..bytes.len().min(24)]));
        prop_assert_eq!(feed(&bytes, &sizes), bytes);
    }

    /// Bytes cut or garbled anywhere: no panic, and what h2 reads does not depend on how the
    /// bytes were cut into reads.
    #[test]
    fn truncated_or_garbled_streams_never_panic(
        frames in proptest::collection::vec(sent(), 1..5),
        cut in any::<prop::sample::Index>(),
        flip in proptest::option::of((any::<prop::sample::Index>(), any::<u8>())),
    ) {
        let mut bytes = client_bytes(&frames);
        if let Some((at, x)) = flip {
            let i = at.index(bytes.len());
            bytes[i] ^= x;
        }
        bytes.truncate(cut.index(bytes.len() + 1));
        let out = feed(&bytes, &[7, 4096]);
        prop_assert_eq!(&out, &feed(&bytes, &[bytes.len().max(1)]));
    }
}

#[test]
fn a_huffman_coded_block_from_rfc7541_c4_is_read() {
    // RFC 7541 C.4.1: GET http://www.example.com/ with Huffman-coded strings.
    let block: [u8; 17] = [
        0x82, 0x86, 0x84, 0x41, 0x8c, 0xf1, 0xe3, 0xc2, 0xe5, 0xf2, 0x3a, 0x6b, 0xa0, 0xab, 0x90,
        0xf4, 0xff,
    ];
    let mut bytes = PREFACE.to_vec();
    raw_frame(&mut bytes, HEADERS, END_HEADERS | END_STREAM, 1, &block);
    let seen = parse_rewritten(&feed(&bytes, &[3]));
    let Seen::Block { fields, .. } = &seen[0] else {
        panic!("{seen:?}")
    };
    assert_eq!(
        fields[3],
        (b":authority".to_vec(), b"www.example.com".to_vec())
    );
    assert_eq!(fields[2], (b":path".to_vec(), b"/".to_vec()));
}

#[test]
fn a_large_block_is_cut_into_continuations() {
    let big = vec![b'v'; 40_000];
    let frames = [Sent::Block {
        stream: 1,
        fields: vec![
            (b":authority".to_vec(), b"/run/csi.sock".to_vec()),
            (b"x-big".to_vec(), big),
        ],
        end_stream: false,
        priority: Some([0, 0, 0, 3, 15]),
        pad: 0,
        cuts: vec![100],
    }];
    let out = feed(&client_bytes(&frames), &[65536]);
    let mut kinds = Vec::new();
    let mut p = &out[24..];
    while !p.is_empty() {
        let head = FrameHead::parse(p);
        kinds.push(head.kind);
        p = &p[9 + head.len..];
    }
    assert_eq!(kinds, [HEADERS, CONTINUATION, CONTINUATION]);
    assert_eq!(parse_rewritten(&out), expected(&frames));
}

#[test]
fn a_frame_inside_a_block_falls_back_to_the_clients_bytes() {
    let mut bytes = PREFACE.to_vec();
    let block = loona_hpack::Encoder::new().encode([(&b":path"[..], &b"/x"[..])]);
    raw_frame(&mut bytes, HEADERS, 0, 1, &block);
    raw_frame(&mut bytes, 0x6, 0, 0, &[0; 8]);
    raw_frame(&mut bytes, DATA_FRAME, 0, 1, b"after");
    let mut r = Rewriter::default();
    let mut out = Vec::new();
    r.push(&bytes, &mut out);
    assert_eq!(out, bytes);
    assert!(r.passing_through());
}

const DATA_FRAME: u8 = 0;
