//! The client-to-server HTTP/2 byte stream, frame by frame: the preface and every frame but
//! HEADERS and CONTINUATION pass unchanged (DATA streams through without buffering); each
//! header block (HEADERS plus its CONTINUATIONs) is collected, rewritten by [`super::hpack`]
//! and sent again as HEADERS and CONTINUATION frames of at most 16384 bytes (the smallest
//! SETTINGS_MAX_FRAME_SIZE a server may have), with the same stream, END_STREAM and priority,
//! without padding. Anything this does not expect (a frame inside a header block, PUSH_PROMISE,
//! a malformed or oversized HEADERS frame, a block that does not decode) switches the
//! connection to plain pass-through from that byte on, so h2 sees the client's own bytes and
//! answers them as it would without this layer.

use loona_hpack::Decoder;

use super::hpack;

/// The client connection preface (RFC 9113 §3.4).
pub const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// The largest frame payload written: SETTINGS_MAX_FRAME_SIZE's initial and smallest value.
pub const MAX_FRAME: usize = 16_384;
/// The largest header block (compressed, all its frames) collected before giving up.
pub const MAX_BLOCK: usize = 256 << 10;

const HEAD: usize = 9;
const HEADERS: u8 = 0x1;
const PUSH_PROMISE: u8 = 0x5;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;

#[derive(Debug, Clone, Copy)]
struct FrameHead {
    len: usize,
    kind: u8,
    flags: u8,
    stream: u32,
}

impl FrameHead {
    fn parse(b: &[u8]) -> Self {
        Self {
            len: usize::from(b[0]) << 16 | usize::from(b[1]) << 8 | usize::from(b[2]),
            kind: b[3],
            flags: b[4],
            stream: u32::from_be_bytes([b[5], b[6], b[7], b[8]]) & 0x7fff_ffff,
        }
    }
}

/// A header block being collected.
struct Block {
    stream: u32,
    end_stream: bool,
    priority: Option<[u8; 5]>,
    fragment: Vec<u8>,
    /// The client's own frames of the block, for pass-through.
    raw: Vec<u8>,
}

enum State {
    /// This many bytes of the preface seen.
    Preface(usize),
    /// Collecting a frame head in `pending`.
    Head,
    /// Passing this many payload bytes through.
    Payload(usize),
    /// Collecting a HEADERS or CONTINUATION frame (head and payload) in `pending`.
    HeaderFrame(FrameHead),
    /// Passing everything through.
    Raw,
}

/// The rewriter of one connection's client-to-server bytes.
pub struct Rewriter {
    state: State,
    pending: Vec<u8>,
    block: Option<Block>,
    decoder: Decoder<'static>,
    rewritten: u64,
}

impl Default for Rewriter {
    fn default() -> Self {
        Self {
            state: State::Preface(0),
            pending: Vec::new(),
            block: None,
            decoder: hpack::decoder(),
            rewritten: 0,
        }
    }
}

impl Rewriter {
    /// How many `:authority` values were replaced so far (for a log line).
    pub fn replaced(&self) -> u64 {
        self.rewritten
    }

    /// Whether the connection has fallen back to plain pass-through.
    pub fn passing_through(&self) -> bool {
        matches!(self.state, State::Raw)
    }

    /// Takes the next bytes from the client and appends what h2 should read to `out`.
    pub fn push(&mut self, mut input: &[u8], out: &mut Vec<u8>) {
        while !input.is_empty() {
            match self.state {
                State::Raw => {
                    out.extend_from_slice(input);
                    return;
                }
                State::Preface(seen) => {
                    let n = input.len().min(PREFACE.len() - seen);
                    if input[..n] != PREFACE[seen..seen + n] {
                        out.extend_from_slice(&PREFACE[..seen]);
                        self.state = State::Raw;
                        continue;
                    }
                    input = &input[n..];
                    self.state = if seen + n == PREFACE.len() {
                        out.extend_from_slice(PREFACE);
                        State::Head
                    } else {
                        State::Preface(seen + n)
                    };
                }
                State::Payload(left) => {
                    let n = input.len().min(left);
                    out.extend_from_slice(&input[..n]);
                    input = &input[n..];
                    self.state = if n == left {
                        State::Head
                    } else {
                        State::Payload(left - n)
                    };
                }
                State::Head => {
                    let n = input.len().min(HEAD - self.pending.len());
                    self.pending.extend_from_slice(&input[..n]);
                    input = &input[n..];
                    if self.pending.len() == HEAD {
                        self.on_head(out);
                    }
                }
                State::HeaderFrame(head) => {
                    let n = input.len().min(HEAD + head.len - self.pending.len());
                    self.pending.extend_from_slice(&input[..n]);
                    input = &input[n..];
                    if self.pending.len() == HEAD + head.len {
                        self.on_header_frame(head, out);
                    }
                }
            }
        }
    }

    /// The client closed its side: whatever is held goes to h2 as the client sent it.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if let State::Preface(seen) = self.state {
            out.extend_from_slice(&PREFACE[..seen]);
        }
        self.fall_back(out);
    }

    fn fall_back(&mut self, out: &mut Vec<u8>) {
        if let Some(block) = self.block.take() {
            out.extend_from_slice(&block.raw);
        }
        out.append(&mut self.pending);
        self.state = State::Raw;
    }

    fn on_head(&mut self, out: &mut Vec<u8>) {
        let head = FrameHead::parse(&self.pending);
        let in_block = self.block.as_ref().map(|b| b.stream);
        let headerish = match (head.kind, in_block) {
            (CONTINUATION, Some(stream)) => head.stream == stream,
            (HEADERS, None) => true,
            // Anything else inside a block, and a client's PUSH_PROMISE, are protocol errors
            // that h2 reports; a CONTINUATION outside a block too.
            (_, Some(_)) | (PUSH_PROMISE, None) => {
                self.fall_back(out);
                return;
            }
            _ => false,
        };
        if !headerish {
            out.append(&mut self.pending);
            self.state = if head.len == 0 {
                State::Head
            } else {
                State::Payload(head.len)
            };
            return;
        }
        let held = self.block.as_ref().map_or(0, |b| b.raw.len());
        if head.len > MAX_BLOCK || held + HEAD + head.len > MAX_BLOCK {
            self.fall_back(out);
            return;
        }
        self.state = State::HeaderFrame(head);
        if head.len == 0 {
            self.on_header_frame(head, out);
        }
    }

    fn on_header_frame(&mut self, head: FrameHead, out: &mut Vec<u8>) {
        self.state = State::Head;
        if head.kind == HEADERS {
            let Some((priority, fragment)) = split_headers(head.flags, &self.pending[HEAD..])
            else {
                self.fall_back(out);
                return;
            };
            self.block = Some(Block {
                stream: head.stream,
                end_stream: head.flags & END_STREAM != 0,
                priority,
                fragment: fragment.to_vec(),
                raw: Vec::new(),
            });
        } else if let Some(block) = &mut self.block {
            block.fragment.extend_from_slice(&self.pending[HEAD..]);
        }
        let Some(block) = &mut self.block else {
            return;
        };
        block.raw.append(&mut self.pending);
        if head.flags & END_HEADERS == 0 {
            return;
        }
        let mut replaced = false;
        let rewritten = hpack::rewrite(&mut self.decoder, &block.fragment, &mut replaced);
        match rewritten {
            Ok(fields) => {
                write_block(out, block.stream, block.end_stream, block.priority, &fields);
                self.rewritten += u64::from(replaced);
                self.block = None;
            }
            Err(e) => {
                tracing::debug!("HTTP/2 header block passed through unchanged: {e}");
                self.fall_back(out);
            }
        }
    }
}

/// A HEADERS payload's priority fields and fragment, without padding; `None` when the lengths
/// do not fit (h2 then answers the client's own frame).
fn split_headers(flags: u8, payload: &[u8]) -> Option<(Option<[u8; 5]>, &[u8])> {
    let mut p = payload;
    let mut pad = 0usize;
    if flags & PADDED != 0 {
        pad = usize::from(*p.first()?);
        p = &p[1..];
    }
    let mut priority = None;
    if flags & PRIORITY != 0 {
        let fields: [u8; 5] = p.get(..5)?.try_into().ok()?;
        priority = Some(fields);
        p = &p[5..];
    }
    let end = p.len().checked_sub(pad)?;
    Some((priority, &p[..end]))
}

/// Writes `fields` as HEADERS and CONTINUATION frames of at most [`MAX_FRAME`] bytes.
fn write_block(
    out: &mut Vec<u8>,
    stream: u32,
    end_stream: bool,
    priority: Option<[u8; 5]>,
    fields: &[u8],
) {
    let first_room = MAX_FRAME - if priority.is_some() { 5 } else { 0 };
    let (first, mut rest) = fields.split_at(fields.len().min(first_room));
    let mut flags = if end_stream { END_STREAM } else { 0 };
    if priority.is_some() {
        flags |= PRIORITY;
    }
    if rest.is_empty() {
        flags |= END_HEADERS;
    }
    let prio = priority.as_ref().map_or(&[][..], |p| &p[..]);
    frame(out, HEADERS, flags, stream, &[prio, first]);
    while !rest.is_empty() {
        let (chunk, tail) = rest.split_at(rest.len().min(MAX_FRAME));
        rest = tail;
        let flags = if rest.is_empty() { END_HEADERS } else { 0 };
        frame(out, CONTINUATION, flags, stream, &[chunk]);
    }
}

fn frame(out: &mut Vec<u8>, kind: u8, flags: u8, stream: u32, parts: &[&[u8]]) {
    let len: usize = parts.iter().map(|p| p.len()).sum();
    // len <= MAX_FRAME < 2^24: three bytes hold it.
    out.extend_from_slice(&(len as u32).to_be_bytes()[1..]);
    out.extend_from_slice(&[kind, flags]);
    out.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    for p in parts {
        out.extend_from_slice(p);
    }
}

#[cfg(test)]
#[path = "frames_tests.rs"]
mod tests;
