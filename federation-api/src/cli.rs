//! `causewayctl`: the command-line client of the federation API.
//!
//! Exit codes: 0 success, 1 the API refused (the problem detail and field are
//! printed), 2 usage error, 3 the server could not be reached. `diff` exits
//! 1 when there are differences and 4 when the API refuses.
//!
//! The server, token and CA come from flags, then environment variables,
//! then the selected context of the config file (see [`args::ConfigCommand`]).

mod apply;
pub mod args;
mod config;
mod kinds;
mod output;
pub mod token;

use std::io::Write;
use std::process::ExitCode;

use clap::{ArgMatches, CommandFactory, FromArgMatches};

pub use self::args::{Cli, Command};
use causeway_api::client::{Client, ClientError};
use causeway_api::wire::VersionInfo;

/// Exit code: success.
pub const EXIT_OK: u8 = 0;
/// Exit code: the API refused the request.
pub const EXIT_API: u8 = 1;
/// Exit code: bad usage.
pub const EXIT_USAGE: u8 = 2;
/// Exit code: the server could not be reached.
pub const EXIT_CONNECT: u8 = 3;
/// Exit code of `diff` when there are differences.
pub const EXIT_DIFF_FOUND: u8 = 1;
/// Exit code of `diff` when the API refused (1 means "differences" there).
pub const EXIT_DIFF_API: u8 = 4;

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
    /// Several API calls failed (each was reported on stderr).
    #[error("{0}")]
    Failed(String),
}

impl CliError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Usage(_) => EXIT_USAGE,
            Self::Client(ClientError::Connect(_)) => EXIT_CONNECT,
            Self::Client(ClientError::InvalidServer(_)) => EXIT_USAGE,
            Self::Client(_) | Self::Io(_) | Self::Failed(_) => EXIT_API,
        }
    }
}

pub(crate) fn io(e: std::io::Error) -> CliError {
    CliError::Io(e.to_string())
}

/// Parses the process arguments, runs the command and returns the exit code.
pub fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(c) => c,
        Err(e) => e.exit(),
    };
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
    let diff = matches!(cli.command, Command::Diff(_));
    match rt.block_on(run(cli, &matches)) {
        Ok(Outcome::Done) => ExitCode::from(EXIT_OK),
        Ok(Outcome::Differences) => ExitCode::from(EXIT_DIFF_FOUND),
        Err(e) => {
            eprintln!("error: {e}");
            let code = e.exit_code();
            ExitCode::from(if diff && code == EXIT_API {
                EXIT_DIFF_API
            } else {
                code
            })
        }
    }
}

/// What a command that succeeded found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Done.
    Done,
    /// `diff` found differences.
    Differences,
}

fn client(cli: &Cli, m: &ArgMatches) -> Result<Client, CliError> {
    let conn = config::connection(cli, m)?;
    let tls = causeway_api::client::TlsOptions {
        ca_file: conn.ca_file,
        ..Default::default()
    };
    Ok(Client::with_tls(&conn.server, conn.token, &tls)?)
}

/// Runs one parsed command; `matches` tells which settings came from the
/// command line and which from the environment.
pub async fn run(cli: Cli, matches: &ArgMatches) -> Result<Outcome, CliError> {
    let mut out = std::io::stdout().lock();
    match &cli.command {
        Command::Get(a) => kinds::get(&client(&cli, matches)?, a, &mut out).await?,
        Command::Delete(a) => kinds::delete(&client(&cli, matches)?, a, &mut out).await?,
        Command::Patch(a) => kinds::patch(&client(&cli, matches)?, a, &mut out).await?,
        Command::Apply(a) => apply::apply(&client(&cli, matches)?, a, &mut out).await?,
        Command::Diff(a) => {
            return Ok(
                if apply::diff(&client(&cli, matches)?, a, &mut out).await? {
                    Outcome::Differences
                } else {
                    Outcome::Done
                },
            );
        }
        Command::Watch(a) => output::watch(&client(&cli, matches)?, a, &mut out).await?,
        Command::Token(t) => token::run(t, &mut out)?,
        Command::Explain(a) => explain(a, &mut out).await?,
        Command::Version(a) => version(&cli, matches, a, &mut out).await?,
        Command::Completion(a) => {
            clap_complete::generate(a.shell, &mut Cli::command(), "causewayctl", &mut out);
        }
        Command::Config(c) => config::run(&cli, matches, c, &mut out)?,
    }
    Ok(Outcome::Done)
}

/// `version`: the client's build, then the server's (`GET /v1/version`).
async fn version(
    cli: &Cli,
    m: &ArgMatches,
    a: &args::VersionArgs,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let client_version = VersionInfo::this_build();
    let server = if a.client {
        None
    } else {
        match client(cli, m)?.version().await {
            Ok(v) => Some(Ok(v)),
            Err(e) => Some(Err(e)),
        }
    };
    if a.output == args::Output::Table {
        writeln!(out, "Client Version: {}", client_version.display()).map_err(io)?;
        return match server {
            Some(Ok(v)) => writeln!(out, "Server Version: {}", v.display()).map_err(io),
            Some(Err(e)) => Err(e.into()),
            None => Ok(()),
        };
    }
    let mut doc = serde_json::json!({ "clientVersion": client_version });
    match server {
        Some(Ok(v)) => doc["serverVersion"] = serde_json::to_value(v).unwrap_or_default(),
        Some(Err(e)) => {
            output::print_one(out, &doc, a.output)?;
            return Err(e.into());
        }
        None => {}
    }
    output::print_one(out, &doc, a.output)
}

/// `explain`: asks a gateway's admin endpoint (`/debug/route`) why it routes
/// a host the way it does.
async fn explain(a: &args::ExplainArgs, out: &mut dyn Write) -> Result<(), CliError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
