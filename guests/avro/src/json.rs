//! Avro values and plain JSON, both ways, guided by the schema (see the crate's documentation for the mapping).

use std::collections::HashMap;

use apache_avro::schema::{DecimalSchema, Name, NamesRef, NamespaceRef, RecordSchema};
use apache_avro::types::Value;
use apache_avro::{Days, Decimal, Duration, Millis, Months, Schema, Uuid};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use num_bigint::BigInt;
use serde::ser::{Error as _, SerializeMap};
use serde::{Serialize, Serializer};
use serde_json::Value as J;

/// An Avro value written as JSON, with its schema.
pub struct Json<'a> {
    value: &'a Value,
    schema: &'a Schema,
    names: &'a NamesRef<'a>,
    ns: NamespaceRef<'a>,
}

impl<'a> Json<'a> {
    pub fn new(value: &'a Value, schema: &'a Schema, names: &'a NamesRef<'a>) -> Self {
        Json {
            value,
            schema,
            names,
            ns: None,
        }
    }

    fn at(&self, value: &'a Value, schema: &'a Schema, ns: NamespaceRef<'a>) -> Json<'a> {
        Json {
            value,
            schema,
            names: self.names,
            ns,
        }
    }
}

/// The schema a reference names (or the schema itself).
fn deref<'a>(
    schema: &'a Schema,
    names: &'a NamesRef<'a>,
    ns: NamespaceRef<'a>,
) -> Result<&'a Schema, String> {
    match schema {
        Schema::Ref { name } => {
            let full = name.fully_qualified_name(ns);
            names.get(&*full).copied().ok_or_else(|| {
                format!(
                    "the schema names {} but does not define it",
                    full.fullname(None)
                )
            })
        }
        s => Ok(s),
    }
}

/// The namespace inside a named type.
fn inner_ns<'a>(name: &'a Name, ns: NamespaceRef<'a>) -> NamespaceRef<'a> {
    name.namespace().or(ns)
}

fn float<S: Serializer>(s: S, f: f64) -> Result<S::Ok, S::Error> {
    if f.is_finite() {
        s.serialize_f64(f)
    } else if f.is_nan() {
        s.serialize_str("NaN")
    } else if f > 0.0 {
        s.serialize_str("Infinity")
    } else {
        s.serialize_str("-Infinity")
    }
}

impl Serialize for Json<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let schema = deref(self.schema, self.names, self.ns).map_err(S::Error::custom)?;
        match (self.value, schema) {
            (Value::Null, _) => s.serialize_unit(),
            (Value::Boolean(b), _) => s.serialize_bool(*b),
            (Value::Int(i) | Value::Date(i) | Value::TimeMillis(i), _) => s.serialize_i32(*i),
            (
                Value::Long(i)
                | Value::TimeMicros(i)
                | Value::TimestampMillis(i)
                | Value::TimestampMicros(i)
                | Value::TimestampNanos(i)
                | Value::LocalTimestampMillis(i)
                | Value::LocalTimestampMicros(i)
                | Value::LocalTimestampNanos(i),
                _,
            ) => s.serialize_i64(*i),
            (Value::Float(f), _) => float(s, f64::from(*f)),
            (Value::Double(f), _) => float(s, *f),
            (Value::Bytes(b) | Value::Fixed(_, b), _) => s.serialize_str(&BASE64.encode(b)),
            (Value::String(t), _) => s.serialize_str(t),
            (Value::Enum(_, symbol), _) => s.serialize_str(symbol),
            (Value::Uuid(u), _) => s.serialize_str(&u.to_string()),
            (Value::BigDecimal(d), _) => s.serialize_str(&d.to_string()),
            (Value::Decimal(d), Schema::Decimal(DecimalSchema { scale, .. })) => {
                s.serialize_str(&decimal_text(d, *scale))
            }
            (Value::Duration(d), _) => {
                let mut map = s.serialize_map(Some(3))?;
                map.serialize_entry("months", &u32::from(d.months()))?;
                map.serialize_entry("days", &u32::from(d.days()))?;
                map.serialize_entry("millis", &u32::from(d.millis()))?;
                map.end()
            }
            (Value::Union(i, v), Schema::Union(u)) => {
                let branch = u.variants().get(*i as usize).ok_or_else(|| {
                    S::Error::custom(format!("union branch {i} is not in the schema"))
                })?;
                self.at(v, branch, self.ns).serialize(s)
            }
            (Value::Array(items), Schema::Array(a)) => {
                s.collect_seq(items.iter().map(|v| self.at(v, &a.items, self.ns)))
            }
            (Value::Map(entries), Schema::Map(m)) => {
                // A map has no order of its own: keys sorted, so the same datum gives the same JSON.
                let mut entries: Vec<_> = entries.iter().collect();
                entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
                s.collect_map(
                    entries
                        .into_iter()
                        .map(|(k, v)| (k, self.at(v, &m.types, self.ns))),
                )
            }
            (
                Value::Record(fields),
                Schema::Record(RecordSchema {
                    name,
                    fields: schema_fields,
                    ..
                }),
            ) => {
                let ns = inner_ns(name, self.ns);
                let mut map = s.serialize_map(Some(fields.len()))?;
                for ((key, v), field) in fields.iter().zip(schema_fields) {
                    map.serialize_entry(key, &self.at(v, &field.schema, ns))?;
                }
                map.end()
            }
            (v, schema) => Err(S::Error::custom(format!(
                "an Avro value ({v:?}) that its schema ({schema:?}) does not describe"
            ))),
        }
    }
}

/// A decimal's exact value: its unscaled integer with the point `scale` digits from the right.
fn decimal_text(d: &Decimal, scale: usize) -> String {
    let unscaled = BigInt::from(d.clone());
    let negative = unscaled.sign() == num_bigint::Sign::Minus;
    let digits = unscaled.magnitude().to_string();
    let digits = if digits.len() <= scale {
        format!("{}{digits}", "0".repeat(scale + 1 - digits.len()))
    } else {
        digits
    };
    let (whole, frac) = digits.split_at(digits.len() - scale);
    let sign = if negative { "-" } else { "" };
    if frac.is_empty() {
        format!("{sign}{whole}")
    } else {
        format!("{sign}{whole}.{frac}")
    }
}

/// A decimal from its text (`-12.30`, `5`, `1e3` is refused): the unscaled integer at `scale`, within `precision`.
fn parse_decimal(text: &str, precision: usize, scale: usize) -> Result<Decimal, String> {
    let bad = || format!("{text:?} is not a decimal number");
    let (negative, rest) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (whole, frac) = rest.split_once('.').unwrap_or((rest, ""));
    if whole.is_empty() && frac.is_empty()
        || !whole
            .bytes()
            .chain(frac.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let frac = frac.trim_end_matches('0');
    if frac.len() > scale {
        return Err(format!(
            "{text} has more than {scale} digits after the point"
        ));
    }
    let digits = format!("{whole}{frac}{}", "0".repeat(scale - frac.len()));
    let digits = digits.trim_start_matches('0');
    if digits.len() > precision {
        return Err(format!("{text} has more than {precision} digits"));
    }
    let mut unscaled: BigInt = if digits.is_empty() {
        BigInt::from(0)
    } else {
        digits.parse().map_err(|_| bad())?
    };
    if negative {
        unscaled = -unscaled;
    }
    Ok(Decimal::from(unscaled.to_signed_bytes_be()))
}

fn float_of(v: &J) -> Option<f64> {
    match v {
        J::Number(n) => n.as_f64(),
        J::String(s) => match s.as_str() {
            "NaN" => Some(f64::NAN),
            "Infinity" => Some(f64::INFINITY),
            "-Infinity" => Some(f64::NEG_INFINITY),
            _ => None,
        },
        _ => None,
    }
}

fn type_name(v: &J) -> &'static str {
    match v {
        J::Null => "null",
        J::Bool(_) => "a boolean",
        J::Number(_) => "a number",
        J::String(_) => "a string",
        J::Array(_) => "an array",
        J::Object(_) => "an object",
    }
}

/// A JSON value as the Avro value of `schema`; an error names where (`/items/0/price`) and why.
pub fn to_avro(v: &J, schema: &Schema, names: &NamesRef<'_>) -> Result<Value, String> {
    let mut path = String::new();
    convert(v, schema, names, None, &mut path).map_err(|e| {
        let at = if path.is_empty() { "(root)" } else { &path };
        format!("{at}: {e}")
    })
}

/// Converts at `path`, which is left pointing at the value that failed.
fn convert(
    v: &J,
    schema: &Schema,
    names: &NamesRef<'_>,
    ns: NamespaceRef<'_>,
    path: &mut String,
) -> Result<Value, String> {
    let schema = match schema {
        Schema::Ref { name } => {
            let full = name.fully_qualified_name(ns);
            *names.get(&*full).ok_or_else(|| {
                format!(
                    "the schema names {} but does not define it",
                    full.fullname(None)
                )
            })?
        }
        s => s,
    };
    let want = |what: &str| format!("expected {what}, found {}", type_name(v));
    let int = |v: &J| v.as_i64().and_then(|i| i32::try_from(i).ok());
    Ok(match schema {
        Schema::Null => match v {
            J::Null => Value::Null,
            _ => return Err(want("null")),
        },
        Schema::Boolean => Value::Boolean(v.as_bool().ok_or_else(|| want("a boolean"))?),
        Schema::Int => Value::Int(int(v).ok_or_else(|| want("an int (32 bits)"))?),
        Schema::Date => Value::Date(int(v).ok_or_else(|| want("a date (days since 1970-01-01)"))?),
        Schema::TimeMillis => {
            Value::TimeMillis(int(v).ok_or_else(|| want("a time in milliseconds"))?)
        }
        Schema::Long => Value::Long(v.as_i64().ok_or_else(|| want("a long (64 bits)"))?),
        Schema::TimeMicros => {
            Value::TimeMicros(v.as_i64().ok_or_else(|| want("a time in microseconds"))?)
        }
        Schema::TimestampMillis => Value::TimestampMillis(
            v.as_i64()
                .ok_or_else(|| want("a timestamp in milliseconds"))?,
        ),
        Schema::TimestampMicros => Value::TimestampMicros(
            v.as_i64()
                .ok_or_else(|| want("a timestamp in microseconds"))?,
        ),
        Schema::TimestampNanos => Value::TimestampNanos(
            v.as_i64()
                .ok_or_else(|| want("a timestamp in nanoseconds"))?,
        ),
        Schema::LocalTimestampMillis => Value::LocalTimestampMillis(
            v.as_i64()
                .ok_or_else(|| want("a timestamp in milliseconds"))?,
        ),
        Schema::LocalTimestampMicros => Value::LocalTimestampMicros(
            v.as_i64()
                .ok_or_else(|| want("a timestamp in microseconds"))?,
        ),
        Schema::LocalTimestampNanos => Value::LocalTimestampNanos(
            v.as_i64()
                .ok_or_else(|| want("a timestamp in nanoseconds"))?,
        ),
        Schema::Float => Value::Float(float_of(v).ok_or_else(|| want("a number"))? as f32),
        Schema::Double => Value::Double(float_of(v).ok_or_else(|| want("a number"))?),
        Schema::String => Value::String(v.as_str().ok_or_else(|| want("a string"))?.to_string()),
        Schema::Bytes => {
            Value::Bytes(base64_of(v).map_err(|e| e.unwrap_or_else(|| want("a base64 string")))?)
        }
        Schema::Fixed(f) => {
            let bytes = base64_of(v).map_err(|e| e.unwrap_or_else(|| want("a base64 string")))?;
            if bytes.len() != f.size {
                return Err(format!(
                    "expected {} bytes for fixed {}, found {}",
                    f.size,
                    f.name.name(),
                    bytes.len()
                ));
            }
            Value::Fixed(f.size, bytes)
        }
        Schema::Uuid(_) => {
            let text = v.as_str().ok_or_else(|| want("a UUID string"))?;
            Value::Uuid(Uuid::parse_str(text).map_err(|e| format!("{text:?} is not a UUID: {e}"))?)
        }
        Schema::Decimal(d) => {
            let text = match v {
                J::String(s) => s.clone(),
                J::Number(n) => n.to_string(),
                _ => return Err(want("a decimal (a string or a number)")),
            };
            Value::Decimal(parse_decimal(&text, d.precision, d.scale)?)
        }
        Schema::BigDecimal => return Err("the big-decimal logical type is not supported".into()),
        Schema::Duration(_) => {
            let o = v
                .as_object()
                .ok_or_else(|| want("an object {months, days, millis}"))?;
            let part = |k: &str| {
                o.get(k)
                    .and_then(J::as_u64)
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| {
                        format!("a duration needs `{k}`, a whole number of at most 32 bits")
                    })
            };
            Value::Duration(Duration::new(
                Months::new(part("months")?),
                Days::new(part("days")?),
                Millis::new(part("millis")?),
            ))
        }
        Schema::Enum(e) => {
            let symbol = v
                .as_str()
                .ok_or_else(|| want("an enum symbol (a string)"))?;
            match e.symbols.iter().position(|s| s == symbol) {
                Some(i) => Value::Enum(i as u32, symbol.to_string()),
                None => {
                    return Err(format!(
                        "{symbol:?} is not a symbol of {} ({})",
                        e.name.name(),
                        e.symbols.join(", ")
                    ));
                }
            }
        }
        Schema::Array(a) => {
            let items = v.as_array().ok_or_else(|| want("an array"))?;
            let mut out = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let len = path.len();
                path.push_str(&format!("/{i}"));
                out.push(convert(item, &a.items, names, ns, path)?);
                path.truncate(len);
            }
            Value::Array(out)
        }
        Schema::Map(m) => {
            let entries = v.as_object().ok_or_else(|| want("an object"))?;
            let mut out = HashMap::with_capacity(entries.len());
            for (k, item) in entries {
                let len = path.len();
                push_key(path, k);
                out.insert(k.clone(), convert(item, &m.types, names, ns, path)?);
                path.truncate(len);
            }
            Value::Map(out)
        }
        Schema::Record(r) => {
            let entries = v
                .as_object()
                .ok_or_else(|| want(&format!("an object (record {})", r.name.name())))?;
            let ns = inner_ns(&r.name, ns);
            let mut out = Vec::with_capacity(r.fields.len());
            for field in &r.fields {
                let len = path.len();
                push_key(path, &field.name);
                let value = match (entries.get(&field.name), &field.default, &field.schema) {
                    (Some(item), _, _) => convert(item, &field.schema, names, ns, path)?,
                    (None, Some(default), s) => {
                        // A union's default is a value of its first branch.
                        let s = match s {
                            Schema::Union(u) => &u.variants()[0],
                            s => s,
                        };
                        let value = convert(default, s, names, ns, path)?;
                        match &field.schema {
                            Schema::Union(_) => Value::Union(0, Box::new(value)),
                            _ => value,
                        }
                    }
                    (None, None, Schema::Union(u)) if u.variants().contains(&Schema::Null) => {
                        let i = u
                            .variants()
                            .iter()
                            .position(|s| *s == Schema::Null)
                            .unwrap_or(0);
                        Value::Union(i as u32, Box::new(Value::Null))
                    }
                    (None, None, _) => return Err("required by the schema, and missing".into()),
                };
                path.truncate(len);
                out.push((field.name.clone(), value));
            }
            Value::Record(out)
        }
        Schema::Union(u) => {
            let mut problems = Vec::new();
            for (i, branch) in u.variants().iter().enumerate() {
                let len = path.len();
                match convert(v, branch, names, ns, path) {
                    Ok(value) => return Ok(Value::Union(i as u32, Box::new(value))),
                    Err(e) => {
                        path.truncate(len);
                        problems.push(e);
                    }
                }
            }
            return Err(format!(
                "fits no branch of the union: {}",
                problems.join("; ")
            ));
        }
        Schema::Ref { .. } => unreachable!("references are followed above"),
    })
}

/// Bytes from a base64 string; `Err(None)` when the value is not a string.
fn base64_of(v: &J) -> Result<Vec<u8>, Option<String>> {
    let text = v.as_str().ok_or(None)?;
    BASE64
        .decode(text)
        .map_err(|e| Some(format!("{text:?} is not base64: {e}")))
}

/// Appends a JSON pointer segment.
fn push_key(path: &mut String, key: &str) {
    path.push('/');
    path.push_str(&key.replace('~', "~0").replace('/', "~1"));
}
