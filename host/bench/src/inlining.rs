//! Cranelift's inlining against none: the wasm mapping and filter (the `pipeline` table's processors alone), and
//! the time to compile the two components, with an engine of each kind, side by side in one run.

use std::time::{Duration, Instant};

use airtruct_engine::{Engine, EngineConfig};

const MESSAGES: u64 = 200_000;
const ROUNDS: usize = 3;

fn engine(inlining: bool) -> Engine {
    Engine::new(EngineConfig {
        cache_dir: None,
        pool_instances: 16,
        inlining,
        ..EngineConfig::default()
    })
    .unwrap()
}

pub(crate) fn inlining() {
    println!(
        "\n## Cranelift inlining: the wasm mapping and filter, {MESSAGES} messages, batches of 256\n"
    );
    println!(
        "Each round runs both engines one after the other; the best of {ROUNDS} rounds is shown.\n"
    );
    let engines = [
        ("no inlining (the default)", engine(false)),
        ("inlining", engine(true)),
    ];
    let mut compile = [Duration::ZERO; 2];
    for (i, (_, e)) in engines.iter().enumerate() {
        let t = Instant::now();
        for kind in ["mapping", "filter"] {
            e.load(airtruct_builtins::builtin(kind).unwrap().wasm)
                .unwrap();
        }
        compile[i] = t.elapsed();
    }
    let mut best = [0f64; 2];
    for _ in 0..ROUNDS {
        for (i, (_, e)) in engines.iter().enumerate() {
            let (d, kept) = crate::wasm_processors(e, MESSAGES, false);
            assert!(kept > 0);
            best[i] = best[i].max(MESSAGES as f64 / d.as_secs_f64());
        }
    }
    println!("| engine | messages/s | relative | compiling mapping and filter |");
    println!("|---|---|---|---|");
    for (i, (name, _)) in engines.iter().enumerate() {
        println!(
            "| {name} | {:.0} | {:.2}x | {:.1} s |",
            best[i],
            best[i] / best[0],
            compile[i].as_secs_f64()
        );
    }
}
