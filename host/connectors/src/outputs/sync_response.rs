//! `sync_response`: sends each message back to the HTTP caller whose request (through an `http_server` input)
//! it came from: request and reply. Messages that came from no request are confirmed and dropped.

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;

use airtruct_runtime::ingest::IngestHub;
use airtruct_runtime::kind::{Kind, OutputKind};
use airtruct_runtime::{BuildContext, Error, Message, Output, meta_get};

/// No options: the answer is the processed message (`http_response_status` and `http_response_content_type`
/// metadata set its status and content type).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SyncResponseOutputConfig {}

impl Kind for SyncResponseOutputConfig {
    const NAME: &'static str = "sync_response";
    const DESCRIPTION: &'static str =
        "Answers the HTTP caller of an http_server input with the processed message";
    const EXAMPLE: &'static str = "{}";
}

#[async_trait]
impl OutputKind for SyncResponseOutputConfig {
    async fn build(&self, cx: &BuildContext) -> Result<Box<dyn Output>, Error> {
        Ok(Box::new(SyncResponseOutput {
            hub: cx.ingest.clone(),
        }))
    }

    fn answers_callers(&self) -> bool {
        true
    }
}

/// The running `sync_response` output.
pub struct SyncResponseOutput {
    hub: IngestHub,
}

#[async_trait]
impl Output for SyncResponseOutput {
    async fn write(&mut self, batch: &[Message]) -> Result<(), Error> {
        for m in batch {
            match meta_get(m, "http_request_id") {
                Some(id) => {
                    if !self.hub.respond(id, m.clone()) {
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
