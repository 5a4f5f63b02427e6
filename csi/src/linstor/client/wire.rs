//! Serde helpers for LINSTOR's JSON: `null` where a list or map is expected, `ret_code` as a
//! signed or unsigned 64-bit number, and skip predicates for request bodies.
//!
//! Owns: value-level decoding rules only. No types of the API live here.

use serde::{Deserialize, Deserializer, Serializer};

/// Decodes `null` (or an absent field, with `#[serde(default)]`) as the type's default. LINSTOR
/// writes `null` for empty lists in some shapes (`AutoSelectFilter` declares `default: null`).
pub fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Decodes a `ret_code`: LINSTOR writes it as a signed 64-bit number (errors are negative,
/// because bit 63 is set); other servers may write the unsigned form. Either way the result is
/// the raw bit pattern.
pub fn ret_code<'de, D>(d: D) -> Result<u64, D::Error>
where
    D: Deserializer<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Num {
        Unsigned(u64),
        Signed(i64),
    }
    Ok(match Option::<Num>::deserialize(d)? {
        Some(Num::Unsigned(u)) => u,
        Some(Num::Signed(i)) => i as u64, // the bit pattern, on purpose
        None => 0,
    })
}

/// Encodes a `ret_code` bit pattern the way LINSTOR does: as a signed 64-bit number.
pub fn ret_code_ser<S>(code: &u64, s: S) -> Result<S::Ok, S::Error>
where
    S: Serializer,
{
    s.serialize_i64(*code as i64) // the bit pattern, on purpose
}

/// `skip_serializing_if` for booleans that default to false.
pub fn is_false(b: &bool) -> bool {
    !*b
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Deserialize, Default)]
    #[serde(default)]
    struct T {
        #[serde(deserialize_with = "super::null_default")]
        list: Vec<String>,
        #[serde(deserialize_with = "super::ret_code")]
        rc: u64,
    }

    #[test]
    fn null_list_is_empty() {
        let t: T = serde_json::from_str(r#"{"list": null}"#).unwrap();
        assert!(t.list.is_empty());
        let t: T = serde_json::from_str(r#"{}"#).unwrap();
        assert!(t.list.is_empty());
        let t: T = serde_json::from_str(r#"{"list": ["a"]}"#).unwrap();
        assert_eq!(t.list, ["a"]);
    }

    #[test]
    fn ret_code_signed_and_unsigned() {
        let t: T = serde_json::from_str(r#"{"rc": -4611686018427387403}"#).unwrap();
        assert_eq!(t.rc, 0xC000_0000_0000_01F5);
        let t: T = serde_json::from_str(r#"{"rc": 13835058055282164213}"#).unwrap();
        assert_eq!(t.rc, 0xC000_0000_0000_01F5);
        let t: T = serde_json::from_str(r#"{"rc": 20447233}"#).unwrap();
        assert_eq!(t.rc, 20_447_233);
        assert!(serde_json::from_str::<T>(r#"{"rc": "x"}"#).is_err());
    }
}
