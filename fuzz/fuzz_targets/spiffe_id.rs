//! SPIFFE ID and trust-domain parsing: never panics, and whatever parses is
//! canonical (round-trips through `Display`) and uses only the characters
//! the SPIFFE-ID standard allows (so no NUL, `%`, upper case in the trust
//! domain, or non-ASCII can hide in an accepted ID).
#![no_main]

use causeway_trust::{SpiffeId, TrustDomain};
use libfuzzer_sys::fuzz_target;

fn td_char(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'_')
}

fn path_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'/')
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(id) = SpiffeId::new(s) {
        let text = id.to_string();
        assert_eq!(text, s, "an accepted id is canonical");
        assert_eq!(SpiffeId::new(&text).as_ref(), Ok(&id));
        assert!(id.trust_domain().name().bytes().all(td_char), "{s:?}");
        assert!(id.path().bytes().all(path_char), "{s:?}");
        assert!(
            !id.path().contains("//") && !id.path().ends_with('/'),
            "{s:?}"
        );
        for seg in id.path().split('/').skip(1) {
            assert!(seg != "." && seg != "..", "dot segment in {s:?}");
        }
        assert!(id.is_member_of(id.trust_domain()));
    }
    if let Ok(td) = TrustDomain::new(s) {
        assert!(td.name().bytes().all(td_char), "{s:?}");
        assert_eq!(TrustDomain::new(td.name()).as_ref(), Ok(&td));
        assert_eq!(td.id().trust_domain(), &td);
    }
});
