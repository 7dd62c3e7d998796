//! Where a message's event time comes from, and reading a time (milliseconds or RFC 3339).

use std::fmt;

use serde::Deserializer;
use serde::de::{DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use crate::{Message, meta_get};

pub(super) enum TimeSource {
    Arrival,
    Field(Vec<String>),
    Metadata(String),
}

/// Reads a time: an integer of milliseconds since the epoch, or an RFC 3339 string in UTC.
pub(super) fn parse_time_str(s: &str) -> Option<i64> {
    if let Ok(n) = s.trim().parse::<i64>() {
        return Some(n);
    }
    let t = humantime::parse_rfc3339_weak(s.trim()).ok()?;
    let d = t.duration_since(std::time::UNIX_EPOCH).ok()?;
    i64::try_from(d.as_millis()).ok()
}

impl TimeSource {
    /// The event time of `m`, kept within ±2^62 ms so window arithmetic cannot overflow.
    pub(super) fn time_of(&self, m: &Message, now: i64) -> Result<i64, String> {
        const BOUND: i64 = 1 << 62;
        self.read_time(m, now).map(|t| t.clamp(-BOUND, BOUND))
    }

    pub(super) fn read_time(&self, m: &Message, now: i64) -> Result<i64, String> {
        match self {
            TimeSource::Arrival => Ok(now),
            TimeSource::Metadata(key) => {
                let v = meta_get(m, key).ok_or_else(|| {
                    format!("system_window: no metadata \"{key}\" for the event time")
                })?;
                parse_time_str(v).ok_or_else(|| {
                    format!(
                        "system_window: metadata \"{key}\" is \"{v}\", not a time (milliseconds since the epoch \
                         or RFC 3339 in UTC)"
                    )
                })
            }
            TimeSource::Field(path) => {
                let found = field_at(&m.payload, path).map_err(|e| {
                    format!(
                        "system_window: the payload is not JSON, so it has no event time field: {e}"
                    )
                })?;
                let name = path.join(".");
                match found {
                    None => Err(format!(
                        "system_window: the payload has no field \"{name}\""
                    )),
                    Some(Leaf::Time(t)) => Ok(t),
                    Some(Leaf::Other(v)) => Err(format!(
                        "system_window: field \"{name}\" is {v}, not a time (milliseconds since the epoch or \
                         RFC 3339 in UTC)"
                    )),
                }
            }
        }
    }
}

/// What is at the end of a field's path.
#[derive(Debug, PartialEq)]
pub(super) enum Leaf {
    Time(i64),
    /// Not a time: the value as it reads in a message (`"soon"`, `true`, `an object`).
    Other(String),
}

/// The value at `path` in a JSON payload, read without building the document: only the objects on the path are
/// looked into, everything else is skipped over (still checked to be JSON). A key given twice counts as its last,
/// as when the document is parsed whole. `None` when the path is not there.
pub(super) fn field_at(payload: &[u8], path: &[String]) -> Result<Option<Leaf>, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(payload);
    let found = At(path).deserialize(&mut de)?;
    de.end()?;
    Ok(found)
}

/// Looks for the rest of a path in the value it is given.
struct At<'p>(&'p [String]);

impl<'de> DeserializeSeed<'de> for At<'_> {
    type Value = Option<Leaf>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        if self.0.is_empty() {
            d.deserialize_any(LeafVisitor).map(Some)
        } else {
            d.deserialize_any(self)
        }
    }
}

impl<'de> Visitor<'de> for At<'_> {
    type Value = Option<Leaf>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(is_ours) = map.next_key_seed(KeyIs(&self.0[0]))? {
            if is_ours {
                found = map.next_value_seed(At(&self.0[1..]))?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
}

/// Whether an object's key is the one looked for, without copying it.
struct KeyIs<'k>(&'k str);

impl<'de> DeserializeSeed<'de> for KeyIs<'_> {
    type Value = bool;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<bool, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeyIs<'_> {
    type Value = bool;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E>(self, key: &str) -> Result<bool, E> {
        Ok(key == self.0)
    }
}

/// Reads the value at the end of a path as a time.
struct LeafVisitor;

impl<'de> Visitor<'de> for LeafVisitor {
    type Value = Leaf;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_i64<E>(self, v: i64) -> Result<Leaf, E> {
        Ok(Leaf::Time(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Leaf, E> {
        Ok(Leaf::Time(i64::try_from(v).unwrap_or(i64::MAX)))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Leaf, E> {
        Ok(Leaf::Time(v as i64))
    }
    fn visit_str<E>(self, v: &str) -> Result<Leaf, E> {
        Ok(parse_time_str(v).map_or_else(|| Leaf::Other(Value::from(v).to_string()), Leaf::Time))
    }
    fn visit_bool<E>(self, v: bool) -> Result<Leaf, E> {
        Ok(Leaf::Other(v.to_string()))
    }
    fn visit_unit<E>(self) -> Result<Leaf, E> {
        Ok(Leaf::Other("null".into()))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Leaf, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Leaf::Other("an object".into()))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Leaf, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Leaf::Other("an array".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(doc: &str, path: &str) -> Result<Option<Leaf>, serde_json::Error> {
        let path: Vec<String> = path.split('.').map(str::to_string).collect();
        field_at(doc.as_bytes(), &path)
    }

    #[test]
    fn reads_the_field_on_the_path_and_skips_the_rest() {
        let doc = r#"{"a": [1, {"ts": 5}], "e": {"x": {"ts": 9}, "ts": "2026-11-26T10:00:00Z"}, "ts": 7.9}"#;
        assert_eq!(at(doc, "ts").unwrap(), Some(Leaf::Time(7)));
        assert_eq!(
            at(doc, "e.ts").unwrap(),
            Some(Leaf::Time(1_795_687_200_000))
        );
        assert_eq!(at(doc, "e.x.ts").unwrap(), Some(Leaf::Time(9)));
        assert_eq!(at(doc, "a.ts").unwrap(), None);
        assert_eq!(at(doc, "nope").unwrap(), None);
        // The last of a repeated key, as a parsed document has it; escaped keys compare by their text.
        assert_eq!(
            at(r#"{"ts": 1, "ts": 2}"#, "ts").unwrap(),
            Some(Leaf::Time(2))
        );
        assert_eq!(at(r#"{"t\u0073": 3}"#, "ts").unwrap(), Some(Leaf::Time(3)));
        assert_eq!(
            at(r#"{"ts": "soon"}"#, "ts").unwrap(),
            Some(Leaf::Other("\"soon\"".into()))
        );
        assert_eq!(
            at(r#"{"ts": {"a": 1}}"#, "ts").unwrap(),
            Some(Leaf::Other("an object".into()))
        );
        assert_eq!(
            at(r#"{"ts": null}"#, "ts").unwrap(),
            Some(Leaf::Other("null".into()))
        );
        // Not JSON, anywhere in the document, is an error as when it is parsed whole.
        assert!(at(r#"{"ts": 1, "x": }"#, "ts").is_err());
        assert!(at(r#"{"ts": 1} trailing"#, "ts").is_err());
    }
}
