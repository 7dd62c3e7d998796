//! Uploads sent as `multipart/form-data` (`curl -F file=@x.wasm`), beside the raw body (`--data-binary @x.wasm`):
//! the one file part is the upload, and text parts are fields (`name`, `description`).

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::http::{HeaderMap, header};

use super::ApiError;

/// An upload: its bytes, and the text fields a form sent with them.
pub struct Upload {
    pub bytes: Bytes,
    pub fields: BTreeMap<String, String>,
}

/// The upload in `body`: the body itself, or with `multipart/form-data` its one file part (named `file`) and
/// its text fields, each one of `fields` (anything else is refused, as unknown JSON fields are).
pub async fn upload(
    headers: &HeaderMap,
    body: Bytes,
    allowed: &[&str],
) -> Result<Upload, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !content_type
        .to_ascii_lowercase()
        .starts_with("multipart/form-data")
    {
        return Ok(Upload {
            bytes: body,
            fields: BTreeMap::new(),
        });
    }
    let bad = |e: multer::Error| ApiError::bad_request(format!("reading the form: {e}"));
    let boundary = multer::parse_boundary(content_type).map_err(bad)?;
    let stream = futures_util::stream::once(async move { Ok::<_, std::io::Error>(body) });
    let mut form = multer::Multipart::new(stream, boundary);
    let mut file: Option<Bytes> = None;
    let mut fields = BTreeMap::new();
    while let Some(field) = form.next_field().await.map_err(bad)? {
        let name = field.name().unwrap_or("").to_string();
        if name != "file" && !allowed.contains(&name.as_str()) {
            let mut takes = vec!["file"];
            takes.extend(allowed);
            return Err(ApiError::bad_request(format!(
                "the form has a part {name:?}, which this upload does not take (it takes {})",
                takes.join(", ")
            )));
        }
        if name == "file" {
            if file.is_some() {
                return Err(ApiError::bad_request(
                    "the form has more than one file: send one (curl -F file=@FILE)",
                ));
            }
            file = Some(field.bytes().await.map_err(bad)?);
        } else {
            let text = field.text().await.map_err(bad)?;
            fields.insert(name, text);
        }
    }
    match file {
        Some(bytes) => Ok(Upload { bytes, fields }),
        None => Err(ApiError::bad_request(
            "the form has no file: send it as a file part (curl -F file=@FILE)",
        )),
    }
}
