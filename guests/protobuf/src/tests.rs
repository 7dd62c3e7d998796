use serde_json::{Value, json};

use super::*;

fn proto(config: Value) -> Protobuf {
    Protobuf::from_config(&config.to_string()).unwrap_or_else(|e| panic!("{e:?}"))
}

fn json_of(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

const COMMON: &str = r#"
syntax = "proto3";
package shop.common;
message Money { string currency = 1; int64 units = 2; }
"#;

const ORDER: &str = r#"
syntax = "proto3";
package shop.v1;
import "common/money.proto";
import "google/protobuf/timestamp.proto";
enum Status { STATUS_UNSPECIFIED = 0; NEW = 1; PAID = 2; }
message Line { string sku = 1; uint32 qty = 2; }
message Order {
  int64 order_id = 1;
  Status status = 2;
  repeated Line lines = 3;
  map<string, string> labels = 4;
  bytes signature = 5;
  shop.common.Money total = 6;
  google.protobuf.Timestamp placed_at = 7;
  oneof contact { string email = 8; string phone = 9; }
  double weight = 10;
}
"#;

fn files() -> Value {
    json!({"common/money.proto": COMMON, "shop/order.proto": ORDER})
}

#[test]
fn json_goes_to_protobuf_and_back_with_imports_and_well_known_types() {
    let to = proto(
        json!({"operator": "from_json", "message": "shop.v1.Order", "import_paths": ["protos"], "$files": files()}),
    );
    let from = proto(
        json!({"operator": "to_json", "message": "shop.v1.Order", "import_paths": ["protos"], "$files": files()}),
    );
    let order = json!({
        "orderId": "9007199254740993", "status": "PAID",
        "lines": [{"sku": "a-1", "qty": 2}, {"sku": "b-2", "qty": 1}],
        "labels": {"gift": "yes"}, "signature": "AAEC/w==",
        "total": {"currency": "EUR", "units": "12"}, "placedAt": "2026-12-03T10:00:00Z",
        "email": "a@example.com", "weight": 1.5
    });
    let bytes = to.from_json(order.to_string().as_bytes()).unwrap();
    assert_eq!(json_of(&from.to_json(&bytes).unwrap()), order);

    // The proto names, when asked for; fields at their defaults are left out.
    let names = proto(
        json!({"operator": "to_json", "message": "shop.v1.Order", "import_paths": ["protos"],
        "use_proto_names": true, "$files": files()}),
    );
    let bytes = to
        .from_json(br#"{"orderId": 7, "placedAt": "1970-01-01T00:00:01Z"}"#)
        .unwrap();
    assert_eq!(
        json_of(&names.to_json(&bytes).unwrap()),
        json!({"order_id": "7", "placed_at": "1970-01-01T00:00:01Z"})
    );
}

#[test]
fn encodes_as_the_protobuf_documentation_says() {
    // The encoding guide's examples: a = 150 is 08 96 01; b = "testing" is 12 07 74 65 73 74 69 6e 67.
    let schema = "syntax = \"proto2\"; message Test1 { optional int32 a = 1; } message Test2 { optional string b = 2; }";
    let to = proto(json!({"operator": "from_json", "message": "Test1", "schema": schema}));
    assert_eq!(to.from_json(br#"{"a": 150}"#).unwrap(), [0x08, 0x96, 0x01]);
    let from = proto(json!({"operator": "to_json", "message": "Test1", "schema": schema}));
    assert_eq!(
        json_of(&from.to_json(&[0x08, 0x96, 0x01]).unwrap()),
        json!({"a": 150})
    );
    let to = proto(json!({"operator": "from_json", "message": "Test2", "schema": schema}));
    assert_eq!(
        to.from_json(br#"{"b": "testing"}"#).unwrap(),
        b"\x12\x07testing"
    );
    let e = from.to_json(&[0x08, 0x96]).unwrap_err();
    assert!(e.starts_with("not a Test1 message"), "{e}");
}

#[test]
fn json_that_does_not_fit_fails_unless_unknown_fields_are_discarded() {
    let config = |discard: bool| {
        proto(
            json!({"operator": "from_json", "message": "shop.v1.Order", "import_paths": ["protos"],
            "discard_unknown": discard, "$files": files()}),
        )
    };
    let e = config(false)
        .from_json(br#"{"orderId": 1, "colour": "red"}"#)
        .unwrap_err();
    assert!(e.starts_with("not JSON of a shop.v1.Order message"), "{e}");
    assert!(e.contains("colour"), "{e}");
    assert_eq!(
        config(true)
            .from_json(br#"{"orderId": 1, "colour": "red"}"#)
            .unwrap(),
        [0x08, 0x01]
    );
    let e = config(false)
        .from_json(br#"{"status": "LOST"}"#)
        .unwrap_err();
    assert!(e.contains("LOST"), "{e}");
    // As protoc's converters do, discarding the unknown also drops enum names the type does not have.
    assert_eq!(
        config(true).from_json(br#"{"status": "LOST"}"#).unwrap(),
        b""
    );
    assert!(
        config(true)
            .from_json(br#"{"lines": [{"qty": -1}]}"#)
            .is_err()
    );
    assert!(config(true).from_json(b"{} trailing").is_err());
}

#[test]
fn config_problems_name_their_field() {
    let err = |config: Value| Protobuf::from_config(&config.to_string()).err().unwrap();
    let e = err(json!({"operator": "to_json", "message": "x"}));
    assert!(
        e[0].message.contains("give the message definitions"),
        "{e:?}"
    );
    let e = err(
        json!({"operator": "to_json", "message": "shop.v1.Nope", "import_paths": ["p"], "$files": files()}),
    );
    assert_eq!(e[0].path, ".message");
    assert!(
        e[0].message
            .ends_with("(they define: shop.common.Money, shop.v1.Line, shop.v1.Order)"),
        "{e:?}"
    );
    let e = err(
        json!({"operator": "to_json", "message": "A", "schema": "syntax = \"proto3\";\nmessage A { int32 = 1; }"}),
    );
    assert_eq!(e[0].path, ".schema");
    assert!(
        e[0].message.starts_with("invalid .proto definitions"),
        "{e:?}"
    );
    let e = err(
        json!({"operator": "to_json", "message": "A", "schema": "syntax = \"proto3\"; import \"missing.proto\";"}),
    );
    assert!(e[0].message.contains("missing.proto"), "{e:?}");
    let e = err(json!({"operator": "to_json", "message": "A", "import_paths": ["empty"]}));
    assert_eq!(e[0].path, ".import_paths");
    assert!(e[0].message.contains("no .proto file"), "{e:?}");
    // Inline definitions may import the files under the paths.
    let inline = "syntax = \"proto3\"; import \"common/money.proto\"; message Price { shop.common.Money value = 1; }";
    let p = proto(
        json!({"operator": "from_json", "message": "Price", "schema": inline, "import_paths": ["p"], "$files": files()}),
    );
    assert_eq!(
        p.from_json(br#"{"value": {"units": 1}}"#).unwrap(),
        [0x0a, 0x02, 0x10, 0x01]
    );
}
