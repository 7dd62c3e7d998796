//! The on-disk cache of compiled components, keyed by the sha256 of the component and the engine's compatibility
//! hash. Files are written atomically by this process's code into a directory only it writes, each followed by
//! an HMAC-SHA256 under the installation's cache key (`cache.key`, 0600, made on first use): a file this
//! installation did not write (planted, or copied from elsewhere) is never loaded, and a file that fails its
//! check or fails to load is recompiled and replaced.

// Loading a serialized component is unsafe in wasmtime (it trusts the file); the cache checks that only this
// process's user wrote it. geteuid is a plain libc call.
#![allow(unsafe_code)]

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use wasmtime::component::Component;

use crate::LoadError;

/// Creates the cache directory (mode 0700) and refuses one that another user could write: its files are
/// loaded as native code.
pub fn prepare_dir(dir: &Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, MetadataExt};
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        let meta = std::fs::metadata(dir)?;
        // SAFETY: geteuid has no preconditions.
        let me = unsafe { libc_geteuid() };
        if meta.uid() != me || meta.mode() & 0o022 != 0 {
            anyhow::bail!(
                "component cache \"{}\" must be owned by this user and not writable by others (chmod 700)",
                dir.display()
            );
        }
    }
    #[cfg(not(unix))]
    std::fs::create_dir_all(dir)?;
    Ok(())
}

#[cfg(unix)]
unsafe extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}

/// The cache key of `dir`: read, or made on first use (32 random bytes, mode 0600).
pub fn key(dir: &Path) -> anyhow::Result<[u8; 32]> {
    use std::io::Read;
    let path = dir.join("cache.key");
    match std::fs::read(&path) {
        Ok(bytes) if bytes.len() == 32 => {
            let mut k = [0u8; 32];
            k.copy_from_slice(&bytes);
            return Ok(k);
        }
        Ok(_) => anyhow::bail!("cache key \"{}\" is not 32 bytes", path.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e.into()),
    }
    let mut k = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut k)?;
    // Written whole to a file of its own, then linked in under the name: a process starting at the same time
    // sees no key or a whole one, never a half-written file (hard links never replace).
    let tmp = dir.join(format!(
        "cache.key.{}.{:08x}",
        std::process::id(),
        u32::from_le_bytes([k[0], k[1], k[2], k[3]])
    ));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let written = opts.open(&tmp).and_then(|mut f| {
        std::io::Write::write_all(&mut f, &k)?;
        f.sync_all()
    });
    let linked = written.and_then(|()| std::fs::hard_link(&tmp, &path));
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(k),
        // Another process made it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => key(dir),
        Err(e) => Err(e.into()),
    }
}

/// HMAC-SHA256 of `name` and `bytes` under `key`.
fn mac(key: &[u8; 32], name: &str, bytes: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut block = [0u8; 64];
    block[..32].copy_from_slice(key);
    let pad = |b: u8| block.map(|k| k ^ b);
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update((name.len() as u64).to_le_bytes())
        .chain_update(name.as_bytes())
        .chain_update(bytes)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

/// The artifact in a cache file, if its MAC says this installation wrote it for `sha256`.
fn authentic(key: &[u8; 32], sha256: &str, file: &[u8]) -> Option<Vec<u8>> {
    let (artifact, tag) = file.split_at_checked(file.len().checked_sub(32)?)?;
    let expected = mac(key, sha256, artifact);
    let same = tag
        .iter()
        .zip(expected)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
        == 0;
    same.then(|| artifact.to_vec())
}

/// Reads and checks a cache file; `None` (logged) when it is missing, not this installation's, or unreadable.
fn read_checked(
    engine: &wasmtime::Engine,
    key: &[u8; 32],
    path: &Path,
    sha256: &str,
) -> Option<Component> {
    let file = std::fs::read(path).ok()?;
    let Some(artifact) = authentic(key, sha256, &file) else {
        tracing::warn!(path = %path.display(), "ignoring a cached component this installation did not write");
        return None;
    };
    // SAFETY: the MAC proves this installation's code wrote these bytes with `Component::serialize` of an engine
    // whose compatibility hash is in the file name.
    match unsafe { Component::deserialize(engine, &artifact) } {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "discarding unreadable cached component");
            None
        }
    }
}

static TMP_COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn engine_key(engine: &wasmtime::Engine) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    format!("{:016x}", h.finish())
}

fn path_for(dir: &Path, engine: &wasmtime::Engine, sha256: &str) -> PathBuf {
    dir.join(format!("{sha256}-{}.cwasm", engine_key(engine)))
}

/// The compiled form of `sha256` from `dir`, when it is there, this installation's and readable.
pub fn load(
    engine: &wasmtime::Engine,
    dir: &Path,
    key: &[u8; 32],
    sha256: &str,
) -> Option<Component> {
    if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let path = path_for(dir, engine, sha256);
    if !path.exists() {
        return None;
    }
    read_checked(engine, key, &path, sha256)
}

/// Keeps a compiled component in `dir`, authenticated with `key`; a failure to write is logged, not returned.
pub fn store(
    engine: &wasmtime::Engine,
    dir: &Path,
    key: &[u8; 32],
    sha256: &str,
    component: &Component,
) -> Result<(), LoadError> {
    let path = path_for(dir, engine, sha256);
    let mut serialized = component
        .serialize()
        .map_err(|e| LoadError::Cache(format!("{e:#}")))?;
    let tag = mac(key, sha256, &serialized);
    serialized.extend_from_slice(&tag);
    let n = TMP_COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_extension(format!("tmp.{}.{n}", std::process::id()));
    let written = std::fs::write(&tmp, &serialized).and_then(|_| std::fs::rename(&tmp, &path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        tracing::warn!(path = %path.display(), error = %e, "could not cache compiled component");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn processes_starting_together_agree_on_one_whole_key() {
        for _ in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let keys: Vec<[u8; 32]> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..8)
                    .map(|_| s.spawn(|| key(dir.path()).unwrap()))
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            assert!(
                keys.iter().all(|k| *k == keys[0]),
                "every caller got the same key"
            );
            let names: Vec<_> = std::fs::read_dir(dir.path())
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            assert_eq!(names, ["cache.key"], "no temporary file is left");
        }
    }
}
