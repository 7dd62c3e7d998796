//! Credentials and secrets: argon2id password hashes, API tokens that are stored only as their sha256, and the
//! AES-256-GCM key that encrypts secrets at rest. A secret's name is its associated data, so a ciphertext moved to
//! another name does not decrypt.

use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Key, Nonce};
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// Why a credential or secret operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("secret key: {0}")]
    Key(String),
    #[error("secret \"{0}\" does not decrypt with this key (wrong key or tampered data)")]
    Decrypt(String),
    #[error("password hashing failed: {0}")]
    Hash(String),
}

fn random<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).expect("the OS random source works");
    buf
}

/// Hashes a password with argon2id and a random salt (PHC string format).
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    let salt =
        SaltString::encode_b64(&random::<16>()).map_err(|e| AuthError::Hash(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Hash(e.to_string()))
}

/// Whether `password` matches a hash made by [`hash_password`]. A malformed hash never matches.
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// Checks passwords with one reused block of argon2 memory, so that a thread that checks many passwords holds
/// one hash's memory, not one per check.
#[derive(Default)]
pub struct PasswordChecker {
    blocks: Vec<argon2::Block>,
}

impl PasswordChecker {
    /// The most memory a stored hash may ask for (64 MiB); a hash that asks for more never matches.
    pub const MAX_MEMORY_KIB: u32 = 64 << 10;

    /// Whether `password` matches a hash made by [`hash_password`]; as [`verify_password`], in reused memory.
    pub fn verify(&mut self, password: &str, hash: &str) -> bool {
        let Ok(h) = PasswordHash::new(hash) else {
            return false;
        };
        let Ok(params) = argon2::Params::try_from(&h) else {
            return false;
        };
        let (Ok(algorithm), Some(salt), Some(expected)) =
            (argon2::Algorithm::try_from(h.algorithm), h.salt, h.hash)
        else {
            return false;
        };
        let Ok(version) = argon2::Version::try_from(h.version.unwrap_or(0x13)) else {
            return false;
        };
        if params.m_cost() > Self::MAX_MEMORY_KIB {
            return false;
        }
        let mut salt_buf = [0u8; 64];
        let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
            return false;
        };
        let blocks = params.block_count();
        if self.blocks.len() < blocks {
            self.blocks.resize(blocks, argon2::Block::default());
        }
        let mut out = vec![0u8; expected.len()];
        Argon2::new(algorithm, version, params)
            .hash_password_into_with_memory(
                password.as_bytes(),
                salt,
                &mut out,
                &mut self.blocks[..blocks],
            )
            .is_ok()
            && out.len() == expected.len()
            && out
                .iter()
                .zip(expected.as_bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }
}

/// A new API token: `(token, its hash)`. Only the hash is stored; the token is shown once.
pub fn new_token() -> (String, String) {
    let token = format!("at_{}", hex::encode(random::<32>()));
    let hash = token_hash(&token);
    (token, hash)
}

/// The stored form of a token.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A value only the holder of `secret` can make for `purpose` and `id` (hex HMAC-SHA256): a worker's credential
/// is derived from the join token and the worker's id, so the coordinator stores none and a worker cannot make
/// another's.
pub fn derive(secret: &str, purpose: &str, id: &str) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes any key length");
    mac.update(purpose.as_bytes());
    mac.update(b"\0");
    mac.update(id.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The key that encrypts secrets at rest.
pub struct SecretKey {
    cipher: Aes256Gcm,
}

impl SecretKey {
    /// A key from its base64 form (32 bytes), as given by an operator.
    pub fn from_base64(text: &str) -> Result<Self, AuthError> {
        let bytes = B64
            .decode(text.trim())
            .map_err(|e| AuthError::Key(format!("not base64: {e}")))?;
        if bytes.len() != 32 {
            return Err(AuthError::Key(format!(
                "must be 32 bytes, found {}",
                bytes.len()
            )));
        }
        Ok(Self {
            cipher: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(&bytes)),
        })
    }

    /// Reads the key file, or creates it (mode 0600) with a random key on first start.
    pub fn load_or_create(path: &Path) -> Result<Self, AuthError> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::from_base64(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let text = B64.encode(random::<32>());
                write_private(path, &text)
                    .map_err(|e| AuthError::Key(format!("writing \"{}\": {e}", path.display())))?;
                Self::from_base64(&text)
            }
            Err(e) => Err(AuthError::Key(format!(
                "reading \"{}\": {e}",
                path.display()
            ))),
        }
    }

    /// Encrypts a secret's value: `(nonce, ciphertext)`, both base64.
    pub fn encrypt(&self, name: &str, value: &str) -> (String, String) {
        let nonce = random::<12>();
        let ct = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: value.as_bytes(),
                    aad: name.as_bytes(),
                },
            )
            .expect("AES-GCM encryption of an in-memory buffer does not fail");
        (B64.encode(nonce), B64.encode(ct))
    }

    /// Decrypts what [`SecretKey::encrypt`] made for the same name.
    pub fn decrypt(&self, name: &str, nonce: &str, ciphertext: &str) -> Result<String, AuthError> {
        let fail = || AuthError::Decrypt(name.to_string());
        let nonce = B64.decode(nonce).map_err(|_| fail())?;
        let ct = B64.decode(ciphertext).map_err(|_| fail())?;
        if nonce.len() != 12 {
            return Err(fail());
        }
        let plain = self
            .cipher
            .decrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &ct,
                    aad: name.as_bytes(),
                },
            )
            .map_err(|_| fail())?;
        String::from_utf8(plain).map_err(|_| fail())
    }
}

fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut f = options.open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_verify_only_with_the_right_password() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong horse", &h));
        assert!(!verify_password("correct horse", "not a hash"));
        assert_ne!(hash_password("correct horse").unwrap(), h, "salts differ");
        // The checker in reused memory agrees, check after check.
        let mut checker = PasswordChecker::default();
        for _ in 0..2 {
            assert!(checker.verify("correct horse", &h));
            assert!(!checker.verify("wrong horse", &h));
            assert!(!checker.verify("correct horse", "not a hash"));
        }
        // A stored hash that asks for more than the cap of memory never matches.
        let greedy = h.replace("m=19456", "m=1048576");
        assert!(!checker.verify("correct horse", &greedy));
    }

    #[test]
    fn derived_values_differ_by_purpose_id_and_secret() {
        let a = derive("join", "worker credential", "w1");
        assert_eq!(a, derive("join", "worker credential", "w1"));
        assert_ne!(a, derive("join", "worker credential", "w2"));
        assert_ne!(a, derive("join", "ingest forward", "w1"));
        assert_ne!(a, derive("other", "worker credential", "w1"));
    }

    #[test]
    fn tokens_are_stored_as_their_hash() {
        let (token, hash) = new_token();
        assert!(token.starts_with("at_") && token.len() == 67, "{token}");
        assert_eq!(token_hash(&token), hash);
        assert_ne!(new_token().0, token);
    }

    #[test]
    fn secrets_round_trip_and_refuse_tampering_or_another_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/secret.key");
        let key = SecretKey::load_or_create(&path).unwrap();
        let (nonce, ct) = key.encrypt("pg_password", "s3cr3t");
        assert!(!ct.contains("s3cr3t"));
        assert_eq!(key.decrypt("pg_password", &nonce, &ct).unwrap(), "s3cr3t");
        assert!(matches!(
            key.decrypt("other_name", &nonce, &ct),
            Err(AuthError::Decrypt(_))
        ));
        let mut raw = B64.decode(&ct).unwrap();
        raw[0] ^= 1;
        assert!(
            key.decrypt("pg_password", &nonce, &B64.encode(raw))
                .is_err()
        );

        // The key file persists: a restart decrypts what was stored before.
        let again = SecretKey::load_or_create(&path).unwrap();
        assert_eq!(again.decrypt("pg_password", &nonce, &ct).unwrap(), "s3cr3t");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        let other = SecretKey::from_base64(&B64.encode([7u8; 32])).unwrap();
        assert!(other.decrypt("pg_password", &nonce, &ct).is_err());
        assert!(SecretKey::from_base64("c2hvcnQ=").is_err());
    }
}
