//! `${VAR}` and `${VAR:default}` interpolation of environment variables in config text. `$${` writes a literal
//! `${`; `${secret:NAME}` is left as it is, for the worker that runs the stream to resolve.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::{ValidationError, join_path};

/// Replaces `${VAR}` with the value of `lookup(VAR)`, reporting every unset variable without a default.
pub fn interpolate_env(
    text: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, Vec<ValidationError>> {
    let mut out = String::with_capacity(text.len());
    let mut errors = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("${") {
        if rest[..i].ends_with('$') {
            out.push_str(&rest[..i - 1]);
            out.push_str("${");
            rest = &rest[i + 2..];
            continue;
        }
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let Some(end) = after.find('}') else {
            errors.push(ValidationError::new(
                "",
                "unterminated \"${\" in configuration",
            ));
            out.push_str(&rest[i..]);
            rest = "";
            break;
        };
        let expr = &after[..end];
        if expr.starts_with("secret:") {
            out.push_str(&rest[i..i + 3 + end]);
        } else {
            let (name, default) = match expr.split_once(':') {
                Some((n, d)) => (n, Some(d)),
                None => (expr, None),
            };
            match (lookup(name), default) {
                (Some(v), _) => out.push_str(&v),
                (None, Some(d)) => out.push_str(d),
                (None, None) => errors.push(ValidationError::new(
                    "",
                    format!("environment variable \"{name}\" is not set (write ${{{name}:default}} for a default)"),
                )),
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// Every `${secret:NAME}` referenced by a string in `value`, with the path of its first use.
pub fn secret_refs(value: &Value) -> Vec<(String, String)> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    walk_strings(value, "", &mut |path, s| {
        for name in secret_names(s) {
            if seen.insert(name.to_string()) {
                out.push((name.to_string(), path.to_string()));
            }
        }
    });
    out
}

/// Every use of a secret, with the path of the string it is in (a name used twice is listed twice).
pub fn secret_uses(value: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    walk_strings(value, "", &mut |path, s| {
        for name in secret_names(s) {
            out.push((name.to_string(), path.to_string()));
        }
    });
    out
}

/// Replaces every `${secret:NAME}` in the strings of `value` with `lookup(NAME)`, reporting each unknown name
/// at its path. Runs on the worker that runs the stream, so values never travel in clear.
pub fn resolve_secrets(
    value: &Value,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<Value, Vec<ValidationError>> {
    let mut errors = Vec::new();
    let resolved = map_strings(value, "", &mut |path, s| {
        if !s.contains("${secret:") {
            return s.to_string();
        }
        let mut out = String::with_capacity(s.len());
        let mut rest = s;
        while let Some(i) = rest.find("${secret:") {
            out.push_str(&rest[..i]);
            let after = &rest[i + 9..];
            let Some(end) = after.find('}') else {
                out.push_str(&rest[i..]);
                rest = "";
                break;
            };
            let name = &after[..end];
            match lookup(name) {
                Some(v) => out.push_str(&v),
                None => errors.push(ValidationError::new(
                    path,
                    format!("secret \"{name}\" does not exist"),
                )),
            }
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        out
    });
    if errors.is_empty() {
        Ok(resolved)
    } else {
        Err(errors)
    }
}

fn secret_names(s: &str) -> impl Iterator<Item = &str> {
    s.match_indices("${secret:").filter_map(move |(i, _)| {
        let after = &s[i + 9..];
        after.find('}').map(|end| &after[..end])
    })
}

fn child_path(path: &str, key: &str) -> String {
    join_path(path, &format!(".{key}"))
}

fn walk_strings(value: &Value, path: &str, f: &mut impl FnMut(&str, &str)) {
    match value {
        Value::String(s) => f(path, s),
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                walk_strings(v, &join_path(path, &format!("[{i}]")), f);
            }
        }
        Value::Object(map) => {
            for (k, v) in map {
                walk_strings(v, &child_path(path, k), f);
            }
        }
        _ => {}
    }
}

fn map_strings(value: &Value, path: &str, f: &mut impl FnMut(&str, &str) -> String) -> Value {
    match value {
        Value::String(s) => Value::String(f(path, s)),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| map_strings(v, &join_path(path, &format!("[{i}]")), f))
                .collect(),
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), map_strings(v, &child_path(path, k), f)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        (name == "HOST").then(|| "db.local".to_string())
    }

    #[test]
    fn replaces_variables_and_defaults_and_keeps_secrets() {
        let got = interpolate_env("a ${HOST} ${PORT:5432} ${secret:pw} $${HOST}", env).unwrap();
        assert_eq!(got, "a db.local 5432 ${secret:pw} ${HOST}");
    }

    #[test]
    fn finds_and_resolves_secrets_with_their_paths() {
        let config = serde_json::json!({
            "output": {"sql": {"dsn": "postgres://u:${secret:pg}@h/db", "args": ["${secret:pg}", "${secret:other}"]}}
        });
        let refs = secret_refs(&config);
        assert_eq!(
            refs,
            [
                // Each name once, where the config (in its written order) first uses it.
                ("pg".to_string(), "output.sql.dsn".to_string()),
                ("other".to_string(), "output.sql.args[1]".to_string())
            ]
        );
        let lookup = |n: &str| (n == "pg").then(|| "s3cret".to_string());
        let errs = resolve_secrets(&config, lookup).unwrap_err();
        assert_eq!(errs.len(), 1);
        assert_eq!(errs[0].path, "output.sql.args[1]");
        assert_eq!(errs[0].message, "secret \"other\" does not exist");
        let lookup = |n: &str| Some(format!("<{n}>"));
        let done = resolve_secrets(&config, lookup).unwrap();
        assert_eq!(done["output"]["sql"]["dsn"], "postgres://u:<pg>@h/db");
    }

    #[test]
    fn reports_every_unset_variable() {
        let errs = interpolate_env("${A} ${B}", env).unwrap_err();
        assert_eq!(errs.len(), 2);
        assert!(errs[1].message.contains("\"B\" is not set"));
    }
}
