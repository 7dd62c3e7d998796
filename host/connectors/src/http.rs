//! What the HTTP connectors share.

use airtruct_runtime::Error;

/// An HTTP method by name, any case.
pub fn http_method(name: &str) -> Result<reqwest::Method, Error> {
    reqwest::Method::from_bytes(name.to_ascii_uppercase().as_bytes())
        .map_err(|_| Error::User(format!("http_client: \"{name}\" is not an HTTP method")))
}

/// Reports a URL that is not http(s) or that the operator's egress policy denies, and a method that is not one, at
/// their fields.
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
    check.url("url", url);
}

/// An HTTP client under the operator's policy: every address a name resolves to is checked (so a name that
/// resolves to a denied address later is refused at connect), and every redirect is checked before it is
/// followed. Without a policy, a plain client.
pub fn client_builder(
    policy: Option<std::sync::Arc<airtruct_runtime::policy::Policy>>,
    follow_redirects: bool,
) -> reqwest::ClientBuilder {
    let builder = reqwest::Client::builder();
    let Some(policy) = policy else {
        return builder.redirect(if follow_redirects {
            reqwest::redirect::Policy::limited(10)
        } else {
            reqwest::redirect::Policy::none()
        });
    };
    let redirects = if follow_redirects {
        let policy = policy.clone();
        reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= 10 {
                return attempt.error("more than 10 redirects");
            }
            let url = attempt.url().clone();
            let host = url.host_str().unwrap_or("").to_string();
            let port = url.port_or_known_default().unwrap_or(0);
            match policy.check_destination(&host, port) {
                Ok(()) => attempt.follow(),
                Err(e) => attempt.error(format!("redirected to {url}: {e}")),
            }
        })
    } else {
        reqwest::redirect::Policy::none()
    };
    builder
        .redirect(redirects)
        .dns_resolver(std::sync::Arc::new(PolicyResolver(policy)))
}

/// Resolves names and drops the addresses the policy denies; none left is an error that says why.
struct PolicyResolver(std::sync::Arc<airtruct_runtime::policy::Policy>);

impl reqwest::dns::Resolve for PolicyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.0.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let found: Vec<std::net::SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut refused = None;
            let allowed: Vec<std::net::SocketAddr> = found
                .into_iter()
                .filter(|a| match policy.check_address(*a) {
                    Ok(()) => true,
                    Err(e) => {
                        refused = Some(e);
                        false
                    }
                })
                .collect();
            if allowed.is_empty() {
                let why = refused.unwrap_or_else(|| "no address".into());
                return Err(format!("{host} resolves to {why}").into());
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}
