//! What the SQL connectors share: the drivers, connecting, and the identifier check that keeps names from
//! carrying SQL.

use schemars::JsonSchema;
use serde::Deserialize;
use sqlx::AnyPool;
use sqlx::any::{AnyPoolOptions, install_default_drivers};

use airtruct_runtime::Error;
use airtruct_runtime::policy::Policy;

/// A SQL database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Driver {
    Postgres,
    /// MySQL or MariaDB.
    Mysql,
    Sqlite,
}

impl Driver {
    /// The `n`th (from 1) bound parameter.
    pub fn placeholder(self, n: usize) -> String {
        match self {
            Driver::Mysql => "?".into(),
            Driver::Postgres | Driver::Sqlite => format!("${n}"),
        }
    }

    /// Why a DSN does not fit the driver, if it does not.
    pub fn check_dsn(self, dsn: &str) -> Option<String> {
        let ok = match self {
            Driver::Postgres => dsn.starts_with("postgres://") || dsn.starts_with("postgresql://"),
            Driver::Mysql => dsn.starts_with("mysql://") || dsn.starts_with("mariadb://"),
            Driver::Sqlite => dsn.starts_with("sqlite:"),
        };
        (!ok).then(|| {
            format!("does not look like a {self:?} URL (postgres://, mysql://, sqlite://)")
                .to_lowercase()
        })
    }

    /// The URL sqlx takes.
    pub fn url(self, dsn: &str) -> String {
        match dsn.strip_prefix("mariadb://") {
            Some(rest) => format!("mysql://{rest}"),
            None => dsn.to_string(),
        }
    }
}

/// A table or column name: letters, digits and `_`, optionally `schema.name`. Names are never quoted or
/// interpolated otherwise, so they cannot carry SQL.
pub fn is_identifier(s: &str) -> bool {
    !s.is_empty()
        && s.split('.').all(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
}

/// Where a DSN leads: the file of a SQLite database (`None` for `:memory:`), or the server's host and port.
pub enum DsnTarget {
    File(Option<std::path::PathBuf>),
    Server(String, u16),
    Unknown,
}

/// Reads where a DSN leads, without keeping its credentials.
pub fn dsn_target(driver: Driver, dsn: &str) -> DsnTarget {
    match driver {
        Driver::Sqlite => {
            let rest = dsn
                .strip_prefix("sqlite://")
                .or_else(|| dsn.strip_prefix("sqlite:"))
                .unwrap_or(dsn);
            let path = rest.split('?').next().unwrap_or("");
            if path.is_empty() || path == ":memory:" {
                DsnTarget::File(None)
            } else {
                DsnTarget::File(Some(path.into()))
            }
        }
        _ => match airtruct_runtime::policy::url_destination(dsn) {
            Some((host, port)) => DsnTarget::Server(host, port),
            None => DsnTarget::Unknown,
        },
    }
}

/// Why a DSN may not be used under the operator's policy, if it may not: a SQLite file must be under the path
/// roots, a server must be a destination the egress rules allow.
pub fn dsn_policy(policy: &Policy, driver: Driver, dsn: &str) -> Result<(), String> {
    match dsn_target(driver, dsn) {
        DsnTarget::File(Some(path)) => policy.check_path(&path),
        DsnTarget::File(None) => Ok(()),
        DsnTarget::Server(host, port) => policy.check_destination(&host, port),
        DsnTarget::Unknown => {
            Err("the dsn has no host to check against the operator's policy".into())
        }
    }
}

/// [`dsn_policy`] at validation, reported at `dsn`.
pub fn check_dsn(check: &mut airtruct_runtime::kind::Check<'_>, driver: Driver, dsn: &str) {
    if let Some(Err(e)) = check.policy().map(|p| dsn_policy(p, driver, dsn)) {
        check.problem("dsn", e);
    }
}

/// [`dsn_policy`] again before connecting.
pub fn allow_dsn(
    cx: &airtruct_runtime::BuildContext,
    what: &str,
    driver: Driver,
    dsn: &str,
) -> Result<(), Error> {
    match cx.policy.as_deref().map(|p| dsn_policy(p, driver, dsn)) {
        Some(Err(e)) => Err(Error::User(format!("{what}: {e}"))),
        _ => Ok(()),
    }
}

/// A small pool for one connector (`what` names it in errors).
pub async fn connect(driver: Driver, dsn: &str, what: &str) -> Result<AnyPool, Error> {
    install_default_drivers();
    AnyPoolOptions::new()
        .max_connections(2)
        .acquire_timeout(std::time::Duration::from_secs(10))
        .connect(&driver.url(dsn))
        .await
        .map_err(|e| Error::External(format!("{what}: connecting: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_and_placeholders_follow_the_driver() {
        assert!(is_identifier("orders"));
        assert!(is_identifier("shop.orders_2"));
        assert!(!is_identifier("orders; drop table x"));
        assert!(!is_identifier("1abc"));
        assert_eq!(Driver::Postgres.placeholder(3), "$3");
        assert_eq!(Driver::Mysql.placeholder(3), "?");
        assert!(Driver::Postgres.check_dsn("mysql://x").is_some());
        assert_eq!(
            Driver::Mysql.url("mariadb://root@h/db"),
            "mysql://root@h/db"
        );
    }
}
