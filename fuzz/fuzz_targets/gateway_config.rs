//! The gateway configuration parser (YAML/JSON): never panics or hangs on
//! any document, validation never panics, and an accepted configuration
//! survives a JSON round trip.
#![no_main]

use causeway_gateway::config::parse_str;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(config) = parse_str(text) else {
        return;
    };
    let valid = config.validate().is_ok();
    let json = serde_json::to_string(&config).expect("a config serialises");
    let again = parse_str(&json).unwrap_or_else(|e| panic!("re-parsing {json} failed: {e}"));
    assert_eq!(again.validate().is_ok(), valid);
    assert_eq!(serde_json::to_string(&again).expect("serialises"), json);
});
