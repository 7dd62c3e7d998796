//! Fields of a JSON payload by dot path (`user.id`, `items.0.sku`), and text templates that take them
//! (`https://api.example.com/users/{user.id}`, `{meta:kafka_key}`): what the built-in processors' options use to
//! point into a message.

use serde_json::Value;

use crate::Metadata;

/// A dot path into a JSON value: object keys, and array indexes as numbers. Empty: the whole value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Path(Vec<String>);

impl Path {
    /// Reads `user.id` (a leading `.` is allowed; `.` or an empty text is the whole value).
    pub fn parse(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let text = text.strip_prefix('.').unwrap_or(text);
        if text.is_empty() {
            return Ok(Self(Vec::new()));
        }
        let segments: Vec<String> = text.split('.').map(str::to_string).collect();
        if segments.iter().any(String::is_empty) {
            return Err(format!("\"{text}\" has an empty segment"));
        }
        Ok(Self(segments))
    }

    /// Whether it is the whole value.
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// The value at this path, if there is one.
    pub fn get<'a>(&self, v: &'a Value) -> Option<&'a Value> {
        self.0.iter().try_fold(v, |v, seg| match v {
            Value::Object(m) => m.get(seg),
            Value::Array(a) => a.get(seg.parse::<usize>().ok()?),
            _ => None,
        })
    }

    /// Puts `value` at this path, making objects on the way (a non-object on the way is replaced).
    pub fn set(&self, target: &mut Value, value: Value) {
        let mut at = target;
        for seg in &self.0 {
            let index = match &*at {
                Value::Array(a) => seg.parse::<usize>().ok().filter(|i| *i < a.len()),
                _ => None,
            };
            at = match index {
                Some(i) => &mut at[i],
                None => {
                    if !at.is_object() {
                        *at = Value::Object(Default::default());
                    }
                    at.as_object_mut()
                        .expect("made an object")
                        .entry(seg.clone())
                        .or_insert(Value::Null)
                }
            };
        }
        *at = value;
    }
}

impl std::fmt::Display for Path {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_empty() {
            f.write_str(".")
        } else {
            f.write_str(&self.0.join("."))
        }
    }
}

/// A value as text: a string as it is, anything else as JSON.
pub fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Field(Path),
    Meta(String),
}

/// Text with `{field.path}` (a payload field) and `{meta:key}` (a metadata value) in it; `{{` and `}}` are
/// literal braces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
    /// Whether inserted values are percent-encoded (for URLs).
    encode: bool,
}

impl Template {
    /// Reads a template whose inserted values are used as they are.
    pub fn parse(text: &str) -> Result<Self, String> {
        Self::read(text, false)
    }

    /// Reads a URL template: inserted values are percent-encoded, so a field cannot change the URL's shape.
    pub fn url(text: &str) -> Result<Self, String> {
        Self::read(text, true)
    }

    fn read(text: &str, encode: bool) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut chars = text.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            match c {
                '{' if chars.peek().map(|(_, c)| *c) == Some('{') => {
                    chars.next();
                    literal.push('{');
                }
                '}' if chars.peek().map(|(_, c)| *c) == Some('}') => {
                    chars.next();
                    literal.push('}');
                }
                '{' => {
                    let rest = &text[i + 1..];
                    let end = rest.find('}').ok_or_else(|| {
                        format!("unclosed \"{{\" at {i} (write {{{{ for a brace)")
                    })?;
                    let inner = rest[..end].trim();
                    if !literal.is_empty() {
                        parts.push(Part::Text(std::mem::take(&mut literal)));
                    }
                    parts.push(match inner.strip_prefix("meta:") {
                        Some(key) => Part::Meta(key.trim().to_string()),
                        None => Part::Field(Path::parse(inner)?),
                    });
                    for _ in 0..=end {
                        chars.next();
                    }
                }
                '}' => return Err(format!("a lone \"}}\" at {i} (write }}}} for a brace)")),
                c => literal.push(c),
            }
        }
        if !literal.is_empty() {
            parts.push(Part::Text(literal));
        }
        Ok(Self { parts, encode })
    }

    /// Whether it reads the payload (then the payload must be JSON).
    pub fn reads_payload(&self) -> bool {
        self.parts.iter().any(|p| matches!(p, Part::Field(_)))
    }

    /// The text for one message: `payload` is its JSON (`Null` when the template does not read it).
    pub fn render(&self, payload: &Value, metadata: &Metadata) -> Result<String, String> {
        let mut out = String::new();
        for part in &self.parts {
            let value = match part {
                Part::Text(t) => {
                    out.push_str(t);
                    continue;
                }
                Part::Field(path) => text_of(
                    path.get(payload)
                        .ok_or_else(|| format!("the payload has no field `{path}`"))?,
                ),
                Part::Meta(key) => metadata
                    .get(key)
                    .ok_or_else(|| format!("the message has no metadata `{key}`"))?
                    .to_string(),
            };
            if self.encode {
                encode_into(&value, &mut out);
            } else {
                out.push_str(&value);
            }
        }
        Ok(out)
    }
}

/// Percent-encodes everything but unreserved characters (RFC 3986).
fn encode_into(s: &str, out: &mut String) {
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_read_and_write_nested_fields() {
        let mut v = json!({"user": {"id": 7}, "items": [{"sku": "a"}]});
        assert_eq!(Path::parse("user.id").unwrap().get(&v), Some(&json!(7)));
        assert_eq!(
            Path::parse(".items.0.sku").unwrap().get(&v),
            Some(&json!("a"))
        );
        assert_eq!(Path::parse("user.name").unwrap().get(&v), None);
        Path::parse("profile.tier")
            .unwrap()
            .set(&mut v, json!("gold"));
        assert_eq!(v["profile"]["tier"], "gold");
        assert!(Path::parse("a..b").is_err());
        assert!(Path::parse(".").unwrap().is_root());
    }

    #[test]
    fn templates_insert_fields_and_metadata_and_encode_urls() {
        let mut meta = Metadata::default();
        meta.insert("kind", "a b");
        let payload = json!({"user": {"id": "x/y"}, "n": 3});
        let t = Template::url("http://h/users/{user.id}?k={meta:kind}&n={n}&l={{x}}").unwrap();
        assert_eq!(
            t.render(&payload, &meta).unwrap(),
            "http://h/users/x%2Fy?k=a%20b&n=3&l={x}"
        );
        let plain = Template::parse("{user.id}-{meta:kind}").unwrap();
        assert_eq!(plain.render(&payload, &meta).unwrap(), "x/y-a b");
        assert!(plain.reads_payload());
        assert_eq!(
            Template::parse("{missing}")
                .unwrap()
                .render(&payload, &meta),
            Err("the payload has no field `missing`".into())
        );
        assert!(Template::parse("{open").is_err());
        assert!(Template::parse("a}b").is_err());
    }
}

/// Reads a duration written `500ms`, `30s`, `5m`, `2h` or `1d`.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("\"{t}\" has no unit (ms, s, m, h, d)"))?;
    let (n, unit) = t.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("\"{t}\" does not start with a number"))?;
    let ms = match unit.trim() {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        other => return Err(format!("unknown unit \"{other}\" (ms, s, m, h, d)")),
    };
    Ok(std::time::Duration::from_millis(n.saturating_mul(ms)))
}

/// Puts `value` in the message: at `target` in its JSON payload, or (no target) as the whole payload (a string
/// as its text, anything else as JSON).
pub fn place(msg: &mut crate::Message, target: Option<&Path>, value: Value) -> Result<(), String> {
    match target {
        Some(path) if !path.is_root() => {
            let mut doc = msg.json()?;
            path.set(&mut doc, value);
            msg.set_json(&doc);
        }
        _ => match value {
            Value::String(s) => msg.payload = s.into_bytes(),
            other => msg.set_json(&other),
        },
    }
    Ok(())
}
