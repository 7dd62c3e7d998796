//! The on-disk cache of compiled components, keyed by the sha256 of the component and the engine's compatibility
//! hash. Files are written atomically by this process's code into a directory only it writes; a file that fails
//! to load is recompiled and replaced.

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

static TMP_COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn engine_key(engine: &wasmtime::Engine) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    format!("{:016x}", h.finish())
}

fn path_for(dir: &Path, engine: &wasmtime::Engine, sha256: &str) -> PathBuf {
    dir.join(format!("{sha256}-{}.cwasm", engine_key(engine)))
}

/// The compiled form of `sha256` from `dir`, when it is there and readable.
pub fn load(engine: &wasmtime::Engine, dir: &Path, sha256: &str) -> Option<Component> {
    if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let path = path_for(dir, engine, sha256);
    if !path.exists() {
        return None;
    }
    // SAFETY: as in `compile`: only this program writes the cache directory, and the name carries the engine's
    // compatibility hash.
    match unsafe { Component::deserialize_file(engine, &path) } {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::warn!(path = %path.display(), error = %e, "discarding unreadable cached component");
            None
        }
    }
}

/// Compiles `bytes`, or loads its compiled form from `dir`.
pub fn compile(
    engine: &wasmtime::Engine,
    dir: Option<&Path>,
    sha256: &str,
    bytes: &[u8],
) -> Result<Component, LoadError> {
    let Some(dir) = dir else {
        return Component::new(engine, bytes).map_err(|e| LoadError::Compile(format!("{e:#}")));
    };
    let path = path_for(dir, engine, sha256);
    if path.exists() {
        // SAFETY: the file was written by `Component::serialize` of this engine build (its name carries the
        // engine's compatibility hash) into the cache directory that only this program writes.
        match unsafe { Component::deserialize_file(engine, &path) } {
            Ok(c) => return Ok(c),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "discarding unreadable cached component")
            }
        }
    }
    let started = std::time::Instant::now();
    let component =
        Component::new(engine, bytes).map_err(|e| LoadError::Compile(format!("{e:#}")))?;
    tracing::debug!(
        sha256,
        ms = started.elapsed().as_millis() as u64,
        "compiled component"
    );
    let serialized = component
        .serialize()
        .map_err(|e| LoadError::Cache(format!("{e:#}")))?;
    let n = TMP_COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = path.with_extension(format!("tmp.{}.{n}", std::process::id()));
    let written = std::fs::write(&tmp, &serialized).and_then(|_| std::fs::rename(&tmp, &path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        tracing::warn!(path = %path.display(), error = %e, "could not cache compiled component");
    }
    Ok(component)
}
