//! The subcommands beyond the credential-helper protocol, one file each:
//! `token` prints a refresh token (or a scoped access token) for `--password-stdin`
//! logins, `configure` points docker, podman and helm at the helper, `doctor` explains
//! and times one mint, and `kubelet` speaks the kubelet image credential provider
//! protocol. They share `lifecycle::acr_token` (cache and mint) with `get`, and return
//! their stdout text to `run`, which stays the one writer. This file holds the small
//! argument parser they share: no clap for four verbs.

pub mod configure;
pub mod doctor;
pub mod kubelet;
pub mod routing;
pub mod token;

use crate::error::{Error, Result, one_line};

/// `VERB --help`: the verb's usage, or `None` for verbs without subcommand help.
pub fn help(verb: &str) -> Option<&'static str> {
    Some(match verb {
        "token" => {
            "usage: token HOST [--json] [--scope repository:NAME:pull[,push]]...\n\
             print HOST's ACR refresh token (log in as 00000000-0000-0000-0000-000000000000 with\n\
             --password-stdin), or {\"loginServer\",\"accessToken\"} with --json; with --scope, an\n\
             ACR access token for that scope"
        }
        "configure" => {
            "usage: configure docker|podman|helm [HOST...] [--all [--force]] [--dry-run]\n\
             \x20      configure --remove docker|podman|helm [HOST...] [--dry-run]\n\
             add credHelpers entries (HOST: acr-entra) for HOST, default the config file's\n\
             registries, to the client's config file; --all sets credsStore (docker, helm),\n\
             --force replaces another credsStore; --dry-run prints the diff (secrets masked).\n\
             --remove takes out what configure added (only HOST's entries when given) and\n\
             puts back what it replaced. The previous file is kept as NAME.acr-entra.bak,\n\
             the first one without acr-entra as NAME.acr-entra.orig (never overwritten)"
        }
        "doctor" => {
            "usage: doctor HOST\n\
             explain what get does for HOST, mint once with each step timed, and print hints\n\
             for known failures; exit 0 when a token was minted"
        }
        "kubelet" => {
            "usage: kubelet [--registry-mirror SOURCE:ACR]...\n\
             kubelet image credential provider (credentialprovider.kubelet.k8s.io/v1): reads a\n\
             CredentialProviderRequest on stdin, writes a CredentialProviderResponse; an image\n\
             on a mirrored SOURCE (also the config file's \"mirrors\") gets the mirror ACR's token"
        }
        _ => return None,
    })
}

/// Arguments after the verb: positionals, `--flag` switches and `--name VALUE` (or
/// `--name=VALUE`) options, in the order given.
#[derive(Debug, Default)]
pub struct Args {
    pub positional: Vec<String>,
    switches: Vec<String>,
    options: Vec<(String, String)>,
}

impl Args {
    /// Parse `args` for `verb`, which accepts the `switches` and value-taking `options`
    /// named (without their `--`). Anything else starting with `-` is an error.
    pub fn parse(verb: &str, args: &[String], switches: &[&str], options: &[&str]) -> Result<Args> {
        let mut parsed = Args::default();
        let mut iter = args.iter();
        let mut only_positional = false;
        while let Some(arg) = iter.next() {
            if only_positional || !arg.starts_with('-') || arg == "-" {
                parsed.positional.push(arg.clone());
                continue;
            }
            if arg == "--" {
                only_positional = true;
                continue;
            }
            let (name, inline) = match arg.trim_start_matches('-').split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (arg.trim_start_matches('-'), None),
            };
            if switches.contains(&name) && inline.is_none() {
                parsed.switches.push(name.to_string());
            } else if options.contains(&name) {
                let value = match inline {
                    Some(v) => v,
                    None => iter.next().cloned().ok_or_else(|| {
                        Error::Usage(format!("`{verb}`: option `--{name}` needs a value"))
                    })?,
                };
                parsed.options.push((name.to_string(), value));
            } else {
                return Err(Error::Usage(format!(
                    "`{verb}`: unknown option `{}` (--help for usage)",
                    one_line(arg).chars().take(40).collect::<String>()
                )));
            }
        }
        Ok(parsed)
    }

    pub fn has(&self, switch: &str) -> bool {
        self.switches.iter().any(|s| s == switch)
    }

    /// Every value given for `option`, in order.
    pub fn values(&self, option: &str) -> Vec<&str> {
        self.options
            .iter()
            .filter(|(n, _)| n == option)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[&str]) -> Vec<String> {
        args.iter().map(|s| (*s).to_string()).collect()
    }

    #[test]
    fn parses_switches_options_and_positionals() {
        let a = Args::parse(
            "token",
            &strings(&["h1", "--json", "--scope", "s1", "--scope=s2", "--", "--h2"]),
            &["json"],
            &["scope"],
        )
        .unwrap();
        assert_eq!(a.positional, ["h1", "--h2"]);
        assert!(a.has("json"));
        assert!(!a.has("all"));
        assert_eq!(a.values("scope"), ["s1", "s2"]);
    }

    #[test]
    fn rejects_unknown_and_incomplete_options() {
        let e = Args::parse("token", &strings(&["--jsn"]), &["json"], &[]).unwrap_err();
        assert_eq!(
            e.one_line(),
            "`token`: unknown option `--jsn` (--help for usage)"
        );
        let e = Args::parse("token", &strings(&["--scope"]), &[], &["scope"]).unwrap_err();
        assert_eq!(e.one_line(), "`token`: option `--scope` needs a value");
        assert!(Args::parse("token", &strings(&["--json=1"]), &["json"], &[]).is_err());
    }
}
