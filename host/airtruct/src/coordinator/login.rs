//! The login throttle: failed logins counted per user name, so that guessing a password is slow.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// Failed logins per user name: after [`LoginThrottle::MAX_FAILURES`] failures in a row, that name is refused for
/// [`LoginThrottle::LOCKOUT`], which makes guessing a password slow without locking a user out for long.
pub struct LoginThrottle(
    Mutex<HashMap<String, (u32, std::time::Instant)>>,
    /// Password checks running at once (each is an argon2 hash of 19 MiB): more wait at most briefly, then 503.
    tokio::sync::Semaphore,
);

impl Default for LoginThrottle {
    fn default() -> Self {
        Self(
            Mutex::default(),
            tokio::sync::Semaphore::new(Self::HASHES_AT_ONCE),
        )
    }
}

impl LoginThrottle {
    pub const MAX_FAILURES: u32 = 5;
    pub const LOCKOUT: Duration = Duration::from_secs(60);
    /// The most password hashes computed at once.
    pub const HASHES_AT_ONCE: usize = 4;

    /// A turn to check a password, waiting at most a second for one; `None` when the server is busy with logins.
    pub async fn hashing_turn(&self) -> Option<tokio::sync::SemaphorePermit<'_>> {
        tokio::time::timeout(Duration::from_secs(1), self.1.acquire())
            .await
            .ok()?
            .ok()
    }

    /// Starts a login attempt: `Err(wait)` when `username` is locked; otherwise the attempt counts as a failure
    /// until [`LoginThrottle::succeeded`], so parallel guesses cannot outrun the count.
    pub fn attempt(&self, username: &str) -> Result<(), Duration> {
        let mut map = self.0.lock().expect("throttle lock");
        if let Some((n, last)) = map.get(username) {
            let elapsed = last.elapsed();
            if *n >= Self::MAX_FAILURES && elapsed < Self::LOCKOUT {
                return Err(Self::LOCKOUT - elapsed);
            }
        }
        if map.len() > 10_000 {
            map.retain(|_, (_, last)| last.elapsed() < Self::LOCKOUT);
        }
        let entry = map
            .entry(username.to_string())
            .or_insert((0, std::time::Instant::now()));
        if entry.1.elapsed() >= Self::LOCKOUT {
            entry.0 = 0;
        }
        entry.0 += 1;
        entry.1 = std::time::Instant::now();
        Ok(())
    }

    pub fn succeeded(&self, username: &str) {
        self.0.lock().expect("throttle lock").remove(username);
    }
}
