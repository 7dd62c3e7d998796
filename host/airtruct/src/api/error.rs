//! The one error shape of the API: `{"error": ..., "details": [{"path": ..., "message": ...}]}`.

use airtruct_model::ValidationError;
use airtruct_store::StoreError;
use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use schemars::JsonSchema;
use serde::Serialize;

/// The body of every error answer.
#[derive(Debug, Serialize, serde::Deserialize, JsonSchema)]
pub struct ErrorBody {
    /// What went wrong, in one sentence.
    pub error: String,
    /// Each problem with where it is (validation errors); empty otherwise.
    pub details: Vec<ValidationError>,
}

/// An error answer with its status code.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: ErrorBody,
}

impl ApiError {
    pub fn new(status: StatusCode, error: impl Into<String>) -> Self {
        Self {
            status,
            body: ErrorBody {
                error: error.into(),
                details: Vec::new(),
            },
        }
    }

    pub fn bad_request(error: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, error)
    }

    /// A 400 listing every validation problem.
    pub fn invalid(error: impl Into<String>, details: Vec<ValidationError>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            body: ErrorBody {
                error: error.into(),
                details,
            },
        }
    }

    pub fn unauthorized(error: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, error)
    }

    pub fn not_found(error: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, error)
    }

    /// A 500: the detail goes to the log, the caller gets a generic message.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error (the server log has the details)",
        )
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => Self::not_found(format!("{what} not found")),
            StoreError::Conflict(msg) => Self::new(StatusCode::CONFLICT, msg),
            other => Self::internal(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut resp = (self.status, Json(self.body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        resp
    }
}

/// JSON bodies whose parse errors answer in the error envelope, with the path of the bad field.
pub struct Body<T>(pub T);

impl<S, T> axum::extract::FromRequest<S> for Body<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        // A body sent as something else (a form, text) is not read as JSON: say what is expected.
        if let Some(ct) = req.headers().get(axum::http::header::CONTENT_TYPE) {
            let ct = ct.to_str().unwrap_or("").to_ascii_lowercase();
            let essence = ct.split(';').next().unwrap_or("").trim();
            if essence != "application/json" && !essence.ends_with("+json") {
                return Err(ApiError::new(
                    axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    format!(
                        "the body must be JSON (Content-Type: application/json), not \"{essence}\""
                    ),
                ));
            }
        }
        let limit = req.extensions().get::<super::BodyLimit>().copied();
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| {
                let status = e.status();
                let message = match limit {
                    Some(super::BodyLimit(n))
                        if status == axum::http::StatusCode::PAYLOAD_TOO_LARGE =>
                    {
                        format!("the body is larger than this route takes ({n} bytes)")
                    }
                    _ => format!("reading the request body: {}", e.body_text()),
                };
                ApiError::new(status, message)
            })?;
        let de = &mut serde_json::Deserializer::from_slice(&bytes);
        serde_path_to_error::deserialize(de).map(Body).map_err(|e| {
            let path = e.path().to_string();
            let path = if path == "." { String::new() } else { path };
            ApiError::invalid(
                "the request body is not valid",
                vec![ValidationError::new(path, e.into_inner().to_string())],
            )
        })
    }
}

/// Checks a name given in a path or query: 1 to `max` characters, each `allowed`; `rule` says which.
pub fn check_name(
    what: &str,
    name: &str,
    max: usize,
    allowed: impl Fn(char) -> bool,
    rule: &str,
) -> Result<(), ApiError> {
    if !name.is_empty() && name.len() <= max && name.chars().all(allowed) {
        return Ok(());
    }
    Err(ApiError::invalid(
        format!("the {what} name is not valid"),
        vec![ValidationError::new(
            "name",
            format!("use 1 to {max} {rule}"),
        )],
    ))
}
