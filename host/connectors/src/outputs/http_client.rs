//! `http_client` output: sends each message as an HTTP request. A 2xx confirms it; 5xx, 429, timeouts and
//! connection errors fail the write, which the stream retries under the one retry policy (`max_retries` and
//! `retry_backoff` tune it for this output); any other 4xx is the message's failure, handled by the stream's
//! `on_error` policy.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;

use airtruct_runtime::kind::{Check, Kind, OutputKind};
use airtruct_runtime::retry::RetryPolicy;
use airtruct_runtime::{BuildContext, Error, Message, Output, meta_get};

/// Sends messages to an HTTP endpoint.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct HttpClientOutputConfig {
    /// Where to send (`https://example.com/hook`).
    pub url: String,
    /// The method (default `POST`).
    #[serde(default = "default_method")]
    pub method: String,
    /// Headers to send; values may use `${secret:NAME}`.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Metadata keys sent as headers of the same name.
    #[serde(default)]
    pub metadata_headers: Vec<String>,
    /// Longest a request may take (default 10s).
    #[serde(default = "default_timeout")]
    pub timeout: airtruct_model::Duration,
    /// Retries of a batch whose requests failed in a way that may pass, before the stream fails (default: the
    /// stream's, 35, about 2.5 minutes).
    #[serde(default)]
    pub max_retries: Option<u32>,
    /// Wait before the first retry, doubled each time up to 5s (default: the stream's, 100ms).
    #[serde(default)]
    pub retry_backoff: Option<airtruct_model::Duration>,
}

fn default_method() -> String {
    "POST".into()
}
fn default_timeout() -> airtruct_model::Duration {
    airtruct_model::Duration(Duration::from_secs(10))
}

impl Kind for HttpClientOutputConfig {
    const NAME: &'static str = "http_client";
    const DESCRIPTION: &'static str = "Sends each message as an HTTP request; 5xx, 429 and timeouts are retried, \
         other 4xx fail the message";
    const EXAMPLE: &'static str = r#"{"url": "http://127.0.0.1:9999/hook", "method": "POST",
        "headers": {"content-type": "application/json"}, "metadata_headers": ["x-tenant"], "timeout": "5s"}"#;

    const CREDENTIALS: &'static [&'static str] = &["headers.*"];

    fn check(&mut self, check: &mut Check<'_>) {
        crate::http::check_request(check, &self.url, &self.method);
    }
}

#[async_trait]
impl OutputKind for HttpClientOutputConfig {
    async fn build(&self, cx: &BuildContext) -> Result<Box<dyn Output>, Error> {
        cx.check_url("http_client", &self.url)?;
        // No redirects: a 303 would turn a POST into a GET whose 200 confirms nothing.
        let client = crate::http::client_builder(cx.policy.clone(), false)
            .timeout(self.timeout.0)
            .build()
            .map_err(|e| Error::Internal(format!("http_client: {e}")))?;
        let method = crate::http::http_method(&self.method)?;
        let d = RetryPolicy::OUTPUT;
        Ok(Box::new(HttpClientOutput {
            client,
            method,
            retry: RetryPolicy {
                first: self.retry_backoff.map_or(d.first, |b| b.0),
                retries: self.max_retries.or(d.retries),
                ..d
            },
            config: self.clone(),
        }))
    }
}

/// The running `http_client` output.
pub struct HttpClientOutput {
    client: reqwest::Client,
    method: reqwest::Method,
    retry: RetryPolicy,
    config: HttpClientOutputConfig,
}

/// How one request ended.
enum Sent {
    Ok,
    /// May pass if tried again.
    Retry(String),
    /// Refused for this message.
    Refused(String),
}

impl HttpClientOutput {
    async fn send(&self, m: &Message) -> Sent {
        let mut req = self
            .client
            .request(self.method.clone(), &self.config.url)
            .body(m.payload.clone());
        for (k, v) in &self.config.headers {
            req = req.header(k, v);
        }
        for k in &self.config.metadata_headers {
            if let Some(v) = meta_get(m, k) {
                req = req.header(k, v);
            }
        }
        match req.send().await {
            Ok(resp) if resp.status().is_success() => Sent::Ok,
            Ok(resp) if resp.status().is_redirection() => Sent::Refused(format!(
                "{} {} answered {} (redirects are not followed: set the final URL)",
                self.method,
                self.config.url,
                resp.status()
            )),
            Ok(resp) => {
                let status = resp.status();
                let body = resp.text().await.unwrap_or_default();
                let body: String = body.chars().take(200).collect();
                let what = format!(
                    "{} {} answered {status}: {body}",
                    self.method, self.config.url
                );
                if status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 408 {
                    Sent::Retry(what)
                } else {
                    Sent::Refused(what)
                }
            }
            // A header value that cannot be sent will not send better next time.
            Err(e) if e.is_builder() => {
                Sent::Refused(format!("{} {}: {e}", self.method, self.config.url))
            }
            Err(e) => Sent::Retry(format!("{} {}: {e}", self.method, self.config.url)),
        }
    }
}

#[async_trait]
impl Output for HttpClientOutput {
    async fn write(&mut self, batch: &[Message]) -> Result<(), Error> {
        let mut refused = Vec::new();
        for (i, m) in batch.iter().enumerate() {
            match self.send(m).await {
                Sent::Ok => {}
                Sent::Refused(e) => refused.push((i, format!("http_client: {e}"))),
                // The stream retries the batch under this output's policy (what was confirmed is sent again:
                // at least once).
                Sent::Retry(e) => return Err(Error::External(format!("http_client: {e}"))),
            }
        }
        if refused.is_empty() {
            Ok(())
        } else {
            Err(Error::Rejected(refused))
        }
    }

    fn retry_policy(&self) -> RetryPolicy {
        self.retry
    }
}
