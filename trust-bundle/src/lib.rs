//! SPIFFE-native identity for Causeway: SPIFFE IDs, SPIFFE bundles, a
//! per-trust-domain certificate authority and rustls verifiers that pick the
//! bundle by the peer's trust domain.
