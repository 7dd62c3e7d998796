//! What the HTTP connectors share.

use airtruct_runtime::Error;

/// An HTTP method by name, any case.
pub fn http_method(name: &str) -> Result<reqwest::Method, Error> {
    reqwest::Method::from_bytes(name.to_ascii_uppercase().as_bytes())
        .map_err(|_| Error::User(format!("http_client: \"{name}\" is not an HTTP method")))
}

/// Reports a URL that is not http(s) and a method that is not one, at their fields.
pub fn check_request(check: &mut airtruct_runtime::kind::Check<'_>, url: &str, method: &str) {
    match reqwest::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => {}
        Ok(u) => check.problem(
            "url",
            format!("scheme \"{}\" is not http or https", u.scheme()),
        ),
        Err(e) => check.problem("url", format!("not a URL: {e}")),
    }
    if http_method(method).is_err() {
        check.problem("method", format!("\"{method}\" is not an HTTP method"));
    }
}
