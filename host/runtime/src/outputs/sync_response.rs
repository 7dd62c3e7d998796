//! `sync_response`: sends each message back to the HTTP caller whose request (through an `http_server` input)
//! it came from: request and reply. Messages that came from no request are confirmed and dropped.

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::{Error, Message, Output, ingest, meta_get};

/// No options: the answer is the processed message (`http_response_status` and `http_response_content_type`
/// metadata set its status and content type).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SyncResponseOutputConfig {}

/// The running `sync_response` output.
pub struct SyncResponseOutput;

#[async_trait]
impl Output for SyncResponseOutput {
    async fn write(&mut self, batch: &[Message]) -> Result<(), Error> {
        for m in batch {
            match meta_get(m, "http_request_id") {
                Some(id) => {
                    if !ingest::respond(id, m.clone()) {
                        tracing::debug!(
                            request = id,
                            "sync_response: the request was already answered"
                        );
                    }
                }
                None => tracing::debug!("sync_response: a message that came from no HTTP request"),
            }
        }
        Ok(())
    }
}
