//! The `http` processor: one request per message, sent together for the batch through the host's `http`
//! capability (so the stream's http resource decides which hosts may be called), the answer put in the message.

#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

use airtruct_sdk::http::{Request, Response};
use airtruct_sdk::paths::{Path, Template, place};
use airtruct_sdk::{
    Capability, ConfigError, ConfigErrors, Info, Message, Processor, export_processor,
    parse_config, read_option,
};
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    resource: String,
    url: String,
    #[serde(default = "get")]
    method: String,
    #[serde(default)]
    headers: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    body: Option<Body>,
    #[serde(default)]
    target: Option<String>,
    #[serde(default = "default_fail_on")]
    fail_on: u16,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum Body {
    Payload,
    None,
}

fn get() -> String {
    "GET".into()
}

fn default_fail_on() -> u16 {
    400
}

struct Http {
    resource: String,
    url: Template,
    method: String,
    headers: Vec<(String, Template)>,
    send_payload: bool,
    target: Option<Path>,
    fail_on: u16,
}

impl Http {
    /// The request for one message, or why there is none.
    fn request(&self, msg: &Message) -> Result<Request, String> {
        let reads = self.url.reads_payload() || self.headers.iter().any(|(_, t)| t.reads_payload());
        let payload = if reads { msg.json()? } else { Value::Null };
        let url = self.url.render(&payload, &msg.metadata)?;
        let headers = self
            .headers
            .iter()
            .map(|(k, t)| Ok((k.clone(), t.render(&payload, &msg.metadata)?)))
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Request {
            method: self.method.clone(),
            url,
            headers,
            body: if self.send_payload {
                msg.payload.clone()
            } else {
                Vec::new()
            },
        })
    }

    /// Puts an answer in its message, or fails it.
    fn answer(&self, mut msg: Message, answer: Response) -> Message {
        if answer.status >= self.fail_on {
            let body = String::from_utf8_lossy(&answer.body);
            let body: String = body.chars().take(200).collect();
            msg.error = Some(format!("http: the API answered {}: {body}", answer.status));
            return msg;
        }
        let value = serde_json::from_slice::<Value>(&answer.body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&answer.body).into_owned()));
        match place(&mut msg, self.target.as_ref(), value) {
            Ok(()) => msg
                .metadata
                .insert("http_status", &answer.status.to_string()),
            Err(e) => msg.error = Some(format!("http: {e}")),
        }
        msg
    }
}

impl Processor for Http {
    fn describe() -> Info {
        airtruct_sdk::info_from_files!("http")
    }

    fn capabilities() -> Vec<Capability> {
        vec![Capability::Http]
    }

    fn init(config: &str) -> Result<Self, ConfigErrors> {
        let c: Config = parse_config(config)?;
        let mut errors = Vec::new();
        let url = read_option(&mut errors, ".url", Some(&c.url), Template::url);
        if !(c.url.starts_with("http://") || c.url.starts_with("https://")) {
            errors.push(ConfigError::new(
                ".url",
                "must start with http:// or https://",
            ));
        }
        let mut headers = Vec::new();
        for (k, v) in &c.headers {
            match Template::parse(v) {
                Ok(t) => headers.push((k.clone(), t)),
                Err(e) => errors.push(ConfigError::new(format!(".headers.{k}"), e)),
            }
        }
        let target = read_option(&mut errors, ".target", c.target.as_deref(), Path::parse);
        let method = c.method.to_ascii_uppercase();
        if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic()) {
            errors.push(ConfigError::new(
                ".method",
                format!("\"{}\" is not an HTTP method", c.method),
            ));
        }
        let send_payload = match c.body {
            Some(b) => b == Body::Payload,
            None => !matches!(method.as_str(), "GET" | "DELETE" | "HEAD"),
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Http {
            resource: c.resource,
            url: url.expect("checked"),
            method,
            headers,
            send_payload,
            target,
            fail_on: c.fail_on,
        })
    }

    fn process(&mut self, batch: Vec<Message>) -> Result<Vec<Message>, String> {
        // Every request of the batch at once: the host sends them concurrently.
        let mut out: Vec<Option<Message>> = Vec::with_capacity(batch.len());
        let mut requests = Vec::new();
        let mut asked = Vec::new();
        for msg in batch {
            match self.request(&msg) {
                Ok(r) => {
                    asked.push(out.len());
                    requests.push(r);
                    out.push(Some(msg));
                }
                Err(e) => {
                    let mut m = msg;
                    m.error = Some(format!("http: {e}"));
                    out.push(Some(m));
                }
            }
        }
        let answers = airtruct_sdk::http::send_all(&self.resource, requests);
        for (i, answer) in asked.into_iter().zip(answers) {
            let msg = out[i].take().expect("each message once");
            out[i] = Some(match answer {
                Ok(a) => self.answer(msg, a),
                Err(e) => {
                    let mut m = msg;
                    m.error = Some(format!("http: {e}"));
                    m
                }
            });
        }
        Ok(out.into_iter().flatten().collect())
    }
}

export_processor!(Http);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_each_request_from_the_message_and_places_the_answer() {
        let h = Http::init(
            r#"{"resource":"api","url":"http://h/users/{id}","headers":{"x-kind":"{meta:kind}"},"target":"user"}"#,
        )
        .map_err(|e| e[0].message.clone())
        .unwrap();
        let mut msg = Message::new(r#"{"id":7}"#);
        msg.metadata.insert("kind", "a");
        let r = h.request(&msg).unwrap();
        assert_eq!(r.url, "http://h/users/7");
        assert_eq!(r.headers, vec![("x-kind".to_string(), "a".to_string())]);
        assert!(r.body.is_empty());
        let answered = h.answer(
            msg.clone(),
            Response {
                status: 200,
                headers: vec![],
                body: br#"{"name":"Ann"}"#.to_vec(),
            },
        );
        assert_eq!(answered.json().unwrap()["user"]["name"], "Ann");
        assert_eq!(answered.metadata.get("http_status"), Some("200"));
        let failed = h.answer(
            msg,
            Response {
                status: 404,
                headers: vec![],
                body: b"no such user".to_vec(),
            },
        );
        assert_eq!(
            failed.error.as_deref(),
            Some("http: the API answered 404: no such user")
        );
    }

    #[test]
    fn reports_config_problems_at_their_paths() {
        let errors =
            Http::init(r#"{"resource":"api","url":"ftp://h/{a","method":"G E T","target":"a..b"}"#)
                .err()
                .unwrap();
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, vec![".url", ".url", ".target", ".method"]);
    }
}
