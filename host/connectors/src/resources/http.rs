//! An HTTP grant: the hosts a processor may call, the methods, headers added by the host (credentials the
//! processor never sees), a time limit, a response size limit and how many requests are in flight at once.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use airtruct_engine::HostError;
use airtruct_engine::capabilities::{HttpRequest, HttpResponse};
use airtruct_model::{ByteSize, Duration as ConfigDuration};
use airtruct_runtime::kind::Check;
use airtruct_runtime::policy::Policy;
use airtruct_runtime::{BuildContext, Error};
use futures_util::StreamExt;
use schemars::JsonSchema;
use serde::Deserialize;

use super::no_side_effects;

/// The hosts a processor may call, and how.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct HttpGrantConfig {
    /// The hosts: `api.example.com`, `api.example.com:8443`, `*.example.com`, `127.0.0.1:8080`, or `*` for any
    /// host the operator's egress policy allows. A host without a port may be called on any port.
    #[schemars(length(min = 1))]
    pub hosts: Vec<String>,
    /// The methods allowed (default GET and HEAD).
    #[serde(default = "default_methods")]
    pub methods: Vec<String>,
    /// Headers the host adds to every request (credentials go here: the processor never sees them).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Longest one request may take (default 10s), within what is left of the processor's time limit.
    #[serde(default = "default_timeout")]
    pub timeout: ConfigDuration,
    /// Largest response body taken (default 4MiB); a larger one fails the call.
    #[serde(default = "default_max_response")]
    pub max_response_bytes: ByteSize,
    /// Requests in flight at once for one batch (default 16).
    #[serde(default = "default_in_flight")]
    #[schemars(range(min = 1))]
    pub max_in_flight: usize,
}

fn default_methods() -> Vec<String> {
    vec!["GET".into(), "HEAD".into()]
}

fn default_timeout() -> ConfigDuration {
    ConfigDuration(Duration::from_secs(10))
}

fn default_max_response() -> ByteSize {
    ByteSize(4 << 20)
}

fn default_in_flight() -> usize {
    16
}

/// One `hosts` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
struct HostRule {
    /// `*`: any; `*.example.com`: a suffix; else the name or address.
    host: String,
    port: Option<u16>,
}

impl HostRule {
    fn parse(text: &str) -> Result<Self, String> {
        let t = text.trim().to_ascii_lowercase();
        if t == "*" {
            return Ok(Self {
                host: t,
                port: None,
            });
        }
        if t.contains("://") || t.contains('/') {
            return Err(format!(
                "\"{text}\" is a URL: write the host (and port) only"
            ));
        }
        let (host, port) = match t.rsplit_once(':') {
            // `[::1]:8080`, `host:8080`; a bare IPv6 address has several colons.
            Some((h, p)) if !h.contains(':') || h.ends_with(']') => {
                let port = p
                    .parse::<u16>()
                    .map_err(|_| format!("\"{text}\": \"{p}\" is not a port"))?;
                (
                    h.trim_start_matches('[').trim_end_matches(']').to_string(),
                    Some(port),
                )
            }
            _ => (
                t.trim_start_matches('[').trim_end_matches(']').to_string(),
                None,
            ),
        };
        if host.is_empty() {
            return Err(format!("\"{text}\" names no host"));
        }
        Ok(Self { host, port })
    }

    fn matches(&self, host: &str, port: u16) -> bool {
        let host_ok = self.host == "*"
            || match self.host.strip_prefix("*.") {
                Some(suffix) => host.ends_with(&format!(".{suffix}")),
                None => self.host == host,
            };
        host_ok && self.port.is_none_or(|p| p == port)
    }
}

impl HttpGrantConfig {
    pub(super) fn check(&self, check: &mut Check<'_>) {
        if self.hosts.is_empty() {
            check.problem(
                "hosts",
                "name at least one host (or * for any the policy allows)",
            );
        }
        for (i, h) in self.hosts.iter().enumerate() {
            match HostRule::parse(h) {
                Err(e) => check.problem(&format!("hosts[{i}]"), e),
                Ok(rule) if rule.host != "*" && !rule.host.starts_with("*.") => {
                    check.destination(&format!("hosts[{i}]"), &rule.host, rule.port.unwrap_or(443));
                }
                Ok(_) => {}
            }
        }
        for (i, m) in self.methods.iter().enumerate() {
            if crate::http::http_method(m).is_err() {
                check.problem(
                    &format!("methods[{i}]"),
                    format!("\"{m}\" is not an HTTP method"),
                );
            }
        }
        for name in self.headers.keys() {
            if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
                check.problem(&format!("headers.{name}"), "not a header name");
            }
        }
        super::positive(check, "timeout", &self.timeout);
        if self.max_in_flight == 0 {
            check.problem("max_in_flight", "must be at least 1");
        }
    }
}

/// An opened grant.
pub(super) struct HttpGrant {
    rules: Vec<HostRule>,
    methods: Vec<reqwest::Method>,
    headers: reqwest::header::HeaderMap,
    timeout: Duration,
    max_response: u64,
    in_flight: usize,
    policy: Option<Arc<Policy>>,
    client: reqwest::Client,
}

impl HttpGrant {
    pub(super) fn open(c: &HttpGrantConfig, cx: &BuildContext) -> Result<Self, Error> {
        let mut headers = reqwest::header::HeaderMap::new();
        for (k, v) in &c.headers {
            let name = reqwest::header::HeaderName::from_bytes(k.as_bytes())
                .map_err(|e| Error::User(format!("resources: http header {k}: {e}")))?;
            let value = reqwest::header::HeaderValue::from_str(v)
                .map_err(|e| Error::User(format!("resources: http header {k}: {e}")))?;
            headers.insert(name, value);
        }
        // Redirects are not followed: one could lead outside the hosts granted.
        let client = crate::http::client_builder(cx.policy.clone(), false)
            .build()
            .map_err(|e| Error::Internal(format!("resources: http client: {e}")))?;
        Ok(Self {
            rules: c
                .hosts
                .iter()
                .filter_map(|h| HostRule::parse(h).ok())
                .collect(),
            methods: c
                .methods
                .iter()
                .filter_map(|m| crate::http::http_method(m).ok())
                .collect(),
            headers,
            timeout: c.timeout.0,
            max_response: c.max_response_bytes.0,
            in_flight: c.max_in_flight.max(1),
            policy: cx.policy.clone(),
            client,
        })
    }

    /// Why a request may not be sent, if it may not.
    fn refuse(
        &self,
        r: &HttpRequest,
        side_effects: bool,
    ) -> Result<(reqwest::Method, reqwest::Url), HostError> {
        let url = reqwest::Url::parse(&r.url)
            .map_err(|e| HostError::Denied(format!("\"{}\" is not a URL: {e}", r.url)))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(HostError::Denied(format!(
                "scheme \"{}\" is not http or https",
                url.scheme()
            )));
        }
        let host = url
            .host_str()
            .unwrap_or("")
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_ascii_lowercase();
        let port = url.port_or_known_default().unwrap_or(0);
        if !self.rules.iter().any(|rule| rule.matches(&host, port)) {
            return Err(HostError::Denied(format!(
                "{host}:{port} is not among the hosts this http resource grants"
            )));
        }
        let method = crate::http::http_method(&r.method)
            .map_err(|_| HostError::Denied(format!("\"{}\" is not an HTTP method", r.method)))?;
        if !self.methods.contains(&method) {
            return Err(HostError::Denied(format!(
                "this http resource does not allow {method}"
            )));
        }
        if !side_effects && !matches!(method, reqwest::Method::GET | reqwest::Method::HEAD) {
            return Err(no_side_effects(&format!("a {method} request")));
        }
        if let Some(policy) = &self.policy {
            policy
                .check_destination(&host, port)
                .map_err(HostError::Denied)?;
        }
        Ok((method, url))
    }

    async fn send(
        &self,
        r: HttpRequest,
        deadline: Instant,
        side_effects: bool,
    ) -> Result<HttpResponse, HostError> {
        let (method, url) = self.refuse(&r, side_effects)?;
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(HostError::Timeout);
        }
        let limit = self.timeout.min(left);
        let mut req = self.client.request(method, url).timeout(limit);
        for (k, v) in &r.headers {
            // The grant's own headers win: a processor cannot replace a credential.
            if !self.headers.contains_key(k.as_str()) {
                req = req.header(k.as_str(), v.as_str());
            }
        }
        req = req.headers(self.headers.clone());
        if !r.body.is_empty() {
            req = req.body(r.body);
        }
        let answer = tokio::time::timeout(limit, async {
            let resp = req.send().await.map_err(failed)?;
            let status = resp.status().as_u16();
            let headers = resp
                .headers()
                .iter()
                .map(|(k, v)| {
                    (
                        k.to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect();
            if resp.content_length().is_some_and(|n| n > self.max_response) {
                return Err(HostError::TooLarge(self.max_response));
            }
            let mut body = Vec::new();
            let mut resp = resp;
            while let Some(chunk) = resp.chunk().await.map_err(failed)? {
                if (body.len() + chunk.len()) as u64 > self.max_response {
                    return Err(HostError::TooLarge(self.max_response));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(HttpResponse {
                status,
                headers,
                body,
            })
        })
        .await;
        answer.unwrap_or(Err(HostError::Timeout))
    }

    /// Sends the requests, `max_in_flight` at a time; the answers in order.
    pub(super) async fn send_all(
        &self,
        requests: Vec<HttpRequest>,
        deadline: Instant,
        side_effects: bool,
    ) -> Vec<Result<HttpResponse, HostError>> {
        futures_util::stream::iter(requests)
            .map(|r| self.send(r, deadline, side_effects))
            .buffered(self.in_flight)
            .collect()
            .await
    }
}

fn failed(e: reqwest::Error) -> HostError {
    if e.is_timeout() {
        return HostError::Timeout;
    }
    // The policy's resolver refuses a name whose addresses are all denied: its words are in the chain.
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text = format!("{text}: {s}");
        source = s.source();
    }
    if text.contains("egress policy") || text.contains("own listener") {
        HostError::Denied(text)
    } else {
        HostError::Failed(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_rules_match_names_suffixes_ports_and_any() {
        let r = HostRule::parse("api.example.com").unwrap();
        assert!(r.matches("api.example.com", 443) && r.matches("api.example.com", 8080));
        assert!(!r.matches("evil.com", 443));
        let r = HostRule::parse("*.example.com:8443").unwrap();
        assert!(r.matches("a.example.com", 8443) && !r.matches("a.example.com", 443));
        assert!(!r.matches("example.com", 8443));
        let r = HostRule::parse("[::1]:8080").unwrap();
        assert!(r.matches("::1", 8080));
        assert!(HostRule::parse("*").unwrap().matches("anything", 1));
        assert!(HostRule::parse("http://x").is_err());
        assert!(HostRule::parse("x:port").is_err());
    }
}
