//! The local federation (`causeway-local`, behind `./scripts/local-federation.sh`)
//! starts, routes and stops cleanly.

#![allow(clippy::unwrap_used)]

use std::process::Command;

/// `causeway-local --once` starts the API and three gateways, drives
/// traffic and prints a view in which each flow is served where the
/// residency and locality rules say, then stops every process.
#[test]
fn local_federation_once_shows_routes_and_denials() {
    let out = Command::new(env!("CARGO_BIN_EXE_causeway-local"))
        .args(["--once", "--refresh", "2"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    for cluster in ["eu-west-1", "eu-central-1", "us-east-1"] {
        assert!(stdout.contains(cluster), "{stdout}");
    }
    let line = |prefix: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no line {prefix:?} in\n{stdout}"))
            .to_owned()
    };
    // EU-only service called from the US: served in the EU, never locally.
    let ledger = line("us-east-1 -> payments/ledger");
    assert!(ledger.contains("200 eu-"), "{ledger}");
    assert!(!ledger.contains("200 us-east-1"), "{ledger}");
    // EU-only service exported only in the US: a residency denial.
    let audit = line("eu-west-1 -> payments/audit");
    assert!(
        audit.contains("DENY 503") && audit.contains("503 residency"),
        "{audit}"
    );
    // Classified request goes to the EU, unclassified stays local.
    let eu = line("us-east-1 -> shop/profile [x-data-region: eu]");
    assert!(eu.contains("200 eu-central-1"), "{eu}");
    assert!(stdout.contains("/debug/route"), "{stdout}");
    assert!(stdout.contains("/ui/#token="), "{stdout}");
    assert!(stderr.contains("stopped"), "{stderr}");
}
