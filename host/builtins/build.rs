//! Builds the processor components in `guests/` for wasm32-wasip2 and puts them in OUT_DIR for `include_bytes!`.
//!
//! The guests are a cargo workspace of their own; this script runs `cargo build --release --target
//! wasm32-wasip2` on it with a target directory beside the host's (`<target>/guests`), so a warm build is a few
//! seconds. Set `AIRTRUCT_GUESTS_DIR` to a folder of prebuilt `.wasm` files to skip the build.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The components embedded in the binary (built-ins) and the test fixtures built alongside them.
const COMPONENTS: &[&str] = &[
    "mapping",
    "filter",
    "validate",
    "split",
    "aggregate",
    "avro",
    "protobuf",
    "http",
    "cache",
    "dedupe",
    "sql",
    "rate_limit",
    "template",
    "fixture_loop",
    "fixture_membomb",
    "fixture_panic",
    "fixture_huge",
    "fixture_wrong_world",
    "fixture_echo",
    "fixture_net",
    "fixture_v1",
    "fixture_seen",
];

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest.parent().unwrap().parent().unwrap().to_path_buf();
    let guests = root.join("guests");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    println!("cargo:rerun-if-env-changed=AIRTRUCT_GUESTS_DIR");

    let built = match std::env::var_os("AIRTRUCT_GUESTS_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => {
            for dir in ["guests", "wit", "host/codec"] {
                println!("cargo:rerun-if-changed={}", root.join(dir).display());
            }
            build_guests(&guests, &target_dir(&out))
        }
    };
    for name in COMPONENTS {
        let src = built.join(format!("{name}.wasm"));
        let dst = out.join(format!("{name}.wasm"));
        if let Err(e) = std::fs::copy(&src, &dst) {
            panic!("missing guest component {}: {e}", src.display());
        }
    }
}

/// `<target>/guests`, where `<target>` is the host's target directory (OUT_DIR is `<target>/<profile>/build/..`).
fn target_dir(out: &Path) -> PathBuf {
    let target = out
        .ancestors()
        .find(|p| p.file_name().is_some_and(|n| n == "build"))
        .and_then(|build| build.parent()?.parent())
        .expect("OUT_DIR is inside a cargo target directory");
    target.join("guests")
}

fn build_guests(guests: &Path, target: &Path) -> PathBuf {
    let sysroot = Command::new(std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into()))
        .args(["--print", "sysroot"])
        .output()
        .expect("running rustc --print sysroot");
    let sysroot = PathBuf::from(String::from_utf8_lossy(&sysroot.stdout).trim());
    if !sysroot.join("lib/rustlib/wasm32-wasip2").exists() {
        panic!("the wasm32-wasip2 target is missing: run `rustup target add wasm32-wasip2`");
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(guests)
        .args([
            "build",
            "--release",
            "--target",
            "wasm32-wasip2",
            "--workspace",
            // The benchmark's native loop, a program for this machine.
            "--exclude",
            "native-vrl",
        ])
        .env("CARGO_TARGET_DIR", target);
    // The outer cargo's settings are meant for the host crates, not for a nested wasm build.
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if (key.starts_with("CARGO_") && key != "CARGO_HOME" && key != "CARGO_MAKEFLAGS")
            || matches!(
                &*key,
                "RUSTFLAGS"
                    | "RUSTC_WORKSPACE_WRAPPER"
                    | "TARGET"
                    | "HOST"
                    | "OPT_LEVEL"
                    | "PROFILE"
                    | "DEBUG"
            )
        {
            cmd.env_remove(&*key);
        }
    }
    cmd.env("CARGO_TARGET_DIR", target);
    let status = cmd.status().expect("running cargo for the guests");
    if !status.success() {
        panic!("building the guest components failed (see the cargo output above)");
    }
    target.join("wasm32-wasip2/release")
}
