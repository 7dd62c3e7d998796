//! The operator's policy: what a stream saved through the API may touch. Path options must resolve (symlinks and
//! `..` followed) under one of the roots and outside the server's own files; outbound connections must go to an
//! address the egress rules allow (checked on resolved addresses); a stream opens no listener of its own unless
//! granted; client pass-through options are allowlisted. Validation checks it at each field; the worker checks
//! it again before anything is opened. A stream run by `airtruct run` has no policy: it runs as its user.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::{Component as PathPart, Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The policy, as the operator writes it (the `policy:` section of the server's config file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct Policy {
    /// Folders under which every path option (files, checkpoints, buffers, spill folders, SQLite databases) may
    /// point. Default: the `files` folder of the data directory.
    #[serde(default)]
    pub paths: Vec<PathBuf>,
    /// Folders no path may reach even under a root (the server adds its data directory, store and component
    /// cache; a root inside one of them, like `DATA/files`, stays open).
    #[serde(default)]
    pub refused_paths: Vec<PathBuf>,
    /// Outbound connections (HTTP, SQL, Kafka, CDC).
    #[serde(default)]
    pub egress: Egress,
    /// Whether a stream may open a listening socket of its own (`http_server` with `address`). Default false:
    /// ingest goes through the coordinator's `/ingest/...`.
    #[serde(default)]
    pub listeners: bool,
    /// librdkafka properties a stream may pass in `options`, exact names or prefixes ending in `*`; added to the
    /// built-in list of safe ones. A property that loads code, runs a command or reads a file is refused whatever
    /// this says (file paths go through `paths`).
    #[serde(default)]
    pub kafka_options: Vec<String>,
    /// The capabilities a stream may grant its processors, as the resources it declares (`http`, `sql`, `cache`,
    /// `rate_limit`). Default (absent): all of them; `[]`: none, so processors only transform messages.
    #[serde(default)]
    pub capabilities: Option<Vec<String>>,
}

/// Egress rules. Each rule is a host name (`api.example.com`, `*.example.com`), an IP address or a CIDR
/// (`10.0.0.0/8`), optionally with a port (`db.internal:5432`, `[::1]:8080`, `*:25` for a port on any host).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub struct Egress {
    /// When not empty, only these destinations may be reached.
    #[serde(default)]
    pub allow: Vec<String>,
    /// Never reached, whatever `allow` says; added to the built-in denials (link-local and cloud metadata
    /// addresses, and the server's own listeners).
    #[serde(default)]
    pub deny: Vec<String>,
    /// The server's own listeners, filled in at start: a stream may not call the server's own API.
    #[serde(default)]
    pub own_listeners: Vec<SocketAddr>,
}

/// Always denied: link-local addresses (cloud metadata services live there) and the metadata names.
const BUILT_IN_DENY: &[&str] = &[
    "169.254.0.0/16",
    "fe80::/10",
    "fd00:ec2::254",
    "100.100.100.200",
    "metadata.google.internal",
    "metadata",
];

/// librdkafka properties that are safe to pass through: tuning, timeouts, naming.
const KAFKA_SAFE: &[&str] = &[
    "client.id",
    "client.rack",
    "group.instance.id",
    "fetch.*",
    "queue.*",
    "queued.*",
    "batch.*",
    "linger.ms",
    "message.*",
    "max.*",
    "session.timeout.ms",
    "heartbeat.interval.ms",
    "socket.*",
    "reconnect.*",
    "retry.*",
    "retries",
    "request.timeout.ms",
    "delivery.timeout.ms",
    "message.timeout.ms",
    "compression.*",
    "auto.offset.reset",
    "auto.commit.interval.ms",
    "partition.assignment.strategy",
    "isolation.level",
    "statistics.interval.ms",
    "topic.metadata.*",
    "metadata.max.age.ms",
    "api.version.*",
    "broker.version.fallback",
    "allow.auto.create.topics",
    "check.crcs",
    "connections.max.idle.ms",
    "enable.ssl.certificate.verification",
    "ssl.endpoint.identification.algorithm",
    "ssl.cipher.suites",
    "ssl.curves.list",
    "ssl.sigalgs.list",
    "ssl.key.password",
    "ssl.keystore.password",
    "sticky.partitioning.linger.ms",
];

/// librdkafka properties that name a file: allowed, with the file under the path roots.
const KAFKA_FILES: &[&str] = &[
    "ssl.ca.location",
    "ssl.certificate.location",
    "ssl.key.location",
    "ssl.crl.location",
    "ssl.keystore.location",
];

/// librdkafka properties that load code or run a command: never.
const KAFKA_CODE: &[&str] = &[
    "plugin.library.paths",
    "ssl.engine.location",
    "ssl.engine.id",
    "ssl.providers",
    "sasl.kerberos.kinit.cmd",
    "sasl.kerberos.keytab",
    "sasl.oauthbearer.method",
    "sasl.oauthbearer.token.endpoint.url",
    "ssl.ca.certificate.stores",
];

impl Policy {
    /// The default policy of a server with this data directory: one root, `DATA/files`.
    pub fn for_data_dir(data_dir: &Path) -> Self {
        Self {
            paths: vec![data_dir.join("files")],
            refused_paths: Vec::new(),
            egress: Egress::default(),
            listeners: false,
            kafka_options: Vec::new(),
            capabilities: None,
        }
    }

    /// Why a stream may not declare resources of this capability (`http`, `rate_limit`), if it may not.
    pub fn check_capability(&self, capability: &str) -> Result<(), String> {
        match &self.capabilities {
            Some(allowed) if !allowed.iter().any(|c| c == capability) => Err(format!(
                "the operator's policy does not let streams grant processors the {capability} capability \
                 (policy.capabilities: {})",
                if allowed.is_empty() {
                    "none".to_string()
                } else {
                    allowed.join(", ")
                }
            )),
            _ => Ok(()),
        }
    }

    /// Why `path` may not be used, if it may not. Relative paths are taken from the server's working folder.
    pub fn check_path(&self, path: &Path) -> Result<(), String> {
        let resolved = resolve(path)?;
        let roots: Vec<PathBuf> = self.paths.iter().filter_map(|r| resolve(r).ok()).collect();
        let Some(root) = roots.iter().find(|r| resolved.starts_with(r)) else {
            return Err(format!(
                "\"{}\" is outside the folders streams may use ({}): the operator's policy (`paths`)",
                path.display(),
                if roots.is_empty() {
                    "none".to_string()
                } else {
                    roots
                        .iter()
                        .map(|r| r.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            ));
        };
        for refused in self.refused_paths.iter().filter_map(|r| resolve(r).ok()) {
            // A root inside a refused folder (the data directory's `files`) is a deliberate opening in it.
            if resolved.starts_with(&refused) && (!root.starts_with(&refused) || refused == *root) {
                return Err(format!(
                    "\"{}\" is in the server's own files: the operator's policy (`refused_paths`)",
                    path.display()
                ));
            }
        }
        Ok(())
    }

    /// Why a connection to `host:port` may not be made, if it may not: the host's name and every address it
    /// resolves to must be allowed.
    pub fn check_destination(&self, host: &str, port: u16) -> Result<(), String> {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let name_rules = |rules: &[String]| {
            rules
                .iter()
                .any(|r| Rule::parse(r).matches_name(host, port))
        };
        let denied_name = BUILT_IN_DENY
            .iter()
            .any(|r| Rule::parse(r).matches_name(host, port))
            || name_rules(&self.egress.deny);
        if denied_name {
            return Err(format!(
                "{host}:{port} is denied by the operator's egress policy"
            ));
        }
        let addrs: Vec<IpAddr> = match host.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            // A name that does not resolve now is checked again when the connection is made.
            Err(_) => (host, port)
                .to_socket_addrs()
                .map(|a| a.map(|s| s.ip()).collect())
                .unwrap_or_default(),
        };
        for ip in &addrs {
            self.check_address(SocketAddr::new(*ip, port))
                .map_err(|e| format!("{host}:{port} resolves to {e}"))?;
        }
        if !self.egress.allow.is_empty()
            && !name_rules(&self.egress.allow)
            && !addrs.iter().any(|ip| {
                self.egress
                    .allow
                    .iter()
                    .any(|r| Rule::parse(r).matches_ip(*ip, port))
            })
        {
            return Err(format!(
                "{host}:{port} is not in the operator's egress allow list"
            ));
        }
        Ok(())
    }

    /// Why a URL's host and port may not be reached, if they may not.
    pub fn check_url(&self, url: &str) -> Result<(), String> {
        let (host, port) = url_destination(url).ok_or_else(|| {
            format!("\"{url}\" has no host to check against the operator's egress policy")
        })?;
        self.check_destination(&host, port)
    }

    /// Why a connection to this resolved address may not be made, if it may not.
    pub fn check_address(&self, addr: SocketAddr) -> Result<(), String> {
        let (ip, port) = (addr.ip(), addr.port());
        let denied = BUILT_IN_DENY
            .iter()
            .any(|r| Rule::parse(r).matches_ip(ip, port))
            || self
                .egress
                .deny
                .iter()
                .any(|r| Rule::parse(r).matches_ip(ip, port));
        if denied {
            return Err(format!("{addr}, which the operator's egress policy denies"));
        }
        let own =
            self.egress.own_listeners.iter().any(|l| {
                l.port() == port && (l.ip() == ip || ip.is_loopback() || ip.is_unspecified())
            });
        if own {
            return Err(format!(
                "{addr}, the server's own listener, which streams may not call"
            ));
        }
        Ok(())
    }

    /// Why a librdkafka property may not be passed through, if it may not; `Ok(Some(path))` when its value is a
    /// file that must pass [`Policy::check_path`].
    pub fn check_kafka_option<'a>(
        &self,
        key: &str,
        value: &'a str,
    ) -> Result<Option<&'a Path>, String> {
        if KAFKA_CODE.contains(&key) {
            return Err(format!(
                "\"{key}\" loads code or runs a command on the server: the operator's policy refuses it"
            ));
        }
        if KAFKA_FILES.contains(&key) {
            return Ok(Some(Path::new(value)));
        }
        let listed = |p: &str| match p.strip_suffix('*') {
            Some(prefix) => key.starts_with(prefix),
            None => key == p,
        };
        if KAFKA_SAFE.iter().any(|p| listed(p)) || self.kafka_options.iter().any(|p| listed(p)) {
            Ok(None)
        } else {
            Err(format!(
                "\"{key}\" is not a librdkafka property streams may set (the operator may allow it in \
                 `policy.kafka_options`)"
            ))
        }
    }
}

/// A path made absolute with symlinks and `..` resolved: the longest existing ancestor canonicalized, then the
/// rest, which may not climb out with `..`.
pub fn resolve(path: &Path) -> Result<PathBuf, String> {
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| format!("resolving \"{}\": {e}", path.display()))?
            .join(path)
    };
    let mut existing = absolute;
    let mut rest = Vec::new();
    loop {
        if let Ok(c) = existing.canonicalize() {
            let mut out = c;
            for part in rest.iter().rev() {
                out.push(part);
            }
            return Ok(out);
        }
        // A part that does not exist yet; `..` after it cannot be resolved safely.
        match existing.components().next_back() {
            Some(PathPart::Normal(name)) => rest.push(name.to_os_string()),
            Some(PathPart::CurDir) => {}
            _ => {
                return Err(format!(
                    "\"{}\" cannot be resolved (`..` after a folder that does not exist)",
                    path.display()
                ));
            }
        }
        if !existing.pop() {
            return Err(format!("\"{}\" cannot be resolved", path.display()));
        }
    }
}

/// One egress rule, parsed.
enum Rule {
    Name {
        name: String,
        port: Option<u16>,
    },
    Net {
        net: IpAddr,
        bits: u8,
        port: Option<u16>,
    },
    AnyHost {
        port: u16,
    },
    Invalid,
}

impl Rule {
    fn parse(text: &str) -> Rule {
        let (host, port) = split_port(text);
        if host == "*" {
            return port.map_or(Rule::Invalid, |port| Rule::AnyHost { port });
        }
        let (addr, bits) = match host.split_once('/') {
            Some((a, b)) => (a, b.parse::<u8>().ok()),
            None => (host, None),
        };
        match addr.parse::<IpAddr>() {
            Ok(net) => {
                let max = if net.is_ipv4() { 32 } else { 128 };
                Rule::Net {
                    net,
                    bits: bits.unwrap_or(max).min(max),
                    port,
                }
            }
            Err(_) => Rule::Name {
                name: host.to_ascii_lowercase(),
                port,
            },
        }
    }

    fn port_ok(rule: Option<u16>, port: u16) -> bool {
        rule.is_none_or(|p| p == port)
    }

    fn matches_name(&self, host: &str, port: u16) -> bool {
        let host = host.to_ascii_lowercase();
        match self {
            Rule::Name { name, port: p } => {
                Self::port_ok(*p, port)
                    && match name.strip_prefix("*.") {
                        Some(domain) => host.ends_with(&format!(".{domain}")),
                        None => host == *name,
                    }
            }
            Rule::AnyHost { port: p } => *p == port,
            Rule::Net { .. } => host
                .parse::<IpAddr>()
                .is_ok_and(|ip| self.matches_ip(ip, port)),
            Rule::Invalid => false,
        }
    }

    fn matches_ip(&self, ip: IpAddr, port: u16) -> bool {
        match self {
            Rule::Net { net, bits, port: p } => Self::port_ok(*p, port) && in_net(ip, *net, *bits),
            Rule::AnyHost { port: p } => *p == port,
            _ => false,
        }
    }
}

/// `host:port`, `[v6]:port`, or a bare host (a bare IPv6 address has colons but no port).
fn split_port(text: &str) -> (&str, Option<u16>) {
    if let Some(rest) = text.strip_prefix('[') {
        if let Some((h, p)) = rest.split_once("]:") {
            return (h, p.parse().ok());
        }
        return (rest.trim_end_matches(']'), None);
    }
    match text.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h, p.parse().ok()),
        _ => (text, None),
    }
}

fn in_net(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    // An IPv4 address mapped into IPv6 is the IPv4 address.
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(bits))
            };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(bits))
            };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// The host and port of a URL (the scheme's default port when it has none).
pub fn url_destination(url: &str) -> Option<(String, u16)> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let default = match scheme.to_ascii_lowercase().as_str() {
        "http" => 80,
        "https" => 443,
        "postgres" | "postgresql" => 5432,
        "mysql" | "mariadb" => 3306,
        "redis" | "rediss" => 6379,
        "amqp" => 5672,
        "amqps" => 5671,
        "nats" => 4222,
        "mqtt" | "tcp" => 1883,
        "mqtts" | "ssl" => 8883,
        _ => 0,
    };
    let (host, port) = split_port(authority);
    if host.is_empty() {
        return None;
    }
    Some((host.to_string(), port.unwrap_or(default)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(root: &Path) -> Policy {
        let mut p = Policy::for_data_dir(root);
        p.refused_paths = vec![root.to_path_buf()];
        p
    }

    #[test]
    fn paths_must_resolve_under_a_root_and_outside_the_servers_files() {
        let data = tempfile::tempdir().unwrap();
        let files = data.path().join("files");
        std::fs::create_dir_all(files.join("in")).unwrap();
        let p = policy(data.path());
        assert!(p.check_path(&files.join("in/a.jsonl")).is_ok());
        assert!(p.check_path(&files.join("new/deeper/b.jsonl")).is_ok());
        // Outside, through `..`, into the data directory.
        assert!(p.check_path(Path::new("/etc/passwd")).is_err());
        assert!(p.check_path(&files.join("../store.db")).is_err());
        assert!(p.check_path(&files.join("in/../../keys")).is_err());
        assert!(p.check_path(&files.join("missing/../../store.db")).is_err());
        // A symlink inside the root that points out of it.
        std::os::unix::fs::symlink("/etc", files.join("etc")).unwrap();
        let e = p.check_path(&files.join("etc/passwd")).unwrap_err();
        assert!(e.contains("outside the folders"), "{e}");
    }

    #[test]
    fn egress_denies_metadata_addresses_own_listeners_and_what_the_operator_lists() {
        let mut p = Policy::for_data_dir(Path::new("/nonexistent"));
        assert!(p.check_destination("169.254.169.254", 80).is_err());
        assert!(p.check_destination("[fe80::1]", 80).is_err());
        assert!(p.check_destination("metadata.google.internal", 80).is_err());
        assert!(p.check_destination("127.0.0.1", 5432).is_ok());
        p.egress.own_listeners = vec!["0.0.0.0:8080".parse().unwrap()];
        let e = p.check_destination("127.0.0.1", 8080).unwrap_err();
        assert!(e.contains("own listener"), "{e}");
        assert!(p.check_destination("localhost", 8080).is_err());
        p.egress.deny = vec!["10.0.0.0/8".into(), "*.internal.example:443".into()];
        assert!(p.check_destination("10.1.2.3", 1).is_err());
        assert!(p.check_destination("api.internal.example", 443).is_err());
        assert!(p.check_destination("api.internal.example", 80).is_ok());
        p.egress.allow = vec!["127.0.0.0/8:5432".into()];
        assert!(p.check_destination("127.0.0.1", 5432).is_ok());
        assert!(p.check_destination("127.0.0.1", 5433).is_err());
        // An IPv4-mapped IPv6 address is its IPv4 address.
        assert!(
            p.check_address("[::ffff:169.254.169.254]:80".parse().unwrap())
                .is_err()
        );
    }

    #[test]
    fn kafka_options_that_load_code_are_refused_and_files_go_through_the_paths() {
        let p = Policy::for_data_dir(Path::new("/nonexistent"));
        let e = p
            .check_kafka_option("plugin.library.paths", "/tmp/x.so")
            .unwrap_err();
        assert!(e.contains("loads code"), "{e}");
        assert!(
            p.check_kafka_option("sasl.kerberos.kinit.cmd", "sh")
                .is_err()
        );
        assert_eq!(p.check_kafka_option("fetch.max.bytes", "1000"), Ok(None));
        assert_eq!(
            p.check_kafka_option("ssl.ca.location", "/etc/ca.pem"),
            Ok(Some(Path::new("/etc/ca.pem")))
        );
        assert!(p.check_kafka_option("debug", "all").is_err());
        assert_eq!(
            url_destination("postgres://u:p@db.example:6543/x"),
            Some(("db.example".into(), 6543))
        );
        assert_eq!(url_destination("http://[::1]/a"), Some(("::1".into(), 80)));
    }
}
