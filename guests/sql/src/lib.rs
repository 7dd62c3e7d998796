//! The `sql` processor: a statement per message through the host's `sql` capability, its rows put in the message.

#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

use airtruct_sdk::paths::{Path, place};
use airtruct_sdk::sql::{self, Value as SqlValue};
use airtruct_sdk::{
    Capability, ConfigError, ConfigErrors, Info, Message, Outcome, Processor, export_processor,
    parse_config, read_option,
};
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
enum Result_ {
    #[default]
    All,
    First,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    resource: String,
    #[serde(default)]
    query: Option<String>,
    #[serde(default)]
    table: Option<String>,
    #[serde(default)]
    columns: Vec<String>,
    #[serde(default, rename = "where")]
    condition: Option<String>,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    result: Result_,
    #[serde(default)]
    target: Option<String>,
}

enum Arg {
    Field(Path),
    Meta(String),
}

struct Sql {
    resource: String,
    statement: String,
    args: Vec<Arg>,
    result: Result_,
    target: Option<Path>,
}

/// A table or column name: letters, digits and `_`, optionally `schema.name`; never quoted, so it cannot carry SQL.
fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.split('.').count() <= 2
        && s.split('.').all(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
}

impl Sql {
    fn lookup(&self, msg: &mut Message) -> Result<(), String> {
        let reads = self.args.iter().any(|a| matches!(a, Arg::Field(_)));
        let payload = if reads { msg.json()? } else { Value::Null };
        let params = self
            .args
            .iter()
            .map(|a| match a {
                Arg::Field(p) => {
                    Ok(SqlValue::from_json(p.get(&payload).ok_or_else(|| {
                        format!("the payload has no field `{p}`")
                    })?))
                }
                Arg::Meta(k) => msg
                    .metadata
                    .get(k)
                    .map(|v| SqlValue::Text(v.to_string()))
                    .ok_or_else(|| format!("the message has no metadata `{k}`")),
            })
            .collect::<Result<Vec<_>, String>>()?;
        let rows =
            sql::query(&self.resource, &self.statement, &params).map_err(|e| e.to_string())?;
        let mut rows = rows.to_json();
        let value = match self.result {
            Result_::All => Value::Array(rows),
            Result_::First => {
                if rows.is_empty() {
                    Value::Null
                } else {
                    rows.swap_remove(0)
                }
            }
        };
        place(msg, self.target.as_ref(), value)
    }
}

impl Processor for Sql {
    fn describe() -> Info {
        airtruct_sdk::info_from_files!("sql")
    }

    fn capabilities() -> Vec<Capability> {
        vec![Capability::Sql]
    }

    fn init(config: &str) -> Result<Self, ConfigErrors> {
        let c: Config = parse_config(config)?;
        let mut errors = Vec::new();
        let statement = match (&c.query, &c.table) {
            (Some(q), None) => {
                if !c.columns.is_empty() || c.condition.is_some() {
                    errors.push(ConfigError::new(
                        if c.condition.is_some() {
                            ".where"
                        } else {
                            ".columns"
                        },
                        "columns and where go with table, not query",
                    ));
                }
                q.clone()
            }
            (None, Some(t)) => {
                if !is_identifier(t) {
                    errors.push(ConfigError::new(
                        ".table",
                        "letters, digits and _ only (schema.table at most)",
                    ));
                }
                for (i, col) in c.columns.iter().enumerate() {
                    if !is_identifier(col) {
                        errors.push(ConfigError::new(
                            format!(".columns[{i}]"),
                            "letters, digits and _ only",
                        ));
                    }
                }
                let columns = if c.columns.is_empty() {
                    "*".to_string()
                } else {
                    c.columns.join(", ")
                };
                match &c.condition {
                    Some(w) => format!("SELECT {columns} FROM {t} WHERE {w}"),
                    None => format!("SELECT {columns} FROM {t}"),
                }
            }
            (Some(_), Some(_)) => {
                errors.push(ConfigError::new(".query", "give query or table, not both"));
                String::new()
            }
            (None, None) => {
                errors.push(ConfigError::new(
                    "",
                    "give query (a statement of your own) or table (a select)",
                ));
                String::new()
            }
        };
        let mut args = Vec::new();
        for (i, a) in c.args.iter().enumerate() {
            match a.strip_prefix("meta:") {
                Some(k) => args.push(Arg::Meta(k.trim().to_string())),
                None => match Path::parse(a) {
                    Ok(p) => args.push(Arg::Field(p)),
                    Err(e) => errors.push(ConfigError::new(format!(".args[{i}]"), e)),
                },
            }
        }
        let target = read_option(&mut errors, ".target", c.target.as_deref(), Path::parse);
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Sql {
            resource: c.resource,
            statement,
            args,
            result: c.result,
            target,
        })
    }

    fn process_message(&mut self, mut msg: Message) -> Outcome {
        match self.lookup(&mut msg) {
            Ok(()) => Outcome::Keep(msg),
            Err(e) => Outcome::Fail(msg, format!("sql: {e}")),
        }
    }
}

export_processor!(Sql);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_select_is_built_from_checked_names_and_problems_have_paths() {
        let s = Sql::init(r#"{"resource":"db","table":"users","columns":["name","tier"],"where":"id = $1","args":["user.id"]}"#)
            .map_err(|e| e[0].message.clone())
            .unwrap();
        assert_eq!(s.statement, "SELECT name, tier FROM users WHERE id = $1");
        let errors =
            Sql::init(r#"{"resource":"db","table":"users; drop table x","columns":["a b"]}"#)
                .err()
                .unwrap();
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, vec![".table", ".columns[0]"]);
        assert!(Sql::init(r#"{"resource":"db"}"#).is_err());
    }
}
