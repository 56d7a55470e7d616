//! JSON parsing that refuses duplicate member names at any depth.
//!
//! RFC 7515 §5.2 and RFC 7519 §4 let a JWT consumer refuse duplicate names, and it must: with
//! `{"aud":"good","aud":"evil"}` two parsers can disagree about which value counts. serde_json keeps
//! the last one silently, so token headers and claims go through this visitor instead.

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// A JSON value whose objects had no duplicate member names.
pub struct StrictValue(pub Value);

/// Parses `bytes` as JSON, refusing duplicate names.
pub fn from_slice(bytes: &[u8]) -> Result<Value, serde_json::Error> {
    serde_json::from_slice::<StrictValue>(bytes).map(|v| v.0)
}

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        serde_json::Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("non-finite number"))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        StrictValue::deserialize(d).map(|v| v.0)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(StrictValue(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let StrictValue(value) = map.next_value()?;
            if out.contains_key(&key) {
                return Err(de::Error::custom(format_args!("duplicate member {key:?}")));
            }
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicate_names_are_refused_at_any_depth_and_in_either_order() {
        for doc in [
            r#"{"aud":"good","aud":"evil"}"#,
            r#"{"aud":"evil","aud":"good"}"#,
            r#"{"a":{"b":1,"b":1}}"#,
            r#"[{"x":1,"x":2}]"#,
        ] {
            assert!(from_slice(doc.as_bytes()).is_err(), "{doc}");
        }
    }

    #[test]
    fn ordinary_json_parses_like_serde_json() {
        let doc = r#"{"a":[1,-2,3.5,"s",true,null,{"b":{}}],"c":"\u00e9"}"#;
        assert_eq!(
            from_slice(doc.as_bytes()).unwrap(),
            serde_json::from_str::<Value>(doc).unwrap()
        );
    }

    #[test]
    fn malformed_json_is_an_error() {
        for doc in ["", "{", "{\"a\":}", "nul", "{\"a\":1,}", "\u{0}"] {
            assert!(from_slice(doc.as_bytes()).is_err(), "{doc:?}");
        }
    }
}
