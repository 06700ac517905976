//! Command-line arguments of `causewayctl`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::token::MintArgs;

/// The Causeway federation CLI.
#[derive(Debug, Parser)]
#[command(name = "causewayctl", version, about = "Manage a Causeway federation")]
pub struct Cli {
    /// Federation API base URL.
    #[arg(
        long,
        global = true,
        env = "CAUSEWAY_SERVER",
        default_value = "http://127.0.0.1:8080"
    )]
    pub server: String,
    /// Bearer token.
    #[arg(long, global = true, env = "CAUSEWAY_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// PEM CA certificates trusted for an https:// server, beside the system's.
    #[arg(long, global = true, env = "CAUSEWAY_CA_FILE")]
    pub ca_file: Option<std::path::PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show one resource or list a kind (`get clusters`, `get export ns/name -c eu-1`).
    #[command(alias = "list")]
    Get(GetArgs),
    /// Create or update resources from YAML/JSON files (idempotent).
    Apply(ApplyArgs),
    /// Delete a resource.
    Delete(DeleteArgs),
    /// Stream catalog changes.
    Watch(WatchArgs),
    /// Mint tokens and generate keys.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Explain a gateway's routing decision (needs a gateway admin endpoint).
    Explain(ExplainArgs),
}

/// Output formats.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq, Default)]
pub enum Output {
    /// A table.
    #[default]
    Table,
    /// JSON.
    Json,
    /// YAML.
    Yaml,
}

/// `get` arguments.
#[derive(Debug, Args)]
pub struct GetArgs {
    /// Kind: clusters, exports, imports, trust-domains, bundle,
    /// residency|traffic|access|export policies (e.g. `exportpolicies`).
    pub kind: String,
    /// Name (`ns/name` for exports and imports, trust domain for `bundle`).
    pub name: Option<String>,
    /// Cluster of the exports.
    #[arg(short, long)]
    pub cluster: Option<String>,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t)]
    pub output: Output,
}

/// `delete` arguments.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Kind (as for `get`).
    pub kind: String,
    /// Name (`ns/name` for exports).
    pub name: String,
    /// Cluster of the export.
    #[arg(short, long)]
    pub cluster: Option<String>,
}

/// `apply` arguments.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// A YAML/JSON file (multi-document) or a directory of them; `-` for stdin.
    #[arg(short = 'f', long = "filename", required = true)]
    pub files: Vec<PathBuf>,
    /// Show what would change (a diff) without writing.
    #[arg(long)]
    pub dry_run: bool,
}

/// `watch` arguments.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Resume after this revision instead of starting with a snapshot.
    #[arg(long)]
    pub since: Option<u64>,
    /// Print raw NDJSON lines instead of a summary.
    #[arg(short, long, value_enum, default_value_t)]
    pub output: Output,
    /// Stop after this many events (snapshot included).
    #[arg(long)]
    pub max_events: Option<usize>,
}

/// `token` subcommands.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Mint a token signed with the server's key.
    Mint(MintArgs),
    /// Generate an ES256 key pair (private.pem, public.pem) into a directory.
    Keygen {
        /// Directory to write `private.pem` and `public.pem` into.
        #[arg(long, default_value = ".")]
        out_dir: PathBuf,
    },
}

/// `explain` arguments.
#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// Host to explain, e.g. `cart.shop.svc.clusterset.local[:port]`.
    pub host: String,
    /// Request headers the decision may depend on, `name:value` (repeatable).
    #[arg(short = 'H', long = "header")]
    pub headers: Vec<String>,
    /// Admin URL of the gateway that decides.
    #[arg(
        long,
        env = "CAUSEWAY_GATEWAY_ADMIN",
        default_value = "http://127.0.0.1:15000"
    )]
    pub gateway: String,
    /// Output format (`table` prints JSON too).
    #[arg(short, long, value_enum, default_value_t)]
    pub output: Output,
}
