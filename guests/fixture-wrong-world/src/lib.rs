//! Test fixture `fixture-wrong-world` (not a built-in): a component for the `other:thing` world (one export,
//! `run`), not `airtruct:processor`. The host must refuse to load it as a processor.

wit_bindgen::generate!({
    world: "thing",
    path: "wit",
});

/// The component.
pub struct Thing;

impl Guest for Thing {
    fn run() -> String {
        "not a processor".to_string()
    }
}

export!(Thing);
