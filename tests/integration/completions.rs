//! The shell completions in packaging/completions are written by hand (the argument parser
//! is hand-written, so there is nothing to generate them from). These tests keep them in
//! step with the binary: every verb, option and `configure` client that `--help` or a
//! subcommand's `--help` names must be offered by both the bash and the zsh file, and
//! every option the files offer must exist. Then they drive a real bash and a real zsh
//! (through `zpty`, with the completion system loaded as a user's shell loads it) and
//! compare what each offers at every position, registry names from the helper's config
//! file and docker's `credHelpers` included.

use std::collections::BTreeSet;
use std::process::Command;

use crate::support::env::{TestEnv, bin};

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
    // Optional flags, and `configure --remove`, the flag that names another mode.
    let mut found = dashed(text, "[--");
    found.extend(dashed(text, "configure --"));
    found
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

/// A machine with registries in both places the completions read: the helper's config
/// file (at its default path under `XDG_CONFIG_HOME`), docker's `credHelpers` (with an
/// entry routed to another helper, which is not offered), and a stored Docker Hub login
/// (which `list` prints too, and is not a registry this helper serves). The built helper
/// is on `PATH` by name, as the completions call it.
struct Shell {
    env: TestEnv,
}

const REGISTRIES: &str = "contoso.azurecr.io myacr.azurecr.io registry.contoso.com";

impl Shell {
    fn new() -> Shell {
        let env = TestEnv::new();
        std::os::unix::fs::symlink(bin(), env.bin.join("docker-credential-acr-entra")).unwrap();
        let config = env.path("xdg-config").join("acr-entra");
        std::fs::create_dir_all(&config).unwrap();
        std::fs::write(
            config.join("config.json"),
            r#"{"registries": {"contoso.azurecr.io": {"credential": "azure-cli"}, "registry.contoso.com": {}}}"#,
        )
        .unwrap();
        let docker = env.home.join(".docker");
        std::fs::create_dir_all(&docker).unwrap();
        // As docker writes it: pretty-printed with tabs.
        std::fs::write(
            docker.join("config.json"),
            "{\n\t\"auths\": {\n\t\t\"ghcr.io\": {}\n\t},\n\t\"credHelpers\": {\n\t\t\"myacr.azurecr.io\": \"acr-entra\",\n\
             \t\t\"contoso.azurecr.io\": \"acr-entra\",\n\t\t\"123456789012.dkr.ecr.us-east-1.amazonaws.com\": \"ecr-login\"\n\t}\n}\n",
        )
        .unwrap();
        let out = env
            .helper()
            .arg("store")
            .stdin(r#"{"ServerURL":"docker.io","Username":"bob","Secret":"hub-password"}"#)
            .run();
        assert_eq!(out.code, Some(0), "{out:?}");
        Shell { env }
    }

    /// A shell with the test's HOME, config and cache, and nothing of the user's.
    fn command(&self, program: &str) -> Command {
        let root = self.env.dir.path();
        let mut command = Command::new("timeout");
        command
            .arg("60")
            .arg(program)
            .env_clear()
            .env("HOME", &self.env.home)
            .env("PATH", format!("{}:/usr/bin:/bin", self.env.bin.display()))
            .env("XDG_CONFIG_HOME", root.join("xdg-config"))
            .env("ACR_ENTRA_CACHE_DIR", &self.env.cache)
            .env("TERM", "dumb")
            .current_dir(root);
        command
    }
}

/// Each line's offers, sorted and joined by spaces, one output line per command line.
fn offers_per_line(out: std::process::Output, shell: &str) -> Vec<String> {
    assert!(out.status.success(), "{shell}: {out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

/// What a user typing each line after the command name (the cursor at its end) is
/// offered, sorted.
const CASES: &[(&str, &str)] = &[
    (
        "",
        "configure doctor erase get help kubelet list store token version",
    ),
    ("con", "configure"),
    ("configure ", "buildah docker helm podman skopeo"),
    ("configure docker ", REGISTRIES),
    ("configure podman my", "myacr.azurecr.io"),
    ("configure docker --d", "--dry-run"),
    ("configure --remove ", "buildah docker helm podman skopeo"),
    ("token ", REGISTRIES),
    ("token reg", "registry.contoso.com"),
    ("token myacr.azurecr.io --j", "--json"),
    ("token --scope ", "registry:catalog:* repository:"),
    ("doctor ", REGISTRIES),
    ("help t", "token"),
    ("kubelet --r", "--registry-mirror"),
];

/// Sources the bash file and, as bash-completion does, calls the function `complete`
/// registered for the name with COMP_WORDS and COMP_CWORD for a line; `comp WORDS…`
/// prints the sorted offers on one line.
const BASH_DRIVE: &str = r#"
source packaging/completions/docker-credential-acr-entra.bash
fn=$(complete -p docker-credential-acr-entra | sed -n 's/.* -F \([^ ]*\) .*/\1/p')
[ -n "$fn" ] || { echo 'no complete -F for docker-credential-acr-entra' >&2; exit 1; }
comp() {
  COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 )); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
  COMPREPLY=()
  "$fn" docker-credential-acr-entra "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
  printf '%s\n' "${COMPREPLY[@]}" | sort | tr '\n' ' ' | sed 's/ $//'; echo
}
"#;

#[test]
fn bash_completion_offers_what_each_position_takes() {
    let shell = Shell::new();
    let mut script = BASH_DRIVE.to_string();
    for (line, _) in CASES {
        // A line that ends in a space completes an empty word.
        let mut words: Vec<String> = line.split_whitespace().map(|w| format!("'{w}'")).collect();
        if line.is_empty() || line.ends_with(' ') {
            words.push("''".into());
        }
        script.push_str(&format!(
            "comp docker-credential-acr-entra {}\n",
            words.join(" ")
        ));
    }
    let out = shell
        .command("bash")
        .args(["--norc", "--noprofile", "-c", &script])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let got = offers_per_line(out, "bash");
    for (i, (line, want)) in CASES.iter().enumerate() {
        // bash offers the two options beside the verbs at the first word.
        let want = match *line {
            "" => format!("--help --version {want}"),
            "configure " => format!("--help --remove {want}"),
            _ => want.to_string(),
        };
        assert_eq!(
            got.get(i).map(String::as_str),
            Some(want.as_str()),
            "bash: `{line}`"
        );
    }
}

/// Loaded into the interactive zsh under the pty: the completion system as `compinit`
/// sets it up, with the completion directory first on `fpath`, and `compadd` wrapped to
/// record every match zsh would offer (after its own prefix matching) into `$CAPTURE`.
/// Once completion ends, `comppostfuncs` marks the capture done and leaves the shell.
const ZSH_SETUP: &str = r#"
PROMPT= RPROMPT=
fpath=($COMPDIR $fpath)
autoload -U compinit && compinit -u -D
bindkey '^I' complete-word
zstyle ':completion:*' insert-tab false
compadd() {
  # Calls that only ask for matches (-O, -A, -D) are the completion system's own.
  if [[ ${@[1,(i)(-|--)]} == *-(O|A|D)\ * ]]; then builtin compadd "$@"; return; fi
  local -a __hits
  builtin compadd -A __hits "$@"
  (( $#__hits )) && print -rl -- $__hits >> $CAPTURE
  builtin compadd "$@"
}
_capture_done() { print -r -- done > $CAPTURE.done; exit }
comppostfuncs=(_capture_done)
"#;

/// For each line argument: a fresh interactive zsh on a pty, the line typed and TAB
/// pressed; prints the sorted offers on one line.
const ZSH_DRIVE: &str = r#"
zmodload zsh/zpty || exit 3
integer n=0
for line in "$@"; do
  (( n++ ))
  CAPTURE=$PWD/capture-$n; export CAPTURE
  zpty z zsh -f -i
  zpty -w z "source ${(q)SETUP}"
  zpty -w z "docker-credential-acr-entra $line"$'\t'
  for i in {1..400}; do [[ -e $CAPTURE.done ]] && break; sleep 0.05; done
  zpty -d z
  [[ -e $CAPTURE.done ]] || { print -u2 "zsh did not finish completing \`$line\`"; exit 2 }
  [[ -e $CAPTURE ]] && print -r -- ${(j: :)${(ou)${(f)"$(<$CAPTURE)"}}} || print
done
"#;

#[test]
fn zsh_completion_offers_what_each_position_takes() {
    // zsh is a test dependency like bash (.ci/run installs it); without it this test
    // fails rather than passing with nothing checked.
    let found = Command::new("sh")
        .args(["-c", "command -v zsh"])
        .output()
        .unwrap();
    assert!(
        found.status.success(),
        "zsh is not installed, so the zsh completion cannot be checked: apt-get install zsh"
    );
    let shell = Shell::new();
    let setup = shell.env.write("setup.zsh", ZSH_SETUP);
    let drive = shell.env.write("drive.zsh", ZSH_DRIVE);
    let completions = concat!(env!("CARGO_MANIFEST_DIR"), "/packaging/completions");
    let out = shell
        .command("zsh")
        .arg("-f")
        .arg(&drive)
        .args(CASES.iter().map(|(line, _)| *line))
        .env("SETUP", &setup)
        .env("COMPDIR", completions)
        .output()
        .unwrap();
    let got = offers_per_line(out, "zsh");
    for (i, (line, want)) in CASES.iter().enumerate() {
        // What zsh inserts: the `*` quoted, so the shell passes it on unglobbed.
        let want = want.replace(":*", ":\\*");
        assert_eq!(
            got.get(i).map(String::as_str),
            Some(want.as_str()),
            "zsh: `{line}`"
        );
    }
}
