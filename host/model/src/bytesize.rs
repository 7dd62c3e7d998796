//! Sizes written as a number of bytes or a string with a unit (`"64MiB"`, `"512KB"`, `"1GiB"`).

use std::fmt;

/// A size in bytes that reads from `1048576`, `"1MiB"` or `"1MB"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct ByteSize(pub u64);

/// Parses `"64MiB"`, `"512 KB"`, `"100B"`, `"1gib"`: KB/MB/GB are powers of 1000, KiB/MiB/GiB of 1024.
pub fn parse_bytesize(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let bad = || {
        format!("invalid size \"{s}\" (write it like \"64MiB\", \"512KB\" or a number of bytes)")
    };
    let n: f64 = num.parse().map_err(|_| bad())?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        _ => return Err(bad()),
    };
    Ok((n * mult as f64).round() as u64)
}

impl serde::Serialize for ByteSize {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

impl<'de> serde::Deserialize<'de> for ByteSize {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = ByteSize;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a size such as \"64MiB\" or a number of bytes")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<ByteSize, E> {
                u64::try_from(v)
                    .map(ByteSize)
                    .map_err(|_| E::custom("a size cannot be negative"))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<ByteSize, E> {
                parse_bytesize(v).map(ByteSize).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

impl schemars::JsonSchema for ByteSize {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "ByteSize".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": ["string", "integer"],
            "description": "A size: a number of bytes, or a string such as \"64MiB\" or \"512KB\"",
            "minimum": 0,
            "pattern": "^\\s*[0-9]"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_sizes_with_and_without_units() {
        assert_eq!(parse_bytesize("100"), Ok(100));
        assert_eq!(parse_bytesize("64MiB"), Ok(64 << 20));
        assert_eq!(parse_bytesize("1.5 KB"), Ok(1500));
        assert_eq!(parse_bytesize("2gib"), Ok(2 << 30));
        assert!(
            parse_bytesize("ten")
                .unwrap_err()
                .contains("invalid size \"ten\"")
        );
        assert!(parse_bytesize("5 parsecs").is_err());
        let v: ByteSize = serde_json::from_value(serde_json::json!(4096)).unwrap();
        assert_eq!(v, ByteSize(4096));
        let v: ByteSize = serde_json::from_value(serde_json::json!("4KiB")).unwrap();
        assert_eq!(v, ByteSize(4096));
    }
}
