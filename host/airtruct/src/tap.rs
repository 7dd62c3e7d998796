//! `airtruct tap STREAM`: the live tap of a running stream (`GET /api/v1/streams/{id}/tap`), printed as it comes:
//! one line per sampled message with its step, or the events' JSON, one per line, with `--json`.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::bail;
use futures_util::StreamExt;
use serde_json::Value;

use crate::remote::{Api, Target, block_on};

/// Taps `stream` (a name or an id) until it stops, Ctrl-C, or `count` messages were printed.
pub fn tap(
    t: &Target,
    stream: &str,
    step: Option<usize>,
    count: Option<usize>,
) -> anyhow::Result<ExitCode> {
    let api = Api::new(t)?;
    let json = t.json;
    block_on(async move {
        let (id, name) = api.stream_id(stream).await?;
        let mut url = format!("{}/api/v1/streams/{id}/tap", api.base);
        if let Some(step) = step {
            url.push_str(&format!("?step={step}"));
        }
        let req = api
            .http
            .get(url)
            .bearer_auth(&api.token)
            .timeout(Duration::from_secs(365 * 24 * 3600));
        let resp = req
            .send()
            .await
            .map_err(|e| anyhow::anyhow!("cannot reach {}: {e}", api.base))?;
        if !resp.status().is_success() {
            let status = resp.status().as_u16();
            let body: Value = resp.json().await.unwrap_or(Value::Null);
            bail!(
                "{} ({status})",
                body["error"].as_str().unwrap_or("the tap was refused")
            );
        }
        let mut body = resp.bytes_stream();
        let mut pending: Vec<u8> = Vec::new();
        let mut printed = 0usize;
        while let Some(chunk) = body.next().await {
            pending.extend_from_slice(&chunk?);
            while let Some(end) = pending.windows(2).position(|w| w == b"\n\n") {
                let frame: Vec<u8> = pending.drain(..end + 2).collect();
                let frame = String::from_utf8_lossy(&frame);
                let (mut event, mut data) = ("message", "");
                for line in frame.lines() {
                    if let Some(e) = line.strip_prefix("event: ") {
                        event = e;
                    } else if let Some(d) = line.strip_prefix("data: ") {
                        data = d;
                    }
                }
                let value: Value = serde_json::from_str(data).unwrap_or(Value::Null);
                match event {
                    "open" => eprintln!(
                        "tapping \"{name}\" ({} running), a sample of up to {} messages a second per step; Ctrl-C to stop",
                        plural(value["replicas"].as_u64().unwrap_or(0), "replica"),
                        airtruct_runtime::tap::PER_STEP_PER_SECOND
                    ),
                    "message" if json => println!("{data}"),
                    "message" => println!("{}", line_of(&value)),
                    "missed" => eprintln!(
                        "({} missed: they came faster than they were read)",
                        value["missed"]
                    ),
                    "error" => eprintln!("{}", value["error"].as_str().unwrap_or(data)),
                    _ => continue,
                }
                if event == "message" {
                    printed += 1;
                    if count.is_some_and(|c| printed >= c) {
                        return Ok(());
                    }
                }
            }
        }
        eprintln!("the stream stopped");
        Ok(())
    })
}

fn plural(n: u64, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

/// `[1 pipeline.processors[0] (mapping)] {"id":1} {key=value} FAILED: why`
fn line_of(e: &Value) -> String {
    let mut line = format!(
        "[{} {}] {}",
        e["step"],
        e["label"].as_str().unwrap_or(""),
        e["payload"].as_str().unwrap_or("")
    );
    let bytes = e["bytes"].as_u64().unwrap_or(0);
    let shown = e["payload"].as_str().map_or(0, str::len) as u64;
    if bytes > shown {
        line.push_str(&format!(" ... ({bytes} bytes)"));
    }
    if let Some(meta) = e["metadata"].as_object().filter(|m| !m.is_empty()) {
        let pairs: Vec<String> = meta
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
            .collect();
        line.push_str(&format!(" {{{}}}", pairs.join(", ")));
    }
    if let Some(error) = e["error"].as_str() {
        line.push_str(&format!(" FAILED: {error}"));
    }
    line
}
