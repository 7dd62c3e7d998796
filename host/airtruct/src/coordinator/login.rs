//! The login throttle. Failed logins are counted per address, per user name from each address, and per user name
//! from everywhere, so that guessing a password is slow, and a flood of bad tries from elsewhere cannot keep a
//! user out: an address that once logged in as a user is exempt from that user's overall count.

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures within a window: how many, and when the window started.
#[derive(Debug, Clone, Copy)]
struct Window {
    failures: u32,
    since: Instant,
}

impl Window {
    fn new() -> Self {
        Self {
            failures: 0,
            since: Instant::now(),
        }
    }

    /// The failures of the current window (a window older than `span` is over).
    fn current(&mut self, span: Duration) -> u32 {
        if self.since.elapsed() >= span {
            *self = Self::new();
        }
        self.failures
    }

    fn wait(&self, span: Duration) -> Duration {
        span.saturating_sub(self.since.elapsed())
    }
}

#[derive(Default)]
struct Counts {
    per_address: HashMap<IpAddr, Window>,
    per_user_address: HashMap<(String, IpAddr), Window>,
    per_user: HashMap<String, Window>,
    /// Addresses that logged in as a user: the user's overall count does not refuse them.
    trusted: HashMap<String, HashSet<IpAddr>>,
}

/// Why a login is refused before its password is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Throttled {
    /// Too many failures from this address, for any user.
    Address(Duration),
    /// Too many failures for this user (from this address, or from everywhere).
    User(Duration),
}

pub struct LoginThrottle {
    counts: Mutex<Counts>,
    /// Password checks running at once (each is an argon2 hash of 19 MiB): more wait at most briefly, then 503.
    hashing: tokio::sync::Semaphore,
    /// The threads that check passwords. Always the same few, so the memory the allocator keeps after a hash
    /// is bounded by their number (a new thread per check would each keep its own 19 MiB).
    checks: Mutex<std::sync::mpsc::Sender<PasswordCheck>>,
}

/// A password and the stored hash to check it against, and where the answer goes.
type PasswordCheck = (String, String, tokio::sync::oneshot::Sender<bool>);

impl Default for LoginThrottle {
    fn default() -> Self {
        let (tx, rx) = std::sync::mpsc::channel::<PasswordCheck>();
        let rx = std::sync::Arc::new(Mutex::new(rx));
        for i in 0..Self::HASHES_AT_ONCE {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("password-check-{i}"))
                .spawn(move || {
                    let mut checker = airtruct_auth::PasswordChecker::default();
                    loop {
                        let job = rx.lock().expect("password check queue").recv();
                        let Ok((password, hash, answer)) = job else {
                            return;
                        };
                        let _ = answer.send(checker.verify(&password, &hash));
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "starting a password-check thread");
            }
        }
        Self {
            counts: Mutex::default(),
            hashing: tokio::sync::Semaphore::new(Self::HASHES_AT_ONCE),
            checks: Mutex::new(tx),
        }
    }
}

impl LoginThrottle {
    /// How long failures are counted for.
    pub const WINDOW: Duration = Duration::from_secs(60);
    /// Failures for one user name from one address in a window.
    pub const PER_USER_ADDRESS: u32 = 5;
    /// Failures from one address in a window, whatever the names.
    pub const PER_ADDRESS: u32 = 20;
    /// Failures for one user name from all addresses in a window; addresses that logged in as it are exempt.
    pub const PER_USER: u32 = 50;
    /// The most password hashes computed at once.
    pub const HASHES_AT_ONCE: usize = 4;
    /// Entries kept before old ones are dropped.
    const MAX_ENTRIES: usize = 10_000;

    /// A turn to check a password, waiting at most a second for one; `None` when the server is busy with logins.
    pub async fn hashing_turn(&self) -> Option<tokio::sync::SemaphorePermit<'_>> {
        tokio::time::timeout(Duration::from_secs(1), self.hashing.acquire())
            .await
            .ok()?
            .ok()
    }

    /// Whether `password` matches `hash`, checked on one of the password threads (call with a hashing turn).
    pub async fn verify(&self, password: String, hash: String) -> bool {
        let (answer, rx) = tokio::sync::oneshot::channel();
        let sent = self
            .checks
            .lock()
            .expect("password check queue")
            .send((password, hash, answer));
        sent.is_ok() && rx.await.unwrap_or(false)
    }

    /// Starts a login attempt: refused when the address or the user is throttled; otherwise the attempt counts
    /// as a failure until [`LoginThrottle::succeeded`], so parallel guesses cannot outrun the count.
    pub fn attempt(&self, username: &str, from: IpAddr) -> Result<(), Throttled> {
        let span = Self::WINDOW;
        let mut c = self.counts.lock().expect("throttle lock");
        if c.per_address.len() + c.per_user_address.len() + c.per_user.len() > Self::MAX_ENTRIES {
            c.per_address.retain(|_, w| w.since.elapsed() < span);
            c.per_user_address.retain(|_, w| w.since.elapsed() < span);
            c.per_user.retain(|_, w| w.since.elapsed() < span);
        }
        let address = c.per_address.entry(from).or_insert_with(Window::new);
        if address.current(span) >= Self::PER_ADDRESS {
            return Err(Throttled::Address(address.wait(span)));
        }
        let pair = c
            .per_user_address
            .entry((username.to_string(), from))
            .or_insert_with(Window::new);
        if pair.current(span) >= Self::PER_USER_ADDRESS {
            return Err(Throttled::User(pair.wait(span)));
        }
        let trusted = c.trusted.get(username).is_some_and(|t| t.contains(&from));
        let user = c
            .per_user
            .entry(username.to_string())
            .or_insert_with(Window::new);
        if !trusted && user.current(span) >= Self::PER_USER {
            return Err(Throttled::User(user.wait(span)));
        }
        user.failures += 1;
        c.per_address.get_mut(&from).expect("just added").failures += 1;
        c.per_user_address
            .get_mut(&(username.to_string(), from))
            .expect("just added")
            .failures += 1;
        Ok(())
    }

    /// The attempt of [`LoginThrottle::attempt`] succeeded: it was no failure, and the address is trusted for
    /// this user from now on.
    pub fn succeeded(&self, username: &str, from: IpAddr) {
        let mut c = self.counts.lock().expect("throttle lock");
        Self::undo(&mut c, username, from);
        c.per_user_address.remove(&(username.to_string(), from));
        let trusted = c.trusted.entry(username.to_string()).or_default();
        if trusted.len() < 64 {
            trusted.insert(from);
        }
    }
}

impl LoginThrottle {
    /// The attempt of [`LoginThrottle::attempt`] was not made (the server was too busy to check it).
    pub fn cancel(&self, username: &str, from: IpAddr) {
        Self::undo(
            &mut self.counts.lock().expect("throttle lock"),
            username,
            from,
        );
    }

    fn undo(c: &mut Counts, username: &str, from: IpAddr) {
        let less = |w: Option<&mut Window>| {
            if let Some(w) = w {
                w.failures = w.failures.saturating_sub(1);
            }
        };
        less(c.per_address.get_mut(&from));
        less(c.per_user.get_mut(username));
        less(c.per_user_address.get_mut(&(username.to_string(), from)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn a_flood_from_elsewhere_does_not_lock_out_an_address_that_logged_in_before() {
        let t = LoginThrottle::default();
        let home = ip("10.0.0.1");
        t.attempt("admin", home).unwrap();
        t.succeeded("admin", home);
        // Many addresses guess admin's password until the name is throttled for new addresses.
        let mut refused = None;
        for i in 0..LoginThrottle::PER_USER + 1 {
            let from = IpAddr::from([10, 1, (i / 250) as u8, (i % 250) as u8]);
            if let Err(e) = t.attempt("admin", from) {
                refused = Some(e);
                break;
            }
        }
        assert!(matches!(refused, Some(Throttled::User(_))), "{refused:?}");
        assert!(t.attempt("admin", ip("10.9.9.9")).is_err());
        // The address admin logged in from before still gets its own tries.
        assert_eq!(t.attempt("admin", home), Ok(()));
    }

    #[test]
    fn one_address_is_throttled_for_every_name_and_one_name_per_address() {
        let t = LoginThrottle::default();
        let a = ip("192.0.2.7");
        for _ in 0..LoginThrottle::PER_USER_ADDRESS {
            t.attempt("alice", a).unwrap();
        }
        assert!(matches!(t.attempt("alice", a), Err(Throttled::User(_))));
        // Another address may still try alice.
        assert_eq!(t.attempt("alice", ip("192.0.2.8")), Ok(()));
        let mut n = LoginThrottle::PER_USER_ADDRESS;
        let refused = loop {
            match t.attempt(&format!("user{n}"), a) {
                Ok(()) => n += 1,
                Err(e) => break e,
            }
        };
        assert!(matches!(refused, Throttled::Address(_)));
        assert_eq!(n, LoginThrottle::PER_ADDRESS);
    }
}
