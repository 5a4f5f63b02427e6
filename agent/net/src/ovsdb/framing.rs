//! Framing of OVSDB JSON-RPC (RFC 7047): messages are JSON objects written back to back with
//! no delimiter. [`Decoder`] buffers partial reads and yields whole messages; [`Message`]
//! classifies each one. Owns only bytes already read; it never touches the socket.

use serde_json::{Map, Value};

use super::OvsdbError;

/// The most bytes one undelivered message may take in the buffer (a full OVS database dump
/// on a big node is a few MiB).
pub const MAX_BUFFER: usize = 64 << 20;

/// One JSON-RPC message.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// A request (`id` not null) or a notification (`id` null, like `update`).
    Request {
        /// The id; `Value::Null` for a notification.
        id: Value,
        /// The method.
        method: String,
        /// The params (an array).
        params: Value,
    },
    /// A response to one of our requests.
    Response {
        /// The id of our request.
        id: Value,
        /// The result (null on error).
        result: Value,
        /// The error (null on success).
        error: Value,
    },
}

impl Message {
    /// Classifies a decoded JSON object.
    pub fn from_value(v: Value) -> Result<Self, OvsdbError> {
        let Value::Object(mut o) = v else {
            return Err(OvsdbError::Frame("a message is not a JSON object".into()));
        };
        let id = o.remove("id").unwrap_or(Value::Null);
        if let Some(method) = o.remove("method") {
            let Value::String(method) = method else {
                return Err(OvsdbError::Frame("method is not a string".into()));
            };
            let params = o.remove("params").unwrap_or(Value::Array(vec![]));
            return Ok(Self::Request { id, method, params });
        }
        if o.contains_key("result") || o.contains_key("error") {
            let result = o.remove("result").unwrap_or(Value::Null);
            let error = o.remove("error").unwrap_or(Value::Null);
            return Ok(Self::Response { id, result, error });
        }
        Err(OvsdbError::Frame(
            "message has neither method nor result".into(),
        ))
    }

    /// The JSON text of this message.
    pub fn to_value(&self) -> Value {
        let mut o = Map::new();
        match self {
            Self::Request { id, method, params } => {
                o.insert("method".into(), Value::String(method.clone()));
                o.insert("params".into(), params.clone());
                o.insert("id".into(), id.clone());
            }
            Self::Response { id, result, error } => {
                o.insert("result".into(), result.clone());
                o.insert("error".into(), error.clone());
                o.insert("id".into(), id.clone());
            }
        }
        Value::Object(o)
    }
}

/// Splits a byte stream into JSON messages.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
}

impl Decoder {
    /// Appends bytes just read and returns every message they complete, in order. A syntax
    /// error poisons the stream (the caller reconnects).
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<Message>, OvsdbError> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        let mut consumed = 0;
        {
            let mut stream = serde_json::Deserializer::from_slice(&self.buf).into_iter::<Value>();
            loop {
                match stream.next() {
                    None => {
                        consumed = self.buf.len();
                        break;
                    }
                    Some(Ok(v)) => {
                        consumed = stream.byte_offset();
                        out.push(Message::from_value(v)?);
                    }
                    Some(Err(e)) if e.is_eof() => break,
                    Some(Err(e)) => return Err(OvsdbError::Frame(e.to_string())),
                }
            }
        }
        self.buf.drain(..consumed);
        if self.buf.len() > MAX_BUFFER {
            return Err(OvsdbError::Frame(format!(
                "an unfinished message exceeds {MAX_BUFFER} bytes"
            )));
        }
        Ok(out)
    }

    /// Bytes waiting for the rest of their message.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn concatenated_messages_and_partial_reads() {
        let mut d = Decoder::default();
        let a = br#"{"id":1,"result":{},"error":null}{"method":"echo","params":[],"id":"echo"}{"id":null,"method":"upd"#;
        let got = d.push(a).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(
            got[1],
            Message::Request {
                id: json!("echo"),
                method: "echo".into(),
                params: json!([])
            }
        );
        assert!(d.pending() > 0);
        let got = d.push(br#"ate","params":["m",{}]} "#).unwrap();
        assert!(
            matches!(&got[0], Message::Request { method, id: Value::Null, .. } if method == "update")
        );
        assert_eq!(d.pending(), 0);
    }

    #[test]
    fn garbage_and_non_objects_are_errors() {
        assert!(Decoder::default().push(b"}{").is_err());
        assert!(Decoder::default().push(b"[1] ").is_err());
        assert!(Decoder::default().push(br#"{"id":1} "#).is_err());
    }

    fn message() -> impl Strategy<Value = Message> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<i64>().prop_map(Value::from),
            "[a-z\\\\\"{}\\[\\] é]{0,8}".prop_map(Value::from),
        ];
        let val = leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("[a-z_]{1,6}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        });
        prop_oneof![
            (any::<u32>(), "[a-z_]{1,10}", val.clone()).prop_map(|(id, method, p)| {
                Message::Request {
                    id: json!(id),
                    method,
                    params: json!([p]),
                }
            }),
            (any::<u32>(), val).prop_map(|(id, result)| Message::Response {
                id: json!(id),
                result,
                error: Value::Null
            }),
        ]
    }

    proptest! {
        #[test]
        fn arbitrary_splits_parse_identically(
            msgs in prop::collection::vec(message(), 1..8),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..12),
        ) {
            let stream: Vec<u8> = msgs.iter().flat_map(|m| m.to_value().to_string().into_bytes()).collect();
            let mut at: Vec<usize> = cuts.iter().map(|i| i.index(stream.len() + 1)).collect();
            at.sort_unstable();
            let mut d = Decoder::default();
            let mut got = Vec::new();
            let mut prev = 0;
            for c in at.into_iter().chain([stream.len()]) {
                got.extend(d.push(&stream[prev..c]).unwrap());
                prev = c;
            }
            prop_assert_eq!(got, msgs);
            prop_assert_eq!(d.pending(), 0);
        }
    }
}
