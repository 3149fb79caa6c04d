//! `docker-credential-acr-entra` lets docker, podman, buildah, skopeo, helm, BuildKit and
//! kubelet use Azure Container Registry with Microsoft Entra identities. It speaks the
//! Docker credential-helper protocol, mints ACR refresh tokens through ACR's
//! `/oauth2/exchange`, and keeps them in a file-locked cache every process shares.
//!
//! Data flow of `get`:
//!
//! ```text
//! client → main → run → protocol::read_server_url → helper::get
//!   → store (stored credential? answer)
//!   → RegistryHost (ACR or listed? else "not found", no network)
//!   → cache (fresh? answer) → lock → re-read → entra::choose
//!   → mint: exchange::discover → entra::token → exchange::exchange (ACR, then ARM audience)
//!   → cache write → unlock → protocol::write_get → stdout
//! ```
//!
//! The subcommands (`cli::token`, `cli::configure`, `cli::doctor`,
//! `cli::kubelet`) reuse `helper::acr_token`, the same cache-then-mint path.
//!
//! Boundaries: `protocol` knows nothing of Entra or the cache; `registry`, `cache`,
//! `exchange` never read the environment (only `config` does) and never print; only
//! `entra`, `azure_http`, `assertion` and `process` touch async; only `files`, `cache`
//! and `store` write files (`cli::configure` edits client configs through `files`). stdout
//! is written here and nowhere else. Client certificate files are read by `certfile` with
//! `der`, `pbe` and `pkcs12` (pure functions over bytes, no I/O), for `assertion`.

mod build_info;
mod cache;
mod certfile;
mod cli;
mod config;
mod context;
mod digest;
mod entra;
mod entra_cache;
mod error;
mod exchange;
mod files;
mod helper;
mod http;
mod identity;
mod jwt;
mod lifecycle;
mod log;
mod mint;
mod platform;
mod private_dir;
mod protocol;
mod registry;
mod secret;
mod store;
mod throttle;
mod typo;

use std::io::{Read, Write};

pub use config::Env;
pub use http::set_statically_linked;

/// What the fuzz targets and the integration tests reach inside the crate, under the
/// paths of the modules that own it. Not an API: hidden from the docs, and the one place
/// that makes internals public, so the compiler still sees what the crate itself leaves
/// unused.
#[doc(hidden)]
pub mod internals {
    pub mod cache {
        pub use crate::cache::{Cache, TokenKey};
    }
    pub mod certfile {
        pub use crate::certfile::read;
    }
    pub mod cli {
        pub mod kubelet {
            pub use crate::cli::kubelet::{image_registry, read_request};
        }
    }
    pub mod config {
        pub use crate::config::{Env, FileConfig, Settings};
    }
    pub mod entra {
        pub mod arc {
            pub use crate::entra::arc::parse;
        }
        pub mod assertion {
            pub use crate::entra::assertion::FederatedToken;
        }
    }
    pub mod error {
        pub use crate::error::Error;
    }
    pub mod exchange {
        pub use crate::exchange::{ExchangeError, parse_bearer, read_answer, server_message};
    }
    pub mod helper {
        pub use crate::helper::parse_host;
    }
    pub mod http {
        pub use crate::http::{HttpRequest, HttpResponse};
    }
    pub mod identity {
        pub use crate::identity::{CredentialKind, FederatedAssertion, Identity, PodIdentity};
    }
    pub mod jwt {
        pub use crate::jwt::{claims, expiry, string_claim};
    }
    pub mod private_dir {
        pub use crate::private_dir::PrivateDir;
    }
    pub mod protocol {
        pub use crate::protocol::{read_server_url, read_store};
    }
    pub mod registry {
        pub use crate::registry::{Cloud, RegistryHost};
    }
    pub mod secret {
        pub use crate::secret::{AcrRefreshToken, EntraToken, Secret};
    }
    pub mod store {
        pub use crate::store::{Store, Stored};
    }
}

use config::Settings;
use error::{Error, Result};

pub const NAME: &str = "docker-credential-acr-entra";
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

const USAGE: &str = "\
docker-credential-acr-entra: Azure Container Registry credentials from Microsoft Entra ID

Usage: docker-credential-acr-entra <get|store|erase|list|version>
       docker-credential-acr-entra <token|configure|doctor|kubelet> ...

  get       read a server URL on stdin, print {\"ServerURL\",\"Username\",\"Secret\"}
  store     read {\"ServerURL\",\"Username\",\"Secret\"} on stdin and keep it
  erase     read a server URL on stdin and forget it (stored and cached)
  list      print {\"<server>\":\"<username>\",...}
  version   print the version, with commit, build date, linkage and target, on one line

  token HOST [--json] [--scope repository:NAME:pull[,push]]
            print HOST's ACR refresh token (for --password-stdin logins as user
            00000000-0000-0000-0000-000000000000), or {\"loginServer\",\"accessToken\"};
            with --scope, an access token for that scope
  configure docker|podman|helm [HOST...] [--all [--force]] [--dry-run]
            add credHelpers entries for HOST (default: the config file's registries),
            or credsStore with --all, to the client's config file
  configure --remove docker|podman|helm [HOST...] [--dry-run]
            undo what configure did (only HOST's entries when given)
  doctor HOST
            explain and time one mint for HOST, with hints when it fails
  kubelet   kubelet image credential provider: CredentialProviderRequest on stdin,
            CredentialProviderResponse on stdout

Entra credential: ACR_ENTRA_CREDENTIAL=client-secret|client-certificate|workload-identity|
github-actions|azure-pipelines|managed-identity|azure-cli|azd, or picked from the
environment in that order; ACR_ENTRA_FEDERATED_TOKEN_ENV=NAME takes a CI's OIDC token
from the variable NAME.
Config: ACR_ENTRA_CONFIG (default ~/.config/acr-entra/config.json). Logs: ACR_ENTRA_LOG=debug.
See the README for every variable.";

/// Seconds since the Unix epoch.
/// A random number from the system's generator, for spreading machines apart (refresh
/// jitter, backoff); 0 if the generator fails, which only loses the spread.
pub fn random_u32() -> u32 {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 4];
    match ring::rand::SystemRandom::new().fill(&mut bytes) {
        Ok(()) => u32::from_le_bytes(bytes),
        Err(_) => 0,
    }
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// `seconds` since the Unix epoch as `YYYY-MM-DD HH:MM:SS UTC` (the proleptic Gregorian
/// calendar, from days since 1970-01-01 by Howard Hinnant's `civil_from_days`).
pub fn utc(seconds: i64) -> String {
    let days = seconds.div_euclid(86_400);
    let secs = seconds.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// Run one invocation; returns the process exit code. Everything printed to `stdout`
/// goes through here: the answer, or one line of error. The protocol verbs print their
/// errors on stdout, where docker's clients read them; the subcommands people pipe into
/// `--password-stdin` or `$(…)` (`token`, `configure`, `doctor`, `kubelet`) print them on
/// `stderr`, so an error never becomes a password or a kubelet response.
pub fn run(
    args: &[String],
    stdin: &mut dyn Read,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
    env: &Env,
) -> u8 {
    let subcommand = args
        .first()
        .is_some_and(|w| Verb::parse(w).is_ok_and(Verb::is_subcommand));
    let (text, code) = match dispatch(args, stdin, env) {
        Ok(Reply::Answer(answer)) => (answer, 0),
        Ok(Reply::Nothing) => (String::new(), 0),
        Ok(Reply::Failed(report)) => (report, 1),
        Err(e) if subcommand => {
            let _ = writeln!(stderr, "{}", e.one_line());
            let _ = stderr.flush();
            (String::new(), 1)
        }
        Err(e) => (e.one_line(), 1),
    };
    // An answer that cannot be written (a full disk, a closed pipe) is a failure: the
    // client got nothing, so exit 0 would claim otherwise. The answer and its newline go
    // out in one write, so a reader that stops after the first line (`version | head -n 1`)
    // has already been given all of it and closing its end is no failure.
    let written = if text.is_empty() {
        stdout.flush()
    } else {
        let mut line = text;
        line.push('\n');
        stdout
            .write_all(line.as_bytes())
            .and_then(|()| stdout.flush())
    };
    match written {
        Ok(()) => code,
        Err(e) => {
            let _ = writeln!(stderr, "cannot write the answer to stdout: {e}");
            1
        }
    }
}

/// What a verb leaves for stdout.
enum Reply {
    /// Exit 0 with this text.
    Answer(String),
    /// Exit 0, nothing printed.
    Nothing,
    /// Exit 1 with a multi-line report (`doctor`); errors are one line.
    Failed(String),
}

/// The first argument, parsed once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verb {
    Help,
    Version,
    Get,
    Store,
    Erase,
    List,
    Token,
    Configure,
    Doctor,
    Kubelet,
}

const VERBS: &str =
    "use get, store, erase, list, version, token, configure, doctor or kubelet; --help for more";

impl Verb {
    fn parse(word: &str) -> Result<Verb> {
        Ok(match word {
            "--help" | "-h" | "help" => Verb::Help,
            "version" | "--version" | "-v" => Verb::Version,
            "get" => Verb::Get,
            "store" => Verb::Store,
            "erase" => Verb::Erase,
            "list" => Verb::List,
            "token" => Verb::Token,
            "configure" => Verb::Configure,
            "doctor" => Verb::Doctor,
            "kubelet" => Verb::Kubelet,
            "" => return Err(Error::Usage(format!("no verb given ({VERBS})"))),
            other => {
                let shown = error::one_line(other).chars().take(40).collect::<String>();
                return Err(Error::Usage(match nearest_verb(other) {
                    Some(verb) => {
                        format!("unknown verb `{shown}`; did you mean `{verb}`? ({VERBS})")
                    }
                    None => format!("unknown verb `{shown}` ({VERBS})"),
                }));
            }
        })
    }

    /// A subcommand for people and kubelet, not a docker credential-helper verb.
    fn is_subcommand(self) -> bool {
        matches!(
            self,
            Verb::Token | Verb::Configure | Verb::Doctor | Verb::Kubelet
        )
    }

    /// A verb of the credential-helper protocol: its input comes on stdin, never as
    /// arguments.
    fn is_protocol(self) -> bool {
        matches!(
            self,
            Verb::Get | Verb::Store | Verb::Erase | Verb::List | Verb::Version
        )
    }

    /// The verb's own usage, for `VERB --help` and `help VERB`.
    fn help(self) -> &'static str {
        let subcommand = match self {
            Verb::Token => cli::help("token"),
            Verb::Configure => cli::help("configure"),
            Verb::Doctor => cli::help("doctor"),
            Verb::Kubelet => cli::help("kubelet"),
            _ => None,
        };
        subcommand.unwrap_or(match self {
            Verb::Get => {
                "usage: echo HOST | docker-credential-acr-entra get\n\
                 print {\"ServerURL\",\"Username\",\"Secret\"} for the registry HOST (docker, podman and\n\
                 kubelet call this); `credentials not found in native keychain` for one it does not serve"
            }
            Verb::Store => {
                "usage: echo '{\"ServerURL\":…,\"Username\":…,\"Secret\":…}' | docker-credential-acr-entra store\n\
                 keep a credential (docker login does this when acr-entra is its credsStore)"
            }
            Verb::Erase => {
                "usage: echo HOST | docker-credential-acr-entra erase\n\
                 forget what is stored and cached for HOST (docker logout does this)"
            }
            Verb::List => {
                "usage: docker-credential-acr-entra list\n\
                 print {\"<server>\":\"<username>\",...}: stored hosts and the config file's registries"
            }
            Verb::Version => {
                "usage: docker-credential-acr-entra version\n\
                 print `docker-credential-acr-entra VERSION (commit …, built …, static|dynamic, TARGET)`, one line"
            }
            _ => USAGE,
        })
    }
}

/// The verb one or two edits away from `word` (a typo such as `gte` or `configur`).
fn nearest_verb(word: &str) -> Option<&'static str> {
    const NAMES: [&str; 9] = [
        "get",
        "store",
        "erase",
        "list",
        "version",
        "token",
        "configure",
        "doctor",
        "kubelet",
    ];
    let word = word.to_ascii_lowercase();
    NAMES
        .into_iter()
        .map(|name| (typo::edit_distance(&word, name), name))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, name)| name)
}

fn dispatch(args: &[String], stdin: &mut dyn Read, env: &Env) -> Result<Reply> {
    // No arguments at all is the same as an empty verb: the usage line, exit 1.
    let (word, rest) = match args.split_first() {
        Some((word, rest)) => (word.as_str(), rest),
        None => ("", &[][..]),
    };
    let verb = Verb::parse(word)?;
    // Every verb answers `--help` before it reads stdin or parses anything.
    if verb != Verb::Help && rest.iter().any(|a| a == "--help" || a == "-h") {
        return Ok(Reply::Answer(verb.help().to_string()));
    }
    if verb.is_protocol()
        && let Some(extra) = rest.first()
    {
        return Err(Error::Usage(format!(
            "`{word}` takes no arguments (got `{}`); its input comes on stdin",
            error::one_line(extra).chars().take(40).collect::<String>()
        )));
    }
    match verb {
        // `help VERB` is `VERB --help`.
        Verb::Help => {
            return Ok(Reply::Answer(match rest.first() {
                Some(topic) => Verb::parse(topic)?.help().to_string(),
                None => USAGE.to_string(),
            }));
        }
        Verb::Version => {
            return Ok(Reply::Answer(build_info::version_text(
                http::statically_linked(),
            )));
        }
        // doctor reports a broken environment or config file instead of failing on it.
        Verb::Doctor => {
            let report = cli::doctor::run(rest, env)?;
            return Ok(if report.ok {
                Reply::Answer(report.text)
            } else {
                Reply::Failed(report.text)
            });
        }
        _ => {}
    }
    if verb.is_protocol() {
        return protocol_verb(verb, stdin, env);
    }
    let settings = Settings::from_env(env)?;
    log::set_level(settings.log_level);
    let ctx = context::Context::load(settings)?;
    match verb {
        Verb::Token => cli::token::run(&ctx, rest).map(Reply::Answer),
        Verb::Configure => cli::configure::run(&ctx, rest).map(Reply::Answer),
        Verb::Kubelet => cli::kubelet::run(&ctx, rest, &read_input(stdin)?).map(Reply::Answer),
        Verb::Get
        | Verb::Store
        | Verb::Erase
        | Verb::List
        | Verb::Help
        | Verb::Version
        | Verb::Doctor => Ok(Reply::Nothing),
    }
}

/// `get`, `store`, `erase` and `list`. With the helper as docker's `credsStore` every
/// Docker Hub pull, login and logout asks it, so for a host that is not an ACR login
/// server (and for `list`) a variable that cannot be used or a config file that cannot
/// be read is said in a warning line, and the request answered as it would be without
/// them; a request about an ACR host, or a host the config file lists, fails on them.
fn protocol_verb(verb: Verb, stdin: &mut dyn Read, env: &Env) -> Result<Reply> {
    let input = match verb {
        Verb::List => Vec::new(),
        _ => read_input(stdin)?,
    };
    // The host no setting or config file could concern, and what is done despite the
    // problem, for the warning line.
    let lenient = match verb {
        Verb::Get => helper::beyond_config(&input).map(|h| (Some(h), "answering")),
        Verb::Store => helper::store_beyond_config(&input).map(|h| (Some(h), "storing")),
        Verb::Erase => helper::beyond_config(&input).map(|h| (Some(h), "erasing")),
        Verb::List => Some((None, "listing what is stored")),
        _ => None,
    };
    let ctx = match lenient {
        None => {
            let settings = Settings::from_env(env)?;
            log::set_level(settings.log_level);
            context::Context::load(settings)?
        }
        Some((host, doing)) => {
            let doing = match &host {
                Some(h) => format!("{doing} `{h}`"),
                None => doing.to_string(),
            };
            let (settings, set_aside) = Settings::from_env_with_strays(env)?;
            log::set_level(settings.log_level);
            let ctx = context::Context::load_setting_aside(settings, &doing)?;
            if let Some(e) = set_aside {
                // A host the file lists is served as ACR hosts are (a custom domain):
                // its mint would run on the value that cannot be used.
                if host.is_some_and(|h| ctx.config.registry(&h).is_some()) {
                    return Err(e);
                }
                log::tell(format_args!("{}; {doing} regardless", e.one_line()));
            }
            ctx
        }
    };
    match verb {
        Verb::Get => helper::get(&ctx, &input).map(Reply::Answer),
        Verb::Store => helper::store(&ctx, &input).map(|()| Reply::Nothing),
        Verb::Erase => helper::erase(&ctx, &input).map(|()| Reply::Nothing),
        Verb::List => Ok(Reply::Answer(helper::list(&ctx))),
        _ => Ok(Reply::Nothing),
    }
}

fn read_input(stdin: &mut dyn Read) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    stdin
        .take(protocol::MAX_INPUT as u64 + 1)
        .read_to_end(&mut buf)
        .map_err(|e| Error::Usage(format!("cannot read stdin: {e}")))?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `run` driven in process, with buffers for stdin and stdout.
    fn run_with(args: &[&str], stdin: &str, env: &Env) -> (u8, String) {
        let args: Vec<String> = args.iter().map(|a| (*a).to_string()).collect();
        let mut out = Vec::new();
        let code = run(
            &args,
            &mut stdin.as_bytes(),
            &mut out,
            &mut std::io::sink(),
            env,
        );
        (code, String::from_utf8(out).unwrap())
    }

    #[test]
    fn verbs_in_process() {
        let env = Env::default();
        let (code, out) = run_with(&["version"], "", &env);
        assert_eq!(
            (code, out.split(" (commit ").next()),
            (0, Some(format!("{NAME} {VERSION}").as_str()))
        );
        let (code, out) = run_with(&[], "", &env);
        assert_eq!(
            (code, out.starts_with("no verb given (")),
            (1, true),
            "{out}"
        );
        let (code, out) = run_with(&["fly"], "", &env);
        assert_eq!(
            (code, out.as_str()),
            (1, format!("unknown verb `fly` ({VERBS})\n").as_str())
        );
        // No HOME, nothing stored or configured: a non-ACR host is not found, at once.
        assert_eq!(
            run_with(&["get"], "ghcr.io\n", &env),
            (1, "credentials not found in native keychain\n".to_string())
        );
        assert_eq!(run_with(&["list"], "", &env), (0, "{}\n".to_string()));
        let (code, out) = run_with(&["token", "--help"], "", &env);
        assert_eq!(
            (code, out.starts_with("usage: token HOST")),
            (0, true),
            "{out}"
        );
    }

    #[test]
    fn every_verb_answers_help_and_typos_get_a_suggestion() {
        let env = Env::default();
        // `get --help` must not wait on stdin, `store --help` not parse it as JSON.
        for (args, start) in [
            (
                &["get", "--help"][..],
                "usage: echo HOST | docker-credential-acr-entra get",
            ),
            (&["store", "-h"][..], "usage: echo '{\"ServerURL\""),
            (
                &["erase", "--help"][..],
                "usage: echo HOST | docker-credential-acr-entra erase",
            ),
            (
                &["list", "--help"][..],
                "usage: docker-credential-acr-entra list",
            ),
            (&["help", "token"][..], "usage: token HOST"),
            (&["help", "get"][..], "usage: echo HOST"),
            (
                &["help"][..],
                "docker-credential-acr-entra: Azure Container Registry",
            ),
        ] {
            let (code, out) = run_with(args, "{not json", &env);
            assert_eq!((code, out.starts_with(start)), (0, true), "{args:?}: {out}");
        }
        let (code, out) = run_with(&["gte"], "", &env);
        assert_eq!(
            (code, out),
            (
                1,
                format!("unknown verb `gte`; did you mean `get`? ({VERBS})\n")
            )
        );
        assert_eq!(nearest_verb("configur"), Some("configure"));
        assert_eq!(nearest_verb("dcotor"), Some("doctor"));
        assert_eq!(nearest_verb("fly"), None);
        assert_eq!(
            run_with(&["get", "myacr.azurecr.io"], "", &env),
            (
                1,
                "`get` takes no arguments (got `myacr.azurecr.io`); its input comes on stdin\n"
                    .to_string()
            )
        );
    }

    /// `--help | head -n 1`: the reader takes one read and closes its end. The whole
    /// answer, all its lines, must already have gone out in that one write.
    #[test]
    fn the_answer_is_one_write() {
        struct HeadOne(Option<Vec<u8>>);
        impl Write for HeadOne {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                match self.0 {
                    None => {
                        self.0 = Some(buf.to_vec());
                        Ok(buf.len())
                    }
                    Some(_) => Err(std::io::ErrorKind::BrokenPipe.into()),
                }
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut out = std::io::LineWriter::new(HeadOne(None));
        let mut err = Vec::new();
        let code = run(
            &["--help".to_string()],
            &mut &b""[..],
            &mut out,
            &mut err,
            &Env::default(),
        );
        assert_eq!(code, 0, "{}", String::from_utf8_lossy(&err));
        let first = out.into_inner().ok().unwrap().0.unwrap();
        let text = String::from_utf8(first).unwrap();
        assert!(text.lines().count() >= 2 && text.ends_with('\n'), "{text}");
        assert!(err.is_empty());
    }

    /// An answer that cannot be written (`get > /dev/full`) is exit 1, said on stderr.
    #[test]
    fn a_failed_write_is_a_failure() {
        struct Full;
        impl Write for Full {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::Error::from_raw_os_error(28))
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut err = Vec::new();
        let code = run(
            &["list".to_string()],
            &mut &b""[..],
            &mut Full,
            &mut err,
            &Env::default(),
        );
        assert_eq!(code, 1);
        assert!(
            String::from_utf8(err)
                .unwrap()
                .starts_with("cannot write the answer to stdout: "),
        );
    }
}
