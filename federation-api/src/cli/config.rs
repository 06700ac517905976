//! The config file of named contexts (`~/.config/causeway/config`), the
//! `config` subcommand, and how a command finds its server, token and CA.
//!
//! Precedence, per setting: command-line flag, then environment variable,
//! then the selected context (`--context`, `CAUSEWAY_CONTEXT`, else the
//! file's `currentContext`), then the default (`http://127.0.0.1:8080`, no
//! token). `--token`/`--token-file` (and their variables) are one setting:
//! the first level that names either wins; naming both on one level is a
//! usage error.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::ArgMatches;
use clap::parser::ValueSource;
use serde::{Deserialize, Serialize};

use super::CliError;
use super::args::{Cli, ConfigCommand, Output};

/// The default server when nothing names one.
pub(super) const DEFAULT_SERVER: &str = "http://127.0.0.1:8080";

/// The config file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct ConfigFile {
    /// `causeway.dev/v1`.
    #[serde(default = "api_version")]
    api_version: String,
    /// `Config`.
    #[serde(default = "config_kind")]
    kind: String,
    /// The context used when none is named.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    current_context: Option<String>,
    /// The contexts.
    #[serde(default)]
    contexts: Vec<Context>,
}

fn api_version() -> String {
    "causeway.dev/v1".into()
}

fn config_kind() -> String {
    "Config".into()
}

/// One named federation endpoint and its credentials.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct Context {
    /// Name, unique in the file.
    name: String,
    /// API base URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    server: Option<String>,
    /// File holding the bearer token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    token_file: Option<PathBuf>,
    /// The bearer token itself (prefer `tokenFile`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    token: Option<String>,
    /// PEM CA certificates for an https server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ca_file: Option<PathBuf>,
}

fn usage(msg: impl Into<String>) -> CliError {
    CliError::Usage(msg.into())
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
}

/// The config file path: `--config`/`CAUSEWAYCTL_CONFIG`, else
/// `$XDG_CONFIG_HOME/causeway/config`, else `~/.config/causeway/config`.
pub(super) fn config_path(cli: &Cli) -> Option<PathBuf> {
    if let Some(p) = &cli.config_file {
        return Some(p.clone());
    }
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| home().map(|h| h.join(".config")))?;
    Some(base.join("causeway").join("config"))
}

impl ConfigFile {
    /// Reads the file; a missing file is an empty config.
    pub(super) fn load(path: &Path) -> Result<Self, CliError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::empty()),
            Err(e) => return Err(usage(format!("{}: {e}", path.display()))),
        };
        if text.trim().is_empty() {
            return Ok(Self::empty());
        }
        let de = serde_norway::Deserializer::from_str(&text);
        let c: Self = serde_path_to_error::deserialize(de).map_err(|e| {
            usage(format!(
                "{}: field {}: {}",
                path.display(),
                e.path(),
                e.inner()
            ))
        })?;
        let mut seen = std::collections::BTreeSet::new();
        for ctx in &c.contexts {
            if !seen.insert(ctx.name.as_str()) {
                return Err(usage(format!(
                    "{}: context {:?} is defined twice",
                    path.display(),
                    ctx.name
                )));
            }
        }
        Ok(c)
    }

    fn empty() -> Self {
        Self {
            api_version: api_version(),
            kind: config_kind(),
            ..Self::default()
        }
    }

    /// Writes the file atomically with mode 0600 (it may hold tokens),
    /// creating its directory (0700).
    fn save(&self, path: &Path) -> Result<(), CliError> {
        let io = |e: std::io::Error| CliError::Io(format!("{}: {e}", path.display()));
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let mut b = std::fs::DirBuilder::new();
        b.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            b.mode(0o700);
        }
        b.create(dir).map_err(io)?;
        let text = serde_norway::to_string(self).map_err(|e| CliError::Io(e.to_string()))?;
        let tmp = dir.join(format!(
            ".{}.tmp-{}",
            path.file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("config"),
            std::process::id()
        ));
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(&tmp).map_err(io)?;
        f.write_all(text.as_bytes()).map_err(io)?;
        f.sync_all().map_err(io)?;
        drop(f);
        std::fs::rename(&tmp, path).map_err(io)
    }

    fn context(&self, name: &str) -> Option<&Context> {
        self.contexts.iter().find(|c| c.name == name)
    }

    fn require(&self, name: &str, path: &Path) -> Result<&Context, CliError> {
        self.context(name).ok_or_else(|| {
            let known: Vec<&str> = self.contexts.iter().map(|c| c.name.as_str()).collect();
            usage(format!(
                "no context {name:?} in {} (contexts: {})",
                path.display(),
                if known.is_empty() {
                    "none; create one with `causewayctl config set-context`".to_owned()
                } else {
                    known.join(", ")
                }
            ))
        })
    }
}

/// A path from the config file: `~/` is the home directory, a relative path
/// is relative to the file's directory.
fn resolve(file: &Path, p: &Path) -> PathBuf {
    if let Ok(rest) = p.strip_prefix("~")
        && let Some(h) = home()
    {
        return h.join(rest);
    }
    if p.is_relative()
        && let Some(dir) = file.parent()
    {
        return dir.join(p);
    }
    p.to_owned()
}

/// Where a command connects to, and with which credentials.
#[derive(Debug, Clone)]
pub(super) struct Connection {
    /// API base URL.
    pub(super) server: String,
    /// Bearer token.
    pub(super) token: Option<String>,
    /// Extra CA certificates.
    pub(super) ca_file: Option<PathBuf>,
}

/// Where a global setting came from (the context is the level below both).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Level {
    Env,
    Flag,
}

fn level(m: &ArgMatches, id: &str) -> Option<Level> {
    match m.value_source(id)? {
        ValueSource::CommandLine => Some(Level::Flag),
        ValueSource::EnvVariable => Some(Level::Env),
        _ => None,
    }
}

fn read_token_file(p: &Path) -> Result<String, CliError> {
    let t = std::fs::read_to_string(p)
        .map_err(|e| usage(format!("token file {}: {e}", p.display())))?;
    let t = t.trim();
    if t.is_empty() {
        return Err(usage(format!("token file {} is empty", p.display())));
    }
    Ok(t.to_owned())
}

/// Resolves the server, token and CA of a command.
pub(super) fn connection(cli: &Cli, m: &ArgMatches) -> Result<Connection, CliError> {
    let ctx = selected_context(cli)?;
    let ctx = ctx.as_ref();
    let server = cli
        .server
        .clone()
        .or_else(|| ctx.and_then(|(_, c)| c.server.clone()))
        .unwrap_or_else(|| DEFAULT_SERVER.to_owned());
    let ca_file = cli
        .ca_file
        .clone()
        .or_else(|| ctx.and_then(|(f, c)| c.ca_file.as_deref().map(|p| resolve(f, p))));
    // The token: the highest level naming --token or --token-file wins.
    let t = cli.token.as_ref().and_then(|_| level(m, "token"));
    let tf = cli.token_file.as_ref().and_then(|_| level(m, "token_file"));
    let token = match (t, tf) {
        (Some(a), Some(b)) if a == b => {
            return Err(usage(match a {
                Level::Flag => "give --token or --token-file, not both",
                _ => "CAUSEWAY_TOKEN and CAUSEWAY_TOKEN_FILE are both set; unset one",
            }));
        }
        (Some(a), b) if b.is_none_or(|b| a > b) => cli.token.clone(),
        (_, Some(_)) => match &cli.token_file {
            Some(p) => Some(read_token_file(p)?),
            None => None,
        },
        _ => match ctx {
            Some((f, c)) => match (&c.token, &c.token_file) {
                (Some(_), Some(_)) => {
                    return Err(usage(format!(
                        "context {:?} sets both token and tokenFile; keep one",
                        c.name
                    )));
                }
                (Some(t), None) => Some(t.clone()),
                (None, Some(p)) => Some(read_token_file(&resolve(f, p))?),
                (None, None) => None,
            },
            None => None,
        },
    };
    Ok(Connection {
        server,
        token,
        ca_file,
    })
}

/// The context named by `--context`/`CAUSEWAY_CONTEXT` (an error when it
/// does not exist), else the file's current context, with the file path.
fn selected_context(cli: &Cli) -> Result<Option<(PathBuf, Context)>, CliError> {
    let Some(path) = config_path(cli) else {
        return match &cli.context {
            Some(c) => Err(usage(format!(
                "context {c:?} named, but no config file (set HOME or --config)"
            ))),
            None => Ok(None),
        };
    };
    let file = ConfigFile::load(&path)?;
    let name = match (&cli.context, &file.current_context) {
        (Some(n), _) => n.clone(),
        (None, Some(n)) => n.clone(),
        (None, None) => return Ok(None),
    };
    let ctx = file.require(&name, &path)?.clone();
    Ok(Some((path, ctx)))
}

fn w(out: &mut dyn Write, s: impl std::fmt::Display) -> Result<(), CliError> {
    writeln!(out, "{s}").map_err(|e| CliError::Io(e.to_string()))
}

/// `config ...`.
pub(super) fn run(
    cli: &Cli,
    m: &ArgMatches,
    cmd: &ConfigCommand,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    let path = config_path(cli)
        .ok_or_else(|| usage("no config file path: set HOME, XDG_CONFIG_HOME or --config"))?;
    let mut file = ConfigFile::load(&path)?;
    match cmd {
        ConfigCommand::View { raw, output } => {
            if !raw {
                for c in &mut file.contexts {
                    if c.token.is_some() {
                        c.token = Some("REDACTED".into());
                    }
                }
            }
            // Field order as in the file (name first), not sorted.
            let text = if *output == Output::Json {
                serde_json::to_string_pretty(&file)
                    .map(|t| t + "\n")
                    .map_err(|e| CliError::Io(e.to_string()))?
            } else {
                serde_norway::to_string(&file).map_err(|e| CliError::Io(e.to_string()))?
            };
            out.write_all(text.as_bytes()).map_err(super::io)
        }
        ConfigCommand::GetContexts => {
            let current = cli.context.as_ref().or(file.current_context.as_ref());
            let rows: Vec<[String; 4]> = file
                .contexts
                .iter()
                .map(|c| {
                    [
                        if current == Some(&c.name) { "*" } else { "" }.to_owned(),
                        c.name.clone(),
                        c.server.clone().unwrap_or_default(),
                        match (&c.token_file, &c.token) {
                            (Some(p), _) => format!("tokenFile {}", p.display()),
                            (None, Some(_)) => "token".to_owned(),
                            (None, None) => "none".to_owned(),
                        },
                    ]
                })
                .collect();
            super::output::columns(out, &["CURRENT", "NAME", "SERVER", "AUTH"], &rows)
        }
        ConfigCommand::CurrentContext => match &file.current_context {
            Some(c) => w(out, c),
            None => Err(usage(format!(
                "no current context in {}; set one with `causewayctl config use-context NAME`",
                path.display()
            ))),
        },
        ConfigCommand::UseContext { name } => {
            file.require(name, &path)?;
            file.current_context = Some(name.clone());
            file.save(&path)?;
            w(out, format_args!("switched to context {name:?}"))
        }
        ConfigCommand::SetContext { name, use_context } => {
            set_context(&mut file, cli, m, name)?;
            if *use_context {
                file.current_context = Some(name.clone());
            }
            file.save(&path)?;
            w(
                out,
                format_args!(
                    "context {name:?} {} in {}",
                    if *use_context {
                        "set and in use"
                    } else {
                        "set"
                    },
                    path.display()
                ),
            )
        }
        ConfigCommand::DeleteContext { name } => {
            file.require(name, &path)?;
            file.contexts.retain(|c| &c.name != name);
            if file.current_context.as_ref() == Some(name) {
                file.current_context = None;
            }
            file.save(&path)?;
            w(out, format_args!("deleted context {name:?}"))
        }
    }
}

/// Absolute form of a path typed on the command line (relative to the
/// working directory, not to the config file).
fn absolute(p: &Path) -> Result<PathBuf, CliError> {
    std::path::absolute(p).map_err(|e| usage(format!("{}: {e}", p.display())))
}

fn set_context(
    file: &mut ConfigFile,
    cli: &Cli,
    m: &ArgMatches,
    name: &str,
) -> Result<(), CliError> {
    if name.is_empty() {
        return Err(usage("a context needs a name"));
    }
    let flag = |id: &str| level(m, id) == Some(Level::Flag);
    if !(flag("server") || flag("token") || flag("token_file") || flag("ca_file"))
        && file.context(name).is_some()
    {
        return Err(usage(
            "nothing to change: give --server, --token-file, --token or --ca-file",
        ));
    }
    if flag("token") && flag("token_file") {
        return Err(usage("give --token or --token-file, not both"));
    }
    let idx = match file.contexts.iter().position(|c| c.name == name) {
        Some(i) => i,
        None => {
            file.contexts.push(Context {
                name: name.to_owned(),
                ..Context::default()
            });
            file.contexts.len() - 1
        }
    };
    let ctx = &mut file.contexts[idx];
    if flag("server") {
        let s = cli.server.clone().unwrap_or_default();
        causeway_api::client::Client::new(&s, None)?;
        ctx.server = Some(s);
    }
    if flag("token") {
        ctx.token = cli.token.clone();
        ctx.token_file = None;
    }
    if flag("token_file")
        && let Some(p) = &cli.token_file
    {
        ctx.token_file = Some(absolute(p)?);
        ctx.token = None;
    }
    if flag("ca_file")
        && let Some(p) = &cli.ca_file
    {
        ctx.ca_file = Some(absolute(p)?);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn config_file_rejects_unknown_fields_and_duplicate_contexts() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config");
        std::fs::write(&p, "contexts:\n- name: a\n  sever: http://x\n").unwrap();
        let e = ConfigFile::load(&p).unwrap_err().to_string();
        assert!(e.contains("sever"), "{e}");
        std::fs::write(&p, "contexts:\n- name: a\n- name: a\n").unwrap();
        let e = ConfigFile::load(&p).unwrap_err().to_string();
        assert!(e.contains("twice"), "{e}");
        assert_eq!(
            ConfigFile::load(&dir.path().join("missing")).unwrap(),
            ConfigFile::empty()
        );
    }

    #[test]
    fn relative_paths_are_relative_to_the_file() {
        let f = Path::new("/etc/causeway/config");
        assert_eq!(
            resolve(f, Path::new("prod.token")),
            PathBuf::from("/etc/causeway/prod.token")
        );
        assert_eq!(resolve(f, Path::new("/abs")), PathBuf::from("/abs"));
    }
}
