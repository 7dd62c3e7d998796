//! Where a message's event time comes from, and reading a time (milliseconds or RFC 3339).

use serde_json::Value;

use crate::{Message, meta_get};

pub(super) enum TimeSource {
    Arrival,
    Field(Vec<String>),
    Metadata(String),
}

/// Reads a time: an integer of milliseconds since the epoch, or an RFC 3339 string in UTC.
pub(super) fn parse_time(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) => parse_time_str(s),
        _ => None,
    }
}

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
                let doc: Value = serde_json::from_slice(&m.payload).map_err(|e| {
                    format!(
                        "system_window: the payload is not JSON, so it has no event time field: {e}"
                    )
                })?;
                let name = path.join(".");
                let v = path
                    .iter()
                    .try_fold(&doc, |v, k| v.get(k))
                    .ok_or_else(|| format!("system_window: the payload has no field \"{name}\""))?;
                parse_time(v).ok_or_else(|| {
                    format!(
                        "system_window: field \"{name}\" is {v}, not a time (milliseconds since the epoch or \
                         RFC 3339 in UTC)"
                    )
                })
            }
        }
    }
}
