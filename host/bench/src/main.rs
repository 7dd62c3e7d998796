//! Benchmarks that print tables (see docs/benchmarks.md): the wasm boundary cost of the message shape, instance
//! creation, and `generate -> mapping -> filter -> drop` through wasm against the same processor code compiled
//! natively, measured in the same run; and control-plane timings (failover, pause) with real processes. Run with
//! `cargo build --release -p airtruct && cargo run --release -p airtruct-bench`.

mod brokers;
mod control;
mod enrich;
mod ingest;
mod inlining;
mod kafka;
mod scale;
mod soak;
mod startup;

use std::sync::Arc;
use std::time::{Duration, Instant};

use airtruct_engine::{Engine, EngineConfig, Limits, Message};
use airtruct_runtime::{BuildContext, StreamMetrics, build_stream, run_stream, validate_stream};
use airtruct_sdk::Processor;
use tokio_util::sync::CancellationToken;

pub(crate) const MAPPING: &str = r#".name = upcase!(.name)
.total = to_int!(.qty) * to_int!(.price)
del(.internal)
.source = "bench""#;
const FILTER: &str = ".qty > 2";

/// A 200-byte JSON record, the same for every row.
pub(crate) fn record(i: u64) -> Vec<u8> {
    let mut s = format!(
        r#"{{"id":{i},"name":"customer number {i}","qty":{},"price":{},"internal":"drop me","note":"#,
        i % 7,
        100 + i % 13
    );
    let pad = 200usize.saturating_sub(s.len() + 3);
    s.push('"');
    s.push_str(&"x".repeat(pad));
    s.push_str("\"}");
    s.into_bytes()
}

pub(crate) fn rate(n: u64, d: Duration) -> String {
    let per_s = n as f64 / d.as_secs_f64();
    if per_s >= 1e6 {
        format!("{:.2}M msg/s", per_s / 1e6)
    } else {
        format!("{:.0}k msg/s", per_s / 1e3)
    }
}

fn best_of<F: FnMut() -> Duration>(runs: usize, mut f: F) -> Duration {
    (0..runs).map(|_| f()).min().unwrap()
}

fn engine() -> Engine {
    let cache = std::env::temp_dir().join("airtruct-bench-cache");
    Engine::new(EngineConfig {
        cache_dir: Some(cache),
        pool_instances: 64,
        ..EngineConfig::default()
    })
    .unwrap()
}

fn boundary(engine: &Engine) {
    println!(
        "\n## Boundary: a batch of 1000 x 200-byte messages through the echo guest and back\n"
    );
    println!("| metadata pairs per message | messages/s | ns per message |");
    println!("|---|---|---|");
    let echo = engine.load(airtruct_builtins::fixtures::ECHO).unwrap();
    let mut inst = engine.instantiate(&echo, "{}", Limits::default()).unwrap();
    for pairs in [0usize, 2, 8] {
        let keys: Vec<String> = (0..pairs).map(|k| format!("key{k}")).collect();
        let meta = airtruct_codec::pack(keys.iter().map(|k| (k.as_str(), "a metadata value")))
            .into_bytes();
        let batch: Vec<Message> = (0..1000)
            .map(|i| Message {
                payload: record(i),
                metadata: meta.clone(),
                error: None,
            })
            .collect();
        let rounds = 200;
        let d = best_of(3, || {
            let t = Instant::now();
            for _ in 0..rounds {
                std::hint::black_box(inst.process(&batch).unwrap());
            }
            t.elapsed()
        });
        let n = rounds * 1000;
        println!(
            "| {pairs} | {} | {:.0} |",
            rate(n, d),
            d.as_nanos() as f64 / n as f64
        );
    }
}

fn instantiation(engine: &Engine) {
    println!("\n## Instance creation (pooling allocator, InstancePre), mean of 500\n");
    println!("| component | size | store | instantiate | init | drop (slot reset) |");
    println!("|---|---|---|---|---|---|");
    for (name, wasm, config) in [
        (
            "echo fixture",
            airtruct_builtins::fixtures::ECHO,
            "{}".to_string(),
        ),
        (
            "mapping (VRL)",
            airtruct_builtins::builtin("mapping").unwrap().wasm,
            serde_json::to_string(MAPPING).unwrap(),
        ),
    ] {
        let c = engine.load(wasm).unwrap();
        let t = engine.time_instantiation(&c, &config, 500).unwrap();
        let us = |d: Duration| format!("{:.1} us", d.as_secs_f64() * 1e6);
        println!(
            "| {name} | {} KB | {} | {} | {} | {} |",
            wasm.len() / 1024,
            us(t.store),
            us(t.instantiate),
            us(t.init),
            us(t.drop)
        );
    }
}

/// The VRL components' size, their compile time with Cranelift (no cache), their load time from the on-disk
/// cache and their instantiation with a program. With `BENCH_COMPARE_DIR` set to a folder of other builds
/// (`mapping.wasm`, `filter.wasm`), those are measured in the same run, for a before and after.
fn components() {
    println!("\n## The VRL components: size, compile, load from cache, instantiate\n");
    println!("| component | size | compile (Cranelift) | load from cache | instantiate + init |");
    println!("|---|---|---|---|---|");
    let mut builds: Vec<(String, Vec<u8>, &str)> = Vec::new();
    if let Some(dir) = std::env::var_os("BENCH_COMPARE_DIR") {
        let dir = std::path::PathBuf::from(dir);
        for (name, config) in [("mapping", MAPPING), ("filter", FILTER)] {
            if let Ok(wasm) = std::fs::read(dir.join(format!("{name}.wasm"))) {
                builds.push((format!("{name} ({})", dir.display()), wasm, config));
            }
        }
    }
    for (name, config) in [("mapping", MAPPING), ("filter", FILTER)] {
        let wasm = airtruct_builtins::builtin(name).unwrap().wasm.to_vec();
        builds.push((format!("{name} (this build)"), wasm, config));
    }
    for (name, wasm, program) in builds {
        let cache =
            std::env::temp_dir().join(format!("airtruct-bench-components-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&cache);
        let make = || {
            Engine::new(EngineConfig {
                cache_dir: Some(cache.clone()),
                pool_instances: 8,
                ..EngineConfig::default()
            })
            .unwrap()
        };
        let started = Instant::now();
        let component = make().load(&wasm).unwrap();
        let compile = started.elapsed();
        drop(component);
        let rounds = 10;
        let mut load = Duration::ZERO;
        let mut warm = None;
        for _ in 0..rounds {
            let engine = make();
            let started = Instant::now();
            let component = engine.load(&wasm).unwrap();
            load += started.elapsed();
            warm = Some((engine, component));
        }
        let (engine, component) = warm.unwrap();
        let config = serde_json::to_string(program).unwrap();
        let t = engine.time_instantiation(&component, &config, 200).unwrap();
        println!(
            "| {name} | {} KB | {:.1} s | {:.1} ms | {:.0} us |",
            wasm.len() / 1024,
            compile.as_secs_f64(),
            load.as_secs_f64() * 1e3 / f64::from(rounds),
            (t.instantiate + t.init).as_secs_f64() * 1e6
        );
        let _ = std::fs::remove_dir_all(&cache);
    }
}

/// Builds the lean native loop (`guests/native-vrl`) with the guests' release profile, beside the guests' own
/// target directory; returns the program.
fn native_vrl() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    // <target>/<profile>/airtruct-bench
    let target = exe
        .parent()
        .and_then(|p| p.parent())
        .unwrap()
        .join("guests");
    let guests = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../guests");
    let status =
        std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
            .current_dir(&guests)
            .args(["build", "--release", "-p", "native-vrl"])
            .env("CARGO_TARGET_DIR", &target)
            .status()
            .expect("running cargo for guests/native-vrl");
    assert!(status.success(), "building guests/native-vrl failed");
    target.join("release/native-vrl")
}

/// One run of the lean native loop over the lines in `file`: its own timing of the loop, and the lines kept.
fn run_native_vrl(program: &std::path::Path, file: &std::path::Path) -> (Duration, u64) {
    let out = std::process::Command::new(program)
        .arg(file)
        .arg(MAPPING)
        .arg(FILTER)
        .output()
        .expect("running native-vrl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut parts = text.split_whitespace().map(|p| p.parse::<u64>().unwrap());
    let (ns, kept) = (parts.next().unwrap(), parts.next().unwrap());
    (Duration::from_nanos(ns), kept)
}

fn pipeline(engine: &Engine) {
    let total: u64 = 50_000;
    let rounds = 9;
    let lean = native_vrl();
    println!(
        "\n## generate -> mapping -> filter -> drop, one processor thread, {total} messages of 200 bytes\n"
    );
    println!(
        "Each round runs the variants one after the other; the best of {rounds} rounds is shown, as this"
    );
    println!("shared 2-core VM drifts by 2x between runs.\n");
    println!("| variant | messages/s | relative to VRL native |");
    println!("|---|---|---|");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let template = String::from_utf8(record(0))
        .unwrap()
        .replacen("\"id\":0", "\"id\":{{seq}}", 1);
    let config = serde_json::json!({
        "input": { "generate": { "count": total, "payload": template } },
        "pipeline": { "batch": { "size": 256, "period": "10ms" }, "threads": 1,
                      "processors": [ { "mapping": MAPPING }, { "filter": FILTER } ] },
        "output": { "drop": {} },
    });
    let lines = tempfile::NamedTempFile::new().unwrap();
    let mut text = Vec::new();
    for i in 0..total {
        text.extend_from_slice(&record(i));
        text.push(b'\n');
    }
    std::fs::write(lines.path(), &text).unwrap();
    let mut best = [Duration::MAX; 6];
    let mut kept_by = [0u64; 5];
    for _ in 0..rounds {
        let mut i = 0;
        let mut record = |(d, kept): (Duration, u64)| {
            best[i] = best[i].min(d);
            kept_by[i] = kept;
            i += 1;
        };
        // VRL natively in a tight loop: what a user would run instead.
        record(run_native_vrl(&lean, lines.path()));
        // Native: the same processor crates, called directly on batches of the same size, one after the
        // other, then fused.
        record(native_processors(total, false));
        record(native_processors(total, true));
        // Wasm processors alone: the built-in components on batches of the same size, likewise.
        record(wasm_processors(engine, total, false));
        record(wasm_processors(engine, total, true));
        // The whole runtime: generate input, batching, processor thread, acknowledgements, drop output.
        best[5] = best[5].min(run_to_end(engine, &rt, &config).0);
    }
    assert!(
        kept_by.iter().all(|k| *k == kept_by[0]),
        "the variants kept different numbers of messages: {kept_by:?}"
    );
    let [anchor, native, native_fused, wasm_only, wasm_fused, stream] = best;

    let n = total;
    let ratio = |d: Duration| format!("{:.2}x", anchor.as_secs_f64() / d.as_secs_f64());
    println!(
        "| VRL native (parse, run, serialize; fat LTO, one codegen unit) | {} | 1.00x |",
        rate(n, anchor)
    );
    println!(
        "| native processor crates (`guests/mapping`, `guests/filter` as a library), one call each | {} | {} |",
        rate(n, native),
        ratio(native)
    );
    println!(
        "| native processor crates, fused (one call, one parse) | {} | {} |",
        rate(n, native_fused),
        ratio(native_fused)
    );
    println!(
        "| wasm processors (components, same batches), one call each | {} | {} |",
        rate(n, wasm_only),
        ratio(wasm_only)
    );
    println!(
        "| wasm processors, fused (one call, one parse) | {} | {} |",
        rate(n, wasm_fused),
        ratio(wasm_fused)
    );
    println!(
        "| wasm stream (`airtruct` runtime end to end, fused) | {} | {} |",
        rate(n, stream),
        ratio(stream)
    );
}

/// The mapping and the filter fused, configured as the runtime configures them.
fn fused_config() -> String {
    serde_json::json!({ "steps": [ { "mapping": MAPPING }, { "filter": FILTER } ] }).to_string()
}

/// Messages a fused call kept: those without an error (the summary, last, has one).
fn kept_of(out: impl IntoIterator<Item = bool>) -> u64 {
    out.into_iter().filter(|failed| !failed).count() as u64
}

/// The built-in mapping and filter's own crates called natively on batches of 256 `record`s, one after the
/// other or `fused`: how long, and how many messages were kept. Alone (`airtruct-bench processors-native`), it
/// is what a profiler looks at.
fn native_processors(total: u64, fused: bool) -> (Duration, u64) {
    let mut m = mapping::Mapping::init(&serde_json::to_string(MAPPING).unwrap()).unwrap();
    let mut f = filter::Filter::init(&serde_json::to_string(FILTER).unwrap()).unwrap();
    let mut both = mapping::Mapping::init(&fused_config()).unwrap();
    // The batches are made before the clock starts, as the other variants' lines are.
    let batches: Vec<Vec<airtruct_sdk::Message>> = (0..total)
        .step_by(256)
        .map(|start| {
            (start..(start + 256).min(total))
                .map(|i| airtruct_sdk::Message::new(record(i)))
                .collect()
        })
        .collect();
    let t = Instant::now();
    let mut kept = 0u64;
    for batch in batches {
        let out = if fused {
            both.process(batch).unwrap()
        } else {
            f.process(m.process(batch).unwrap()).unwrap()
        };
        kept += kept_of(out.iter().map(|m| m.error.is_some()));
    }
    (t.elapsed(), kept)
}

/// The built-in mapping and filter components on batches of 256 `record`s, one after the other or `fused`: how
/// long, and how many messages were kept. Alone (`airtruct-bench processors-wasm`, with
/// `AIRTRUCT_WASM_PROFILER=perfmap`), it is what `perf` looks at.
fn wasm_processors(engine: &Engine, total: u64, fused: bool) -> (Duration, u64) {
    let load = |name: &str| {
        engine
            .load(airtruct_builtins::builtin(name).unwrap().wasm)
            .unwrap()
    };
    let instance = |name: &str, source: &str| {
        engine
            .instantiate(
                &load(name),
                &serde_json::to_string(source).unwrap(),
                Limits::default(),
            )
            .unwrap()
    };
    let mut m = instance("mapping", MAPPING);
    let mut f = instance("filter", FILTER);
    let mut both = engine
        .instantiate(&load("mapping"), &fused_config(), Limits::default())
        .unwrap();
    let batches: Vec<Vec<Message>> = (0..total)
        .step_by(256)
        .map(|start| {
            (start..(start + 256).min(total))
                .map(|i| Message {
                    payload: record(i),
                    metadata: Vec::new(),
                    error: None,
                })
                .collect()
        })
        .collect();
    let t = Instant::now();
    let mut kept = 0;
    for batch in &batches {
        let out = if fused {
            both.process(batch).unwrap()
        } else {
            f.process(&m.process(batch).unwrap()).unwrap()
        };
        kept += kept_of(out.iter().map(|m| m.error.is_some()));
    }
    (t.elapsed(), kept)
}

/// Runs a finite stream config to its end: how long it ran (after opening), and how many messages it received.
fn run_to_end(
    engine: &Engine,
    rt: &tokio::runtime::Runtime,
    config: &serde_json::Value,
) -> (Duration, u64) {
    let plan = validate_stream(
        airtruct_connectors::registry(),
        engine,
        config,
        &Default::default(),
    )
    .map_err(|e| format!("{e:?}"))
    .unwrap();
    rt.block_on(async {
        let metrics = Arc::new(StreamMetrics::default());
        let cx = BuildContext::local(engine.clone(), metrics.clone(), CancellationToken::new());
        let built = build_stream(plan, cx).await.unwrap();
        let t = Instant::now();
        run_stream(built).await.unwrap();
        (t.elapsed(), metrics.snapshot().received)
    })
}

/// Throughput of each buffer against no buffer, in the same run: generate -> mapping -> drop.
fn buffers(engine: &Engine) {
    let total: u64 = 100_000;
    let rounds = 3;
    println!(
        "\n## buffers: generate -> mapping -> drop, {total} messages of 200 bytes, batches of 256\n"
    );
    println!(
        "Each round runs every variant one after the other; the best of {rounds} rounds is shown.\n"
    );
    println!("| buffer | messages/s | relative to none |");
    println!("|---|---|---|");
    let dir = std::env::temp_dir().join(format!("airtruct-bench-buffers-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let template = String::from_utf8(record(0))
        .unwrap()
        .replacen("\"id\":0", "\"id\":{{seq}}", 1);
    let variants: Vec<(&str, serde_json::Value)> = vec![
        ("none", serde_json::Value::Null),
        ("`memory` (64 MiB)", serde_json::json!({"memory": {}})),
        (
            "`memory` (64 KiB, spillover, acknowledge: buffered)",
            serde_json::json!({"memory": {"limit": "64KiB", "spillover": true, "acknowledge": "buffered",
                                          "spill_dir": dir.join("spill")}}),
        ),
        (
            "`sqlite` (`synchronous: full`, the default)",
            serde_json::json!({"sqlite": {"path": dir.join("buffer.db")}}),
        ),
        (
            "`sqlite` (`synchronous: normal`)",
            serde_json::json!({"sqlite": {"path": dir.join("buffer.db"), "synchronous": "normal"}}),
        ),
        (
            "`system_window` (tumbling 1s of event time, 1000 messages a window)",
            serde_json::json!({"system_window": {"type": "tumbling", "size": "1s", "timestamp_field": "id"}}),
        ),
    ];
    let mut best = vec![Duration::MAX; variants.len()];
    for _ in 0..rounds {
        for (i, (_, buffer)) in variants.iter().enumerate() {
            let _ = std::fs::remove_file(dir.join("buffer.db"));
            let mut config = serde_json::json!({
                "input": { "generate": { "count": total, "payload": template } },
                "pipeline": { "batch": { "size": 256, "period": "10ms" }, "threads": 1,
                              "processors": [ { "mapping": MAPPING } ] },
                "output": { "drop": {} },
            });
            if !buffer.is_null() {
                config["buffer"] = buffer.clone();
            }
            let (d, received) = run_to_end(engine, &rt, &config);
            assert!(received >= total, "not everything went through");
            best[i] = best[i].min(d);
        }
    }
    for (i, (name, _)) in variants.iter().enumerate() {
        println!(
            "| {name} | {} | {:.2}x |",
            rate(total, best[i]),
            best[0].as_secs_f64() / best[i].as_secs_f64()
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    let engine = engine();
    println!(
        "# airtruct-bench ({} cores, {})",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        std::env::consts::ARCH
    );
    let sections = std::env::args().nth(1).unwrap_or_else(|| "all".into());
    if sections == "all" || sections == "boundary" {
        boundary(&engine);
    }
    if sections == "all" || sections == "instantiate" {
        instantiation(&engine);
    }
    if sections == "all" || sections == "components" {
        components();
    }
    if sections == "all" || sections == "pipeline" {
        pipeline(&engine);
    }
    // One variant alone, many times over, for a profiler: the lean native loop, and the processors fused as a
    // stream runs them, or `-apart`.
    if sections == "native-vrl" {
        let lean = native_vrl();
        let lines = tempfile::NamedTempFile::new().unwrap();
        let mut text = Vec::new();
        for i in 0..500_000 {
            text.extend_from_slice(&record(i));
            text.push(b'\n');
        }
        std::fs::write(lines.path(), &text).unwrap();
        let (d, kept) = run_native_vrl(&lean, lines.path());
        println!("VRL native: 500000 messages in {d:?}, {kept} kept");
    }
    for (name, fused) in [("", true), ("-apart", false)] {
        if sections == format!("processors-native{name}") {
            let (d, kept) = native_processors(500_000, fused);
            println!("native processor crates{name}: 500000 messages in {d:?}, {kept} kept");
        }
        if sections == format!("processors-wasm{name}") {
            let (d, kept) = wasm_processors(&engine, 500_000, fused);
            println!("wasm processors{name}: 500000 messages in {d:?}, {kept} kept");
        }
    }
    if sections == "all" || sections == "buffers" {
        buffers(&engine);
    }
    if sections == "all" || sections == "kafka" {
        kafka::kafka(&engine);
    }
    if sections == "all" || sections == "brokers" {
        brokers::brokers(&engine);
    }
    if sections == "all" || sections == "control" {
        control::control();
    }
    if sections == "all" || sections == "enrich" {
        enrich::enrich(&engine);
    }
    if sections == "inlining" {
        inlining::inlining();
    }
    if sections == "startup" {
        startup::startup();
    }
    if sections == "ingest" || (sections == "all" && ingest::wrk_installed()) {
        ingest::ingest();
    }
    // A few minutes and two hundred streams: only when asked for.
    if sections == "scale" {
        scale::scale();
    }
    // Ten minutes by default (SOAK_SECONDS): only when asked for.
    if sections == "soak" {
        soak::soak();
    }
}
