//! `http_client` input: polls a URL on an interval; each successful response body is one message, with
//! `http_status` and `http_content_type` metadata. Polling has nothing to acknowledge.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;

use airtruct_runtime::kind::{Check, InputKind, Kind};
use airtruct_runtime::{Ack, BuildContext, Error, Input, InputBatch, Metadata, message};

/// Polls an HTTP endpoint.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct HttpClientInputConfig {
    /// What to fetch.
    pub url: String,
    /// The method (default `GET`).
    #[serde(default = "default_method")]
    pub method: String,
    /// Headers to send; values may use `${secret:NAME}`.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Time between polls (default 10s).
    #[serde(default = "default_interval")]
    pub interval: airtruct_model::Duration,
    /// Longest a request may take (default 10s).
    #[serde(default = "default_timeout")]
    pub timeout: airtruct_model::Duration,
    /// Stop after this many successful polls (absent or 0: never), for tests and one-off fetches.
    #[serde(default)]
    pub count: u64,
}

fn default_method() -> String {
    "GET".into()
}
fn default_interval() -> airtruct_model::Duration {
    airtruct_model::Duration(Duration::from_secs(10))
}
fn default_timeout() -> airtruct_model::Duration {
    airtruct_model::Duration(Duration::from_secs(10))
}

impl Kind for HttpClientInputConfig {
    const NAME: &'static str = "http_client";
    const DESCRIPTION: &'static str = "Polls a URL on an interval: each response body is a message";
    const EXAMPLE: &'static str = r#"{"url": "http://127.0.0.1:9999/status", "interval": "30s", "headers": {"accept": "application/json"}}"#;

    const CREDENTIALS: &'static [&'static str] = &["headers.*"];

    fn check(&mut self, check: &mut Check<'_>) {
        crate::http::check_request(check, &self.url, &self.method);
    }
}

#[async_trait]
impl InputKind for HttpClientInputConfig {
    async fn build(&self, cx: &BuildContext) -> Result<Box<dyn Input>, Error> {
        cx.check_url("http_client", &self.url)?;
        Ok(Box::new(self.open(cx.policy.clone())?))
    }
}

impl HttpClientInputConfig {
    /// The running input (no request is made until it is read).
    pub fn open(
        &self,
        policy: Option<std::sync::Arc<airtruct_runtime::policy::Policy>>,
    ) -> Result<HttpClientInput, Error> {
        let client = crate::http::client_builder(policy, true)
            .timeout(self.timeout.0)
            .build()
            .map_err(|e| Error::Internal(format!("http_client: {e}")))?;
        let method = crate::http::http_method(&self.method)?;
        Ok(HttpClientInput {
            client,
            method,
            config: self.clone(),
            polled: 0,
            next: None,
        })
    }
}

/// The running `http_client` input.
pub struct HttpClientInput {
    client: reqwest::Client,
    method: reqwest::Method,
    config: HttpClientInputConfig,
    polled: u64,
    next: Option<tokio::time::Instant>,
}

/// The largest response body taken.
const MAX_RESPONSE: usize = 16 << 20;

/// An error with its causes (reqwest's own message hides why a redirect or a resolution failed).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(&format!(": {c}"));
        cause = c.source();
    }
    text
}

#[async_trait]
impl Input for HttpClientInput {
    async fn read(&mut self) -> Result<Option<InputBatch>, Error> {
        if self.config.count > 0 && self.polled >= self.config.count {
            return Ok(None);
        }
        if let Some(at) = self.next {
            tokio::time::sleep_until(at).await;
        }
        self.next = Some(tokio::time::Instant::now() + self.config.interval.0);
        let mut req = self.client.request(self.method.clone(), &self.config.url);
        for (k, v) in &self.config.headers {
            req = req.header(k, v);
        }
        let what = format!("http_client {} {}", self.method, self.config.url);
        let resp = req.send().await.map_err(|e| {
            // A redirect (or a name) that leads where the operator's policy forbids will not pass by retrying.
            let refused = e.is_redirect() || format!("{e:?}").contains("operator's egress policy");
            let text = format!("{what}: {}", error_chain(&e));
            if refused {
                Error::User(text)
            } else {
                Error::External(text)
            }
        })?;
        let status = resp.status();
        let content_type = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        // Bounded: a response larger than the cap fails the poll rather than filling memory.
        let mut resp = resp;
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| Error::External(format!("{what}: reading the body: {e}")))?
        {
            if body.len() + chunk.len() > MAX_RESPONSE {
                return Err(Error::External(format!(
                    "{what}: the response is larger than {} MiB",
                    MAX_RESPONSE >> 20
                )));
            }
            body.extend_from_slice(&chunk);
        }
        if !status.is_success() {
            let text: String = String::from_utf8_lossy(&body).chars().take(200).collect();
            return Err(Error::External(format!("{what} answered {status}: {text}")));
        }
        self.polled += 1;
        let mut meta = Metadata::default();
        meta.insert("http_status", status.as_str());
        meta.insert("http_content_type", &content_type);
        Ok(Some(InputBatch {
            messages: vec![message(body, meta)],
            ack: Ack::none(),
        }))
    }
}
