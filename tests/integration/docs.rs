//! The README, the man page, `--help` and the pages under docs/ agree with the code and
//! with each other. The README's table of environment variables is the one list: it must
//! name every variable `src/config.rs` reads (and nothing but those and the few the TLS
//! and HTTP libraries read), the man page's ENVIRONMENT section is generated from it by
//! packaging/manpage.sh and is checked entry for entry, and every variable `--help` names
//! must be in it. The README stays short enough to read (details live under docs/), every
//! relative link in it and in docs/ leads somewhere, and what a new user runs first
//! neither prints a secret nor edits /etc/hosts.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use crate::support::env::bin;

const README: &str = include_str!("../../README.md");
const CONFIG_RS: &str = include_str!("../../src/config.rs");
const CARGO_TOML: &str = include_str!("../../Cargo.toml");
const ARCHITECTURE: &str = include_str!("../../docs/architecture.md");
const CI_RUN: &str = include_str!("../../.ci/run");

/// Variables read by the TLS and HTTP libraries themselves (rustls' platform verifier,
/// ureq's proxy support), so `config.rs` has no constant for them.
const READ_BY_LIBRARIES: &[&str] = &["SSL_CERT_FILE", "SSL_CERT_DIR", "HTTPS_PROXY", "NO_PROXY"];

/// The text of the README section `## title`, up to the next `## `.
fn section<'a>(text: &'a str, title: &str) -> &'a str {
    let head = format!("\n## {title}\n");
    let start = text
        .find(&head)
        .unwrap_or_else(|| panic!("no section `{title}`"))
        + head.len();
    let end = text[start..]
        .find("\n## ")
        .map_or(text.len(), |e| start + e);
    &text[start..end]
}

/// Names in the first cell of each row of the README's variable table.
fn readme_variables() -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for row in section(README, "Environment variables")
        .lines()
        .filter(|l| l.starts_with("| `"))
    {
        let first = row[2..].split(" | ").next().unwrap();
        for name in first.split(", ") {
            let name = name.trim_matches('`');
            assert!(is_variable(name), "`{name}` in the README's table");
            names.insert(name.to_string());
        }
    }
    names
}

fn is_variable(word: &str) -> bool {
    word.len() >= 3
        && word.starts_with(|c: char| c.is_ascii_uppercase())
        && word
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// Every variable name `config.rs` spells, outside its tests: its constants and the few
/// names it reads directly (`HOME`, the XDG directories, `PATH`). It is the only module
/// that reads the environment.
fn code_variables() -> BTreeSet<String> {
    let code = CONFIG_RS.split("#[cfg(test)]").next().unwrap();
    code.split('"')
        .skip(1)
        .step_by(2)
        .filter(|s| is_variable(s))
        .map(str::to_string)
        .collect()
}

fn help(args: &[&str]) -> String {
    let out = Command::new(bin()).args(args).env_clear().output().unwrap();
    assert!(out.status.success(), "{args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// `packaging/manpage.sh` run on the built helper and this README.
fn man_page() -> String {
    let out = Command::new("bash")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/packaging/manpage.sh"))
        .arg(bin())
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md"))
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .output()
        .unwrap();
    assert!(out.status.success(), "manpage.sh: {out:?}");
    assert!(out.stderr.is_empty(), "manpage.sh: {out:?}");
    let page = String::from_utf8(out.stdout).unwrap();
    // The title line names the version alone, without the build's details.
    assert_eq!(
        page.lines().next(),
        Some(concat!(
            ".TH DOCKER-CREDENTIAL-ACR-ENTRA 1 2023-11-14 \"docker-credential-acr-entra ",
            env!("CARGO_PKG_VERSION"),
            "\" \"User Commands\""
        ))
    );
    page
}

/// The lines of the man page section `.SH NAME`, up to the next `.SH`.
fn man_section<'a>(page: &'a str, name: &str) -> Vec<&'a str> {
    let head = format!(".SH {name}");
    page.lines()
        .skip_while(|l| *l != head)
        .skip(1)
        .take_while(|l| !l.starts_with(".SH "))
        .collect()
}

#[test]
fn readme_is_at_most_300_lines() {
    let lines = README.lines().count();
    assert!(
        lines <= 300,
        "README.md has {lines} lines; move detail to docs/ and link it"
    );
}

#[test]
fn readme_variable_table_names_every_variable_the_code_reads() {
    let readme = readme_variables();
    let code = code_variables();
    assert!(code.len() >= 40, "read from config.rs: {code:?}");
    let missing: Vec<_> = code.difference(&readme).collect();
    assert!(
        missing.is_empty(),
        "the README's variable table lacks {missing:?}, which src/config.rs reads"
    );
    let unknown: Vec<_> = readme
        .difference(&code)
        .filter(|n| !READ_BY_LIBRARIES.contains(&n.as_str()))
        .collect();
    assert!(
        unknown.is_empty(),
        "the README's variable table names {unknown:?}, which nothing reads"
    );
}

#[test]
fn help_names_only_variables_the_readme_table_documents() {
    let readme = readme_variables();
    let mut text = help(&["--help"]);
    for verb in ["token", "configure", "doctor", "kubelet"] {
        text.push_str(&help(&[verb, "--help"]));
    }
    let named: BTreeSet<String> = text
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| is_variable(w) && w.contains('_'))
        .map(str::to_string)
        .collect();
    assert!(named.contains("ACR_ENTRA_CONFIG"), "{named:?}");
    let undocumented: Vec<_> = named.difference(&readme).collect();
    assert!(
        undocumented.is_empty(),
        "--help names {undocumented:?}, which the README's table does not"
    );
}

#[test]
fn man_page_lists_every_readme_variable_and_has_examples() {
    let page = man_page();
    let environment = man_section(&page, "ENVIRONMENT");
    let mut listed = BTreeSet::new();
    let mut lines = environment.iter();
    while let Some(line) = lines.next() {
        if *line == ".TP" {
            let tag = lines.next().expect("a tag after .TP");
            let names = tag.strip_prefix(".B ").expect("the tag is bold");
            listed.extend(names.split(", ").map(str::to_string));
            let text = lines.next().expect("a text after the tag");
            assert!(
                !text.is_empty() && !text.starts_with('.'),
                "{tag}: {text:?}"
            );
            assert!(
                !text.contains('`') && !text.contains("]("),
                "Markdown left in the man page: {text}"
            );
        }
    }
    assert_eq!(
        listed,
        readme_variables(),
        "the man page's ENVIRONMENT and the README's table"
    );

    // Examples that run: each calls a real verb with options its --help names.
    let examples = man_section(&page, "EXAMPLES");
    let usage = help(&["--help"]);
    let mut verbs_used = BTreeSet::new();
    for line in &examples {
        let line = line.replace("\\-", "-");
        let Some(at) = line.find("docker-credential-acr-entra ") else {
            continue;
        };
        let words: Vec<&str> = line[at..].split_whitespace().collect();
        let verb = words[1];
        assert!(
            usage.contains(&format!("  {verb} ")),
            "EXAMPLES uses `{verb}`, which --help does not list"
        );
        let verb_help = help(&[verb, "--help"]);
        for option in words
            .iter()
            .take_while(|w| **w != "|")
            .filter(|w| w.starts_with("--"))
        {
            assert!(verb_help.contains(option), "`{verb} {option}` in EXAMPLES");
        }
        verbs_used.insert(verb.to_string());
    }
    assert!(
        verbs_used.len() >= 3,
        "EXAMPLES should show a few verbs: {verbs_used:?}"
    );

    // groff (man's formatter) reads it without a warning, where it is installed.
    if Command::new("sh")
        .args(["-c", "command -v groff"])
        .output()
        .unwrap()
        .status
        .success()
    {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("docker-credential-acr-entra.1");
        std::fs::write(&file, &page).unwrap();
        let out = Command::new("groff")
            .args(["-man", "-ww", "-z"])
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "groff: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The text outside code fences.
fn prose(text: &str) -> Vec<&str> {
    let mut fenced = false;
    text.lines()
        .filter(|l| {
            if l.starts_with("```") {
                fenced = !fenced;
                return false;
            }
            !fenced
        })
        .collect()
}

fn anchors(text: &str) -> BTreeSet<String> {
    prose(text)
        .into_iter()
        .filter_map(|l| {
            l.trim_start_matches('#')
                .strip_prefix(' ')
                .filter(|_| l.starts_with('#'))
        })
        .map(anchor)
        .collect()
}

#[test]
fn readme_and_docs_links_lead_somewhere() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut pages = vec![root.join("README.md")];
    for entry in std::fs::read_dir(root.join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            pages.push(path);
        }
    }
    let mut checked = 0;
    for page in &pages {
        let text = std::fs::read_to_string(page).unwrap();
        for line in prose(&text) {
            for piece in line.split("](").skip(1) {
                let Some(target) = piece.split(')').next() else {
                    continue;
                };
                if target.contains("://") || target.starts_with("mailto:") {
                    continue;
                }
                let (file, fragment) = target.split_once('#').unwrap_or((target, ""));
                let dest = if file.is_empty() {
                    page.clone()
                } else {
                    page.parent().unwrap().join(file)
                };
                let shown = format!("{}: ({target})", page.strip_prefix(root).unwrap().display());
                assert!(dest.exists(), "{shown} leads nowhere");
                if !fragment.is_empty() {
                    let dest_text = std::fs::read_to_string(&dest).unwrap();
                    assert!(
                        anchors(&dest_text).contains(fragment),
                        "{shown}: no heading with that anchor"
                    );
                }
                checked += 1;
            }
        }
    }
    assert!(checked >= 30, "only {checked} links found");
}

/// The quick start is what a new user pastes: it must not print a token (doctor explains
/// and mints without printing one), must not send them to edit JSON by hand (configure
/// does it), and must not run the test suite, which edits /etc/hosts as root; that lives
/// in Development, with the two commands.
#[test]
fn readme_quick_start_uses_doctor_and_configure_and_development_has_the_test_command() {
    let quick = section(README, "Quick start (30 seconds)");
    assert!(
        quick.contains("docker-credential-acr-entra doctor myacr.azurecr.io"),
        "{quick}"
    );
    assert!(
        quick.contains("docker-credential-acr-entra configure docker myacr.azurecr.io"),
        "{quick}"
    );
    for bad in [
        "| docker-credential-acr-entra get",
        "acr-entra token",
        "./test.sh",
        "credHelpers\": {",
    ] {
        assert!(!quick.contains(bad), "the quick start has `{bad}`");
    }
    let install = section(README, "Install");
    assert!(install.contains("./install.sh"), "{install}");
    assert!(!install.contains("./test.sh"), "{install}");
    let development = section(README, "Development");
    assert!(development.contains("`./install.sh`"), "{development}");
    assert!(development.contains("`./test.sh`"), "{development}");
    assert!(development.contains("/etc/hosts"), "{development}");
    assert!(
        CI_RUN.lines().any(|l| l.trim() == "./test.sh"),
        ".ci/run runs ./test.sh"
    );
    for script in ["install.sh", "test.sh"] {
        assert!(
            Path::new(env!("CARGO_MANIFEST_DIR")).join(script).exists(),
            "{script}"
        );
    }
}

/// The archive is checked against the SHA256SUMS published beside it, before it is
/// unpacked: the copy inside the archive would only show the archive agrees with itself.
/// The Install table keeps both architectures.
#[test]
fn readme_install_checks_downloads_against_the_published_sums() {
    let install = section(README, "Install");
    let table: Vec<&str> = install
        .lines()
        .filter(|l| l.starts_with("| `docker-"))
        .collect();
    for arch in [
        "_amd64.deb",
        "_arm64.deb",
        "x86_64-unknown-linux-gnu.tar.gz",
        "aarch64-unknown-linux-gnu.tar.gz",
        "image.oci.tar",
    ] {
        assert!(
            table.iter().any(|r| r.contains(arch)),
            "no Install row for {arch}"
        );
    }
    for row in &table {
        assert!(
            !row.contains("sha256sum"),
            "a row checks sums from inside the download: {row}"
        );
    }
    assert!(
        install.contains("sha256sum --ignore-missing -c SHA256SUMS"),
        "{install}"
    );
    assert!(
        install.contains("`dist/SHA256SUMS` lists every artifact"),
        "{install}"
    );
    assert!(
        install.contains("**Windows**") && install.contains("**macOS**"),
        "{install}"
    );
}

/// Every crate the binary depends on has its reason in docs/architecture.md, and the
/// README points there.
#[test]
fn readme_points_to_why_each_dependency_is_there() {
    assert!(README.contains("(docs/architecture.md#why-each-dependency)"));
    let why = ARCHITECTURE
        .split("## Why each dependency")
        .nth(1)
        .expect("docs/architecture.md has `## Why each dependency`");
    let mut crates = Vec::new();
    let mut in_deps = false;
    for line in CARGO_TOML.lines() {
        if line.starts_with('[') {
            in_deps = line == "[dependencies]"
                || line.ends_with(".dependencies]") && !line.contains("dev-");
            continue;
        }
        if in_deps
            && !line.starts_with('#')
            && let Some((name, _)) = line.split_once(" = ")
        {
            crates.push(name.trim().to_string());
        }
    }
    assert!(crates.len() >= 10, "{crates:?}");
    for name in crates {
        assert!(
            why.contains(&format!("`{name}`")),
            "docs/architecture.md does not say why `{name}`"
        );
    }
}

/// What the config file accepts and the verbs that exist are documented: every key of a
/// registry entry, the top-level keys, `configure`'s other client names and `help`.
#[test]
fn readme_documents_config_keys_clients_and_the_help_verb() {
    let config = section(README, "Config file");
    let entry = CONFIG_RS
        .split("pub struct RegistryConfig {")
        .nth(1)
        .unwrap()
        .split("\n}")
        .next()
        .unwrap();
    let fields: Vec<&str> = entry
        .lines()
        .filter_map(|l| l.trim().strip_prefix("pub ")?.split(':').next())
        .collect();
    assert!(fields.len() >= 9, "{fields:?}");
    for key in fields
        .iter()
        .copied()
        .chain(["registries", "mirrors", "$schema"])
    {
        assert!(
            config.contains(&format!("`{key}`")),
            "the README's config section lacks `{key}`"
        );
    }
    let subcommands = section(README, "Subcommands");
    assert!(subcommands.contains("`help [VERB]`"), "{subcommands}");
    for client in ["buildah", "skopeo"] {
        assert!(
            README.contains(&format!("`configure {client}`")),
            "configure {client}"
        );
    }
}
