//! `${VAR}` and `${VAR:default}` interpolation of environment variables in config text. `$${` writes a literal
//! `${`; `${secret:NAME}` is left as it is, for the worker that runs the stream to resolve.

use crate::ValidationError;

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
    fn reports_every_unset_variable() {
        let errs = interpolate_env("${A} ${B}", env).unwrap_err();
        assert_eq!(errs.len(), 2);
        assert!(errs[1].message.contains("\"B\" is not set"));
    }
}
