//! The `aggregate` processor: turns the batch it receives (a window, when the stream has a window buffer) into one
//! message per group, with counts, sums, minimums, maximums and averages of payload fields.
//!
//! Configuration:
//! ```json
//! {"group_by": "customer", "metrics": [{"name": "orders", "op": "count"},
//!                                      {"name": "revenue", "op": "sum", "field": "order.amount"}]}
//! ```
//! Each output is a JSON object: the `group_by` field (when set) and one field per metric, in the order groups
//! were first seen, with the metadata of the group's first message (so a window's bounds carry over) plus
//! `aggregate_count`. Fields are dot paths into the JSON payload. A message that is not JSON, or whose metric
//! field is not a number, fails on its own (it is left out of the results); a missing field is skipped by `sum`,
//! `min`, `max` and `avg` (and `avg` of nothing is `null`).

use airtruct_sdk::{
    ConfigError, ConfigErrors, Info, Message, Processor, export_processor, parse_config,
};
use serde::Deserialize;
use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Op {
    Count,
    Sum,
    Min,
    Max,
    Avg,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Metric {
    name: String,
    op: Op,
    #[serde(default)]
    field: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default)]
    group_by: Option<String>,
    metrics: Vec<Metric>,
}

/// The aggregate processor.
pub struct Aggregate {
    group_by: Option<Vec<String>>,
    metrics: Vec<(Metric, Option<Vec<String>>)>,
}

fn path(p: &str) -> Vec<String> {
    p.trim_start_matches('.')
        .split('.')
        .map(str::to_string)
        .collect()
}

fn get<'a>(v: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, k| v.get(k))
}

/// One group's running values, one slot per metric.
struct Group {
    key: Value,
    first: Message,
    count: u64,
    slots: Vec<Slot>,
}

#[derive(Clone, Copy, Default)]
struct Slot {
    n: u64,
    sum: f64,
    min: Option<f64>,
    max: Option<f64>,
}

fn number(x: f64) -> Value {
    if x.fract() == 0.0 && x.abs() < 9.0e15 {
        Value::from(x as i64)
    } else {
        serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
    }
}

impl Aggregate {
    /// Reads the values one message contributes, or why it cannot.
    fn values(&self, doc: &Value) -> Result<Vec<Option<f64>>, String> {
        self.metrics
            .iter()
            .map(|(m, field)| match (m.op, field) {
                (Op::Count, _) | (_, None) => Ok(None),
                (_, Some(f)) => match get(doc, f) {
                    None | Some(Value::Null) => Ok(None),
                    Some(v) => v.as_f64().map(Some).ok_or_else(|| {
                        format!(
                            "aggregate: field `{}` of metric `{}` is not a number: {v}",
                            f.join("."),
                            m.name
                        )
                    }),
                },
            })
            .collect()
    }
}

impl Processor for Aggregate {
    fn describe() -> Info {
        airtruct_sdk::info_from_files!("aggregate")
    }

    fn init(config: &str) -> Result<Self, ConfigErrors> {
        let c: Config = parse_config(config)?;
        let mut errors = Vec::new();
        if c.metrics.is_empty() {
            errors.push(ConfigError::new(".metrics", "name at least one metric"));
        }
        for (i, m) in c.metrics.iter().enumerate() {
            match (m.op, &m.field) {
                (Op::Count, Some(_)) => errors.push(ConfigError::new(
                    format!(".metrics[{i}].field"),
                    "count counts messages: it takes no field",
                )),
                (Op::Count, None) => {}
                (_, None) => errors.push(ConfigError::new(
                    format!(".metrics[{i}].field"),
                    "required for sum, min, max and avg",
                )),
                _ => {}
            }
            if c.group_by.as_deref() == Some(m.name.as_str()) {
                errors.push(ConfigError::new(
                    format!(".metrics[{i}].name"),
                    "the same name as group_by",
                ));
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Aggregate {
            group_by: c.group_by.as_deref().map(path),
            metrics: c
                .metrics
                .into_iter()
                .map(|m| {
                    let f = m.field.as_deref().map(path);
                    (m, f)
                })
                .collect(),
        })
    }

    fn process(&mut self, batch: Vec<Message>) -> Result<Vec<Message>, String> {
        let mut groups: Vec<Group> = Vec::new();
        let mut failed = Vec::new();
        for msg in batch {
            let doc = match msg.json() {
                Ok(d) => d,
                Err(e) => {
                    failed.push(Message {
                        error: Some(format!("aggregate: {e}")),
                        ..msg
                    });
                    continue;
                }
            };
            let values = match self.values(&doc) {
                Ok(v) => v,
                Err(e) => {
                    failed.push(Message {
                        error: Some(e),
                        ..msg
                    });
                    continue;
                }
            };
            let key = match &self.group_by {
                Some(p) => get(&doc, p).cloned().unwrap_or(Value::Null),
                None => Value::Null,
            };
            let group = match groups.iter().position(|g| g.key == key) {
                Some(i) => &mut groups[i],
                None => {
                    groups.push(Group {
                        key,
                        first: msg,
                        count: 0,
                        slots: vec![Slot::default(); self.metrics.len()],
                    });
                    groups.last_mut().expect("just pushed")
                }
            };
            group.count += 1;
            for (slot, v) in group.slots.iter_mut().zip(values) {
                if let Some(x) = v {
                    slot.n += 1;
                    slot.sum += x;
                    slot.min = Some(slot.min.map_or(x, |m| m.min(x)));
                    slot.max = Some(slot.max.map_or(x, |m| m.max(x)));
                }
            }
        }
        let mut out = Vec::with_capacity(groups.len() + failed.len());
        for g in groups {
            let mut obj = Map::new();
            if let Some(p) = &self.group_by {
                obj.insert(p.join("."), g.key.clone());
            }
            for ((m, _), slot) in self.metrics.iter().zip(&g.slots) {
                let v = match m.op {
                    Op::Count => Value::from(g.count),
                    Op::Sum => number(slot.sum),
                    Op::Min => slot.min.map_or(Value::Null, number),
                    Op::Max => slot.max.map_or(Value::Null, number),
                    Op::Avg if slot.n == 0 => Value::Null,
                    Op::Avg => number(slot.sum / slot.n as f64),
                };
                obj.insert(m.name.clone(), v);
            }
            let mut msg = g.first;
            msg.error = None;
            msg.set_json(&Value::Object(obj));
            msg.metadata.insert("aggregate_count", &g.count.to_string());
            out.push(msg);
        }
        out.extend(failed);
        Ok(out)
    }
}

export_processor!(Aggregate);

#[cfg(test)]
mod tests {
    use super::*;

    fn agg(config: &str) -> Aggregate {
        Aggregate::init(config).unwrap_or_else(|e| panic!("{e:?}"))
    }

    #[test]
    fn counts_sums_and_averages_per_group_in_first_seen_order() {
        let mut a = agg(
            r#"{"group_by":"customer","metrics":[{"name":"orders","op":"count"},
                {"name":"revenue","op":"sum","field":"order.amount"},{"name":"avg","op":"avg","field":"order.amount"},
                {"name":"low","op":"min","field":"order.amount"},{"name":"high","op":"max","field":"order.amount"}]}"#,
        );
        let mut first = Message::new(r#"{"customer":"b","order":{"amount":10}}"#);
        first.metadata.insert("window_start", "1000");
        let out = a
            .process(vec![
                first,
                Message::new(r#"{"customer":"a","order":{"amount":2.5}}"#),
                Message::new(r#"{"customer":"b","order":{"amount":4}}"#),
                Message::new(r#"{"customer":"b","order":{}}"#),
                Message::new(r#"{"customer":"a","order":{"amount":"x"}}"#),
                Message::new("not json"),
            ])
            .unwrap();
        assert_eq!(out.len(), 4);
        let b: Value = out[0].json().unwrap();
        assert_eq!(
            b,
            serde_json::json!({"customer":"b","orders":3,"revenue":14,"avg":7,"low":4,"high":10})
        );
        assert_eq!(out[0].metadata.get("window_start"), Some("1000"));
        assert_eq!(out[0].metadata.get("aggregate_count"), Some("3"));
        let a_: Value = out[1].json().unwrap();
        assert_eq!(
            a_,
            serde_json::json!({"customer":"a","orders":1,"revenue":2.5,"avg":2.5,"low":2.5,"high":2.5})
        );
        assert!(out[2].error.as_deref().unwrap().contains("is not a number"));
        assert!(out[3].error.as_deref().unwrap().contains("not valid JSON"));
    }

    #[test]
    fn one_group_without_group_by_and_nothing_for_an_empty_batch() {
        let mut a =
            agg(r#"{"metrics":[{"name":"n","op":"count"},{"name":"m","op":"avg","field":"v"}]}"#);
        let out = a
            .process(vec![Message::new("{}"), Message::new("{}")])
            .unwrap();
        assert_eq!(out[0].json().unwrap(), serde_json::json!({"n":2,"m":null}));
        assert!(a.process(vec![]).unwrap().is_empty());
    }

    #[test]
    fn reports_every_config_problem_with_its_path() {
        let errors = Aggregate::init(
            r#"{"group_by":"n","metrics":[{"name":"n","op":"count","field":"x"},{"name":"s","op":"sum"}]}"#,
        )
        .err()
        .unwrap();
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [".metrics[0].field", ".metrics[0].name", ".metrics[1].field"]
        );
        assert!(Aggregate::init(r#"{"metrics":[{"name":"x","op":"median"}]}"#).is_err());
        assert!(Aggregate::init(r#"{"metrics":[]}"#).is_err());
    }
}
