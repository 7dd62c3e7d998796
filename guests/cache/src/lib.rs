//! The `cache` processor: get, set, add or delete a key per message, through the host's `cache` capability.

#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

use std::time::Duration;

use airtruct_sdk::paths::{Path, Template, parse_duration, place};
use airtruct_sdk::{
    Capability, ConfigError, ConfigErrors, Info, Message, Outcome, Processor, cache,
    export_processor, parse_config, read_option,
};
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize, Clone, Copy, PartialEq, Eq, Debug)]
#[serde(rename_all = "snake_case")]
enum Operator {
    Get,
    Set,
    Add,
    Delete,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    resource: String,
    operator: Operator,
    key: String,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    ttl: Option<String>,
    #[serde(default)]
    target: Option<String>,
}

struct Cache {
    resource: String,
    operator: Operator,
    key: Template,
    value: Option<Template>,
    ttl: Option<Duration>,
    target: Option<Path>,
}

impl Cache {
    fn apply(&self, msg: &mut Message) -> Result<(), String> {
        let reads =
            self.key.reads_payload() || self.value.as_ref().is_some_and(Template::reads_payload);
        let payload = if reads { msg.json()? } else { Value::Null };
        let key = self.key.render(&payload, &msg.metadata)?;
        let value = || -> Result<Vec<u8>, String> {
            Ok(match &self.value {
                Some(t) => t.render(&payload, &msg.metadata)?.into_bytes(),
                None => msg.payload.clone(),
            })
        };
        match self.operator {
            Operator::Get => {
                let found = cache::get(&self.resource, &key)
                    .map_err(|e| e.to_string())?
                    .ok_or_else(|| format!("key \"{key}\" is not in the cache"))?;
                let v = serde_json::from_slice::<Value>(&found).unwrap_or_else(|_| {
                    Value::String(String::from_utf8_lossy(&found).into_owned())
                });
                place(msg, self.target.as_ref(), v)?;
            }
            Operator::Set => {
                cache::set(&self.resource, &key, &value()?, self.ttl).map_err(|e| e.to_string())?
            }
            Operator::Add => {
                if !cache::add(&self.resource, &key, &value()?, self.ttl)
                    .map_err(|e| e.to_string())?
                {
                    return Err(format!("key \"{key}\" is already in the cache"));
                }
            }
            Operator::Delete => cache::delete(&self.resource, &key).map_err(|e| e.to_string())?,
        }
        Ok(())
    }
}

impl Processor for Cache {
    fn describe() -> Info {
        airtruct_sdk::info_from_files!("cache")
    }

    fn capabilities() -> Vec<Capability> {
        vec![Capability::Cache]
    }

    fn init(config: &str) -> Result<Self, ConfigErrors> {
        let c: Config = parse_config(config)?;
        let mut errors = Vec::new();
        let key = read_option(&mut errors, ".key", Some(&c.key), Template::parse);
        let value = read_option(&mut errors, ".value", c.value.as_deref(), Template::parse);
        let ttl = read_option(&mut errors, ".ttl", c.ttl.as_deref(), parse_duration);
        let target = read_option(&mut errors, ".target", c.target.as_deref(), Path::parse);
        let writes = matches!(c.operator, Operator::Set | Operator::Add);
        if !writes && (c.value.is_some() || c.ttl.is_some()) {
            errors.push(ConfigError::new(
                if c.value.is_some() { ".value" } else { ".ttl" },
                format!("only set and add store a value, not {:?}", c.operator).to_lowercase(),
            ));
        }
        if c.operator != Operator::Get && c.target.is_some() {
            errors.push(ConfigError::new(
                ".target",
                "only get puts a value in the message",
            ));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Cache {
            resource: c.resource,
            operator: c.operator,
            key: key.expect("checked"),
            value,
            ttl,
            target,
        })
    }

    fn process_message(&mut self, mut msg: Message) -> Outcome {
        match self.apply(&mut msg) {
            Ok(()) => Outcome::Keep(msg),
            Err(e) => Outcome::Fail(msg, format!("cache: {e}")),
        }
    }
}

export_processor!(Cache);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_config_problems_at_their_paths() {
        let errors = Cache::init(r#"{"resource":"c","operator":"get","key":"{a","ttl":"5"}"#)
            .err()
            .unwrap();
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, vec![".key", ".ttl", ".ttl"]);
        assert!(
            Cache::init(r#"{"resource":"c","operator":"set","key":"{id}","ttl":"5m"}"#).is_ok()
        );
    }
}
