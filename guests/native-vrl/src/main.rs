//! What a user would run instead of the sandbox, for `airtruct-bench pipeline`: VRL called natively in a tight
//! loop, as Vector's `remap` and `filter` transforms do. Each JSON line is parsed into a VRL value, the mapping runs
//! on it, the filter runs on the result, and what is kept is serialized. Built with the guests' release profile
//! (fat LTO, one codegen unit), not the host's.
//!
//! `native-vrl LINES MAPPING FILTER`: reads the JSON lines of the file `LINES` into memory, runs the loop over
//! them once, and prints `<nanoseconds> <lines kept>`.

use std::time::Instant;

use vrl_common::vrl::compiler::runtime::Runtime;
use vrl_common::vrl::compiler::{TargetValue, TimeZone};
use vrl_common::vrl::value::{ObjectMap, Secrets, Value};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, lines, mapping, filter] = &args[..] else {
        eprintln!("usage: native-vrl LINES MAPPING FILTER");
        std::process::exit(2);
    };
    let text = std::fs::read(lines).expect("reading the lines");
    let lines: Vec<&[u8]> = text
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    let mapping = vrl_common::compile(mapping).expect("the mapping compiles");
    // As the filter processor compiles it: `.qty > 2` can fail at runtime, so its error is caught.
    let filter = vrl_common::compile_condition(filter).expect("the filter compiles");
    let timezone = TimeZone::parse("UTC").unwrap_or_default();
    let mut runtime = Runtime::default();
    let mut out = Vec::with_capacity(text.len() * 2);
    let mut kept = 0u64;
    let started = Instant::now();
    for line in &lines {
        let value: Value = serde_json::from_slice(line).expect("a JSON line");
        let mut target = TargetValue {
            value,
            metadata: Value::Object(ObjectMap::new()),
            secrets: Secrets::default(),
        };
        let mapped = runtime.resolve(&mut target, &mapping, &timezone);
        runtime.clear();
        if mapped.is_err() {
            continue;
        }
        let keep = runtime.resolve(&mut target, &filter, &timezone);
        runtime.clear();
        if matches!(keep, Ok(Value::Boolean(true))) {
            serde_json::to_writer(&mut out, &target.value).expect("serializing");
            out.push(b'\n');
            kept += 1;
        }
    }
    let elapsed = started.elapsed();
    std::hint::black_box(&out);
    println!("{} {kept}", elapsed.as_nanos());
}
