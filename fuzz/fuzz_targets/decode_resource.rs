//! The strict model/policy decoder behind every API write: never panics,
//! and a decoded resource re-encodes to JSON that decodes to the same value
//! (what is validated is exactly what is stored and served).
#![no_main]

use causeway_api::model::{Resource, decode_resource};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let Ok(resource) = decode_resource(value) else {
        return;
    };
    let encoded = serde_json::to_value(&resource).expect("a resource serialises");
    let again: Resource = decode_resource(encoded.clone())
        .unwrap_or_else(|e| panic!("re-decoding {encoded} failed: {e}"));
    assert_eq!(again, resource);
});
