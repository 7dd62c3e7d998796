//! The engine against real components: the misbehaving fixtures are each contained with a clear error and the
//! next batch runs on a fresh instance; metadata crosses intact; compiled components are cached on disk.

use std::sync::OnceLock;
use std::time::Duration;

use airtruct_builtins::fixtures;
use airtruct_codec::pack;
use airtruct_engine::{Engine, EngineConfig, InitError, Limits, LoadError, Message, ProcessError};

fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        Engine::new(EngineConfig {
            cache_dir: Some(
                std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("component-cache"),
            ),
            pool_instances: 64,
            ..EngineConfig::default()
        })
        .unwrap()
    })
}

fn msg(payload: &str) -> Message {
    Message {
        payload: payload.as_bytes().to_vec(),
        metadata: Vec::new(),
        error: None,
    }
}

fn limits() -> Limits {
    Limits {
        memory_bytes: 64 << 20,
        timeout: Duration::from_millis(300),
        max_output_bytes: 16 << 20,
    }
}

/// Runs a good batch, the batch that triggers the fixture, and a good batch again.
fn run_fixture(wasm: &[u8]) -> (ProcessError, u64) {
    run_fixture_with(wasm, limits())
}

fn run_fixture_with(wasm: &[u8], limits: Limits) -> (ProcessError, u64) {
    let component = engine().load(wasm).unwrap();
    let mut inst = engine().instantiate(&component, "{}", limits).unwrap();
    assert_eq!(inst.process(&[msg("fine")]).unwrap(), vec![msg("fine")]);
    let err = inst.process(&[msg("fine"), msg("boom")]).unwrap_err();
    assert_eq!(
        inst.process(&[msg("after")]).unwrap(),
        vec![msg("after")],
        "the next batch runs after {err}"
    );
    (err, inst.restarts())
}

#[test]
fn cuts_off_an_infinite_loop_at_its_time_limit() {
    let started = std::time::Instant::now();
    let (err, restarts) = run_fixture(fixtures::LOOP);
    assert_eq!(err, ProcessError::Timeout(Duration::from_millis(300)));
    assert_eq!(
        err.to_string(),
        "processor exceeded its time limit of 300ms"
    );
    assert_eq!(restarts, 1);
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[test]
fn contains_a_memory_bomb_at_its_memory_cap() {
    // A generous time limit: touching 64 MiB on a loaded 2-core machine once took longer than 300ms, and the
    // memory cap is what this test is about.
    let (err, restarts) = run_fixture_with(
        fixtures::MEMBOMB,
        Limits {
            timeout: Duration::from_secs(10),
            ..limits()
        },
    );
    assert_eq!(err, ProcessError::MemoryLimit(64 << 20), "{err}");
    assert_eq!(restarts, 1);
}

#[test]
fn reports_a_panic_with_the_guest_message() {
    let (err, restarts) = run_fixture(fixtures::PANIC);
    match &err {
        ProcessError::Trap(m) => assert!(m.contains("fixture panic"), "{m}"),
        other => panic!("expected a trap, got {other}"),
    }
    assert_eq!(restarts, 1);
}

#[test]
fn refuses_output_over_the_limit() {
    let component = engine().load(fixtures::HUGE).unwrap();
    let limits = Limits {
        memory_bytes: 512 << 20,
        timeout: Duration::from_secs(10),
        ..limits()
    };
    let mut inst = engine().instantiate(&component, "{}", limits).unwrap();
    let err = inst.process(&[msg("boom")]).unwrap_err();
    assert!(
        matches!(err, ProcessError::OutputTooLarge { limit, .. } if limit == 16 << 20),
        "{err}"
    );
    assert_eq!(inst.process(&[msg("after")]).unwrap(), vec![msg("after")]);
}

#[test]
fn huge_output_over_the_memory_cap_is_a_memory_error() {
    let component = engine().load(fixtures::HUGE).unwrap();
    let mut inst = engine().instantiate(&component, "{}", limits()).unwrap();
    assert_eq!(
        inst.process(&[msg("boom")]).unwrap_err(),
        ProcessError::MemoryLimit(64 << 20)
    );
}

#[test]
fn refuses_a_component_of_another_world() {
    let err = engine().load(fixtures::WRONG_WORLD).unwrap_err();
    assert!(matches!(err, LoadError::WrongWorld(_)), "{err}");
    assert!(
        err.to_string()
            .contains("airtruct:processor world (0.2.0 or 0.1.0)"),
        "{err}"
    );
}

#[test]
fn refuses_a_component_that_imports_sockets() {
    let err = engine().load(fixtures::NET).unwrap_err();
    assert!(matches!(err, LoadError::ForbiddenImport(_)), "{err}");
    let text = err.to_string();
    assert!(text.contains("wasi:sockets/"), "{text}");
    assert!(text.contains("no network access"), "{text}");
}

#[test]
fn loads_a_compiled_component_by_its_hash_from_the_disk_cache() {
    let dir = tempfile::tempdir().unwrap();
    let config = || EngineConfig {
        cache_dir: Some(dir.path().join("cache")),
        pool_instances: 8,
        ..EngineConfig::default()
    };
    let first = Engine::new(config()).unwrap();
    let sha = first.load(fixtures::ECHO).unwrap().sha256().to_string();
    // A new engine (a restarted worker) has it without the bytes; an unknown hash is not there.
    let second = Engine::new(config()).unwrap();
    let loaded = second.load_cached(&sha).expect("cached").unwrap();
    assert_eq!(loaded.sha256(), sha);
    assert_eq!(loaded.info().name, "fixture-echo");
    assert!(second.load_cached(&"0".repeat(64)).is_none());
    assert!(second.load_cached("../../etc/passwd").is_none());
}

#[test]
fn refuses_core_modules_and_random_bytes_with_a_hint() {
    let core = engine().load(b"\0asm\x01\0\0\0").unwrap_err();
    assert!(matches!(core, LoadError::CoreModule));
    assert!(core.to_string().contains("wasm32-wasip2"), "{core}");
    let noise: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    assert!(matches!(
        engine().load(&noise).unwrap_err(),
        LoadError::NotWasm
    ));
    let mut broken = b"\0asm\x0d\0\x01\0".to_vec();
    broken.extend_from_slice(&noise);
    assert!(matches!(
        engine().load(&broken).unwrap_err(),
        LoadError::Compile(_)
    ));
}

#[test]
fn refuses_a_component_over_the_size_cap() {
    let small = Engine::new(EngineConfig {
        max_component_bytes: 1024,
        pool_instances: 4,
        ..EngineConfig::default()
    })
    .unwrap();
    let err = small.load(fixtures::ECHO).unwrap_err();
    assert!(
        matches!(err, LoadError::TooLarge { limit: 1024, .. }),
        "{err}"
    );
}

#[test]
fn metadata_crosses_the_boundary_intact() {
    let component = engine().load(fixtures::ECHO).unwrap();
    let mut inst = engine()
        .instantiate(&component, "{}", Limits::default())
        .unwrap();
    let meta = pack((0..8).map(|i| {
        (
            ["k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7"][i],
            "a value",
        )
    }))
    .into_bytes();
    let batch: Vec<Message> = (0..100)
        .map(|i| Message {
            payload: format!("{{\"n\":{i}}}").into_bytes(),
            metadata: meta.clone(),
            error: None,
        })
        .collect();
    assert_eq!(inst.process(&batch).unwrap(), batch);
}

#[test]
fn template_processor_describes_itself_and_validates_its_config() {
    let component = engine().load(fixtures::TEMPLATE).unwrap();
    assert_eq!(component.info().name, "prefix");
    let schema: serde_json::Value = serde_json::from_str(&component.info().config_schema).unwrap();
    assert_eq!(schema["required"][0], "prefix");
    match engine().instantiate(&component, r#"{"prefx": 1}"#, Limits::default()) {
        Err(InitError::Config(errors)) => {
            assert!(errors[0].message.contains("prefx"), "{errors:?}")
        }
        Err(e) => panic!("expected config errors, got {e}"),
        Ok(_) => panic!("a bad config was accepted"),
    }
    let mut inst = engine()
        .instantiate(&component, r#"{"prefix": ">> "}"#, Limits::default())
        .unwrap();
    let out = inst.process(&[msg("hi")]).unwrap();
    assert_eq!(out[0].payload, b">> hi");
    assert_eq!(
        airtruct_codec::Metadata::from_bytes(out[0].metadata.clone())
            .unwrap()
            .get("prefixed"),
        Some("true")
    );
}

#[test]
fn compiled_components_are_cached_on_disk_and_reused() {
    let dir = tempfile::tempdir().unwrap();
    let config = EngineConfig {
        cache_dir: Some(dir.path().to_path_buf()),
        pool_instances: 4,
        ..EngineConfig::default()
    };
    let first = Engine::new(config.clone()).unwrap();
    let loaded = first.load(fixtures::ECHO).unwrap();
    let files: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n != "cache.key")
        .collect();
    assert_eq!(files.len(), 1);
    assert!(files[0].to_string_lossy().starts_with(loaded.sha256()));
    let second = Engine::new(config).unwrap();
    let again = second.load(fixtures::ECHO).unwrap();
    assert_eq!(again.info(), loaded.info());
    let mut inst = second.instantiate(&again, "{}", Limits::default()).unwrap();
    assert_eq!(inst.process(&[msg("x")]).unwrap(), vec![msg("x")]);
}

#[test]
fn guests_get_no_filesystem_environment_or_timer_and_a_wall_clock_that_stands_still_in_a_call() {
    // The echo fixture reports what WASI gives it when asked with payload "probe".
    let component = engine().load(fixtures::ECHO).unwrap();
    let mut inst = engine()
        .instantiate(&component, "{}", Limits::default())
        .unwrap();
    let now_ms = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64
    };
    let before = now_ms();
    let out = inst.process(&[msg("probe")]).unwrap();
    let after = now_ms();
    let report: serde_json::Value = serde_json::from_slice(&out[0].payload).unwrap();
    assert_eq!(report["env_vars"], 0, "{report}");
    assert_eq!(report["root_dir_readable"], false, "{report}");
    // The wall clock is the time the call began, and does not move while it runs; no timer at all.
    let first = report["wall_clock_ms_first"].as_u64().unwrap();
    assert!(
        before <= first && first <= after,
        "{before} <= {first} <= {after}: {report}"
    );
    assert_eq!(report["wall_clock_ms_last"], first, "{report}");
    assert_eq!(report["monotonic_elapsed_ns"], 0, "{report}");
}

#[test]
fn a_guest_cannot_sleep_past_its_time_limit() {
    let component = engine().load(fixtures::ECHO).unwrap();
    let mut inst = engine().instantiate(&component, "{}", limits()).unwrap();
    let started = std::time::Instant::now();
    let err = inst.process(&[msg("sleep")]).unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the guest slept for {:?}",
        started.elapsed()
    );
    match &err {
        ProcessError::Trap(m) => assert!(m.contains("may not sleep"), "{m}"),
        other => panic!("expected a trap, got {other}"),
    }
    assert_eq!(inst.process(&[msg("after")]).unwrap(), vec![msg("after")]);
}

#[test]
fn a_compiled_artifact_this_installation_did_not_write_is_not_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let engine_at = |cache: &str| {
        Engine::new(EngineConfig {
            cache_dir: Some(dir.path().join(cache)),
            pool_instances: 8,
            ..EngineConfig::default()
        })
        .unwrap()
    };
    // This installation compiles the echo processor; another compiles the prefixing template.
    let ours = engine_at("ours");
    let echo = ours.load(fixtures::ECHO).unwrap().sha256().to_string();
    let theirs = engine_at("theirs");
    theirs.load(fixtures::TEMPLATE).unwrap();
    let file_in = |cache: &str| {
        std::fs::read_dir(dir.path().join(cache))
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.extension().is_some_and(|x| x == "cwasm"))
            .unwrap()
    };
    // Their artifact planted under the echo processor's name in our cache.
    std::fs::copy(file_in("theirs"), file_in("ours")).unwrap();
    let restarted = engine_at("ours");
    assert!(
        restarted.load_cached(&echo).is_none(),
        "a planted artifact is not loaded by hash"
    );
    let loaded = restarted.load(fixtures::ECHO).unwrap();
    assert_eq!(
        loaded.info().name,
        "fixture-echo",
        "recompiled from its bytes"
    );
    let mut instance = restarted
        .instantiate(&loaded, "{}", Limits::default())
        .unwrap();
    let out = instance.process(&[msg("same")]).unwrap();
    assert_eq!(
        out[0].payload, b"same",
        "the echo ran, not the planted template"
    );
    // The recompiled artifact replaced the planted one and loads by hash again.
    assert!(engine_at("ours").load_cached(&echo).is_some());
}

/// A processor component, in the component text format, that holds two core modules with a memory each. Its
/// `process` grows each memory by `pages` (64 KiB each) and filters everything out; with 0 pages it returns one
/// message whose metadata holds a key twice. `extra` is spliced in as more core modules.
fn two_memories(pages: u32, extra: &str) -> Vec<u8> {
    let text = format!(
        r#"(component
  (core module $Side
    (memory (export "memory") 1)
    (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0))))
  (core instance $side (instantiate $Side))
  (core module $Main
    (import "side" "grow" (func $side_grow (param i32) (result i32)))
    (memory (export "memory") 1)
    (global $heap (mut i32) (i32.const 8192))
    (data (i32.const 1024) "\00\08\00\00\08\00\00\00\10\08\00\00\0c\00\00\00\20\08\00\00\05\00\00\00\30\08\00\00\02\00\00\00")
    (data (i32.const 2048) "multimem")
    (data (i32.const 2064) "two memories")
    (data (i32.const 2080) "0.1.0")
    (data (i32.const 2096) "{{}}")
    ;; A result of one message whose metadata holds the key "k" twice: the answer of `process` when pages is 0.
    (data (i32.const 1200) "\00\00\00\00\b8\0b\00\00\01\00\00\00")
    (data (i32.const 3000) "\00\08\00\00\08\00\00\00\1c\0c\00\00\14\00\00\00\00\00\00\00\00\00\00\00\00\00\00\00")
    (data (i32.const 3100) "\01\00\00\00k\01\00\00\00a\01\00\00\00k\01\00\00\00b")
    (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
      (local $p i32)
      (local.set $p (i32.and (i32.add (global.get $heap) (i32.sub (local.get 2) (i32.const 1)))
                             (i32.sub (i32.const 0) (local.get 2))))
      (global.set $heap (i32.add (local.get $p) (local.get 3)))
      (if (i32.gt_u (global.get $heap) (i32.shl (memory.size) (i32.const 16)))
        (then (drop (memory.grow (i32.add (i32.shr_u (global.get $heap) (i32.const 16)) (i32.const 1))))))
      (local.get $p))
    (func (export "describe") (result i32) (i32.const 1024))
    (func (export "init") (param i32 i32) (result i32) (i32.const 1104))
    (func (export "process") (param i32 i32) (result i32)
      (if (i32.eqz (i32.const {pages})) (then (return (i32.const 1200))))
      (if (i32.eq (call $side_grow (i32.const {pages})) (i32.const -1)) (then unreachable))
      (if (i32.eq (memory.grow (i32.const {pages})) (i32.const -1)) (then unreachable))
      (i32.const 1104)))
  (core instance $main (instantiate $Main (with "side" (instance $side))))
  {extra}
  (type $config-error' (record (field "path" string) (field "message" string)))
  (export $config-error "config-error" (type $config-error'))
  (type $message' (record (field "payload" (list u8)) (field "metadata" (list u8)) (field "error" (option string))))
  (export $message "message" (type $message'))
  (type $info' (record (field "name" string) (field "description" string) (field "version" string) (field "config-schema" string)))
  (export $info "info" (type $info'))
  (func $describe (result $info)
    (canon lift (core func $main "describe") (memory (core memory $main "memory")) (realloc (core func $main "cabi_realloc"))))
  (func $init (param "config" string) (result (result (error (list $config-error))))
    (canon lift (core func $main "init") (memory (core memory $main "memory")) (realloc (core func $main "cabi_realloc"))))
  (func $process (param "batch" (list $message)) (result (result (list $message) (error string)))
    (canon lift (core func $main "process") (memory (core memory $main "memory")) (realloc (core func $main "cabi_realloc"))))
  (export "describe" (func $describe))
  (export "init" (func $init))
  (export "process" (func $process)))"#
    );
    wat::parse_str(text).unwrap()
}

#[test]
fn memories_of_one_instance_share_one_budget() {
    // Each memory grows by 40 MiB: under a 64 MiB cap per memory, over one budget of 64 MiB for both.
    let greedy = engine().load(&two_memories(640, "")).unwrap();
    let mut inst = engine().instantiate(&greedy, "{}", limits()).unwrap();
    let err = inst.process(&[msg("{}")]).unwrap_err();
    assert_eq!(err, ProcessError::MemoryLimit(64 << 20), "{err}");
    // Both within the budget together: it runs (and filters everything out).
    let modest = engine().load(&two_memories(200, "")).unwrap();
    let mut inst = engine().instantiate(&modest, "{}", limits()).unwrap();
    assert_eq!(inst.process(&[msg("{}")]).unwrap(), vec![]);
}

#[test]
fn a_component_that_takes_too_long_to_compile_is_refused() {
    // A core module of many large functions, which takes seconds to compile.
    let body =
        "local.get 0 i32.mul local.get 1 i32.xor local.tee 1 i32.const 7 i32.rotl ".repeat(100);
    let funcs: String = (0..3000)
        .map(|i| {
            format!("(func (export \"f{i}\") (param i32 i32) (result i32) local.get 0 {body})\n")
        })
        .collect();
    let heavy = two_memories(1, &format!("(core module $Heavy {funcs})"));
    let engine = Engine::new(EngineConfig {
        compile_timeout: Duration::from_millis(200),
        compiles_at_once: 1,
        pool_instances: 4,
        ..EngineConfig::default()
    })
    .unwrap();
    let started = std::time::Instant::now();
    let err = engine.load(&heavy).unwrap_err();
    assert!(matches!(err, LoadError::CompileTimeout(_)), "{err}");
    assert!(
        err.to_string()
            .contains("took longer than 200ms to compile"),
        "{err}"
    );
    println!("refused after {:?}", started.elapsed());
    // The abandoned compilation still holds the one turn: the next waits, then is told to come back.
    let err = engine.load(&two_memories(1, "")).unwrap_err();
    assert!(matches!(err, LoadError::CompileBusy), "{err}");
    // Given time, the same component compiles.
    let slow = Engine::new(EngineConfig {
        compile_timeout: Duration::from_secs(120),
        pool_instances: 4,
        ..EngineConfig::default()
    })
    .unwrap();
    let took = std::time::Instant::now();
    slow.load(&heavy).unwrap();
    println!("the heavy component compiles in {:?}", took.elapsed());
}

#[test]
fn metadata_a_guest_returns_with_a_key_twice_fails_its_message() {
    let loaded = engine().load(&two_memories(0, "")).unwrap();
    let mut inst = engine().instantiate(&loaded, "{}", limits()).unwrap();
    let out = inst.process(&[msg("{}")]).unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].payload, b"multimem");
    assert!(
        out[0].metadata.is_empty(),
        "the bad metadata is not passed on"
    );
    let error = out[0].error.as_deref().unwrap();
    assert!(
        error.contains("invalid packed metadata") && error.contains("a key twice"),
        "{error}"
    );
}
