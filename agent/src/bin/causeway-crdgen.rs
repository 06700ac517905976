//! `causeway-crdgen [--check] [DIR]`: writes the MCS CRDs generated from the
//! agent's Rust types into DIR (default: the `causeway-crds` chart's
//! templates). With `--check`, writes nothing and exits 1 when DIR differs.

use std::path::PathBuf;
use std::process::ExitCode;

use causeway_agent::kubernetes::crd::crds;

fn main() -> ExitCode {
    let mut check = false;
    let mut dir = None;
    for a in std::env::args().skip(1) {
        match a.as_str() {
            "--check" => check = true,
            "-h" | "--help" => {
                println!("usage: causeway-crdgen [--check] [DIR]");
                return ExitCode::SUCCESS;
            }
            _ => dir = Some(PathBuf::from(a)),
        }
    }
    let dir = dir.unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../charts/causeway-crds/templates")
    });
    let files = match crds() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("causeway-crdgen: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut drift = false;
    for (name, text) in files {
        let path = dir.join(&name);
        if check {
            if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
                eprintln!(
                    "causeway-crdgen: {} differs from the generated crd",
                    path.display()
                );
                drift = true;
            }
        } else if let Err(e) = std::fs::write(&path, text) {
            eprintln!("causeway-crdgen: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        } else {
            println!("wrote {}", path.display());
        }
    }
    if drift {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
