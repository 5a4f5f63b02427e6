//! Raw protobuf wire walking, for the custom options prost drops (`csi_secret` = 1059, the
//! `alpha_*` family = 1060): the descriptor bytes are read field by field.

use std::collections::BTreeMap;

/// Extension numbers of the upstream custom options.
const CSI_SECRET: u32 = 1059;
const ALPHA: u32 = 1060;

pub(crate) enum Wire<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    Fixed,
}

pub(crate) fn read_varint(buf: &[u8], pos: &mut usize) -> u64 {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *buf.get(*pos).expect("truncated varint in descriptor");
        *pos += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return value;
        }
    }
    panic!("varint longer than 10 bytes in descriptor");
}

/// Splits one encoded message into (field number, value) pairs.
pub(crate) fn wire_fields(buf: &[u8]) -> Vec<(u32, Wire<'_>)> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let tag = read_varint(buf, &mut pos);
        let number = u32::try_from(tag >> 3).expect("field number fits u32");
        let value = match tag & 7 {
            0 => Wire::Varint(read_varint(buf, &mut pos)),
            1 => {
                pos += 8;
                Wire::Fixed
            }
            2 => {
                let len = usize::try_from(read_varint(buf, &mut pos)).expect("length fits usize");
                let bytes = buf
                    .get(pos..pos + len)
                    .expect("truncated field in descriptor");
                pos += len;
                Wire::Bytes(bytes)
            }
            5 => {
                pos += 4;
                Wire::Fixed
            }
            other => panic!("unexpected wire type {other} in descriptor"),
        };
        out.push((number, value));
    }
    assert_eq!(pos, buf.len(), "descriptor field overran its message");
    out
}

pub(crate) fn string_field(buf: &[u8], number: u32) -> String {
    wire_fields(buf)
        .into_iter()
        .find_map(|(n, v)| match v {
            Wire::Bytes(b) if n == number => {
                Some(String::from_utf8(b.to_vec()).expect("utf-8 name"))
            }
            _ => None,
        })
        .unwrap_or_default()
}

pub(crate) fn sub_messages(buf: &[u8], number: u32) -> Vec<&[u8]> {
    wire_fields(buf)
        .into_iter()
        .filter_map(|(n, v)| match v {
            Wire::Bytes(b) if n == number => Some(b),
            _ => None,
        })
        .collect()
}

/// The flags set in an encoded `*Options` message, spelled as in the reference.
pub(crate) fn option_flags(options: &[u8]) -> Vec<&'static str> {
    let mut flags = Vec::new();
    for (n, v) in wire_fields(options) {
        if let Wire::Varint(x) = v {
            match n {
                CSI_SECRET if x != 0 => flags.push("secret"),
                ALPHA if x != 0 => flags.push("alpha"),
                _ => {}
            }
        }
    }
    flags
}

pub(crate) fn flags_of(element: &[u8], options_field: u32) -> String {
    let mut flags: Vec<&str> = sub_messages(element, options_field)
        .into_iter()
        .flat_map(option_flags)
        .collect();
    flags.sort_unstable();
    flags.dedup();
    flags.join(",")
}

/// Custom-option flags of every element of our package, keyed by "<kind> <full name>"
/// (enum values as `<enum>.<VALUE>`).
#[derive(Default)]
pub(crate) struct RawFlags {
    pub(crate) by_element: BTreeMap<String, String>,
}

impl RawFlags {
    pub(crate) fn collect(set: &[u8], package: &str) -> Self {
        let mut flags = Self::default();
        for file in sub_messages(set, 1) {
            if string_field(file, 2) != package {
                continue;
            }
            for message in sub_messages(file, 4) {
                flags.message(package, message);
            }
            for enumeration in sub_messages(file, 5) {
                flags.enumeration(package, enumeration);
            }
            for service in sub_messages(file, 6) {
                let name = format!("{package}.{}", string_field(service, 1));
                flags.put("service", &name, flags_of(service, 3));
                for method in sub_messages(service, 2) {
                    let method_name = format!("{name}.{}", string_field(method, 1));
                    flags.put("rpc", &method_name, flags_of(method, 4));
                }
            }
        }
        flags
    }

    fn put(&mut self, kind: &str, name: &str, flags: String) {
        let previous = self.by_element.insert(format!("{kind} {name}"), flags);
        assert!(previous.is_none(), "duplicate {kind} {name} in descriptor");
    }

    fn message(&mut self, scope: &str, message: &[u8]) {
        let name = format!("{scope}.{}", string_field(message, 1));
        self.put("message", &name, flags_of(message, 7));
        for field in sub_messages(message, 2) {
            let field_name = format!("{name}.{}", string_field(field, 1));
            self.put("field", &field_name, flags_of(field, 8));
        }
        for nested in sub_messages(message, 3) {
            self.message(&name, nested);
        }
        for enumeration in sub_messages(message, 4) {
            self.enumeration(&name, enumeration);
        }
    }

    fn enumeration(&mut self, scope: &str, enumeration: &[u8]) {
        let name = format!("{scope}.{}", string_field(enumeration, 1));
        self.put("enum", &name, flags_of(enumeration, 3));
        for value in sub_messages(enumeration, 2) {
            let value_name = format!("{name}.{}", string_field(value, 1));
            self.put("enum_value", &value_name, flags_of(value, 3));
        }
    }

    pub(crate) fn get(&self, kind: &str, name: &str) -> &str {
        self.by_element
            .get(&format!("{kind} {name}"))
            .unwrap_or_else(|| panic!("raw walk missed {kind} {name}"))
    }

    pub(crate) fn flagged(&self, kind: &str, flag: &str) -> usize {
        let prefix = format!("{kind} ");
        self.by_element
            .iter()
            .filter(|(k, v)| k.starts_with(&prefix) && v.split(',').any(|f| f == flag))
            .count()
    }
}
