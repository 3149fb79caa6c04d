//! Whether the clients will really reach this helper for a host, read the way they read
//! their files: docker (and BuildKit, helm, docker-py) takes `credHelpers[HOST]`, else
//! `credsStore`, else a static `auths` entry from `~/.docker/config.json`; podman,
//! buildah and skopeo take the first of `$XDG_RUNTIME_DIR/containers/auth.json`,
//! `~/.config/containers/auth.json` and `~/.docker/config.json` with a `credHelpers` or
//! `auths` entry for the host (they ignore `credsStore`). And whether
//! `docker-credential-acr-entra` is on `PATH`, where the clients look it up by name.
//! `configure` warns with these after an edit, `doctor` prints them.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::cli::configure::HELPER_NAME;
use crate::context::Context;

/// The binary the clients run for a `credHelpers`/`credsStore` entry `acr-entra`.
pub const BINARY: &str = "docker-credential-acr-entra";

/// What a client would use for one host, and the file that decides it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// A credential helper, by its name in the file (`acr-entra` is this one).
    Helper {
        name: String,
        file: PathBuf,
        by_store: bool,
    },
    /// A static username and password (`auths`), e.g. from `docker login`/`podman login`.
    Auths(PathBuf),
    /// Nothing: the client goes anonymous.
    Nothing,
}

impl Route {
    /// One line for people: what the client would do for `host` and how to change it.
    pub fn describe(&self, client: &str, host: &str) -> String {
        match self {
            Route::Helper {
                name,
                file,
                by_store,
            } if name == HELPER_NAME => format!(
                "{client}: `{}` sends `{host}` to acr-entra ({})",
                file.display(),
                if *by_store {
                    "credsStore"
                } else {
                    "credHelpers"
                }
            ),
            Route::Helper { name, file, .. } => format!(
                "{client}: `{}` sends `{host}` to the helper `{name}`, not acr-entra: run `configure {client} {host}`",
                file.display()
            ),
            Route::Auths(file) => format!(
                "{client}: `{}` has a stored login for `{host}` that it uses instead of acr-entra: \
                 `{client} logout {host}` removes it",
                file.display()
            ),
            Route::Nothing => format!(
                "{client}: no file sends `{host}` to acr-entra, so {client} pulls anonymously: run `configure {client} {host}`"
            ),
        }
    }
}

fn read(path: &Path) -> Option<Value> {
    let bytes = crate::files::read_user_file(path, crate::files::MAX_FILE).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn helper_entry(value: &Value, host: &str) -> Option<String> {
    Some(value.get("credHelpers")?.get(host)?.as_str()?.to_string())
}

fn has_auths(value: &Value, host: &str) -> bool {
    value.get("auths").and_then(|a| a.get(host)).is_some()
}

/// What docker would use for `host` (a normalised `host[:port]`).
pub fn docker(ctx: &Context, host: &str) -> Route {
    let Some(file) = ctx.settings.clients.docker.clone() else {
        return Route::Nothing;
    };
    let Some(value) = read(&file) else {
        return Route::Nothing;
    };
    if let Some(name) = helper_entry(&value, host) {
        return Route::Helper {
            name,
            file,
            by_store: false,
        };
    }
    if let Some(name) = value
        .get("credsStore")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
    {
        return Route::Helper {
            name: name.to_string(),
            file,
            by_store: true,
        };
    }
    if has_auths(&value, host) {
        return Route::Auths(file);
    }
    Route::Nothing
}

/// What podman, buildah and skopeo would use for `host`, from their auth files in the
/// order they read them (`registries.conf`'s `credential-helpers` is not read here).
pub fn containers(ctx: &Context, host: &str) -> Route {
    let clients = &ctx.settings.clients;
    let files = [
        clients.containers_runtime.clone(),
        clients.containers.clone(),
        clients.docker.clone(),
    ];
    for file in files.into_iter().flatten() {
        let Some(value) = read(&file) else { continue };
        if let Some(name) = helper_entry(&value, host) {
            return Route::Helper {
                name,
                file,
                by_store: false,
            };
        }
        if has_auths(&value, host) {
            return Route::Auths(file);
        }
    }
    Route::Nothing
}

/// Where the clients would find the binary, or the line that says they cannot.
pub fn on_path(ctx: &Context) -> Result<PathBuf, String> {
    crate::entra::find_on_path(&ctx.settings, BINARY).ok_or_else(|| {
        format!(
            "`{BINARY}` is in no PATH directory, so the clients cannot run it: install it into one \
             (`./install.sh` puts it in ~/.local/bin) or add its directory to PATH"
        )
    })
}
