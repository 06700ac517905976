//! `causewayctl`: the command-line client of the federation API.
//!
//! Exit codes: 0 success, 1 the API refused (the problem detail and field are
//! printed), 2 usage error, 3 the server could not be reached.

mod apply;
pub mod args;
mod kinds;
mod output;
pub mod token;

use std::process::ExitCode;

use clap::Parser;

pub use self::args::{Cli, Command};
use causeway_api::client::{Client, ClientError};

/// Exit code: success.
pub const EXIT_OK: u8 = 0;
/// Exit code: the API refused the request.
pub const EXIT_API: u8 = 1;
/// Exit code: bad usage.
pub const EXIT_USAGE: u8 = 2;
/// Exit code: the server could not be reached.
pub const EXIT_CONNECT: u8 = 3;

/// A failure of a CLI command, mapped to an exit code.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad arguments or input files.
    #[error("{0}")]
    Usage(String),
    /// The client failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// Writing output failed.
    #[error("{0}")]
    Io(String),
}

impl CliError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Usage(_) => EXIT_USAGE,
            Self::Client(ClientError::Connect(_)) => EXIT_CONNECT,
            Self::Client(ClientError::InvalidServer(_)) => EXIT_USAGE,
            Self::Client(_) | Self::Io(_) => EXIT_API,
        }
    }
}

/// Parses the process arguments, runs the command and returns the exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start runtime: {e}");
            return ExitCode::from(EXIT_CONNECT);
        }
    };
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::from(EXIT_OK),
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn client(cli: &Cli) -> Result<Client, CliError> {
    let tls = causeway_api::client::TlsOptions {
        ca_file: cli.ca_file.clone(),
    };
    Ok(Client::with_tls(&cli.server, cli.token.clone(), &tls)?)
}

/// Runs one parsed command.
pub async fn run(cli: Cli) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    match &cli.command {
        Command::Get(a) => {
            let c = client(&cli)?;
            kinds::get(&c, a, &mut out).await
        }
        Command::Delete(a) => {
            let c = client(&cli)?;
            kinds::delete(&c, a, &mut out).await
        }
        Command::Apply(a) => {
            let c = client(&cli)?;
            apply::apply(&c, a, &mut out).await
        }
        Command::Watch(a) => {
            let c = client(&cli)?;
            output::watch(&c, a, &mut out).await
        }
        Command::Token(t) => token::run(t, &mut out),
        Command::Explain(a) => explain(a, &mut out).await,
    }
}

/// `explain`: asks a gateway's admin endpoint (`/debug/route`) why it routes
/// a host the way it does.
async fn explain(a: &args::ExplainArgs, out: &mut dyn std::io::Write) -> Result<(), CliError> {
    let mut query: Vec<(&str, &str)> = vec![("host", a.host.as_str())];
    for h in &a.headers {
        if !h.contains(':') {
            return Err(CliError::Usage(format!("header {h:?} must be name:value")));
        }
        query.push(("header", h.as_str()));
    }
    let q = serde_urlencoded::to_string(&query).map_err(|e| CliError::Usage(e.to_string()))?;
    let gw = Client::new(&a.gateway, None)?;
    let v = gw
        .get::<serde_json::Value>(&format!("/debug/route?{q}"))
        .await?;
    let format = if a.output == args::Output::Yaml {
        args::Output::Yaml
    } else {
        args::Output::Json
    };
    output::print_one(out, &v.value, format)
}
