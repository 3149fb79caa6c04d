//! `configure docker|podman|helm [HOST…] [--all] [--dry-run]`: point a client at the
//! helper by editing its config file — `credHelpers` entries (`"HOST": "acr-entra"`) for
//! the hosts, or `credsStore: "acr-entra"` with `--all` for docker and helm. containers
//! tools (podman, buildah, skopeo) ignore `credsStore`, so podman always gets per-host
//! entries. The edit keeps every other key, is idempotent, is serialised between
//! concurrent runs by a lock in the cache directory, keeps a backup of the previous file
//! (`NAME.acr-entra.bak`), replaces the file atomically with its old mode (0600 for a new
//! file), and refuses to touch a file that is not a JSON object. `--dry-run` prints the
//! diff instead. This file owns the JSON merge and the diff; `files` does the writing.

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

const USAGE: &str = "usage: configure docker|podman|helm [HOST...] [--all [--force]] [--dry-run]";

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
    let args = Args::parse("configure", args, &["all", "dry-run", "force"], &[])?;
    let Some((client, hosts)) = args.positional.split_first() else {
        return Err(Error::Usage(USAGE.into()));
    };
    let client = Client::parse(client).ok_or_else(|| {
        Error::Usage(format!(
            "`configure`: unknown client `{}` ({USAGE})",
            crate::error::one_line(client)
                .chars()
                .take(40)
                .collect::<String>()
        ))
    })?;
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
    // Edit the file a symlink points at (dotfile managers), not the link.
    let path = match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            std::fs::canonicalize(path).map_err(|e| Error::file(path, e))?
        }
        _ => path.to_path_buf(),
    };
    let _lock = if dry_run { None } else { lock(ctx, &path)? };
    let (old, mode) = match crate::files::read_user_file(&path, 16 * crate::files::MAX_FILE) {
        Ok(bytes) => {
            let mode = std::fs::metadata(&path).map_or(0o600, |m| crate::platform::mode(&m));
            let text =
                String::from_utf8(bytes).map_err(|_| malformed(&path, "it is not UTF-8 text"))?;
            (Some(text), mode)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => (None, 0o600),
        Err(e) => return Err(Error::file(&path, e)),
    };
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
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        files::ensure_dir(dir)?;
    }
    let mut report;
    if let Some(old) = &old {
        let backup = backup_path(&path);
        files::write_atomic(&backup, old.as_bytes())?;
        report = format!(
            "{name}: updated `{}` (previous file kept as `{}`)",
            path.display(),
            backup.display()
        );
    } else {
        report = format!("{name}: created `{}`", path.display());
    }
    files::write_atomic_mode(&path, new.as_bytes(), mode)?;
    for change in changes {
        report.push_str("\n  ");
        report.push_str(&change);
    }
    Ok(report)
}

/// What `configure` would change, as a diff of the two files with every secret-bearing
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
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".acr-entra.bak");
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
    let mut root = match text.map(str::trim) {
        None | Some("") => Map::new(),
        Some(text) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(map)) => map,
            Ok(_) => return Err(Unmergeable::NotAnObject),
            Err(e) => {
                return Err(Unmergeable::Json {
                    what: e.classify_name(),
                    line: e.line(),
                    column: e.column(),
                });
            }
        },
    };
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

/// `value` with every secret-bearing string (at any depth) replaced by `REDACTED`.
pub fn masked(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let secret = SECRET_KEYS.contains(&k.to_ascii_lowercase().as_str())
                        && !matches!(v, Value::Object(_) | Value::Array(_) | Value::Null);
                    let v = if secret {
                        Value::String("REDACTED".into())
                    } else {
                        masked(v)
                    };
                    (k, v)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(masked).collect()),
        other => other,
    }
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
