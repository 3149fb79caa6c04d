//! `configure docker|podman|helm [HOST…] [--all] [--dry-run]`: point a client at the
//! helper by editing its config file — `credHelpers` entries (`"HOST": "acr-entra"`) for
//! the hosts, or `credsStore: "acr-entra"` with `--all` for docker and helm. containers
//! tools (podman, buildah, skopeo) ignore `credsStore`, so podman always gets per-host
//! entries. The edit keeps every other key, is idempotent, is serialised between
//! concurrent runs by a lock in the cache directory, keeps a backup of the previous file
//! (`NAME.acr-entra.bak`) and of the first one without the helper (`NAME.acr-entra.orig`,
//! never overwritten), replaces the file atomically with its old mode (0600 for a new
//! file), and refuses to touch a file that is not a JSON object. `--dry-run` prints the
//! diff instead, secrets masked. `--remove` undoes the edit: the helper's entries go and
//! what they replaced comes back from the `.orig`. This file owns the JSON merge, its
//! undoing and the diff; `files` does the writing.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::cli::{Args, token};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::files::{self, Lock};

/// The helper's name in `credHelpers`/`credsStore`: clients run `docker-credential-NAME`.
pub const HELPER_NAME: &str = "acr-entra";

const USAGE: &str = "usage: configure docker|podman|helm [HOST...] [--all [--force]] [--dry-run], or configure --remove docker|podman|helm [HOST...] [--dry-run]";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Client {
    Docker,
    Podman,
    Helm,
}

impl Client {
    fn parse(text: &str) -> Option<Client> {
        match text {
            "docker" => Some(Client::Docker),
            "podman" | "buildah" | "skopeo" | "containers" => Some(Client::Podman),
            "helm" => Some(Client::Helm),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Client::Docker => "docker",
            Client::Podman => "podman",
            Client::Helm => "helm",
        }
    }
}

/// What to add to a client config.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Wanted {
    /// `credHelpers` keys, normalised `host[:port]`.
    pub hosts: Vec<String>,
    /// Set `credsStore`.
    pub store: bool,
    /// Replace another `credsStore` (`desktop`, `pass`, `osxkeychain`…).
    pub force: bool,
}

pub fn run(ctx: &Context, args: &[String]) -> Result<String> {
    let args = Args::parse(
        "configure",
        args,
        &["all", "dry-run", "force", "remove"],
        &[],
    )?;
    let Some((client, hosts)) = args.positional.split_first() else {
        return Err(Error::Usage(USAGE.into()));
    };
    let client = parse_client(client)?;
    if args.has("remove") {
        return remove(ctx, client, hosts, &args);
    }
    let all = args.has("all");
    let mut wanted = Wanted {
        hosts: Vec::new(),
        store: all && client != Client::Podman,
        force: args.has("force"),
    };
    for host in hosts {
        let key = token::acr_host(ctx, host)?.key();
        if !wanted.hosts.contains(&key) {
            wanted.hosts.push(key);
        }
    }
    if wanted.hosts.is_empty() && !wanted.store {
        wanted.hosts = ctx.config.registries.keys().cloned().collect();
        if wanted.hosts.is_empty() {
            return Err(Error::Usage(format!(
                "no HOST given and the config file {} lists no registries: name them (`configure {} myacr.azurecr.io`){}",
                ctx.config.shown(),
                client.name(),
                if client == Client::Podman {
                    ", or add `credential-helpers = [\"acr-entra\"]` to registries.conf for every registry (podman ignores credsStore)"
                } else {
                    ", or use --all"
                }
            )));
        }
    }
    let path = client_file(ctx, client)?;
    let mut report = apply(ctx, client, &path, &wanted, args.has("dry-run"))?;
    if client == Client::Podman
        && let Some(note) = runtime_note(ctx, &path, &wanted.hosts)
    {
        report.push('\n');
        report.push_str(&note);
    }
    // On stderr, so a `--dry-run` diff on stdout stays a diff.
    if let Err(warning) = crate::cli::routing::on_path(ctx) {
        crate::log::tell(format_args!("{warning}"));
    }
    if all && client == Client::Podman {
        report.push_str(
            "\nnote: podman, buildah and skopeo ignore credsStore, so only the hosts above were configured; \
             for every registry add `credential-helpers = [\"acr-entra\"]` to registries.conf",
        );
    }
    Ok(report)
}

/// The CLIENT argument.
fn parse_client(text: &str) -> Result<Client> {
    Client::parse(text).ok_or_else(|| {
        Error::Usage(format!(
            "`configure`: unknown client `{}` ({USAGE})",
            crate::error::one_line(text)
                .chars()
                .take(40)
                .collect::<String>()
        ))
    })
}

/// podman, buildah and skopeo read `$XDG_RUNTIME_DIR/containers/auth.json` before the
/// file `configure` edits: when it exists, say so, and name the hosts it has entries for
/// (from `podman login`), which win over ours until `podman logout HOST`.
fn runtime_note(ctx: &Context, edited: &Path, hosts: &[String]) -> Option<String> {
    let runtime = ctx.settings.clients.containers_runtime.as_deref()?;
    if runtime == edited {
        return None;
    }
    let bytes = crate::files::read_user_file(runtime, crate::files::MAX_FILE).ok()?;
    let value: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    let entry = |section: &str, host: &str| {
        value
            .get(section)
            .and_then(|m| m.get(host))
            .is_some_and(|v| section == "auths" || v != HELPER_NAME)
    };
    let shadowed: Vec<&str> = hosts
        .iter()
        .map(String::as_str)
        .filter(|h| entry("auths", h) || entry("credHelpers", h))
        .collect();
    Some(if shadowed.is_empty() {
        format!(
            "note: podman, buildah and skopeo read `{}` first; it has no entry for these hosts, so the entries above apply",
            runtime.display()
        )
    } else {
        format!(
            "note: podman, buildah and skopeo read `{}` first, and its entries for {} (from `podman login`) win over the ones above until `podman logout HOST` removes them",
            runtime.display(),
            shadowed.join(", ")
        )
    })
}

/// Where `client` keeps the file to edit.
fn client_file(ctx: &Context, client: Client) -> Result<PathBuf> {
    let files = &ctx.settings.clients;
    match client {
        Client::Docker => files.docker.clone(),
        Client::Podman => files.containers.clone(),
        Client::Helm => files.helm.clone(),
    }
    .ok_or_else(|| {
        Error::Config(format!(
            "cannot find {}'s config file: set HOME (or {})",
            client.name(),
            match client {
                Client::Docker => crate::config::DOCKER_CONFIG,
                Client::Podman => crate::config::REGISTRY_AUTH_FILE,
                Client::Helm => crate::config::HELM_REGISTRY_CONFIG,
            }
        ))
    })
}

/// Edit `path` under the lock; returns the report (or the diff for `dry_run`).
fn apply(
    ctx: &Context,
    client: Client,
    path: &Path,
    wanted: &Wanted,
    dry_run: bool,
) -> Result<String> {
    let path = edited_path(path)?;
    let _lock = if dry_run { None } else { lock(ctx, &path)? };
    let (old, mode) = read_client_file(&path)?;
    let (merged, changes) = merge(old.as_deref(), wanted).map_err(|why| match why {
        Unmergeable::OtherStore(store) => other_store(client, &path, &store),
        why => malformed(&path, &why.to_string()),
    })?;
    let new = to_pretty(&merged);
    let name = client.name();
    if changes.is_empty() {
        return Ok(format!(
            "{name}: `{}` already configured ({}); nothing changed",
            path.display(),
            summary(wanted)
        ));
    }
    if dry_run {
        return dry_run_diff(client, &path, old.as_deref(), merged);
    }
    write_edit(client, &path, old.as_deref(), &new, mode, &changes)
}

/// Replace `path` (mode `mode`) with `new` and report `changes`. The file it replaces is
/// kept as `NAME.acr-entra.bak`, and the first one that had nothing of the helper in it
/// also as `NAME.acr-entra.orig`, never overwritten: the `.bak` of a second run already
/// holds the helper's entries, the `.orig` is what the user had before.
fn write_edit(
    client: Client,
    path: &Path,
    old: Option<&str>,
    new: &str,
    mode: u32,
    changes: &[String],
) -> Result<String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        files::ensure_dir(dir)?;
    }
    let name = client.name();
    let mut report;
    if let Some(old) = old {
        let backup = backup_path(path);
        files::write_atomic(&backup, old.as_bytes())?;
        report = format!(
            "{name}: updated `{}` (previous file kept as `{}`",
            path.display(),
            backup.display()
        );
        let original = original_path(path);
        let absent = matches!(std::fs::symlink_metadata(&original), Err(e) if e.kind() == std::io::ErrorKind::NotFound);
        if absent && !mentions_helper(old) {
            files::write_atomic(&original, old.as_bytes())?;
            let _ = write!(report, ", and as `{}`", original.display());
        }
        report.push(')');
    } else {
        report = format!("{name}: created `{}`", path.display());
    }
    files::write_atomic_mode(path, new.as_bytes(), mode)?;
    for change in changes {
        report.push_str("\n  ");
        report.push_str(change);
    }
    Ok(report)
}

/// Whether a client config already routes anything to the helper (then it is not the
/// user's original).
fn mentions_helper(text: &str) -> bool {
    let Ok(Value::Object(root)) = serde_json::from_str::<Value>(text) else {
        return false;
    };
    let helper = Value::String(HELPER_NAME.into());
    root.get("credsStore") == Some(&helper)
        || root
            .get("credHelpers")
            .and_then(Value::as_object)
            .is_some_and(|m| m.values().any(|v| *v == helper))
}

/// `configure --remove`: take out what configure put in — the `credHelpers` entries
/// naming the helper (only `hosts`' when given) and a `credsStore` naming it (only
/// without hosts) — and nothing else. A value configure replaced comes back from the
/// `.acr-entra.orig` kept then (`credsStore: desktop` after `--all --force`).
fn remove(ctx: &Context, client: Client, hosts: &[String], args: &Args) -> Result<String> {
    if args.has("all") || args.has("force") {
        return Err(Error::Usage(format!(
            "`configure --remove` takes no --all or --force: it removes every entry configure made, or HOST's ({USAGE})"
        )));
    }
    let dry_run = args.has("dry-run");
    let mut keys = Vec::new();
    for host in hosts {
        let key = crate::registry::RegistryHost::parse(host)
            .map_err(|_| {
                Error::Usage(format!(
                    "`configure --remove`: `{}` is not a registry host",
                    crate::error::one_line(host)
                        .chars()
                        .take(80)
                        .collect::<String>()
                ))
            })?
            .key();
        keys.push(key);
    }
    let path = edited_path(&client_file(ctx, client)?)?;
    let _lock = if dry_run { None } else { lock(ctx, &path)? };
    let (old, mode) = read_client_file(&path)?;
    let original = crate::files::read_user_file(&original_path(&path), 16 * crate::files::MAX_FILE)
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok());
    let (kept, changes) = unmerge(old.as_deref(), &keys, original.as_ref())
        .map_err(|why| malformed(&path, &why.to_string()))?;
    if changes.is_empty() {
        return Ok(format!(
            "{}: `{}` has no {HELPER_NAME} entries{}; nothing changed",
            client.name(),
            path.display(),
            if keys.is_empty() {
                String::new()
            } else {
                format!(" for {}", keys.join(", "))
            }
        ));
    }
    if dry_run {
        return dry_run_diff(client, &path, old.as_deref(), kept);
    }
    write_edit(
        client,
        &path,
        old.as_deref(),
        &to_pretty(&kept),
        mode,
        &changes,
    )
}

/// The file to edit: the target of a symbolic link (dotfile managers), not the link.
fn edited_path(path: &Path) -> Result<PathBuf> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            std::fs::canonicalize(path).map_err(|e| Error::file(path, e))
        }
        _ => Ok(path.to_path_buf()),
    }
}

/// A client config's text and mode; `None` (and 0600 for the new file) when absent.
fn read_client_file(path: &Path) -> Result<(Option<String>, u32)> {
    match crate::files::read_user_file(path, 16 * crate::files::MAX_FILE) {
        Ok(bytes) => {
            let mode = std::fs::metadata(path).map_or(0o600, |m| crate::platform::mode(&m));
            let text =
                String::from_utf8(bytes).map_err(|_| malformed(path, "it is not UTF-8 text"))?;
            Ok((Some(text), mode))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok((None, 0o600)),
        Err(e) => Err(Error::file(path, e)),
    }
}

/// What configure would change, as a diff of the two files with every secret-bearing
/// value masked, so that neither changed nor context lines print `auths.*.auth` or an
/// identity token.
fn dry_run_diff(client: Client, path: &Path, old: Option<&str>, merged: Value) -> Result<String> {
    let before = match old {
        Some(text) if !text.trim().is_empty() => {
            let value: Value =
                serde_json::from_str(text).map_err(|_| malformed(path, "invalid JSON"))?;
            to_pretty(&masked(value))
        }
        _ => String::new(),
    };
    Ok(format!(
        "--- {}\n+++ {} (after configure {})\n{}",
        path.display(),
        path.display(),
        client.name(),
        diff(&before, &to_pretty(&masked(merged))).trim_end()
    ))
}

/// Serialise concurrent `configure` runs on one file, with a lock beside the cache (not
/// beside the client's file, which is not ours to litter). No cache directory: unlocked.
fn lock(ctx: &Context, path: &Path) -> Result<Option<Lock>> {
    let dir = match ctx.created_dir() {
        Ok(dir) => dir,
        Err(e) => {
            crate::debug!("configure: no lock ({})", e.one_line());
            return Ok(None);
        }
    };
    let digest = crate::digest::sha256(path.as_os_str().as_encoded_bytes());
    let name = format!("configure-{}.lock", crate::digest::hex(&digest[..10]));
    dir.lock(&name, Duration::from_secs(10)).map(Some)
}

pub fn backup_path(path: &Path) -> PathBuf {
    suffixed(path, ".acr-entra.bak")
}

pub fn original_path(path: &Path) -> PathBuf {
    suffixed(path, ".acr-entra.orig")
}

fn suffixed(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    path.with_file_name(name)
}

fn malformed(path: &Path, why: &str) -> Error {
    Error::Config(format!(
        "`{}` is not a valid client config file ({why}); fix or move it and run configure again (nothing was changed)",
        path.display()
    ))
}

/// `--all` would replace another credential store: the logins it holds would vanish from
/// docker's view and later `docker login`s (Docker Hub's too) would land in this helper's
/// file instead. Per-registry entries leave it in place.
fn other_store(client: Client, path: &Path, store: &str) -> Error {
    Error::Config(format!(
        "`{}` already has credsStore `{}`: replacing it would hide the logins it keeps and send later \
         `docker login` passwords to acr-entra's store; configure the registries instead \
         (`configure {} HOST...`: credHelpers entries win over credsStore), or pass --force to replace it (nothing was changed)",
        path.display(),
        crate::error::one_line(store)
            .chars()
            .take(40)
            .collect::<String>(),
        client.name()
    ))
}

fn summary(wanted: &Wanted) -> String {
    let mut parts = Vec::new();
    if wanted.store {
        parts.push(format!("credsStore {HELPER_NAME}"));
    }
    if !wanted.hosts.is_empty() {
        parts.push(format!("credHelpers for {}", wanted.hosts.join(", ")));
    }
    parts.join(", ")
}

/// Why a client's config file cannot be edited.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unmergeable {
    #[error("the top level is not a JSON object")]
    NotAnObject,
    #[error("{what} at line {line} column {column}")]
    Json {
        what: &'static str,
        line: usize,
        column: usize,
    },
    #[error("`credHelpers` is not a JSON object")]
    HelpersNotAnObject,
    /// `credsStore` names another helper and `--force` was not given.
    #[error("credsStore is `{0}`")]
    OtherStore(String),
}

/// Merge `wanted` into the config text (absent or blank counts as `{}`): the merged
/// document and one line per change, or why the text cannot be edited.
pub fn merge(
    text: Option<&str>,
    wanted: &Wanted,
) -> std::result::Result<(Value, Vec<String>), Unmergeable> {
    let mut root = parse_object(text)?.unwrap_or_default();
    let mut changes = Vec::new();
    let helper = Value::String(HELPER_NAME.into());
    let describe = |old: Option<&Value>| match old {
        None => "added".to_string(),
        Some(v) => format!("was {v}"),
    };
    if let Some(Value::String(store)) = root.get("credsStore")
        && wanted.store
        && !wanted.force
        && !store.is_empty()
        && store != HELPER_NAME
    {
        return Err(Unmergeable::OtherStore(store.clone()));
    }
    if wanted.store && root.get("credsStore") != Some(&helper) {
        changes.push(format!(
            "credsStore: {HELPER_NAME} ({})",
            describe(root.get("credsStore"))
        ));
        root.insert("credsStore".into(), helper.clone());
    }
    if !wanted.hosts.is_empty() {
        let helpers = root
            .entry("credHelpers")
            .or_insert_with(|| Value::Object(Map::new()));
        let Value::Object(helpers) = helpers else {
            return Err(Unmergeable::HelpersNotAnObject);
        };
        for host in &wanted.hosts {
            if helpers.get(host) != Some(&helper) {
                changes.push(format!(
                    "credHelpers: {host} → {HELPER_NAME} ({})",
                    describe(helpers.get(host))
                ));
                helpers.insert(host.clone(), helper.clone());
            }
        }
    }
    Ok((Value::Object(root), changes))
}

/// Take the helper's entries out of the config text: `credHelpers` entries naming it
/// (only `hosts`' when given, matched as registry hosts) and, without hosts, a
/// `credsStore` naming it. Each comes back as `original` (the file before configure
/// first edited it) had it, when that named another helper; a `credHelpers` left empty
/// goes when `original` had none. Everything else stays as it is.
pub fn unmerge(
    text: Option<&str>,
    hosts: &[String],
    original: Option<&Value>,
) -> std::result::Result<(Value, Vec<String>), Unmergeable> {
    let Some(mut root) = parse_object(text)? else {
        return Ok((Value::Object(Map::new()), Vec::new()));
    };
    let helper = Value::String(HELPER_NAME.into());
    let before = |section: Option<&str>, key: &str| {
        let map = original?;
        let value = match section {
            Some(section) => map.get(section)?.get(key)?,
            None => map.get(key)?,
        };
        value
            .as_str()
            .filter(|v| !v.is_empty() && *v != HELPER_NAME)
            .map(|v| Value::String(v.to_string()))
    };
    let mut changes = Vec::new();
    if hosts.is_empty() && root.get("credsStore") == Some(&helper) {
        match before(None, "credsStore") {
            Some(was) => {
                changes.push(format!("credsStore: {was} (restored)"));
                root.insert("credsStore".into(), was);
            }
            None => {
                changes.push(format!("credsStore: {HELPER_NAME} removed"));
                root.remove("credsStore");
            }
        }
    }
    if let Some(Value::Object(helpers)) = root.get_mut("credHelpers") {
        let ours: Vec<String> = helpers
            .iter()
            .filter(|(k, v)| {
                **v == helper
                    && (hosts.is_empty()
                        || crate::registry::RegistryHost::parse(k)
                            .is_ok_and(|h| hosts.contains(&h.key())))
            })
            .map(|(k, _)| k.clone())
            .collect();
        for key in ours {
            match before(Some("credHelpers"), &key) {
                Some(was) => {
                    changes.push(format!("credHelpers: {key} → {was} (restored)"));
                    helpers.insert(key, was);
                }
                None => {
                    changes.push(format!("credHelpers: {key} removed"));
                    helpers.remove(&key);
                }
            }
        }
        let had_none = original.is_none_or(|o| o.get("credHelpers").is_none());
        if helpers.is_empty() && had_none && !changes.is_empty() {
            root.remove("credHelpers");
        }
    }
    Ok((Value::Object(root), changes))
}

/// The top-level object of a client config; `None` for an absent or blank file.
fn parse_object(
    text: Option<&str>,
) -> std::result::Result<Option<Map<String, Value>>, Unmergeable> {
    match text.map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(map)) => Ok(Some(map)),
            Ok(_) => Err(Unmergeable::NotAnObject),
            Err(e) => Err(Unmergeable::Json {
                what: e.classify_name(),
                line: e.line(),
                column: e.column(),
            }),
        },
    }
}

trait ClassifyName {
    fn classify_name(&self) -> &'static str;
}

impl ClassifyName for serde_json::Error {
    fn classify_name(&self) -> &'static str {
        match self.classify() {
            serde_json::error::Category::Eof => "unexpected end of file",
            serde_json::error::Category::Syntax => "JSON syntax error",
            serde_json::error::Category::Data | serde_json::error::Category::Io => "invalid JSON",
        }
    }
}

/// Keys whose values are credentials in docker's, podman's and helm's config files.
const SECRET_KEYS: [&str; 8] = [
    "auth",
    "identitytoken",
    "registrytoken",
    "password",
    "secret",
    "token",
    "accesstoken",
    "refreshtoken",
];

/// docker's `HttpHeaders`: headers sent with every registry request, where people put
/// `Authorization` and API keys, so each value counts as a secret.
const HEADERS_KEY: &str = "httpheaders";

/// `value` with every secret-bearing string (at any depth) replaced by `REDACTED`: the
/// values of `SECRET_KEYS` and of `HttpHeaders`' entries, and the password inside any
/// URL (`proxies`' `http://user:pass@proxy:3128`).
pub fn masked(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let key = k.to_ascii_lowercase();
                    let scalar = !matches!(v, Value::Object(_) | Value::Array(_) | Value::Null);
                    let v = if SECRET_KEYS.contains(&key.as_str()) && scalar {
                        Value::String("REDACTED".into())
                    } else if key == HEADERS_KEY
                        && let Value::Object(headers) = v
                    {
                        Value::Object(
                            headers
                                .into_iter()
                                .map(|(name, _)| (name, Value::String("REDACTED".into())))
                                .collect(),
                        )
                    } else {
                        masked(v)
                    };
                    (k, v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(masked).collect()),
        Value::String(text) => Value::String(url_password_masked(&text)),
        other => other,
    }
}

/// `scheme://user:password@host…` with the password replaced by `REDACTED`; any other
/// text as it is. The userinfo ends at the last `@` before the path, so a password
/// holding `@` is masked whole.
fn url_password_masked(text: &str) -> String {
    let Some(scheme_end) = text.find("://") else {
        return text.to_string();
    };
    let rest = &text[scheme_end + 3..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    let Some(at) = authority.rfind('@') else {
        return text.to_string();
    };
    let Some(colon) = authority[..at].find(':') else {
        return text.to_string();
    };
    format!(
        "{}{}REDACTED{}",
        &text[..scheme_end + 3],
        &authority[..=colon],
        &rest[at..]
    )
}

/// Tab-indented, as docker and podman write these files, with a final newline.
pub fn to_pretty(value: &Value) -> String {
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(b"\t");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, formatter);
    let _ = value.serialize(&mut ser);
    let mut text = String::from_utf8(out).unwrap_or_default();
    text.push('\n');
    text
}

/// A line diff (` `, `-`, `+` prefixes) of two small texts, by longest common
/// subsequence. Config files are small; past a few thousand lines show old then new.
pub fn diff(old: &str, new: &str) -> String {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    let mut out = String::new();
    if a.len() * b.len() > 4_000_000 {
        for l in &a {
            let _ = writeln!(out, "-{l}");
        }
        for l in &b {
            let _ = writeln!(out, "+{l}");
        }
        return out;
    }
    // lcs[i][j]: length of the LCS of a[i..] and b[j..].
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            let _ = writeln!(out, " {}", a[i]);
            i += 1;
            j += 1;
        } else if j < b.len() && (i == a.len() || lcs[i][j + 1] > lcs[i + 1][j]) {
            let _ = writeln!(out, "+{}", b[j]);
            j += 1;
        } else {
            let _ = writeln!(out, "-{}", a[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn hosts(h: &[&str]) -> Wanted {
        Wanted {
            hosts: h.iter().map(|s| (*s).to_string()).collect(),
            store: false,
            force: false,
        }
    }

    #[test]
    fn merge_absent_empty_and_populated() {
        for text in [None, Some(""), Some("  \n"), Some("{}")] {
            let (v, changes) = merge(text, &hosts(&["a.azurecr.io"])).unwrap();
            assert_eq!(v, json!({"credHelpers": {"a.azurecr.io": "acr-entra"}}));
            assert_eq!(changes, ["credHelpers: a.azurecr.io → acr-entra (added)"]);
        }
        let text = r#"{"auths":{"ghcr.io":{"auth":"eDp5"}},"credHelpers":{"gcr.io":"gcloud","a.azurecr.io":"acr-env"},"psFormat":"table","x":[1,{"y":null}]}"#;
        let (v, changes) = merge(Some(text), &hosts(&["a.azurecr.io", "b.azurecr.io"])).unwrap();
        assert_eq!(
            v,
            json!({"auths":{"ghcr.io":{"auth":"eDp5"}},"credHelpers":{"gcr.io":"gcloud","a.azurecr.io":"acr-entra","b.azurecr.io":"acr-entra"},"psFormat":"table","x":[1,{"y":null}]})
        );
        assert_eq!(
            changes,
            [
                "credHelpers: a.azurecr.io → acr-entra (was \"acr-env\")",
                "credHelpers: b.azurecr.io → acr-entra (added)"
            ]
        );
        let (again, changes) = merge(Some(&to_pretty(&v)), &hosts(&["a.azurecr.io"])).unwrap();
        assert_eq!(again, v);
        assert!(changes.is_empty(), "idempotent");
    }

    #[test]
    fn merge_store_replaces_another_only_when_forced() {
        let store = |force| Wanted {
            hosts: vec![],
            store: true,
            force,
        };
        let existing = Some(r#"{"credsStore":"desktop"}"#);
        assert_eq!(
            merge(existing, &store(false)).unwrap_err(),
            Unmergeable::OtherStore("desktop".into())
        );
        let (v, changes) = merge(existing, &store(true)).unwrap();
        assert_eq!(v, json!({"credsStore": "acr-entra"}));
        assert_eq!(changes, ["credsStore: acr-entra (was \"desktop\")"]);
        for text in [
            r#"{"credsStore":"acr-entra"}"#,
            r#"{"credsStore":""}"#,
            "{}",
        ] {
            let (v, _) = merge(Some(text), &store(false)).unwrap();
            assert_eq!(v, json!({"credsStore": "acr-entra"}), "{text}");
        }
    }

    #[test]
    fn merge_refuses_malformed() {
        for (text, why) in [
            ("{", "unexpected end of file at line 1 column 1"),
            ("[]", "the top level is not a JSON object"),
            ("{\"a\":1,}", "JSON syntax error at line 1 column 8"),
            (
                r#"{"credHelpers":"x"}"#,
                "`credHelpers` is not a JSON object",
            ),
        ] {
            assert_eq!(
                merge(Some(text), &hosts(&["a.azurecr.io"]))
                    .unwrap_err()
                    .to_string(),
                why,
                "{text}"
            );
        }
    }

    #[test]
    fn pretty_uses_tabs() {
        assert_eq!(
            to_pretty(&json!({"credHelpers": {"a.azurecr.io": "acr-entra"}})),
            "{\n\t\"credHelpers\": {\n\t\t\"a.azurecr.io\": \"acr-entra\"\n\t}\n}\n"
        );
    }

    #[test]
    fn masks_secrets_at_any_depth() {
        let v = json!({"auths": {"ghcr.io": {"auth": "c2VjcmV0", "IdentityToken": "it", "email": "e"}},
            "credHelpers": {"a.azurecr.io": "acr-entra"}, "x": [{"password": 5}], "auth": {"k": "v"}});
        assert_eq!(
            masked(v),
            json!({"auths": {"ghcr.io": {"auth": "REDACTED", "IdentityToken": "REDACTED", "email": "e"}},
                "credHelpers": {"a.azurecr.io": "acr-entra"}, "x": [{"password": "REDACTED"}], "auth": {"k": "v"}})
        );
    }

    #[test]
    fn masks_headers_and_proxy_passwords() {
        let v = json!({"HttpHeaders": {"Authorization": "Bearer abc", "X-Meta": "m"},
            "proxies": {"default": {"httpProxy": "http://user:p@ss@proxy:3128/x",
                "httpsProxy": "https://proxy:3128", "ftpProxy": "http://token@proxy", "noProxy": "*.local"}},
            "credHelpers": {"a.azurecr.io": "acr-entra"}});
        assert_eq!(
            masked(v),
            json!({"HttpHeaders": {"Authorization": "REDACTED", "X-Meta": "REDACTED"},
                "proxies": {"default": {"httpProxy": "http://user:REDACTED@proxy:3128/x",
                    "httpsProxy": "https://proxy:3128", "ftpProxy": "http://token@proxy", "noProxy": "*.local"}},
                "credHelpers": {"a.azurecr.io": "acr-entra"}})
        );
        assert_eq!(
            url_password_masked("socks5://u:@h:1"),
            "socks5://u:REDACTED@h:1"
        );
        assert_eq!(url_password_masked("not a url: a@b"), "not a url: a@b");
        assert_eq!(
            url_password_masked("http://h/p?u=a:b@c"),
            "http://h/p?u=a:b@c"
        );
    }

    #[test]
    fn diffs() {
        assert_eq!(diff("a\nb\nc\n", "a\nx\nc\n"), " a\n-b\n+x\n c\n");
        assert_eq!(diff("", "a\n"), "+a\n");
        assert_eq!(diff("a\n", "a\n"), " a\n");
    }

    #[test]
    fn backup_names() {
        assert_eq!(
            backup_path(Path::new("/h/.docker/config.json")),
            Path::new("/h/.docker/config.json.acr-entra.bak")
        );
    }
}
