//! The SPIFFE bundle parser: never panics on any input, and a bundle that
//! parses serialises to a document that parses to the same bundle (so what
//! the API stores is what gateways will load).
#![no_main]

use causeway_trust::Bundle;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(bundle) = Bundle::parse(data) else {
        return;
    };
    let json = bundle.to_json();
    let again = Bundle::parse(json.as_bytes()).expect("a serialised bundle parses");
    assert_eq!(again.sequence(), bundle.sequence());
    assert_eq!(again.refresh_hint(), bundle.refresh_hint());
    assert_eq!(again.keys(), bundle.keys());
    assert_eq!(
        again.trust_anchors().len(),
        bundle.x509_authorities().count()
    );
    assert_eq!(again.to_json(), json, "serialisation is stable");
});
