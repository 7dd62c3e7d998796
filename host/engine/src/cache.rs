//! The on-disk cache of compiled components, keyed by the sha256 of the component and the engine's compatibility
//! hash. Files are written atomically by this process's code into a directory only it writes; a file that fails
//! to load is recompiled and replaced.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use wasmtime::component::Component;

use crate::LoadError;

fn engine_key(engine: &wasmtime::Engine) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    format!("{:016x}", h.finish())
}

fn path_for(dir: &Path, engine: &wasmtime::Engine, sha256: &str) -> PathBuf {
    dir.join(format!("{sha256}-{}.cwasm", engine_key(engine)))
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
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    let written = std::fs::write(&tmp, &serialized).and_then(|_| std::fs::rename(&tmp, &path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        tracing::warn!(path = %path.display(), error = %e, "could not cache compiled component");
    }
    Ok(component)
}
