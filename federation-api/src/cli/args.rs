//! Command-line arguments of `causewayctl`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::token::MintArgs;

const ABOUT: &str = "Manage a Causeway federation: clusters, service exports and imports, \
trust bundles and policies, through the federation REST API";

const AFTER_HELP: &str = "\
Connection:
  The server, token and CA come from, in this order: flags; environment
  variables (CAUSEWAY_SERVER, CAUSEWAY_TOKEN or CAUSEWAY_TOKEN_FILE,
  CAUSEWAY_CA_FILE); the context chosen by --context / CAUSEWAY_CONTEXT or
  the config file's current context (~/.config/causeway/config, see
  `causewayctl config --help`); else http://127.0.0.1:8080 without a token.

Kinds (singular, plural or short name):
  clusters (cl), exports (serviceexports, se), imports (serviceimports, si),
  bundles (trustbundles, trust-domains, td), residencypolicies (residency, rp),
  trafficpolicies (traffic, tp), accesspolicies (access, ap),
  exportpolicies (ep), and `all` for every kind that `apply` accepts.

Exit codes:
  0 success, 1 the API refused (the problem's status, detail and field are
  printed), 2 usage error or bad input file, 3 the server could not be
  reached. `diff`: 0 no differences, 1 differences, other codes as above
  (an API refusal during `diff` exits 4).

Examples:
  causewayctl config set-context prod --server https://federation.example.com --token-file ~/.causeway/prod.token
  causewayctl config use-context prod
  causewayctl get clusters
  causewayctl get all -o yaml > backup.yaml && causewayctl apply -f backup.yaml
  causewayctl diff -f policies/
  causewayctl patch cluster eu-1 -p '{\"spec\":{\"labels\":{\"tier\":\"gold\"}}}'";

/// The Causeway federation CLI.
#[derive(Debug, Parser)]
#[command(name = "causewayctl", version, about = ABOUT, after_help = AFTER_HELP)]
pub struct Cli {
    /// Federation API base URL, `http://` or `https://host:port`
    /// [default: the context's server, else http://127.0.0.1:8080].
    #[arg(long, global = true, env = "CAUSEWAY_SERVER")]
    pub server: Option<String>,
    /// Bearer token (prefer --token-file: a flag shows in `ps`).
    #[arg(long, global = true, env = "CAUSEWAY_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// File holding the bearer token (surrounding whitespace ignored), e.g. a
    /// projected service-account token or the output of `token mint`.
    #[arg(long, global = true, env = "CAUSEWAY_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
    /// PEM CA certificates trusted for an https:// server, beside the system's.
    #[arg(long, global = true, env = "CAUSEWAY_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// Context of the config file to use instead of its current context.
    #[arg(long, global = true, env = "CAUSEWAY_CONTEXT")]
    pub context: Option<String>,
    /// Config file of contexts [default: $XDG_CONFIG_HOME/causeway/config,
    /// else ~/.config/causeway/config]. Not CAUSEWAY_CONFIG: that is the
    /// server's config file.
    #[arg(long = "config", global = true, env = "CAUSEWAYCTL_CONFIG")]
    pub config_file: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show one resource or list a kind (`get clusters`, `get export shop/cart -c eu-1`).
    #[command(
        alias = "list",
        after_help = "Lists print a table, or with -o yaml|json a `kind: List` document that \
                      `apply -f` and `delete -f` accept.\n\nExamples:\n  \
                      causewayctl get clusters\n  \
                      causewayctl get exports -c eu-1 -o yaml\n  \
                      causewayctl get all -o yaml | causewayctl apply -f -"
    )]
    Get(GetArgs),
    /// Create or update resources from YAML/JSON files (idempotent).
    #[command(
        after_help = "Files hold one resource, several YAML documents (---), a JSON \
                      array, or a `kind: List` with `items` (what `get -o yaml` prints). \
                      Server-set fields (resourceVersion, createdAt, status) are ignored. \
                      Every document is checked before the first write; clusters are \
                      applied first, trust bundles last. A resource that already matches \
                      is reported `unchanged` and not written.\n\nExamples:\n  \
                      causewayctl apply -f catalog.yaml\n  \
                      causewayctl apply -f manifests/ --dry-run\n  \
                      causewayctl get all -o yaml | causewayctl apply -f -"
    )]
    Apply(ApplyArgs),
    /// Show what `apply -f` would change, as a unified diff (live → desired).
    #[command(
        after_help = "Exit code 0: no differences; 1: differences; 2, 3 and 4: \
                      usage error, server unreachable, API refusal.\n\nExample:\n  \
                      causewayctl diff -f catalog.yaml"
    )]
    Diff(DiffArgs),
    /// Delete a resource by kind and name, or those named in files (`-f`).
    #[command(after_help = "Examples:\n  \
                      causewayctl delete export shop/cart -c eu-1\n  \
                      causewayctl delete trafficpolicy cart-canary --if-match 42\n  \
                      causewayctl delete -f catalog.yaml --ignore-not-found")]
    Delete(DeleteArgs),
    /// Change fields of a resource with a JSON merge patch (RFC 7396).
    #[command(
        after_help = "The patch is merged into the stored resource (`null` removes a \
                      field, arrays are replaced whole) and the result is validated and \
                      authorized as a full `apply` would be.\n\nExamples:\n  \
                      causewayctl patch cluster eu-1 -p '{\"spec\":{\"labels\":{\"tier\":\"gold\"}}}'\n  \
                      causewayctl patch export shop/cart -c eu-1 -p '{\"spec\":{\"weight\":0}}' --if-match 42"
    )]
    Patch(PatchArgs),
    /// Stream catalog changes.
    Watch(WatchArgs),
    /// Mint tokens and generate keys.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Explain a gateway's routing decision for a host (asks the gateway's admin endpoint).
    #[command(
        long_about = "Explain a gateway's routing decision for a host and request headers: \
                      which clusters are candidates, which residency, access and locality \
                      rules apply, and where the request would go. It asks the admin \
                      endpoint of a gateway (`/debug/route`), not the federation API.\n\n\
                      This is not `kubectl explain`: it does not describe a resource's \
                      schema (the OpenAPI document at /v1/openapi.json does).",
        after_help = "Example:\n  causewayctl explain cart.shop.svc.clusterset.local \
                      -H x-data-region:eu --gateway http://127.0.0.1:15000"
    )]
    Explain(ExplainArgs),
    /// Print the client's version and the server's (`GET /v1/version`).
    Version(VersionArgs),
    /// Print a shell completion script.
    #[command(after_help = "Examples:\n  \
                      source <(causewayctl completion bash)          # bash, this shell\n  \
                      causewayctl completion zsh > \"${fpath[1]}/_causewayctl\"\n  \
                      causewayctl completion fish > ~/.config/fish/completions/causewayctl.fish")]
    Completion(CompletionArgs),
    /// View and edit the contexts of the config file.
    #[command(subcommand)]
    Config(ConfigCommand),
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
    /// Kind (see `causewayctl --help`), or `all`.
    pub kind: String,
    /// Name (`namespace/name` for exports and imports, the trust domain for bundles).
    pub name: Option<String>,
    /// Cluster of the exports (all clusters when listing without it).
    #[arg(short, long)]
    pub cluster: Option<String>,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t)]
    pub output: Output,
}

/// Files of `apply`, `diff` and `delete -f`.
#[derive(Debug, Args)]
pub struct FileArgs {
    /// A YAML/JSON file (multi-document, a JSON array or a `kind: List`), a
    /// directory of `.yaml`/`.yml`/`.json` files, or `-` for stdin (repeatable).
    #[arg(short = 'f', long = "filename", required = true)]
    pub files: Vec<PathBuf>,
}

/// `apply` arguments.
#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The resources.
    #[command(flatten)]
    pub files: FileArgs,
    /// Show what would change (a diff) without writing.
    #[arg(long)]
    pub dry_run: bool,
}

/// `diff` arguments.
#[derive(Debug, Args)]
pub struct DiffArgs {
    /// The resources.
    #[command(flatten)]
    pub files: FileArgs,
}

/// `delete` arguments.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Kind (as for `get`).
    #[arg(required_unless_present = "files", conflicts_with = "files")]
    pub kind: Option<String>,
    /// Name (`namespace/name` for exports).
    #[arg(required_unless_present = "files", conflicts_with = "files")]
    pub name: Option<String>,
    /// Cluster of the export.
    #[arg(short, long, conflicts_with = "files")]
    pub cluster: Option<String>,
    /// Delete the resources these files name instead (see `apply -f`).
    #[arg(short = 'f', long = "filename")]
    pub files: Vec<PathBuf>,
    /// Only delete if the resourceVersion is still this one (412 otherwise).
    #[arg(long, conflicts_with = "files")]
    pub if_match: Option<u64>,
    /// Treat a resource that does not exist as deleted.
    #[arg(long)]
    pub ignore_not_found: bool,
}

/// `patch` arguments.
#[derive(Debug, Args)]
pub struct PatchArgs {
    /// Kind: cluster, export or a policy kind.
    pub kind: String,
    /// Name (`namespace/name` for exports).
    pub name: String,
    /// Cluster of the export.
    #[arg(short, long)]
    pub cluster: Option<String>,
    /// The merge patch, JSON or YAML.
    #[arg(
        short,
        long,
        required_unless_present = "patch_file",
        conflicts_with = "patch_file"
    )]
    pub patch: Option<String>,
    /// A file holding the merge patch (`-` for stdin).
    #[arg(long)]
    pub patch_file: Option<PathBuf>,
    /// Only patch if the resourceVersion is still this one (412 otherwise).
    #[arg(long)]
    pub if_match: Option<u64>,
    /// Print the patched resource instead of a summary.
    #[arg(short, long, value_enum)]
    pub output: Option<Output>,
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

/// `version` arguments.
#[derive(Debug, Args)]
pub struct VersionArgs {
    /// Print the client's version only (no server call).
    #[arg(long)]
    pub client: bool,
    /// Output format (`table` prints `Client Version:` / `Server Version:` lines).
    #[arg(short, long, value_enum, default_value_t)]
    pub output: Output,
}

/// `completion` arguments.
#[derive(Debug, Args)]
pub struct CompletionArgs {
    /// The shell.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// `config` subcommands: the contexts of `~/.config/causeway/config`.
#[derive(Debug, Subcommand)]
#[command(
    after_help = "The config file (YAML, mode 0600) holds named contexts:\n\n  \
    currentContext: prod\n  \
    contexts:\n  \
    - name: prod\n    \
      server: https://federation.example.com\n    \
      tokenFile: /home/me/.causeway/prod.token   # or token: <jwt>\n    \
      caFile: /etc/causeway/ca.pem\n\n\
    Its path: --config, else CAUSEWAYCTL_CONFIG, else $XDG_CONFIG_HOME/causeway/config, \
    else ~/.config/causeway/config. Relative tokenFile/caFile paths are relative to \
    the file; `~/` is the home directory. Comments are not kept when a command \
    rewrites the file."
)]
pub enum ConfigCommand {
    /// Print the config file (tokens redacted unless --raw).
    View {
        /// Show inline tokens.
        #[arg(long)]
        raw: bool,
        /// Output format (`table` prints YAML).
        #[arg(short, long, value_enum, default_value_t)]
        output: Output,
    },
    /// List the contexts; `*` marks the current one.
    GetContexts,
    /// Print the name of the current context.
    CurrentContext,
    /// Make a context the current one.
    UseContext {
        /// The context.
        name: String,
    },
    /// Create a context or change the fields given with the global flags
    /// (--server, --token-file, --token, --ca-file; from the command line only).
    #[command(after_help = "Example:\n  causewayctl config set-context prod \
        --server https://federation.example.com --token-file ~/.causeway/prod.token")]
    SetContext {
        /// The context.
        name: String,
        /// Also make it the current context.
        #[arg(long)]
        use_context: bool,
    },
    /// Remove a context.
    DeleteContext {
        /// The context.
        name: String,
    },
}
