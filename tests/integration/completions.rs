//! The shell completions in packaging/completions are written by hand (the argument parser
//! is hand-written, so there is nothing to generate them from). These tests keep them in
//! step with the binary: every verb, option and `configure` client that `--help` or a
//! subcommand's `--help` names must be offered by both the bash and the zsh file, and
//! every option the files offer must exist.

use std::collections::BTreeSet;
use std::process::Command;

use crate::support::env::bin;

const BASH: &str = include_str!("../../packaging/completions/docker-credential-acr-entra.bash");
const ZSH: &str = include_str!("../../packaging/completions/_docker-credential-acr-entra");

fn help(args: &[&str]) -> String {
    let out = Command::new(bin()).args(args).env_clear().output().unwrap();
    assert!(out.status.success(), "{args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// `--name` words in `text`.
fn options(text: &str) -> BTreeSet<String> {
    dashed(text, "--")
}

/// The options a synopsis offers: `[--name` (prose that mentions other programs' options,
/// like `--password-stdin`, is not a synopsis).
fn synopsis_options(text: &str) -> BTreeSet<String> {
    dashed(text, "[--")
}

fn dashed(text: &str, lead: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find(lead) {
        let name: String = rest[at + lead.len()..]
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || *c == '-')
            .collect();
        if !name.is_empty() {
            found.insert(format!("--{name}"));
        }
        rest = &rest[at + lead.len() + name.len()..];
    }
    found
}

/// The verbs in the `<a|b|c>` groups of the usage lines (from `Usage:` to the first empty
/// line).
fn verbs(usage: &str) -> Vec<String> {
    let start = usage.find("Usage:").expect("--help has a Usage: line");
    let synopsis = usage[start..].split("\n\n").next().unwrap();
    let mut found = Vec::new();
    for group in synopsis.split('<').skip(1) {
        let group = group.split('>').next().unwrap();
        found.extend(group.split('|').map(str::to_string));
    }
    found
}

/// Whether `word` stands alone in `text` (not as part of a longer name).
fn offers(text: &str, word: &str) -> bool {
    text.match_indices(word).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + word.len()..].chars().next();
        let edge = |c: Option<char>| c.is_none_or(|c| !(c.is_ascii_alphanumeric() || c == '-'));
        edge(before) && edge(after)
    })
}

#[test]
fn completions_offer_every_verb_option_and_client() {
    let usage = help(&["--help"]);
    let verbs = verbs(&usage);
    assert!(verbs.len() >= 9, "verbs read from --help: {verbs:?}");
    let mut wanted: BTreeSet<String> = verbs.iter().cloned().collect();
    let mut all_help = usage.clone();
    for verb in ["token", "configure", "doctor", "kubelet"] {
        let text = help(&[verb, "--help"]);
        wanted.extend(synopsis_options(&text));
        all_help.push_str(&text);
        assert!(
            verbs.iter().any(|v| v == verb),
            "{verb} is not in --help's verbs"
        );
    }
    wanted.extend(synopsis_options(&usage));
    for client in ["docker", "podman", "helm"] {
        assert!(
            all_help.contains(&format!("{client}|")) || all_help.contains(&format!("|{client}"))
        );
        wanted.insert(client.to_string());
    }
    wanted.insert("--help".into());
    for (name, file) in [("bash", BASH), ("zsh", ZSH)] {
        let missing: Vec<_> = wanted.iter().filter(|w| !offers(file, w)).collect();
        assert!(
            missing.is_empty(),
            "the {name} completion lacks {missing:?}"
        );
        let unknown: Vec<_> = options(file)
            .into_iter()
            .filter(|o| o != "--version" && !wanted.contains(o))
            .collect();
        assert!(
            unknown.is_empty(),
            "the {name} completion offers {unknown:?}, which --help does not name"
        );
    }
}

#[test]
fn bash_completion_completes_verbs_and_options() {
    // Run the bash file the way bash-completion would, for a verb prefix and an option.
    let script = format!(
        "{BASH}\nCOMP_WORDS=(docker-credential-acr-entra con); COMP_CWORD=1; \
         _docker_credential_acr_entra; echo \"${{COMPREPLY[*]}}\"\n\
         COMP_WORDS=(docker-credential-acr-entra token myacr.azurecr.io --j); COMP_CWORD=3; \
         _docker_credential_acr_entra; echo \"${{COMPREPLY[*]}}\"\n\
         COMP_WORDS=(docker-credential-acr-entra configure p); COMP_CWORD=2; \
         _docker_credential_acr_entra; echo \"${{COMPREPLY[*]}}\""
    );
    let out = Command::new("bash")
        .args(["--norc", "-c", &script])
        .env_clear()
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "configure\n--json\npodman\n"
    );
}
