use serde_json::{Value, json};

use super::*;

fn avro(config: Value) -> Avro {
    Avro::from_config(&config.to_string()).unwrap_or_else(|e| panic!("{e:?}"))
}

fn json_of(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

const ORDER: &str = r#"{
  "type": "record", "name": "Order", "namespace": "shop",
  "fields": [
    {"name": "id", "type": "long"},
    {"name": "qty", "type": "int"},
    {"name": "ratio", "type": "float"},
    {"name": "price", "type": {"type": "bytes", "logicalType": "decimal", "precision": 9, "scale": 2}},
    {"name": "note", "type": ["null", "string"], "default": null},
    {"name": "status", "type": {"type": "enum", "name": "Status", "symbols": ["NEW", "PAID"]}, "default": "NEW"},
    {"name": "tags", "type": {"type": "array", "items": "string"}, "default": []},
    {"name": "attrs", "type": {"type": "map", "values": "double"}, "default": {}},
    {"name": "raw", "type": "bytes", "default": ""},
    {"name": "hash", "type": {"type": "fixed", "name": "Hash", "size": 4}},
    {"name": "ref", "type": {"type": "string", "logicalType": "uuid"}},
    {"name": "day", "type": {"type": "int", "logicalType": "date"}},
    {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    {"name": "wait", "type": {"type": "fixed", "name": "Wait", "size": 12, "logicalType": "duration"}},
    {"name": "shipping", "type": {"type": "record", "name": "Address", "fields": [
      {"name": "city", "type": "string"}
    ]}},
    {"name": "billing", "type": ["null", "Address"], "default": null}
  ]
}"#;

#[test]
fn json_goes_to_avro_and_back_unchanged_with_every_kind_of_field() {
    let to = avro(json!({"operator": "from_json", "schema": ORDER}));
    let from = avro(json!({"operator": "to_json", "schema": ORDER}));
    let order = json!({
        "id": 9007199254740993i64, "qty": -3, "ratio": "NaN", "price": "-1234.50", "note": "gift",
        "status": "PAID", "tags": ["a", "b"], "attrs": {"w": 1.5, "h": 2.0}, "raw": "AAEC/w==",
        "hash": "3q2+7w==", "ref": "7d444840-9dc0-11d1-b245-5ffdce74fad2", "day": 19000,
        "at": 1700000000123i64, "wait": {"months": 1, "days": 2, "millis": 3},
        "shipping": {"city": "Oslo"}, "billing": {"city": "Bergen"}
    });
    let bytes = to.from_json(order.to_string().as_bytes()).unwrap();
    let back = json_of(&from.to_json(&bytes).unwrap());
    assert_eq!(back, order);
    // Fields in the schema's order, not sorted.
    let text = String::from_utf8(from.to_json(&bytes).unwrap()).unwrap();
    assert!(
        text.starts_with(r#"{"id":9007199254740993,"qty":-3,"ratio":"NaN","price":"-1234.50""#),
        "{text}"
    );

    // Missing fields take their defaults; an optional record is null.
    let minimal = json!({"id": 1, "qty": 0, "ratio": 0.5, "price": 7, "hash": "AAAAAA==",
        "ref": "7d444840-9dc0-11d1-b245-5ffdce74fad2", "day": 0, "at": 0,
        "wait": {"months": 0, "days": 0, "millis": 0}, "shipping": {"city": "x"}, "unknown": true});
    let back = json_of(
        &from
            .to_json(&to.from_json(minimal.to_string().as_bytes()).unwrap())
            .unwrap(),
    );
    assert_eq!(back["price"], "7.00");
    assert_eq!(back["note"], Value::Null);
    assert_eq!(back["status"], "NEW");
    assert_eq!(
        (&back["tags"], &back["attrs"], &back["raw"]),
        (&json!([]), &json!({}), &json!(""))
    );
    assert_eq!(back["billing"], Value::Null);
    assert!(back.get("unknown").is_none());
}

#[test]
fn encodes_as_the_avro_specification_says() {
    // The specification's own example: {"a": 27, "b": "foo"} is 36 06 66 6f 6f.
    let schema = r#"{"type": "record", "name": "test", "fields": [
        {"name": "a", "type": "long"}, {"name": "b", "type": "string"}]}"#;
    let to = avro(json!({"operator": "from_json", "schema": schema}));
    assert_eq!(
        to.from_json(br#"{"a": 27, "b": "foo"}"#).unwrap(),
        [0x36, 0x06, 0x66, 0x6f, 0x6f]
    );
    let from = avro(json!({"operator": "to_json", "schema": schema}));
    assert_eq!(
        json_of(&from.to_json(&[0x36, 0x06, 0x66, 0x6f, 0x6f]).unwrap()),
        json!({"a": 27, "b": "foo"})
    );
    // A union is its branch index then the value: ["null", "string"] with "a" is 02 02 61.
    let to = avro(json!({"operator": "from_json", "schema": ["null", "string"]}));
    assert_eq!(to.from_json(br#""a""#).unwrap(), [0x02, 0x02, 0x61]);
    assert_eq!(to.from_json(b"null").unwrap(), [0x00]);
    // Bytes left over mean the payload was written with another schema.
    let e = from
        .to_json(&[0x36, 0x06, 0x66, 0x6f, 0x6f, 0x00])
        .unwrap_err();
    assert!(e.contains("1 bytes left over"), "{e}");
    let e = from.to_json(&[0x36, 0x7f]).unwrap_err();
    assert!(e.starts_with("not an Avro datum of this schema"), "{e}");
}

#[test]
fn frames_single_objects_and_the_confluent_wire_format() {
    let schema = r#"{"type": "record", "name": "R", "fields": [{"name": "n", "type": "int"}]}"#;
    let other = r#"{"type": "record", "name": "R", "fields": [{"name": "m", "type": "int"}]}"#;
    let single = avro(json!({"operator": "from_json", "encoding": "single", "schema": schema}));
    let bytes = single.from_json(br#"{"n": 1}"#).unwrap();
    assert_eq!(&bytes[..2], [0xC3, 0x01]);
    assert_eq!(&bytes[10..], [0x02]);
    let read = avro(json!({"operator": "to_json", "encoding": "single", "schema": schema}));
    assert_eq!(json_of(&read.to_json(&bytes).unwrap()), json!({"n": 1}));
    let wrong = avro(json!({"operator": "to_json", "encoding": "single", "schema": other}));
    let e = wrong.to_json(&bytes).unwrap_err();
    assert!(
        e.starts_with("written with another schema: fingerprint"),
        "{e}"
    );
    let e = read.to_json(&[0x02]).unwrap_err();
    assert!(e.contains("single-object encoding"), "{e}");

    let confluent = avro(
        json!({"operator": "from_json", "encoding": "confluent", "schema_id": 42, "schema": schema}),
    );
    let bytes = confluent.from_json(br#"{"n": -1}"#).unwrap();
    assert_eq!(bytes, [0, 0, 0, 0, 42, 0x01]);
    let any = avro(json!({"operator": "to_json", "encoding": "confluent", "schema": schema}));
    assert_eq!(json_of(&any.to_json(&bytes).unwrap()), json!({"n": -1}));
    let seven = avro(
        json!({"operator": "to_json", "encoding": "confluent", "schema_id": 7, "schema": schema}),
    );
    assert_eq!(
        seven.to_json(&bytes).unwrap_err(),
        "written with schema id 42, not 7"
    );
    assert!(
        any.to_json(&[1, 2])
            .unwrap_err()
            .contains("Confluent wire format")
    );
}

#[test]
fn a_value_that_does_not_fit_fails_with_where_and_why() {
    let to = avro(json!({"operator": "from_json", "schema": ORDER}));
    let base = json!({"id": 1, "qty": 0, "ratio": 0.5, "price": "1", "hash": "AAAAAA==",
        "ref": "7d444840-9dc0-11d1-b245-5ffdce74fad2", "day": 0, "at": 0,
        "wait": {"months": 0, "days": 0, "millis": 0}, "shipping": {"city": "x"}});
    let fails = |patch: Value| {
        let mut order = base.clone();
        for (k, v) in patch.as_object().unwrap() {
            if v.is_null() {
                order.as_object_mut().unwrap().remove(k);
            } else {
                order[k] = v.clone();
            }
        }
        to.from_json(order.to_string().as_bytes()).unwrap_err()
    };
    assert_eq!(
        fails(json!({"id": null})),
        "/id: required by the schema, and missing"
    );
    assert_eq!(
        fails(json!({"qty": 3000000000i64})),
        "/qty: expected an int (32 bits), found a number"
    );
    assert_eq!(
        fails(json!({"tags": ["a", 2]})),
        "/tags/1: expected a string, found a number"
    );
    assert_eq!(
        fails(json!({"status": "LOST"})),
        r#"/status: "LOST" is not a symbol of Status (NEW, PAID)"#
    );
    assert_eq!(
        fails(json!({"price": "1.234"})),
        "/price: 1.234 has more than 2 digits after the point"
    );
    assert_eq!(
        fails(json!({"price": "12345678.9"})),
        "/price: 12345678.9 has more than 9 digits"
    );
    assert_eq!(
        fails(json!({"hash": "AA=="})),
        "/hash: expected 4 bytes for fixed Hash, found 1"
    );
    assert_eq!(
        fails(json!({"shipping": {"town": "x"}})),
        "/shipping/city: required by the schema, and missing"
    );
    let e = fails(json!({"note": 5}));
    assert!(
        e.starts_with("/note: fits no branch of the union: expected null"),
        "{e}"
    );
    assert!(
        to.from_json(b"{")
            .unwrap_err()
            .starts_with("payload is not valid JSON")
    );
}

#[test]
fn config_problems_name_their_field() {
    let err = |config: Value| Avro::from_config(&config.to_string()).err().unwrap();
    let e = err(json!({"operator": "to_json"}));
    assert!(e[0].message.contains("give the Avro schema"), "{e:?}");
    let e = err(json!({"operator": "to_json", "schema": "\"int\"", "schema_path": "a.avsc"}));
    assert!(e[0].message.contains("not both"), "{e:?}");
    let e = err(json!({"operator": "to_json", "schema": {"type": "record", "name": "R"}}));
    assert_eq!(e[0].path, ".schema");
    assert!(e[0].message.starts_with("invalid Avro schema"), "{e:?}");
    let e = err(json!({"operator": "to_json", "schema_path": "a.avsc", "$files": {"a.avsc": "{"}}));
    assert_eq!(e[0].path, ".schema_path");
    let e = err(json!({"operator": "to_json", "schema_path": "a.avsc"}));
    assert!(e[0].message.contains("was not read by the host"), "{e:?}");
    let e = err(json!({"operator": "sideways", "schema": "\"int\""}));
    assert_eq!(e[0].path, ".operator");
    let e = err(json!({"operator": "to_json", "schema": "\"int\"", "schema_id": 1}));
    assert_eq!(e[0].path, ".schema_id");
    // A schema from a file the host read.
    let file = avro(
        json!({"operator": "to_json", "schema_path": "/files/n.avsc", "$files": {"/files/n.avsc": "\"long\""}}),
    );
    assert_eq!(json_of(&file.to_json(&[0x36]).unwrap()), json!(27));
}
