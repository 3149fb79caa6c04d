//! Every environment variable and the optional JSON config file; nothing else in the
//! crate reads the environment. `Env` is a snapshot taken once in `main` (tests build
//! their own), `Settings` is what the helper needs from it, and `FileConfig` holds the
//! per-registry entries of `config.json`. Variable names are constants here so the README
//! and the code cannot drift apart.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::identity::CredentialKind;
use crate::log::Level;
use crate::platform::Conventions;
use crate::registry::{Audience, Cloud, RegistryHost};
use crate::secret::Secret;

pub const ACR_ENTRA_CREDENTIAL: &str = "ACR_ENTRA_CREDENTIAL";
pub const ACR_ENTRA_CONFIG: &str = "ACR_ENTRA_CONFIG";
pub const ACR_ENTRA_CACHE_DIR: &str = "ACR_ENTRA_CACHE_DIR";
pub const ACR_ENTRA_NO_CACHE: &str = "ACR_ENTRA_NO_CACHE";
pub const ACR_ENTRA_LOG: &str = "ACR_ENTRA_LOG";
pub const ACR_ENTRA_MIN_TTL: &str = "ACR_ENTRA_MIN_TTL";
pub const ACR_ENTRA_TIMEOUT: &str = "ACR_ENTRA_TIMEOUT";
pub const ACR_ENTRA_REFRESH_JITTER: &str = "ACR_ENTRA_REFRESH_JITTER";
pub const ACR_ENTRA_CONNECT_TO: &str = "ACR_ENTRA_CONNECT_TO";
pub const AZURE_CLIENT_ID: &str = "AZURE_CLIENT_ID";
pub const AZURE_CLIENT_SECRET: &str = "AZURE_CLIENT_SECRET";
pub const AZURE_TENANT_ID: &str = "AZURE_TENANT_ID";
pub const AZURE_CLIENT_CERTIFICATE_PATH: &str = "AZURE_CLIENT_CERTIFICATE_PATH";
pub const AZURE_CLIENT_CERTIFICATE_PASSWORD: &str = "AZURE_CLIENT_CERTIFICATE_PASSWORD";
pub const AZURE_CLIENT_SEND_CERTIFICATE_CHAIN: &str = "AZURE_CLIENT_SEND_CERTIFICATE_CHAIN";
pub const AZURE_CONFIG_DIR: &str = "AZURE_CONFIG_DIR";
pub const AZD_CONFIG_DIR: &str = "AZD_CONFIG_DIR";
pub const AZURE_FEDERATED_TOKEN_FILE: &str = "AZURE_FEDERATED_TOKEN_FILE";
pub const AZURE_AUTHORITY_HOST: &str = "AZURE_AUTHORITY_HOST";
pub const AZURE_POD_IDENTITY_AUTHORITY_HOST: &str = "AZURE_POD_IDENTITY_AUTHORITY_HOST";
pub const IDENTITY_ENDPOINT: &str = "IDENTITY_ENDPOINT";
pub const IDENTITY_HEADER: &str = "IDENTITY_HEADER";
pub const IMDS_ENDPOINT: &str = "IMDS_ENDPOINT";
/// GitHub Actions sets these two in a job whose workflow grants `id-token: write`: the
/// URL of its OIDC token service and the bearer token that may ask it.
pub const ACTIONS_ID_TOKEN_REQUEST_URL: &str = "ACTIONS_ID_TOKEN_REQUEST_URL";
pub const ACTIONS_ID_TOKEN_REQUEST_TOKEN: &str = "ACTIONS_ID_TOKEN_REQUEST_TOKEN";
/// `true` in every GitHub Actions job: tells a missing `id-token: write` apart from
/// not being in GitHub Actions at all.
pub const GITHUB_ACTIONS: &str = "GITHUB_ACTIONS";
/// The audience asked of a CI's OIDC token service; default the cloud's token-exchange
/// audience (`api://AzureADTokenExchange`, `…China`, `…USGov`).
pub const ACR_ENTRA_OIDC_AUDIENCE: &str = "ACR_ENTRA_OIDC_AUDIENCE";
/// Azure Pipelines: the job's OIDC endpoint (set in every job), the job's access token
/// (set only when the pipeline maps `$(System.AccessToken)` into the step's
/// environment) and the service connection whose federated credential is used, named as
/// the Azure SDKs and the AzureCLI task name them. Client and tenant come from
/// `AZURE_CLIENT_ID`/`AZURE_TENANT_ID`, else the `AZURESUBSCRIPTION_` pair.
pub const SYSTEM_OIDCREQUESTURI: &str = "SYSTEM_OIDCREQUESTURI";
pub const SYSTEM_ACCESSTOKEN: &str = "SYSTEM_ACCESSTOKEN";
pub const AZURESUBSCRIPTION_SERVICE_CONNECTION_ID: &str = "AZURESUBSCRIPTION_SERVICE_CONNECTION_ID";
pub const AZURESUBSCRIPTION_CLIENT_ID: &str = "AZURESUBSCRIPTION_CLIENT_ID";
pub const AZURESUBSCRIPTION_TENANT_ID: &str = "AZURESUBSCRIPTION_TENANT_ID";
/// The name of an environment variable that holds a federated token (GitLab's
/// `id_tokens:`, CircleCI's `CIRCLE_OIDC_TOKEN_V2`, Bitbucket's
/// `BITBUCKET_STEP_OIDC_TOKEN`, …), read at each mint: workload identity without a file.
pub const ACR_ENTRA_FEDERATED_TOKEN_ENV: &str = "ACR_ENTRA_FEDERATED_TOKEN_ENV";
/// Where docker (and helm, oras) keep `config.json`: `configure docker` edits
/// `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
pub const DOCKER_CONFIG: &str = "DOCKER_CONFIG";
/// The containers tools' (podman, buildah, skopeo) auth file: `configure podman` edits it
/// when set.
pub const REGISTRY_AUTH_FILE: &str = "REGISTRY_AUTH_FILE";
/// Else `configure podman` edits `$XDG_CONFIG_HOME/containers/auth.json`
/// (`~/.config/containers/auth.json`), which lasts; `podman login`'s own default,
/// `$XDG_RUNTIME_DIR/containers/auth.json`, is on a tmpfs that is emptied at logout. The
/// tools read the runtime file first, so `configure` says when it has entries.
pub const XDG_RUNTIME_DIR: &str = "XDG_RUNTIME_DIR";
/// helm's registry config file: `configure helm` edits it when set, else
/// `$XDG_CONFIG_HOME/helm/registry/config.json` or `~/.config/helm/registry/config.json`.
pub const HELM_REGISTRY_CONFIG: &str = "HELM_REGISTRY_CONFIG";
/// Windows: the home directory (as docker and az take it), the roaming application data
/// (the config file, helm's), the machine-local application data (the cache and stored
/// credentials), and the suffixes that make a file a program (`az` is `az.cmd`).
pub const USERPROFILE: &str = "USERPROFILE";
pub const APPDATA: &str = "APPDATA";
pub const LOCALAPPDATA: &str = "LOCALAPPDATA";
pub const PATHEXT: &str = "PATHEXT";

/// Default `ACR_ENTRA_MIN_TTL`: a returned token has at least this long to live, so a
/// long push does not start with a nearly dead token.
pub const DEFAULT_MIN_TTL: Duration = Duration::from_secs(30 * 60);
/// Default `ACR_ENTRA_REFRESH_JITTER`: re-mint points spread over a tenth of a token's
/// lifetime (about 18 minutes of a 3-hour token), enough to take machines that minted
/// in the same second apart without re-minting much earlier than needed.
pub const DEFAULT_REFRESH_JITTER: u8 = 10;
/// The most `ACR_ENTRA_REFRESH_JITTER` may be: beyond half its lifetime a token would be
/// re-minted when it has barely been used.
pub const MAX_REFRESH_JITTER: u8 = 50;
/// Default `ACR_ENTRA_TIMEOUT`: the most one network call may take.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// A snapshot of the process environment. Empty values count as unset. A `BTreeMap`, not
/// a `HashMap`: no random seed (a `getrandom` call) and no SipHash on every start. Shared
/// (`Arc`), since `Settings` keeps it for federated-token variables named only later:
/// a clone costs a count, not a copy of every variable.
#[derive(Clone, Default)]
pub struct Env {
    vars: Arc<BTreeMap<String, OsString>>,
}

/// Values may be secrets: `Debug` shows how many there are, nothing else.
impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Env({} variables)", self.vars.len())
    }
}

impl Env {
    // The one read of the process environment (clippy.toml keeps it here).
    #[allow(clippy::disallowed_methods)]
    pub fn from_process() -> Env {
        Env {
            vars: Arc::new(
                std::env::vars_os()
                    .filter_map(|(k, v)| Some((k.into_string().ok()?, v)))
                    .collect(),
            ),
        }
    }

    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Env {
        Env {
            vars: Arc::new(
                pairs
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), OsString::from(v)))
                    .collect(),
            ),
        }
    }

    /// A variable's value; empty and non-UTF-8 values count as unset.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .and_then(|v| v.to_str())
            .filter(|v| !v.is_empty())
    }

    pub fn path(&self, name: &str) -> Option<PathBuf> {
        self.vars
            .get(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    }

    pub fn os(&self, name: &str) -> Option<&OsString> {
        self.vars.get(name).filter(|v| !v.is_empty())
    }
}

/// One entry of the config file's `registries` map.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    #[serde(default, deserialize_with = "de_kind")]
    pub credential: Option<CredentialKind>,
    pub client_id: Option<String>,
    pub object_id: Option<String>,
    pub resource_id: Option<String>,
    pub tenant_id: Option<String>,
    #[serde(default, deserialize_with = "de_audience")]
    pub audience: Option<Audience>,
    #[serde(default, deserialize_with = "de_cloud")]
    pub cloud: Option<Cloud>,
    /// The environment variable holding this registry's federated token (as
    /// `ACR_ENTRA_FEDERATED_TOKEN_ENV`, which it overrides).
    #[serde(default, deserialize_with = "de_variable_name")]
    pub federated_token_env: Option<String>,
    /// The registry serves anonymous pulls: when no token can be had, `get` answers "no
    /// credentials" (kubelet an empty `auth`) so the client pulls anonymously.
    #[serde(default)]
    pub anonymous: bool,
}

fn de_kind<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<CredentialKind>, D::Error> {
    let s = String::deserialize(d)?;
    CredentialKind::parse(&s).map(Some).ok_or_else(|| {
        serde::de::Error::custom(format!(
            "unknown credential `{s}` (expected one of {})",
            CredentialKind::names()
        ))
    })
}

fn de_audience<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Audience>, D::Error> {
    let s = String::deserialize(d)?;
    Audience::parse(&s).map(Some).ok_or_else(|| {
        serde::de::Error::custom(format!(
            "unknown audience `{s}` (expected acr, arm or an https:// URI)"
        ))
    })
}

fn de_variable_name<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = String::deserialize(d)?;
    if is_variable_name(&s) {
        Ok(Some(s))
    } else {
        Err(serde::de::Error::custom(format!(
            "`{}` is not an environment variable name (letters, digits and `_`, not starting with a digit)",
            crate::error::one_line(&s)
                .chars()
                .take(80)
                .collect::<String>()
        )))
    }
}

/// `[A-Za-z_][A-Za-z0-9_]*`: what a shell can export.
pub fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn de_cloud<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Cloud>, D::Error> {
    let s = String::deserialize(d)?;
    Cloud::parse(&s).map(Some).ok_or_else(|| {
        serde::de::Error::custom(format!(
            "unknown cloud `{s}` (expected public, china or usgov)"
        ))
    })
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFileConfig {
    #[serde(default, rename = "$schema")]
    _schema: Option<String>,
    #[serde(default)]
    registries: BTreeMap<String, RegistryConfig>,
    #[serde(default)]
    mirrors: BTreeMap<String, String>,
}

/// The parsed config file: registries keyed by normalised `host[:port]`.
#[derive(Debug, Default)]
pub struct FileConfig {
    /// `None` when there is no config location at all.
    pub path: Option<PathBuf>,
    pub registries: BTreeMap<String, RegistryConfig>,
    /// Upstream registries (by normalised key) pulled through a mirror ACR: kubelet asks
    /// about the upstream image, and the mirror's token answers for it.
    pub mirrors: BTreeMap<String, RegistryHost>,
}

impl FileConfig {
    /// Read the config file; a missing file is an empty config unless `named` (the
    /// user pointed `ACR_ENTRA_CONFIG` at it, so a typo there must not silently drop
    /// every registry entry), anything else that cannot be read or parsed is an error
    /// naming the file.
    pub fn load(path: &Path, named: bool) -> Result<FileConfig> {
        let text = match crate::files::read_user_file(path, crate::files::MAX_FILE) {
            Ok(bytes) => String::from_utf8(bytes).map_err(|_| {
                Error::Config(format!("config file `{}` is not UTF-8", path.display()))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && named => {
                return Err(Error::Config(format!(
                    "{ACR_ENTRA_CONFIG} names `{}`, which does not exist: create it, or unset {ACR_ENTRA_CONFIG} to use the default location",
                    path.display()
                )));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(FileConfig {
                    path: Some(path.to_path_buf()),
                    ..FileConfig::default()
                });
            }
            Err(e) => return Err(Error::file(path, e)),
        };
        FileConfig::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<FileConfig> {
        let bad = |why: String| {
            Error::Config(format!(
                "config file `{}` is not valid: {why}",
                path.display()
            ))
        };
        let raw: RawFileConfig = if text.trim().is_empty() {
            RawFileConfig::default()
        } else {
            serde_json::from_str(text).map_err(|e| bad(e.to_string()))?
        };
        let mut registries = BTreeMap::new();
        for (name, entry) in raw.registries {
            let host = RegistryHost::parse(&name)
                .map_err(|_| bad(format!("`{name}` is not a registry host name")))?;
            registries.insert(host.key(), entry);
        }
        let mut mirrors = BTreeMap::new();
        for (source, mirror) in raw.mirrors {
            let (source, mirror) = parse_mirror(&source, &mirror, |m| {
                m.acr_cloud().is_some() || registries.contains_key(&m.key())
            })
            .map_err(bad)?;
            mirrors.insert(source.key(), mirror);
        }
        Ok(FileConfig {
            path: Some(path.to_path_buf()),
            registries,
            mirrors,
        })
    }

    /// The file for messages: "`PATH`", or why there is none.
    pub fn shown(&self) -> String {
        match &self.path {
            Some(p) => format!("`{}`", p.display()),
            None => format!("(no config file: HOME is not set; set {ACR_ENTRA_CONFIG} to use one)"),
        }
    }

    /// Whether the config file exists.
    pub fn exists(&self) -> bool {
        self.path.as_ref().is_some_and(|p| p.exists())
    }

    pub fn registry(&self, host: &RegistryHost) -> Option<&RegistryConfig> {
        self.registries.get(&host.key())
    }

    /// Whether `host` may receive tokens: an ACR login server or a listed registry.
    pub fn gets_tokens(&self, host: &RegistryHost) -> bool {
        host.acr_cloud().is_some() || self.registry(host).is_some()
    }
}

/// A mirror rule: the upstream `source` and the `mirror` that serves it, which must be a
/// registry that gets tokens (`gets_tokens`), so no rule can send a token elsewhere. The
/// source must not get tokens of its own: it is answered with the mirror's.
pub fn parse_mirror(
    source: &str,
    mirror: &str,
    gets_tokens: impl Fn(&RegistryHost) -> bool,
) -> std::result::Result<(RegistryHost, RegistryHost), String> {
    let shown = |t: &str| {
        crate::error::one_line(t)
            .chars()
            .take(80)
            .collect::<String>()
    };
    let source_host = RegistryHost::parse(source).map_err(|_| {
        format!(
            "mirror source `{}` is not a registry host name",
            shown(source)
        )
    })?;
    let mirror_host = RegistryHost::parse(mirror)
        .map_err(|_| format!("mirror `{}` is not a registry host name", shown(mirror)))?;
    if !gets_tokens(&mirror_host) {
        return Err(format!(
            "mirror `{mirror_host}` for `{source_host}` is neither an ACR login server nor a registry listed in the config file"
        ));
    }
    if gets_tokens(&source_host) {
        return Err(format!(
            "mirror source `{source_host}` gets tokens of its own; a mirror rule is for an upstream registry such as mcr.microsoft.com"
        ));
    }
    Ok((source_host, mirror_host))
}

/// `host:port:addr:port` pairs from `ACR_ENTRA_CONNECT_TO` (curl's `--connect-to`): the
/// TCP connection goes to `addr:port` while TLS and the Host header keep the name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectTo {
    pub host: String,
    pub port: u16,
    pub target: String,
}

/// The standard Azure variables, read once.
#[derive(Clone, Debug, Default)]
pub struct AzureEnv {
    pub client_id: Option<String>,
    pub client_secret: Option<Secret>,
    pub tenant_id: Option<String>,
    pub certificate_path: Option<PathBuf>,
    pub certificate_password: Option<Secret>,
    /// `AZURE_CLIENT_SEND_CERTIFICATE_CHAIN`: put the chain in the assertion's `x5c`
    /// header, for apps that trust a certificate by subject name and issuer (SN+I).
    pub send_certificate_chain: bool,
    pub federated_token_file: Option<PathBuf>,
    pub authority_host: Option<String>,
    pub identity_endpoint: Option<String>,
    pub identity_header: Option<Secret>,
    pub imds_endpoint: Option<String>,
    pub pod_identity_host: Option<String>,
    /// `$AZURE_CONFIG_DIR/azureProfile.json`, else `~/.azure/azureProfile.json`: who
    /// `az` is signed in as (read only to key the cache, see `entra::Identity::account`).
    pub az_profile: Option<PathBuf>,
    /// `$AZD_CONFIG_DIR/config.json`, else `~/.azd/config.json`: the same for `azd`.
    pub azd_config: Option<PathBuf>,
}

/// What CI systems put into a job's environment for OIDC federation, read once.
#[derive(Clone, Debug, Default)]
pub struct CiEnv {
    /// `ACTIONS_ID_TOKEN_REQUEST_URL` and `ACTIONS_ID_TOKEN_REQUEST_TOKEN`.
    pub github_url: Option<String>,
    pub github_token: Option<Secret>,
    /// `GITHUB_ACTIONS=true`: a job without the two above lacks `id-token: write`.
    pub in_github_actions: bool,
    /// `ACR_ENTRA_OIDC_AUDIENCE`.
    pub oidc_audience: Option<String>,
    /// `SYSTEM_OIDCREQUESTURI`, `SYSTEM_ACCESSTOKEN` and the service connection.
    pub pipelines_url: Option<String>,
    pub pipelines_token: Option<Secret>,
    pub service_connection_id: Option<String>,
    /// `AZURESUBSCRIPTION_CLIENT_ID`/`_TENANT_ID`: used when `AZURE_*` are unset.
    pub pipelines_client_id: Option<String>,
    pub pipelines_tenant_id: Option<String>,
    /// `ACR_ENTRA_FEDERATED_TOKEN_ENV`: the name of the variable, not its value.
    pub token_env: Option<String>,
    /// The whole environment, for the variable a registry's entry names.
    vars: Env,
}

impl CiEnv {
    /// `ACR_ENTRA_FEDERATED_TOKEN_ENV` must be a variable's name.
    fn check(env: &Env) -> Result<()> {
        match env
            .get(ACR_ENTRA_FEDERATED_TOKEN_ENV)
            .filter(|n| !is_variable_name(n))
        {
            None => Ok(()),
            Some(name) => Err(Error::Config(format!(
                "{ACR_ENTRA_FEDERATED_TOKEN_ENV}=`{}` is not an environment variable name (letters, digits and `_`)",
                crate::error::one_line(name)
                    .chars()
                    .take(80)
                    .collect::<String>()
            ))),
        }
    }

    /// The CI variables; a `ACR_ENTRA_FEDERATED_TOKEN_ENV` that `check` refuses is left out.
    fn from_env(env: &Env) -> CiEnv {
        let token_env = env
            .get(ACR_ENTRA_FEDERATED_TOKEN_ENV)
            .filter(|n| is_variable_name(n))
            .map(str::to_string);
        CiEnv {
            github_url: env.get(ACTIONS_ID_TOKEN_REQUEST_URL).map(str::to_string),
            github_token: env.get(ACTIONS_ID_TOKEN_REQUEST_TOKEN).map(Secret::new),
            in_github_actions: env
                .get(GITHUB_ACTIONS)
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("true")),
            oidc_audience: env.get(ACR_ENTRA_OIDC_AUDIENCE).map(str::to_string),
            pipelines_url: env.get(SYSTEM_OIDCREQUESTURI).map(str::to_string),
            pipelines_token: env.get(SYSTEM_ACCESSTOKEN).map(Secret::new),
            service_connection_id: env
                .get(AZURESUBSCRIPTION_SERVICE_CONNECTION_ID)
                .map(str::to_string),
            pipelines_client_id: env.get(AZURESUBSCRIPTION_CLIENT_ID).map(str::to_string),
            pipelines_tenant_id: env.get(AZURESUBSCRIPTION_TENANT_ID).map(str::to_string),
            token_env,
            vars: env.clone(),
        }
    }

    /// The federated token in the variable `name`, trimmed; `None` when unset or blank.
    pub fn federated_token(&self, name: &str) -> Option<Secret> {
        self.vars
            .get(name)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(Secret::new)
    }
}

/// Everything the helper takes from the environment.
#[derive(Clone, Debug)]
pub struct Settings {
    pub log_level: Level,
    pub credential: Option<CredentialKind>,
    /// `None` without ACR_ENTRA_CONFIG, XDG_CONFIG_HOME and HOME: then there is no
    /// config file (never a relative path).
    pub config_path: Option<PathBuf>,
    /// `config_path` comes from `ACR_ENTRA_CONFIG`, so the file must exist.
    pub config_named: bool,
    pub cache_dir: Option<PathBuf>,
    pub no_cache: bool,
    pub min_ttl: Duration,
    /// The share of a token's lifetime (percent) over which its re-mint point is spread.
    pub refresh_jitter: u8,
    pub timeout: Duration,
    pub connect_to: Vec<ConnectTo>,
    pub azure: AzureEnv,
    pub ci: CiEnv,
    /// `PATH`, to find `az` and `azd`.
    pub path: Option<OsString>,
    /// `PATHEXT`, the program suffixes Windows tries (elsewhere unused).
    pub pathext: Option<String>,
    pub home: Option<PathBuf>,
    /// The client config files `configure` edits.
    pub clients: ClientFiles,
}

/// Where the clients keep the files `configure` edits, resolved from the environment
/// the way each client resolves them.
#[derive(Clone, Debug, Default)]
pub struct ClientFiles {
    /// `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`.
    pub docker: Option<PathBuf>,
    /// `$REGISTRY_AUTH_FILE`, else `$XDG_CONFIG_HOME/containers/auth.json`, else
    /// `~/.config/containers/auth.json`.
    pub containers: Option<PathBuf>,
    /// `$XDG_RUNTIME_DIR/containers/auth.json`: read before `containers` by podman,
    /// buildah and skopeo, and where `podman login` writes (unless `REGISTRY_AUTH_FILE`).
    pub containers_runtime: Option<PathBuf>,
    /// `$HELM_REGISTRY_CONFIG`, else `$XDG_CONFIG_HOME/helm/registry/config.json`, else
    /// `~/.config/helm/registry/config.json`.
    pub helm: Option<PathBuf>,
}

impl ClientFiles {
    fn from_env(env: &Env, home: Option<&PathBuf>, conventions: Conventions) -> ClientFiles {
        let absolute = |name: &str| env.path(name).filter(|p| p.is_absolute());
        // helm's own defaults (helmpath): XDG_CONFIG_HOME wins everywhere.
        let helm_home = absolute("XDG_CONFIG_HOME").or_else(|| match conventions {
            Conventions::Xdg => home.map(|h| h.join(".config")),
            Conventions::MacOs => home.map(|h| h.join("Library").join("Preferences")),
            Conventions::Windows => absolute(APPDATA),
        });
        // containers/image reads XDG_RUNTIME_DIR on Linux only.
        let runtime = match conventions {
            Conventions::Xdg => absolute(XDG_RUNTIME_DIR),
            Conventions::MacOs | Conventions::Windows => None,
        };
        ClientFiles {
            docker: env
                .path(DOCKER_CONFIG)
                .or_else(|| home.map(|h| h.join(".docker")))
                .map(|d| d.join("config.json")),
            containers: env.path(REGISTRY_AUTH_FILE).or_else(|| {
                absolute("XDG_CONFIG_HOME")
                    .or_else(|| home.map(|h| h.join(".config")))
                    .map(|c| c.join("containers").join("auth.json"))
            }),
            containers_runtime: runtime
                .filter(|_| env.path(REGISTRY_AUTH_FILE).is_none())
                .map(|r| r.join("containers").join("auth.json")),
            helm: env
                .path(HELM_REGISTRY_CONFIG)
                .or_else(|| helm_home.map(|c| c.join("helm").join("registry").join("config.json"))),
        }
    }
}

/// The variables whose values are names, ids, URLs, paths or secrets taken as they are:
/// a stray character at either end (a `.env` file saved with Windows line endings gives
/// every value a trailing carriage return; `set X=abc ` in cmd a trailing space) would
/// otherwise reach Entra or the file system and fail far from its cause. Variables
/// parsed as numbers, durations or switches are trimmed where they are read instead.
const TAKEN_AS_IS: [&str; 29] = [
    ACR_ENTRA_CREDENTIAL,
    ACR_ENTRA_CONFIG,
    ACR_ENTRA_CACHE_DIR,
    ACR_ENTRA_CONNECT_TO,
    ACR_ENTRA_OIDC_AUDIENCE,
    ACR_ENTRA_FEDERATED_TOKEN_ENV,
    AZURE_CLIENT_ID,
    AZURE_CLIENT_SECRET,
    AZURE_TENANT_ID,
    AZURE_CLIENT_CERTIFICATE_PATH,
    AZURE_CLIENT_CERTIFICATE_PASSWORD,
    AZURE_CONFIG_DIR,
    AZD_CONFIG_DIR,
    AZURE_FEDERATED_TOKEN_FILE,
    AZURE_AUTHORITY_HOST,
    AZURE_POD_IDENTITY_AUTHORITY_HOST,
    IDENTITY_ENDPOINT,
    IDENTITY_HEADER,
    IMDS_ENDPOINT,
    ACTIONS_ID_TOKEN_REQUEST_URL,
    ACTIONS_ID_TOKEN_REQUEST_TOKEN,
    SYSTEM_OIDCREQUESTURI,
    SYSTEM_ACCESSTOKEN,
    AZURESUBSCRIPTION_SERVICE_CONNECTION_ID,
    AZURESUBSCRIPTION_CLIENT_ID,
    AZURESUBSCRIPTION_TENANT_ID,
    DOCKER_CONFIG,
    REGISTRY_AUTH_FILE,
    HELM_REGISTRY_CONFIG,
];

/// A password may really begin or end with a space; a carriage return it never has.
const MAY_HAVE_SPACES: [&str; 1] = [AZURE_CLIENT_CERTIFICATE_PASSWORD];

/// The first variable of `TAKEN_AS_IS` with a stray character at either end, named with
/// that character. The value is never shown: several of these are secrets, and the name
/// and the character are what the user needs.
fn stray_characters(env: &Env) -> Result<()> {
    for name in &TAKEN_AS_IS {
        let Some(value) = env.os(name).and_then(|v| v.to_str()) else {
            continue;
        };
        let spaces_ok = MAY_HAVE_SPACES.contains(name);
        let stray = |c: char| match c {
            '\r' => Some("a carriage return (\\r)"),
            '\n' => Some("a line feed (\\n)"),
            ' ' if !spaces_ok => Some("a space"),
            '\t' if !spaces_ok => Some("a tab"),
            _ => None,
        };
        let found = [
            ("ends", value.chars().next_back()),
            ("starts", value.chars().next()),
        ]
        .into_iter()
        .find_map(|(end, c)| Some((end, stray(c?)?)));
        if let Some((end, what)) = found {
            let fix = if what.starts_with("a carriage") {
                "remove it (a file saved with Windows line endings leaves one on every line; `dos2unix` or `sed -i 's/\\r$//'` fixes the file)"
            } else {
                "remove it"
            };
            return Err(Error::Config(format!("{name} {end} with {what}: {fix}")));
        }
    }
    Ok(())
}

impl Settings {
    pub fn from_env(env: &Env) -> Result<Settings> {
        stray_characters(env)?;
        Settings::read(env, &mut Strict)
    }

    /// `from_env` for a request that no Azure variable can concern (a `get` of a host
    /// that is not an ACR login server): a stray character or a value that cannot be
    /// used (`ACR_ENTRA_LOG=loud`) is handed back to be said as a warning, and the
    /// setting keeps its default, instead of failing the request, as a config file that
    /// cannot be used is (see `Context::load_setting_aside`).
    pub fn from_env_with_strays(env: &Env) -> Result<(Settings, Option<Error>)> {
        let mut aside = SetAside(stray_characters(env).err());
        let settings = Settings::read(env, &mut aside)?;
        Ok((settings, aside.0))
    }

    fn read(env: &Env, bad: &mut impl BadValues) -> Result<Settings> {
        let log_level = bad.or(
            setting(env, ACR_ENTRA_LOG, Level::Off, Level::parse)
                .map_err(|e| e("a level (use error, warn, info, debug or trace)")),
            Level::Off,
        )?;
        let credential = bad.or(
            setting(env, ACR_ENTRA_CREDENTIAL, None, |v| {
                CredentialKind::parse(v).map(Some)
            })
            .map_err(|e| {
                e(&format!(
                    "a credential kind (use one of {})",
                    CredentialKind::names()
                ))
            }),
            None,
        )?;
        let conventions = Conventions::HERE;
        let home = home(env, conventions);
        let (config_path, cache_dir) = locations(env, home.as_ref(), conventions);
        let Timings {
            min_ttl,
            timeout,
            refresh_jitter,
        } = Timings::read(env, bad)?;
        let connect_to = match env.get(ACR_ENTRA_CONNECT_TO) {
            None => Vec::new(),
            Some(v) => bad.or(parse_connect_to(v), Vec::new())?,
        };
        bad.or(CiEnv::check(env), ())?;
        let ci = CiEnv::from_env(env);
        Ok(Settings {
            log_level,
            credential,
            config_named: env.path(ACR_ENTRA_CONFIG).is_some(),
            config_path,
            cache_dir,
            no_cache: env
                .get(ACR_ENTRA_NO_CACHE)
                .is_some_and(|v| !matches!(v.trim(), "0" | "false" | "no")),
            min_ttl,
            refresh_jitter,
            timeout,
            connect_to,
            azure: AzureEnv::from_env(env, home.as_ref()),
            ci,
            path: env.os("PATH").cloned(),
            pathext: env.get(PATHEXT).map(str::to_string),
            clients: ClientFiles::from_env(env, home.as_ref(), conventions),
            home,
        })
    }
}

/// The settings of when: a token's least lifetime, the time budget, the refresh jitter.
struct Timings {
    min_ttl: Duration,
    timeout: Duration,
    refresh_jitter: u8,
}

impl Timings {
    fn read(env: &Env, bad: &mut impl BadValues) -> Result<Timings> {
        let min_ttl = bad.or(
            setting(env, ACR_ENTRA_MIN_TTL, DEFAULT_MIN_TTL, parse_duration)
                .map_err(|e| e("a duration (use seconds, or 30m, 1h)")),
            DEFAULT_MIN_TTL,
        )?;
        let timeout = bad.or(
            setting(env, ACR_ENTRA_TIMEOUT, DEFAULT_TIMEOUT, |v| {
                parse_duration(v).filter(|d| !d.is_zero())
            })
            .map_err(|e| e("a duration (use seconds, e.g. 10 or 2.5)")),
            DEFAULT_TIMEOUT,
        )?;
        let refresh_jitter = bad.or(
            setting(env, ACR_ENTRA_REFRESH_JITTER, DEFAULT_REFRESH_JITTER, |v| {
                v.trim()
                    .trim_end_matches('%')
                    .parse::<u8>()
                    .ok()
                    .filter(|p| *p <= MAX_REFRESH_JITTER)
            })
            .map_err(|e| e("a percentage from 0 to 50 (0 turns the jitter off)")),
            DEFAULT_REFRESH_JITTER,
        )?;
        Ok(Timings {
            min_ttl,
            timeout,
            refresh_jitter,
        })
    }
}

/// What `Settings::read` does with a value it cannot use.
trait BadValues {
    /// `value`, or, when it is an error this reading sets aside, `default`.
    fn or<T>(&mut self, value: Result<T>, default: T) -> Result<T>;
}

/// Every request that a setting can concern: a value that cannot be used fails it.
struct Strict;

/// A request no setting can concern: the first value that cannot be used is kept to be
/// said as a warning, and its setting keeps the default.
struct SetAside(Option<Error>);

impl BadValues for Strict {
    fn or<T>(&mut self, value: Result<T>, _: T) -> Result<T> {
        value
    }
}

impl BadValues for SetAside {
    fn or<T>(&mut self, value: Result<T>, default: T) -> Result<T> {
        value.or_else(|e| {
            self.0.get_or_insert(e);
            Ok(default)
        })
    }
}

/// The variable `name` read with `parse`, or `default` when unset; a value `parse` refuses
/// gives a function that turns what was expected into the one-line error.
fn setting<T>(
    env: &Env,
    name: &str,
    default: T,
    parse: impl Fn(&str) -> Option<T>,
) -> std::result::Result<T, impl FnOnce(&str) -> Error> {
    match env.get(name) {
        None => Ok(default),
        Some(v) => parse(v).ok_or_else(|| {
            let shown = v.to_string();
            let name = name.to_string();
            move |expected: &str| Error::Config(format!("{name}=`{shown}` is not {expected}"))
        }),
    }
}

/// The home directory comes from HOME alone (Windows: USERPROFILE, as docker and az
/// take it), never from the user database: a uid without a passwd entry (containers, CI)
/// has none, and a statically linked binary that asked NSS would load modules it cannot
/// run. A relative value counts as unset, so a file in the working directory can never
/// act as our config.
fn home(env: &Env, conventions: Conventions) -> Option<PathBuf> {
    let name = match conventions {
        Conventions::Xdg | Conventions::MacOs => "HOME",
        Conventions::Windows => USERPROFILE,
    };
    env.path(name).filter(|h| h.is_absolute())
}

/// The config file and the cache directory, each `None` when nothing names one. The
/// helper's own variables win, then the XDG base directories when set (on every
/// platform), then the platform's convention.
fn locations(
    env: &Env,
    home: Option<&PathBuf>,
    conventions: Conventions,
) -> (Option<PathBuf>, Option<PathBuf>) {
    let absolute = |name: &str| env.path(name).filter(|p| p.is_absolute());
    let (config_home, cache_home) = match conventions {
        Conventions::Xdg => (
            home.map(|h| h.join(".config")),
            home.map(|h| h.join(".cache")),
        ),
        Conventions::MacOs => (
            home.map(|h| h.join("Library").join("Application Support")),
            home.map(|h| h.join("Library").join("Caches")),
        ),
        Conventions::Windows => (absolute(APPDATA), absolute(LOCALAPPDATA)),
    };
    let config_path = env.path(ACR_ENTRA_CONFIG).or_else(|| {
        absolute("XDG_CONFIG_HOME")
            .or(config_home)
            .map(|d| d.join("acr-entra").join("config.json"))
    });
    let cache_dir = env.path(ACR_ENTRA_CACHE_DIR).or_else(|| {
        absolute("XDG_CACHE_HOME")
            .or(cache_home)
            .map(|d| d.join("acr-entra"))
    });
    (config_path, cache_dir)
}

impl AzureEnv {
    fn from_env(env: &Env, home: Option<&PathBuf>) -> AzureEnv {
        AzureEnv {
            client_id: env.get(AZURE_CLIENT_ID).map(str::to_string),
            client_secret: env.get(AZURE_CLIENT_SECRET).map(Secret::new),
            tenant_id: env.get(AZURE_TENANT_ID).map(str::to_string),
            certificate_path: env.path(AZURE_CLIENT_CERTIFICATE_PATH),
            certificate_password: env.get(AZURE_CLIENT_CERTIFICATE_PASSWORD).map(Secret::new),
            send_certificate_chain: env
                .get(AZURE_CLIENT_SEND_CERTIFICATE_CHAIN)
                .is_some_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true")),
            federated_token_file: env.path(AZURE_FEDERATED_TOKEN_FILE),
            authority_host: env.get(AZURE_AUTHORITY_HOST).map(str::to_string),
            identity_endpoint: env.get(IDENTITY_ENDPOINT).map(str::to_string),
            identity_header: env.get(IDENTITY_HEADER).map(Secret::new),
            imds_endpoint: env.get(IMDS_ENDPOINT).map(str::to_string),
            pod_identity_host: env
                .get(AZURE_POD_IDENTITY_AUTHORITY_HOST)
                .map(str::to_string),
            az_profile: env
                .path(AZURE_CONFIG_DIR)
                .or_else(|| home.map(|h| h.join(".azure")))
                .map(|d| d.join("azureProfile.json")),
            azd_config: env
                .path(AZD_CONFIG_DIR)
                .or_else(|| home.map(|h| h.join(".azd")))
                .map(|d| d.join("config.json")),
        }
    }
}

/// `90`, `2.5`, `90s`, `30m`, `1h`.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let (number, unit) = match text.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => (&text[..i], &text[i..]),
        None => (text, "s"),
    };
    let value: f64 = number.trim().parse().ok()?;
    if !value.is_finite() || value < 0.0 {
        return None;
    }
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => return None,
    };
    (seconds < 1.0e9).then(|| Duration::from_secs_f64(seconds))
}

fn parse_connect_to(text: &str) -> Result<Vec<ConnectTo>> {
    text.split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|item| {
            let bad = || {
                Error::Config(format!(
                    "{ACR_ENTRA_CONNECT_TO} entry `{item}` is not HOST:PORT:ADDR:PORT"
                ))
            };
            let parts: Vec<&str> = item.trim().splitn(3, ':').collect();
            let [host, port, target] = parts.as_slice() else {
                return Err(bad());
            };
            let port: u16 = port.parse().map_err(|_| bad())?;
            if host.is_empty() || !target.contains(':') {
                return Err(bad());
            }
            Ok(ConnectTo {
                host: host.to_ascii_lowercase(),
                port,
                target: (*target).to_string(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("2.5"), Some(Duration::from_millis(2500)));
        assert_eq!(parse_duration("30m"), Some(Duration::from_secs(1800)));
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("-1"), None);
        assert_eq!(parse_duration("soon"), None);
        assert_eq!(parse_duration("1d"), None);
    }

    #[test]
    fn empty_values_are_unset() {
        let env = Env::from_pairs([(ACR_ENTRA_CREDENTIAL, ""), (ACR_ENTRA_LOG, "")]);
        let s = Settings::from_env(&env).unwrap();
        assert_eq!(s.credential, None);
        assert_eq!(s.log_level, Level::Off);
        assert_eq!(s.min_ttl, DEFAULT_MIN_TTL);
    }

    #[test]
    fn bad_values_are_errors() {
        for (k, v) in [
            (ACR_ENTRA_CREDENTIAL, "password"),
            (ACR_ENTRA_LOG, "loud"),
            (ACR_ENTRA_MIN_TTL, "soon"),
            (ACR_ENTRA_REFRESH_JITTER, "51"),
            (ACR_ENTRA_REFRESH_JITTER, "-1"),
            (ACR_ENTRA_REFRESH_JITTER, "lots"),
            (ACR_ENTRA_TIMEOUT, "0"),
            (ACR_ENTRA_CONNECT_TO, "nonsense"),
        ] {
            let err = Settings::from_env(&Env::from_pairs([(k, v)])).unwrap_err();
            assert!(err.one_line().contains(k), "{err}");
        }
    }

    #[test]
    fn cache_and_config_locations() {
        let env = Env::from_pairs([("HOME", "/h"), ("XDG_CACHE_HOME", "/c")]);
        let s = Settings::from_env(&env).unwrap();
        assert_eq!(s.cache_dir.unwrap(), PathBuf::from("/c/acr-entra"));
        assert_eq!(
            s.config_path,
            Some(PathBuf::from("/h/.config/acr-entra/config.json"))
        );
        // No home: no config file and no cache, never a path relative to the working
        // directory.
        for env in [Env::default(), Env::from_pairs([("HOME", "relative/home")])] {
            let s = Settings::from_env(&env).unwrap();
            assert_eq!(s.config_path, None);
            assert_eq!(s.cache_dir, None);
        }
    }

    /// `path` made absolute on the host running the tests (`C:` first on Windows), so
    /// every platform's conventions are tested everywhere; `shown` undoes it.
    fn abs(path: &'static str) -> &'static str {
        if cfg!(windows) {
            Box::leak(format!("C:{path}").into_boxed_str())
        } else {
            path
        }
    }

    fn shown(path: &Path) -> String {
        let text = path.to_string_lossy().replace('\\', "/");
        text.strip_prefix("C:").unwrap_or(&text).to_string()
    }

    /// The runtime auth file podman reads first is Linux's alone.
    #[test]
    fn the_podman_runtime_file_is_linux_only() {
        let env = Env::from_pairs([("HOME", abs("/h")), (XDG_RUNTIME_DIR, abs("/run/1"))]);
        let runtime = |c: Conventions| {
            ClientFiles::from_env(&env, home(&env, c).as_ref(), c)
                .containers_runtime
                .map(|p| shown(&p))
        };
        assert_eq!(
            runtime(Conventions::Xdg).as_deref(),
            Some("/run/1/containers/auth.json")
        );
        assert_eq!(runtime(Conventions::MacOs), None);
        assert_eq!(runtime(Conventions::Windows), None);
    }

    #[test]
    fn locations_follow_each_platform() {
        let env = Env::from_pairs([
            ("HOME", abs("/h")),
            (USERPROFILE, abs("/u")),
            (APPDATA, abs("/roaming")),
            (LOCALAPPDATA, abs("/local")),
            (XDG_RUNTIME_DIR, abs("/run/1")),
        ]);
        let at = |c: Conventions| {
            let home = home(&env, c);
            let (config, cache) = locations(&env, home.as_ref(), c);
            let clients = ClientFiles::from_env(&env, home.as_ref(), c);
            [
                config,
                cache,
                clients.docker,
                clients.containers,
                clients.helm,
            ]
            .map(|p| shown(&p.unwrap()))
        };
        assert_eq!(
            at(Conventions::Xdg),
            [
                "/h/.config/acr-entra/config.json",
                "/h/.cache/acr-entra",
                "/h/.docker/config.json",
                "/h/.config/containers/auth.json",
                "/h/.config/helm/registry/config.json",
            ]
        );

        assert_eq!(
            at(Conventions::MacOs),
            [
                "/h/Library/Application Support/acr-entra/config.json",
                "/h/Library/Caches/acr-entra",
                "/h/.docker/config.json",
                "/h/.config/containers/auth.json",
                "/h/Library/Preferences/helm/registry/config.json",
            ]
        );
        assert_eq!(
            at(Conventions::Windows),
            [
                "/roaming/acr-entra/config.json",
                "/local/acr-entra",
                "/u/.docker/config.json",
                "/u/.config/containers/auth.json",
                "/roaming/helm/registry/config.json",
            ]
        );
    }

    #[test]
    fn documented_variables_win_on_every_platform() {
        let env = Env::from_pairs([
            (USERPROFILE, abs("/u")),
            (LOCALAPPDATA, abs("/local")),
            ("XDG_CACHE_HOME", abs("/xdg-cache")),
            (ACR_ENTRA_CONFIG, abs("/etc/acr.json")),
        ]);
        for c in [Conventions::Xdg, Conventions::MacOs, Conventions::Windows] {
            let (config, cache) = locations(&env, home(&env, c).as_ref(), c);
            assert_eq!(shown(&config.unwrap()), "/etc/acr.json", "{c:?}");
            assert_eq!(shown(&cache.unwrap()), "/xdg-cache/acr-entra", "{c:?}");
        }
        // Windows without the application-data variables: no config file, no cache.
        let env = Env::from_pairs([(USERPROFILE, abs("/u")), ("HOME", abs("/h"))]);
        let c = Conventions::Windows;
        assert_eq!(locations(&env, home(&env, c).as_ref(), c), (None, None));
    }

    #[test]
    fn connect_to_parses() {
        let env = Env::from_pairs([(
            ACR_ENTRA_CONNECT_TO,
            "MyAcr.azurecr.io:443:127.0.0.1:8443,b.azurecr.io:443:[::1]:9",
        )]);
        let s = Settings::from_env(&env).unwrap();
        assert_eq!(
            s.connect_to[0],
            ConnectTo {
                host: "myacr.azurecr.io".into(),
                port: 443,
                target: "127.0.0.1:8443".into()
            }
        );
        assert_eq!(s.connect_to[1].target, "[::1]:9");
    }

    #[test]
    fn config_file_parses_and_normalises() {
        let text = r#"{"registries":{
            "Contoso.azurecr.io": {"credential":"managed-identity","client_id":"c1"},
            "fabrikam.azurecr.cn": {"credential":"client-secret","tenant_id":"t2","cloud":"china"},
            "registry.contoso.com": {"credential":"azure-cli","audience":"arm"},
            "localhost:5443": {"credential":"client-secret"}}}"#;
        let c = FileConfig::parse(Path::new("c.json"), text).unwrap();
        assert_eq!(c.registries.len(), 4);
        let contoso = &c.registries["contoso.azurecr.io"];
        assert_eq!(contoso.credential, Some(CredentialKind::ManagedIdentity));
        assert_eq!(contoso.client_id.as_deref(), Some("c1"));
        assert_eq!(
            c.registries["registry.contoso.com"].audience,
            Some(Audience::Arm)
        );
        assert_eq!(
            c.registries["fabrikam.azurecr.cn"].cloud,
            Some(Cloud::China)
        );
    }

    #[test]
    fn config_file_errors_name_the_file() {
        for text in [
            "{",
            r#"{"registries":{"x.azurecr.io":{"credential":"password"}}}"#,
            r#"{"registries":{"x.azurecr.io":{"audeince":"arm"}}}"#,
            r#"{"registries":{"bad host@x":{}}}"#,
            r#"{"registries":[]}"#,
            r#"{"registries":{"x.azurecr.io":{"audience":"sideways"}}}"#,
        ] {
            let err = FileConfig::parse(Path::new("/etc/x/config.json"), text).unwrap_err();
            let line = err.one_line();
            assert!(line.contains("/etc/x/config.json"), "{line}");
        }
    }

    #[test]
    fn audience_scopes() {
        assert_eq!(
            Audience::Acr.scope(Cloud::China),
            "https://containerregistry.azure.net/.default"
        );
        assert_eq!(
            Audience::Arm.scope(Cloud::UsGov),
            "https://management.usgovcloudapi.net/.default"
        );
        assert_eq!(
            Audience::Custom("https://example.test/".into()).scope(Cloud::Public),
            "https://example.test/.default"
        );
    }
}
