//! Host / `:authority` parsing: never panics, and an accepted host names an
//! RFC 1123 service and namespace (lower case, so policy lookups cannot be
//! dodged by case), a port in 1..=65535, and nothing else (no userinfo, path,
//! IPv6 literal, NUL or second port).
#![no_main]

use causeway_gateway::routing::parse_host;
use libfuzzer_sys::fuzz_target;

fn label(s: &str) -> bool {
    !s.is_empty()
        && s.len() < 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fuzz_target!(|data: &[u8]| {
    let Ok(host) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(h) = parse_host(host) else {
        return;
    };
    assert!(label(&h.name), "name {:?} from {host:?}", h.name);
    assert!(
        label(&h.namespace),
        "namespace {:?} from {host:?}",
        h.namespace
    );
    assert_ne!(h.port, Some(0));
    assert!(host.is_ascii(), "non-ascii host accepted: {host:?}");
    assert!(
        !host.contains(['@', '/', '\\', '\0', '[', ' ', '%', '?', '#']),
        "{host:?}"
    );
    // Case-insensitive and canonical: the lower-cased host parses the same.
    let lower = host.to_ascii_lowercase();
    assert_eq!(parse_host(&lower).ok(), Some(h.clone()));
    // Re-rendering the parsed host gives an equivalent parse.
    let rendered = match h.port {
        Some(p) => format!("{}.{}.svc.clusterset.local:{p}", h.name, h.namespace),
        None => format!("{}.{}.svc.clusterset.local", h.name, h.namespace),
    };
    assert_eq!(parse_host(&rendered).ok(), Some(h));
});
