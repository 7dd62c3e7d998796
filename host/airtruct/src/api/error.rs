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
        // Every body the API takes is a JSON object; serde would also read a struct from an array (`["x"]`).
        if let Some(first) = bytes.iter().find(|b| !b.is_ascii_whitespace())
            && *first != b'{'
        {
            return Err(ApiError::bad_request(
                "the body must be a JSON object ({...})",
            ));
        }
        let de = &mut serde_json::Deserializer::from_slice(&bytes);
        let error = match serde_path_to_error::deserialize(de) {
            Ok(body) => return Ok(Body(body)),
            Err(e) => e,
        };
        // JSON (and JSON Schema) has one number type: `3.0` is the integer 3. Read so before refusing.
        if let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(&bytes)
            && whole_floats_to_integers(&mut value)
        {
            return serde_path_to_error::deserialize(value)
                .map(Body)
                .map_err(invalid_body);
        }
        Err(invalid_body(error))
    }
}

fn invalid_body<E: std::fmt::Display>(e: serde_path_to_error::Error<E>) -> ApiError {
    let path = e.path().to_string();
    let path = if path == "." { String::new() } else { path };
    ApiError::invalid(
        "the request body is not valid",
        vec![ValidationError::new(path, e.into_inner().to_string())],
    )
}

/// Turns every float without a fraction that fits an integer into that integer; whether any was.
fn whole_floats_to_integers(value: &mut serde_json::Value) -> bool {
    use serde_json::Value;
    match value {
        Value::Number(n) if n.is_f64() => {
            let f = n.as_f64().unwrap_or(f64::NAN);
            if f.fract() != 0.0 || !f.is_finite() {
                return false;
            }
            if f >= 0.0 && f < u64::MAX as f64 {
                *value = Value::from(f as u64);
                true
            } else if f < 0.0 && f >= i64::MIN as f64 {
                *value = Value::from(f as i64);
                true
            } else {
                false
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .map(whole_floats_to_integers)
            .fold(false, std::ops::BitOr::bitor),
        Value::Object(map) => map
            .values_mut()
            .map(whole_floats_to_integers)
            .fold(false, std::ops::BitOr::bitor),
        _ => false,
    }
}

/// Checks a name given in a path or query: 1 to `max` characters, each `allowed`; `rule` says which.
/// What a name in a path or a body may be: checked by the server and documented in the OpenAPI document from the
/// same rule.
pub struct NameRule {
    pub what: &'static str,
    pub max: usize,
    /// Whether a name may hold this character.
    pub allowed: fn(char) -> bool,
    /// Whether a name may start with this character (of the allowed ones).
    pub first: fn(char) -> bool,
    /// The allowed characters, in words.
    pub rule: &'static str,
    /// The same as a regular expression (ECMA-262, as JSON Schema has it).
    pub pattern: &'static str,
}

fn any(_: char) -> bool {
    true
}

/// Uploaded files: no leading `.`, so no hidden files.
pub const FILE_NAME: NameRule = NameRule {
    what: "file",
    max: 128,
    allowed: |c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'),
    first: |c| c != '.',
    rule: "letters, digits, '.', '_' and '-', not starting with '.'",
    pattern: "^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$",
};

pub const SECRET_NAME: NameRule = NameRule {
    what: "secret",
    max: 128,
    allowed: |c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'),
    // Not `.` or `..`, which a client's URL would resolve away.
    first: |c| c != '.',
    rule: "letters, digits, '_', '-' or '.', not starting with '.'",
    pattern: "^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}$",
};

pub const USER_NAME: NameRule = NameRule {
    what: "user",
    max: 64,
    allowed: |c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'),
    first: any,
    rule: "letters, digits, '.', '_', '-' or '@'",
    pattern: "^[A-Za-z0-9._@-]{1,64}$",
};

pub const PROCESSOR_NAME: NameRule = NameRule {
    what: "processor",
    max: 64,
    allowed: |c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '-' | '_'),
    first: any,
    rule: "of a-z, 0-9, '-' and '_'",
    pattern: "^[a-z0-9_-]{1,64}$",
};

impl NameRule {
    pub fn check(&self, name: &str) -> Result<(), ApiError> {
        if !name.is_empty()
            && name.len() <= self.max
            && name.chars().all(self.allowed)
            && name.chars().next().is_some_and(self.first)
        {
            return Ok(());
        }
        Err(ApiError::invalid(
            format!("the {} name is not valid", self.what),
            vec![ValidationError::new(
                "name",
                format!("use 1 to {} {}", self.max, self.rule),
            )],
        ))
    }

    /// Its JSON Schema.
    pub fn schema(&self) -> serde_json::Value {
        serde_json::json!({"type": "string", "minLength": 1, "maxLength": self.max, "pattern": self.pattern})
    }
}
