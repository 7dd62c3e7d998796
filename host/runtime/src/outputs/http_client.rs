//! `http_client` output: sends each message as an HTTP request. A 2xx confirms it; 5xx, 429, timeouts and
//! connection errors are retried with backoff (then the stream's own retries take over); any other 4xx is the
//! message's failure, handled by the stream's `on_error` policy.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::{Error, Message, Output, meta_get};

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
    /// Retries of a request that failed in a way that may pass (default 3).
    #[serde(default = "default_retries")]
    pub max_retries: u32,
    /// Wait before the first retry, doubled each time (default 500ms).
    #[serde(default = "default_backoff")]
    pub retry_backoff: airtruct_model::Duration,
}

fn default_method() -> String {
    "POST".into()
}
fn default_timeout() -> airtruct_model::Duration {
    airtruct_model::Duration(Duration::from_secs(10))
}
fn default_retries() -> u32 {
    3
}
fn default_backoff() -> airtruct_model::Duration {
    airtruct_model::Duration(Duration::from_millis(500))
}

/// An HTTP method by name, any case (shared with the `http_client` input).
pub(crate) fn http_method(name: &str) -> Result<reqwest::Method, Error> {
    reqwest::Method::from_bytes(name.to_ascii_uppercase().as_bytes())
        .map_err(|_| Error::User(format!("http_client: \"{name}\" is not an HTTP method")))
}

impl HttpClientOutputConfig {
    /// Checks the options that serde cannot.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        match reqwest::Url::parse(&self.url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => {}
            Ok(u) => out.push((
                "url",
                format!("scheme \"{}\" is not http or https", u.scheme()),
            )),
            Err(e) => out.push(("url", format!("not a URL: {e}"))),
        }
        if http_method(&self.method).is_err() {
            out.push((
                "method",
                format!("\"{}\" is not an HTTP method", self.method),
            ));
        }
        out
    }

    pub fn build(&self) -> Result<HttpClientOutput, Error> {
        // No redirects: a 303 would turn a POST into a GET whose 200 confirms nothing.
        let client = reqwest::Client::builder()
            .timeout(self.timeout.0)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::Internal(format!("http_client: {e}")))?;
        let method = http_method(&self.method)?;
        Ok(HttpClientOutput {
            client,
            method,
            config: self.clone(),
        })
    }
}

/// The running `http_client` output.
pub struct HttpClientOutput {
    client: reqwest::Client,
    method: reqwest::Method,
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
            let mut backoff = self.config.retry_backoff.0;
            let mut attempt = 0;
            loop {
                match self.send(m).await {
                    Sent::Ok => break,
                    Sent::Refused(e) => {
                        refused.push((i, format!("http_client: {e}")));
                        break;
                    }
                    Sent::Retry(e) if attempt >= self.config.max_retries => {
                        // The stream retries the batch (what was confirmed is sent again: at least once).
                        return Err(Error::External(format!("http_client: {e}")));
                    }
                    Sent::Retry(e) => {
                        attempt += 1;
                        tracing::warn!(error = %e, retry_in = ?backoff, "http_client: retrying");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(30));
                    }
                }
            }
        }
        if refused.is_empty() {
            Ok(())
        } else {
            Err(Error::Rejected(refused))
        }
    }
}
