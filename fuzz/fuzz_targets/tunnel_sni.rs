//! The TCP tunnel's SNI (`tcp-<port>.<name>.<ns>.causeway.internal`, the
//! only thing a peer names a tunnel by): never panics, and an accepted SNI
//! is exactly the canonical one `tunnel_sni` writes for what it parsed to
//! (one tunnel, one name: no sign, leading zero, port 0, case or empty
//! label slips through to the authorization core).
#![no_main]

use causeway_gateway::tcp::{is_tunnel_sni, parse_tunnel_sni, tunnel_sni};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(sni) = std::str::from_utf8(data) else {
        return;
    };
    if let Some((ns, name, port)) = parse_tunnel_sni(sni) {
        assert!(is_tunnel_sni(sni), "{sni:?}");
        assert_ne!(port, 0, "{sni:?}");
        assert_eq!(tunnel_sni(ns, name, port), sni);
    }
});
