//! `token mint` and `token keygen` (the minting itself is [`crate::token`]).

use std::io::Write;

use super::CliError;
use super::args::TokenCommand;
use crate::token::{generate_es256_pem, mint};

pub(super) fn run(cmd: &TokenCommand, out: &mut dyn Write) -> Result<(), CliError> {
    match cmd {
        TokenCommand::Mint(a) => {
            let t = mint(a).map_err(|e| CliError::Usage(e.to_string()))?;
            writeln!(out, "{t}").map_err(|e| CliError::Io(e.to_string()))
        }
        TokenCommand::Keygen { out_dir } => {
            let (private, public) = generate_es256_pem()
                .map_err(|e| CliError::Io(format!("cannot generate key: {e}")))?;
            let p = out_dir.join("private.pem");
            if p.exists() {
                return Err(CliError::Usage(format!(
                    "{} exists; refusing to overwrite",
                    p.display()
                )));
            }
            write_private(&p, private.as_bytes())?;
            let q = out_dir.join("public.pem");
            std::fs::write(&q, public)
                .map_err(|e| CliError::Io(format!("{}: {e}", q.display())))?;
            writeln!(out, "wrote {} and {}", p.display(), q.display())
                .map_err(|e| CliError::Io(e.to_string()))
        }
    }
}

fn write_private(path: &std::path::Path, data: &[u8]) -> Result<(), CliError> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .map_err(|e| CliError::Io(format!("{}: {e}", path.display())))?;
    f.write_all(data)
        .map_err(|e| CliError::Io(format!("{}: {e}", path.display())))
}
