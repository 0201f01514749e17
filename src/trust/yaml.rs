//! A generic YAML value that keeps mapping order, for reading k3s's `registries.yaml`. regkit
//! edits that file as text ([`super::k3s_text`]) and parses the text before and after to
//! check the edit ([`super::k3s`]): it compares these trees and never writes one back.
//! serde-saphyr does the parsing; this file only supplies the tree.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// A YAML node (comments are not kept: serde-saphyr does not report them).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `null`, `~` or an empty value.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A signed integer.
    Int(i64),
    /// An unsigned integer too large for `i64`.
    UInt(u64),
    /// A float.
    Float(f64),
    /// A string.
    Str(String),
    /// A sequence.
    Seq(Vec<Value>),
    /// A mapping, in document order.
    Map(Vec<(Value, Value)>),
}

impl Value {
    /// The entry for string key `key` in a mapping.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Map(m) => m.iter().find(|(k, _)| k.as_str() == Some(key)).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The string inside, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The mapping entries, mutably, turning `Null` into an empty mapping first (YAML writes an
    /// empty section as `configs:`). `None` when this is some other kind of node.
    pub fn map_mut(&mut self) -> Option<&mut Vec<(Value, Value)>> {
        if matches!(self, Value::Null) {
            *self = Value::Map(Vec::new());
        }
        match self {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The entry for `key`, inserted as `Null` at the end when missing.
    pub fn entry(map: &mut Vec<(Value, Value)>, key: &str) -> usize {
        match map.iter().position(|(k, _)| k.as_str() == Some(key)) {
            Some(i) => i,
            None => {
                map.push((Value::Str(key.to_string()), Value::Null));
                map.len() - 1
            }
        }
    }

    /// True for `Null` and for empty mappings.
    pub fn is_empty_node(&self) -> bool {
        match self {
            Value::Null => true,
            Value::Map(m) => m.is_empty(),
            _ => false,
        }
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        Value::deserialize(d)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        Ok(i64::try_from(v).map_or(Value::UInt(v), Value::Int))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_string()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(v) = a.next_element()? {
            items.push(v);
        }
        Ok(Value::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Value, A::Error> {
        let mut entries = Vec::new();
        while let Some((k, v)) = a.next_entry()? {
            entries.push((k, v));
        }
        Ok(Value::Map(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parsing_keeps_order_and_types() {
        let src = "mirrors:\n  docker.io:\n    endpoint:\n      - \"https://m.example\"\n\
                   zeta: 1\nalpha: true\nquoted: \"5000\"\nempty:\n";
        let v: Value = serde_saphyr::from_str(src).unwrap();
        let keys: Vec<_> = match &v {
            Value::Map(m) => m.iter().map(|(k, _)| k.as_str().unwrap().to_string()).collect(),
            _ => panic!("{v:?}"),
        };
        assert_eq!(keys, ["mirrors", "zeta", "alpha", "quoted", "empty"]);
        assert_eq!(v.get("quoted"), Some(&Value::Str("5000".into())));
        assert_eq!(v.get("zeta"), Some(&Value::Int(1)));
        assert_eq!(v.get("empty"), Some(&Value::Null));
        let endpoint = v.get("mirrors").and_then(|m| m.get("docker.io")).unwrap();
        let want = Value::Seq(vec![Value::Str("https://m.example".into())]);
        assert_eq!(endpoint.get("endpoint"), Some(&want));
    }
}
