//! The host's capabilities, wrapped: each call names the resource the stream granted (`name`) and returns what
//! the host answered or a [`HostError`]. Built natively (unit tests), every call fails with
//! [`HostError::Failed`]: the capabilities exist only inside Airtruct.

/// A kind of host resource a processor may ask for in [`crate::Processor::capabilities`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capability {
    /// HTTP requests ([`http`]).
    Http,
    /// SQL statements ([`sql`]).
    Sql,
    /// A cache ([`cache`]).
    Cache,
    /// A rate limit ([`rate_limit`]).
    RateLimit,
}

/// Why a host call did not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostError {
    /// The stream grants this processor no such resource.
    NotGranted(String),
    /// Refused by the operator's policy, the grant's limits, or a test run without side effects.
    Denied(String),
    /// Over its time limit.
    Timeout,
    /// The answer was over the resource's size limit (bytes).
    TooLarge(u64),
    /// The service failed or could not be reached.
    Failed(String),
}

impl std::fmt::Display for HostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HostError::NotGranted(what) => write!(f, "not granted: {what}"),
            HostError::Denied(why) => write!(f, "denied: {why}"),
            HostError::Timeout => write!(f, "timed out"),
            HostError::TooLarge(n) => write!(f, "the answer is over the limit of {n} bytes"),
            HostError::Failed(why) => write!(f, "failed: {why}"),
        }
    }
}

impl std::error::Error for HostError {}

#[cfg(target_arch = "wasm32")]
use crate::bindings::airtruct::processor::capabilities::HostError as WitError;

#[cfg(target_arch = "wasm32")]
fn from_wit(e: WitError) -> HostError {
    match e {
        WitError::NotGranted(s) => HostError::NotGranted(s),
        WitError::Denied(s) => HostError::Denied(s),
        WitError::Timeout => HostError::Timeout,
        WitError::TooLarge(n) => HostError::TooLarge(n),
        WitError::Failed(s) => HostError::Failed(s),
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn no_host() -> HostError {
    HostError::Failed("no host: capabilities run inside Airtruct".into())
}

/// Outbound HTTP through an `http` resource.
pub mod http {
    use super::*;

    /// A request.
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct Request {
        pub method: String,
        pub url: String,
        pub headers: Vec<(String, String)>,
        pub body: Vec<u8>,
    }

    impl Request {
        /// A `GET` of `url`.
        pub fn get(url: impl Into<String>) -> Self {
            Self {
                method: "GET".into(),
                url: url.into(),
                ..Self::default()
            }
        }
    }

    /// A response, whatever its status.
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct Response {
        pub status: u16,
        pub headers: Vec<(String, String)>,
        pub body: Vec<u8>,
    }

    #[cfg(target_arch = "wasm32")]
    use crate::bindings::airtruct::processor::http as wit;

    #[cfg(target_arch = "wasm32")]
    fn to_wit(r: Request) -> wit::Request {
        wit::Request {
            method: r.method,
            url: r.url,
            headers: r.headers,
            body: r.body,
        }
    }

    #[cfg(target_arch = "wasm32")]
    fn from_wit_response(r: wit::Response) -> Response {
        Response {
            status: r.status,
            headers: r.headers,
            body: r.body,
        }
    }

    /// Sends one request through the resource `name`.
    pub fn send(name: &str, request: Request) -> Result<Response, HostError> {
        #[cfg(target_arch = "wasm32")]
        {
            wit::send(name, &to_wit(request))
                .map(from_wit_response)
                .map_err(from_wit)
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            let _ = (name, request);
            Err(no_host())
        }
    }

    /// Sends several requests at once; the answers come in the requests' order.
    pub fn send_all(name: &str, requests: Vec<Request>) -> Vec<Result<Response, HostError>> {
        #[cfg(target_arch = "wasm32")]
        {
            let requests: Vec<wit::Request> = requests.into_iter().map(to_wit).collect();
            wit::send_all(name, &requests)
                .into_iter()
                .map(|r| r.map(from_wit_response).map_err(from_wit))
                .collect()
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            let _ = name;
            requests.iter().map(|_| Err(no_host())).collect()
        }
    }
}

/// SQL statements on a `sql` resource.
pub mod sql {
    use super::*;

    /// A parameter or a column's value.
    #[derive(Debug, Clone, PartialEq)]
    pub enum Value {
        Null,
        Boolean(bool),
        Integer(i64),
        Float(f64),
        Text(String),
        Bytes(Vec<u8>),
    }

    impl Value {
        /// As JSON (bytes as text, lossily).
        pub fn to_json(&self) -> serde_json::Value {
            match self {
                Value::Null => serde_json::Value::Null,
                Value::Boolean(b) => (*b).into(),
                Value::Integer(i) => (*i).into(),
                Value::Float(f) => serde_json::Number::from_f64(*f)
                    .map_or(serde_json::Value::Null, serde_json::Value::Number),
                Value::Text(s) => s.clone().into(),
                Value::Bytes(b) => String::from_utf8_lossy(b).into_owned().into(),
            }
        }

        /// From JSON: arrays and objects as their JSON text.
        pub fn from_json(v: &serde_json::Value) -> Self {
            match v {
                serde_json::Value::Null => Value::Null,
                serde_json::Value::Bool(b) => Value::Boolean(*b),
                serde_json::Value::Number(n) => match n.as_i64() {
                    Some(i) => Value::Integer(i),
                    None => Value::Float(n.as_f64().unwrap_or(0.0)),
                },
                serde_json::Value::String(s) => Value::Text(s.clone()),
                other => Value::Text(other.to_string()),
            }
        }
    }

    /// What a statement returned.
    #[derive(Debug, Clone, Default, PartialEq)]
    pub struct Rows {
        pub columns: Vec<String>,
        pub rows: Vec<Vec<Value>>,
    }

    impl Rows {
        /// Each row as a JSON object of its columns.
        pub fn to_json(&self) -> Vec<serde_json::Value> {
            self.rows
                .iter()
                .map(|row| {
                    serde_json::Value::Object(
                        self.columns
                            .iter()
                            .cloned()
                            .zip(row.iter().map(Value::to_json))
                            .collect(),
                    )
                })
                .collect()
        }
    }

    #[cfg(target_arch = "wasm32")]
    use crate::bindings::airtruct::processor::sql as wit;

    /// Runs one statement with its parameters on the resource `name`.
    pub fn query(name: &str, statement: &str, params: &[Value]) -> Result<Rows, HostError> {
        #[cfg(target_arch = "wasm32")]
        {
            let params: Vec<wit::Value> = params
                .iter()
                .map(|p| match p {
                    Value::Null => wit::Value::Null,
                    Value::Boolean(b) => wit::Value::Boolean(*b),
                    Value::Integer(i) => wit::Value::Integer(*i),
                    Value::Float(f) => wit::Value::Float(*f),
                    Value::Text(s) => wit::Value::Text(s.clone()),
                    Value::Bytes(b) => wit::Value::Bytes(b.clone()),
                })
                .collect();
            let rows = wit::query(name, statement, &params).map_err(from_wit)?;
            Ok(Rows {
                columns: rows.columns,
                rows: rows
                    .rows
                    .into_iter()
                    .map(|row| {
                        row.into_iter()
                            .map(|v| match v {
                                wit::Value::Null => Value::Null,
                                wit::Value::Boolean(b) => Value::Boolean(b),
                                wit::Value::Integer(i) => Value::Integer(i),
                                wit::Value::Float(f) => Value::Float(f),
                                wit::Value::Text(s) => Value::Text(s),
                                wit::Value::Bytes(b) => Value::Bytes(b),
                            })
                            .collect()
                    })
                    .collect(),
            })
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            let _ = (name, statement, params);
            Err(no_host())
        }
    }
}

/// A cache resource.
pub mod cache {
    use super::*;
    use std::time::Duration;

    #[cfg(target_arch = "wasm32")]
    use crate::bindings::airtruct::processor::cache as wit;

    fn ms(ttl: Option<Duration>) -> Option<u64> {
        ttl.map(|d| d.as_millis() as u64)
    }

    /// The value of `key`, if it is there.
    pub fn get(name: &str, key: &str) -> Result<Option<Vec<u8>>, HostError> {
        #[cfg(target_arch = "wasm32")]
        {
            wit::get(name, key).map_err(from_wit)
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            let _ = (name, key);
            Err(no_host())
        }
    }

    /// Sets `key` (for `ttl`, or the resource's default time to live).
    pub fn set(
        name: &str,
        key: &str,
        value: &[u8],
        ttl: Option<Duration>,
    ) -> Result<(), HostError> {
        #[cfg(target_arch = "wasm32")]
        {
            wit::set(name, key, value, ms(ttl)).map_err(from_wit)
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            let _ = (name, key, value, ms(ttl));
            Err(no_host())
        }
    }

    /// Sets `key` only when it is not there: true when it was set.
    pub fn add(
        name: &str,
        key: &str,
        value: &[u8],
        ttl: Option<Duration>,
    ) -> Result<bool, HostError> {
        #[cfg(target_arch = "wasm32")]
        {
            wit::add(name, key, value, ms(ttl)).map_err(from_wit)
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            let _ = (name, key, value, ms(ttl));
            Err(no_host())
        }
    }

    /// Removes `key`.
    pub fn delete(name: &str, key: &str) -> Result<(), HostError> {
        #[cfg(target_arch = "wasm32")]
        {
            wit::delete(name, key).map_err(from_wit)
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            let _ = (name, key);
            Err(no_host())
        }
    }
}

/// A rate limit resource.
pub mod rate_limit {
    use super::*;

    /// Takes `count` from the limit `name`, waiting for them within the processor's time limit.
    pub fn take(name: &str, count: u32) -> Result<(), HostError> {
        #[cfg(target_arch = "wasm32")]
        {
            crate::bindings::airtruct::processor::rate_limit::take(name, count).map_err(from_wit)
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            let _ = (name, count);
            Err(no_host())
        }
    }
}
