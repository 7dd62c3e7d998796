//! Fused steps against the same steps one by one (`steps.rs`).

use super::*;

/// The steps of `list` fused, as the runtime configures them.
fn fused(list: &[(StepKind, &str)]) -> Steps {
    let steps: Vec<serde_json::Value> = list
        .iter()
        .map(|(k, text)| serde_json::json!({ k.name(): text }))
        .collect();
    Steps::from_config(
        StepKind::Mapping,
        &serde_json::json!({ "steps": steps }).to_string(),
    )
    .unwrap_or_else(|e| panic!("{}: {}", e[0].path, e[0].message))
}

/// Each step of `list` as a processor of its own, the message through them one after the other.
fn one_by_one(list: &[(StepKind, &str)], msg: Message) -> Outcome {
    let mut msg = msg;
    for (at, (kind, text)) in list.iter().enumerate() {
        let mut step = Steps::from_config(*kind, &serde_json::to_string(text).unwrap()).unwrap();
        msg = match step.run(msg) {
            Outcome::Keep(m) => m,
            Outcome::Drop(_) => return Outcome::Drop(at),
            Outcome::Fail(m, _, e) => return Outcome::Fail(m, at, e),
        };
    }
    Outcome::Keep(msg)
}

fn same(a: &Outcome, b: &Outcome) -> bool {
    match (a, b) {
        (Outcome::Keep(x), Outcome::Keep(y)) => {
            x.payload == y.payload && x.metadata == y.metadata && x.error == y.error
        }
        (Outcome::Drop(x), Outcome::Drop(y)) => x == y,
        (Outcome::Fail(x, i, e), Outcome::Fail(y, j, f)) => {
            i == j && e == f && x.payload == y.payload && x.metadata == y.metadata
        }
        _ => false,
    }
}

/// Runs every message through `list` fused and one by one: the outcomes are the same.
fn check(list: &[(StepKind, &str)], messages: &[Message]) -> Vec<Outcome> {
    let mut steps = fused(list);
    messages
        .iter()
        .map(|msg| {
            let a = steps.run(msg.clone());
            let b = one_by_one(list, msg.clone());
            assert!(
                same(&a, &b),
                "{list:?} on {msg:?}:\nfused {a:?}\none by one {b:?}"
            );
            a
        })
        .collect()
}

fn json(s: &str) -> Message {
    Message::new(s)
}

use StepKind::{Filter, Mapping};

#[test]
fn mapping_then_filter() {
    let list = [
        (
            Mapping,
            ".name = upcase!(.name)\n.total = to_int!(.qty) * to_int!(.price)\ndel(.internal)",
        ),
        (Filter, ".qty > 2"),
    ];
    let out = check(
        &list,
        &[
            json(r#"{"name":"ada","qty":3,"price":2,"internal":1}"#),
            json(r#"{"name":"bob","qty":1,"price":2}"#),
            json(r#"{"name":7,"qty":3,"price":2}"#),
            json(r#"{"name":"cy","qty":"3","price":2}"#),
            json("not json"),
        ],
    );
    let Outcome::Keep(m) = &out[0] else {
        panic!("{:?}", out[0])
    };
    assert_eq!(m.payload, br#"{"name":"ADA","price":2,"qty":3,"total":6}"#);
    assert!(matches!(out[1], Outcome::Drop(1)));
    assert!(matches!(&out[2], Outcome::Fail(m, 0, e)
        if e.starts_with("mapping failed") && m.payload == br#"{"name":7,"qty":3,"price":2}"#));
    // The filter fails on a string quantity, with the mapped message.
    assert!(matches!(&out[3], Outcome::Fail(m, 1, e)
        if e.starts_with("filter failed") && m.payload.starts_with(br#"{"name":"CY""#)));
}

#[test]
fn a_later_mapping_fails_with_what_it_was_given() {
    let list = [
        (Mapping, ".a = 1\n%seen = true"),
        (Mapping, ".b = 2\n%gone = 1\n.c = to_int!(.s)"),
        (Filter, "true"),
        (Mapping, "abort \"no\""),
    ];
    let mut msg = json(r#"{"s":"x"}"#);
    msg.metadata.insert("k", "v");
    let out = check(&list, &[msg.clone(), json(r#"{"s":"5"}"#)]);
    let Outcome::Fail(m, 1, _) = &out[0] else {
        panic!("{:?}", out[0])
    };
    assert_eq!(m.payload, br#"{"a":1,"s":"x"}"#);
    assert_eq!(m.metadata.get("seen"), Some("true"));
    assert_eq!(m.metadata.get("gone"), None);
    assert!(matches!(&out[1], Outcome::Fail(_, 3, e) if e == "mapping aborted: no"));
}

#[test]
fn between_steps_values_are_what_was_written() {
    let values = [json(r#"{"n":1}"#), json("raw text")];
    // Timestamps and regexes are strings once written.
    check(
        &[
            (Mapping, ".ts = t'2024-01-02T03:04:05Z'\n.r = r'a+'"),
            (Filter, "is_string(.ts) && is_string(.r)"),
        ],
        &values,
    );
    // Metadata values are strings; `null` removes a key.
    check(
        &[
            (Mapping, "%n = 42\n%o = {\"a\": [1]}\n%k = null"),
            (
                Filter,
                "%n == \"42\" && %o == \"{\\\"a\\\":[1]}\" && !exists(%k)",
            ),
        ],
        &values,
    );
    // A raw-text result that is JSON is read as JSON by the next step.
    let out = check(
        &[(Mapping, ". = \"123\""), (Mapping, ". = is_integer(.)")],
        &values,
    );
    assert!(matches!(&out[1], Outcome::Keep(m) if m.payload == b"true"));
    // Metadata that is not an object fails the mapping that made it, with what it was given.
    let out = check(
        &[
            (Mapping, ".a = 1"),
            (Mapping, ".b = 2\n% = 5"),
            (Filter, "true"),
        ],
        &values,
    );
    assert!(matches!(&out[0], Outcome::Fail(m, 1, e)
        if m.payload == br#"{"a":1,"n":1}"# && e.contains("must be an object")));
}

#[test]
fn what_a_mapping_writes_is_what_the_next_step_reads_and_what_leaves() {
    // A raw-text result that is JSON: the next step reads JSON, and the bytes leave as they were written.
    let out = check(
        &[(Mapping, ". = slice!(string!(.), 2)"), (Filter, "true")],
        &[json(r#"x {"b": 1.50}"#)],
    );
    assert!(matches!(&out[0], Outcome::Keep(m) if m.payload == br#"{"b": 1.50}"#));
    check(
        &[
            (Mapping, ". = slice!(string!(.), 2)"),
            (Filter, ".b == 1.5"),
        ],
        &[json(r#"x {"b": 1.50}"#), json("x 7")],
    );
    // A mapping's metadata written back sorted, even when a later one undoes its change.
    let mut msg = json("{}");
    msg.metadata.insert("z", "1");
    msg.metadata.insert("a", "2");
    check(
        &[
            (Mapping, "%tmp = \"x\""),
            (Mapping, "del(%tmp)"),
            (Filter, "true"),
        ],
        &[msg],
    );
    // An infinite number is `null` once written.
    check(
        &[
            (Mapping, ".x = to_float!(\"1e999\")"),
            (Filter, "is_null(.x)"),
        ],
        &[json("{}")],
    );
}

#[test]
fn a_failure_vrl_did_not_foresee_carries_what_the_step_was_given() {
    // `return` inside a closure fails at runtime in a program VRL calls infallible.
    let out = check(
        &[
            (Mapping, ".a = 1"),
            (Mapping, ".b = 2\n. = map_values(.) -> |v| { return v }"),
        ],
        &[json(r#"{"n":1}"#)],
    );
    assert!(matches!(&out[0], Outcome::Fail(m, 1, _) if m.payload == br#"{"a":1,"n":1}"#));
}

#[test]
fn filters_first_and_only() {
    check(
        &[
            (Filter, ".level == \"error\""),
            (Mapping, ".seen = true"),
            (Filter, ".n"),
        ],
        &[
            json(r#"{"level":"info","n":true}"#),
            json(r#"{"level":"error","n":true}"#),
            json(r#"{"level":"error","n":3}"#),
        ],
    );
    // Only filters: the payload passes through untouched.
    let mut steps = fused(&[(Filter, "true"), (Filter, ".n == 1")]);
    let Outcome::Keep(m) = steps.run(json(r#"{ "n" : 1 }"#)) else {
        panic!()
    };
    assert_eq!(m.payload, br#"{ "n" : 1 }"#);
}

#[test]
fn fused_results_are_marked() {
    let mut steps = fused(&[(Mapping, ".n = to_int!(.n)"), (Filter, ".n > 1")]);
    let out = steps.process(vec![
        json(r#"{"n":"1"}"#),
        json(r#"{"n":"x"}"#),
        json(r#"{"n":"2"}"#),
        json(r#"{"n":"0"}"#),
    ]);
    assert_eq!(out.len(), 3);
    assert!(
        out[0]
            .error
            .as_deref()
            .unwrap()
            .starts_with("\u{0}0\u{0}mapping failed"),
        "{:?}",
        out[0].error
    );
    assert_eq!(out[0].payload, br#"{"n":"x"}"#);
    assert_eq!(out[1].error, None);
    assert_eq!(out[1].payload, br#"{"n":2}"#);
    assert_eq!(out[2].error.as_deref(), Some("\u{0}drops\u{0}0,2"));
    assert!(out[2].payload.is_empty());
    // Configured the usual way, results are not marked.
    let mut one = Steps::from_config(Mapping, r#"".n = to_int!(.n)""#).unwrap();
    let out = one.process(vec![json(r#"{"n":"x"}"#)]);
    assert_eq!(out.len(), 1);
    assert!(
        out[0]
            .error
            .as_deref()
            .unwrap()
            .starts_with("mapping failed")
    );
}

#[test]
fn fused_config_errors_say_where() {
    let e = Steps::from_config(
        Mapping,
        r#"{"steps": [{"mapping": ".a = 1"}, {"filter": {"condition": ".x = 1"}}, {"split": "x"}]}"#,
    )
    .err()
    .unwrap();
    assert_eq!(e.len(), 2);
    assert_eq!(e[0].path, ".steps[1].filter.condition");
    assert_eq!(e[1].path, ".steps[2]");
    assert!(Steps::from_config(Mapping, r#"{"steps": []}"#).is_err());
    assert!(Steps::from_config(Mapping, r#"{"steps": [], "x": 1}"#).is_err());
}
