//! `configure docker|podman|helm`: the client config file on absent, empty,
//! populated and malformed files — exact content, kept keys, mode, backup, idempotence,
//! `--dry-run`, `--all`, the paths each client reads (DOCKER_CONFIG, REGISTRY_AUTH_FILE,
//! XDG_RUNTIME_DIR, XDG_CONFIG_HOME), and concurrent runs that lose no entry.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::support::*;

fn docker_file(env: &TestEnv) -> PathBuf {
    env.home.join(".docker/config.json")
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn backup(path: &Path) -> PathBuf {
    PathBuf::from(format!("{}.acr-entra.bak", path.display()))
}

fn configure(env: &TestEnv, args: &[&str]) -> Output {
    let mut h = env.helper().arg("configure");
    for a in args {
        h = h.arg(a);
    }
    h.run()
}

const ONE_HOST: &str = "{\n\t\"credHelpers\": {\n\t\t\"myacr.azurecr.io\": \"acr-entra\"\n\t}\n}\n";

/// The clients run `docker-credential-acr-entra` by name: configure says when no PATH
/// directory has it (the edit alone would leave every pull failing to start the helper).
#[test]
fn configure_warns_when_the_helper_is_not_on_path() {
    let env = TestEnv::new();
    let out = configure(&env, &["docker", "myacr.azurecr.io"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        out.stderr,
        "acr-entra warn: `docker-credential-acr-entra` is in no PATH directory, so the clients cannot run it: \
         install it into one (`./install.sh` puts it in ~/.local/bin) or add its directory to PATH\n"
    );
    std::os::unix::fs::symlink(env::bin(), env.bin.join("docker-credential-acr-entra")).unwrap();
    let out = configure(&env, &["docker", "other.azurecr.io"]);
    assert_eq!((out.code, out.stderr.as_str()), (Some(0), ""), "{out:?}");
}

#[test]
fn configure_creates_an_absent_file() {
    let env = TestEnv::new();
    std::os::unix::fs::symlink(env::bin(), env.bin.join("docker-credential-acr-entra")).unwrap();
    let out = configure(&env, &["docker", "MyAcr.azurecr.io"]);
    let path = docker_file(&env);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        out.stdout,
        format!(
            "docker: created `{}`\n  credHelpers: myacr.azurecr.io → acr-entra (added)\n",
            path.display()
        )
    );
    assert_eq!(out.stderr, "");
    assert_eq!(fs::read_to_string(&path).unwrap(), ONE_HOST);
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(path.parent().unwrap()), 0o700);
    assert!(!backup(&path).exists());
}

#[test]
fn configure_fills_an_empty_file_and_is_idempotent() {
    let env = TestEnv::new();
    let path = docker_file(&env);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, "").unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    let out = configure(&env, &["docker", "myacr.azurecr.io"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(fs::read_to_string(&path).unwrap(), ONE_HOST);
    assert_eq!(mode(&path), 0o644, "the file keeps its mode");
    assert_eq!(fs::read_to_string(backup(&path)).unwrap(), "");
    let again = configure(&env, &["docker", "myacr.azurecr.io"]);
    assert_eq!(again.code, Some(0), "{again:?}");
    assert_eq!(
        again.stdout,
        format!(
            "docker: `{}` already configured (credHelpers for myacr.azurecr.io); nothing changed\n",
            path.display()
        )
    );
    assert_eq!(fs::read_to_string(&path).unwrap(), ONE_HOST);
}

#[test]
fn configure_keeps_every_other_key_of_a_populated_file() {
    let env = TestEnv::new();
    let path = env.path("dockercfg/config.json");
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let old = r#"{"auths":{"ghcr.io":{"auth":"b2N0bzpwYXNz"}},"credHelpers":{"gcr.io":"gcloud","myacr.azurecr.io":"acr-env"},"credsStore":"desktop","psFormat":"table {{.ID}}","proxies":{"default":{"httpProxy":"http://p:3128"}}}"#;
    fs::write(&path, old).unwrap();
    let out = env
        .helper()
        .arg("configure")
        .arg("docker")
        .arg("myacr.azurecr.io")
        .arg("other.azurecr.io")
        .env("DOCKER_CONFIG", env.path("dockercfg").display().to_string())
        .run();
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        out.stdout,
        format!(
            "docker: updated `{p}` (previous file kept as `{p}.acr-entra.bak`, and as `{p}.acr-entra.orig`)\n  credHelpers: myacr.azurecr.io → acr-entra (was \"acr-env\")\n  credHelpers: other.azurecr.io → acr-entra (added)\n",
            p = path.display()
        )
    );
    let new: serde_json::Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    let mut want: serde_json::Value = serde_json::from_str(old).unwrap();
    want["credHelpers"]["myacr.azurecr.io"] = "acr-entra".into();
    want["credHelpers"]["other.azurecr.io"] = "acr-entra".into();
    assert_eq!(new, want);
    assert_eq!(fs::read_to_string(backup(&path)).unwrap(), old);
    assert_eq!(mode(&backup(&path)), 0o600);
    assert!(!env.home.join(".docker").exists(), "DOCKER_CONFIG wins");
}

#[test]
fn configure_refuses_a_malformed_file_and_changes_nothing() {
    let env = TestEnv::new();
    let path = docker_file(&env);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    for (text, why) in [
        (
            "{\"auths\": {",
            "unexpected end of file at line 1 column 11",
        ),
        ("[1, 2]", "the top level is not a JSON object"),
        (
            "{\"credHelpers\": [\"x\"]}",
            "`credHelpers` is not a JSON object",
        ),
    ] {
        fs::write(&path, text).unwrap();
        let out = configure(&env, &["docker", "myacr.azurecr.io"]);
        assert_eq!(
            out.subcommand_error(),
            format!(
                "`{}` is not a valid client config file ({why}); fix or move it and run configure again (nothing was changed)",
                path.display()
            )
        );
        assert_eq!(fs::read_to_string(&path).unwrap(), text);
        assert!(!backup(&path).exists());
    }
    assert_eq!(
        fs::read_dir(path.parent().unwrap()).unwrap().count(),
        1,
        "no temp files"
    );
}

#[test]
fn configure_dry_run_shows_the_diff_and_writes_nothing() {
    let env = TestEnv::new();
    let path = docker_file(&env);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, "{\n\t\"auths\": {}\n}\n").unwrap();
    let out = configure(&env, &["docker", "myacr.azurecr.io", "--dry-run"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        out.stdout,
        format!(
            "--- {p}\n+++ {p} (after configure docker)\n {{\n-\t\"auths\": {{}}\n+\t\"auths\": {{}},\n+\t\"credHelpers\": {{\n+\t\t\"myacr.azurecr.io\": \"acr-entra\"\n+\t}}\n }}\n",
            p = path.display()
        )
    );
    assert_eq!(
        fs::read_to_string(&path).unwrap(),
        "{\n\t\"auths\": {}\n}\n"
    );
    assert!(!backup(&path).exists());
}

/// podman's entries go to the file that lasts (`~/.config/containers/auth.json`), not
/// `$XDG_RUNTIME_DIR`'s tmpfs; when the runtime file exists (podman reads it first), the
/// report says so and names the hosts whose `podman login` entries there win.
#[test]
fn configure_podman_writes_the_persistent_file_and_names_what_shadows_it() {
    let env = TestEnv::new();
    let persistent = env.path("xdg-config/containers/auth.json");
    let runtime = env.path("xdg-runtime/containers/auth.json");
    let out = configure(&env, &["podman", "myacr.azurecr.io"]);
    assert_eq!(
        out.stdout,
        format!(
            "podman: created `{}`\n  credHelpers: myacr.azurecr.io → acr-entra (added)\n",
            persistent.display()
        )
    );
    assert_eq!(fs::read_to_string(&persistent).unwrap(), ONE_HOST);
    assert!(!runtime.exists());

    fs::create_dir_all(runtime.parent().unwrap()).unwrap();
    fs::write(
        &runtime,
        r#"{"auths":{"myacr.azurecr.io":{"auth":"c2VjcmV0"}}}"#,
    )
    .unwrap();
    let out = configure(&env, &["podman", "myacr.azurecr.io", "other.azurecr.io"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stdout.ends_with(&format!(
            "\nnote: podman, buildah and skopeo read `{}` first, and its entries for myacr.azurecr.io (from `podman login`) win over the ones above until `podman logout HOST` removes them\n",
            runtime.display()
        )),
        "{out:?}"
    );
    assert!(!out.stdout.contains("c2VjcmV0"));
    fs::write(&runtime, "{}").unwrap();
    let out = configure(&env, &["podman", "myacr.azurecr.io"]);
    assert!(
        out.stdout
            .contains("first; it has no entry for these hosts, so the entries above apply"),
        "{out:?}"
    );
}

/// `--all` over another credential store (Docker Desktop's `desktop`, `pass`,
/// `osxkeychain`) would hide its logins and take later Docker Hub passwords: refused,
/// naming the store and the per-registry way; `--force` replaces it.
#[test]
fn configure_all_refuses_to_replace_another_creds_store_without_force() {
    let env = TestEnv::new();
    let path = docker_file(&env);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let before = "{\n\t\"auths\": {\n\t\t\"https://index.docker.io/v1/\": {}\n\t},\n\t\"credsStore\": \"desktop\"\n}\n";
    fs::write(&path, before).unwrap();
    let out = configure(&env, &["docker", "--all"]);
    assert_eq!(
        out.subcommand_error(),
        format!(
            "`{}` already has credsStore `desktop`: replacing it would hide the logins it keeps and send later \
             `docker login` passwords to acr-entra's store; configure the registries instead \
             (`configure docker HOST...`: credHelpers entries win over credsStore), or pass --force to replace it (nothing was changed)",
            path.display()
        )
    );
    assert_eq!(fs::read_to_string(&path).unwrap(), before);
    assert!(!backup(&path).exists());
    // Per-registry entries leave the store in place.
    let out = configure(&env, &["docker", "myacr.azurecr.io"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        fs::read_to_string(&path)
            .unwrap()
            .contains("\"credsStore\": \"desktop\"")
    );
    let out = configure(&env, &["docker", "--all", "--force"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stdout
            .contains("credsStore: acr-entra (was \"desktop\")"),
        "{out:?}"
    );
}

#[test]
fn configure_all_sets_creds_store_for_docker_and_helm_but_not_podman() {
    let env = TestEnv::new();
    let out = configure(&env, &["docker", "--all"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        fs::read_to_string(docker_file(&env)).unwrap(),
        "{\n\t\"credsStore\": \"acr-entra\"\n}\n"
    );
    let helm = env.path("xdg-config/helm/registry/config.json");
    let out = configure(&env, &["helm", "--all", "myacr.azurecr.io"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        fs::read_to_string(&helm).unwrap(),
        "{\n\t\"credHelpers\": {\n\t\t\"myacr.azurecr.io\": \"acr-entra\"\n\t},\n\t\"credsStore\": \"acr-entra\"\n}\n"
    );
    let podman = env.path("xdg-config/containers/auth.json");
    let out = configure(&env, &["podman", "--all", "myacr.azurecr.io"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stdout
            .contains("podman, buildah and skopeo ignore credsStore"),
        "{out:?}"
    );
    assert_eq!(fs::read_to_string(&podman).unwrap(), ONE_HOST);
    // podman with --all and nothing to name: an error that says what to do instead.
    let out = configure(&env, &["podman", "--all"]);
    assert!(
        out.subcommand_error()
            .contains("credential-helpers = [\"acr-entra\"]"),
        "{out:?}"
    );
}

#[test]
fn configure_podman_honours_registry_auth_file_and_helm_falls_back_to_home() {
    let env = TestEnv::new();
    let auth = env.path("auth/podman-auth.json");
    let out = env
        .helper()
        .arg("configure")
        .arg("podman")
        .arg("myacr.azurecr.io")
        .env("REGISTRY_AUTH_FILE", auth.display().to_string())
        .run();
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(fs::read_to_string(&auth).unwrap(), ONE_HOST);
    let out = env
        .helper()
        .arg("configure")
        .arg("podman")
        .arg("myacr.azurecr.io")
        .env_remove("XDG_CONFIG_HOME")
        .run();
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        fs::read_to_string(env.home.join(".config/containers/auth.json")).unwrap(),
        ONE_HOST
    );
    let out = env
        .helper()
        .arg("configure")
        .arg("helm")
        .arg("myacr.azurecr.io")
        .env_remove("XDG_CONFIG_HOME")
        .run();
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        fs::read_to_string(env.home.join(".config/helm/registry/config.json")).unwrap(),
        ONE_HOST
    );
}

#[test]
fn configure_without_hosts_uses_the_config_files_registries() {
    let env = TestEnv::new();
    let config = env.write(
        "acr-entra.json",
        r#"{"registries":{"contoso.azurecr.io":{},"registry.contoso.com":{"credential":"azure-cli"}}}"#,
    );
    let out = env
        .helper()
        .arg("configure")
        .arg("docker")
        .env("ACR_ENTRA_CONFIG", config.display().to_string())
        .run();
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        fs::read_to_string(docker_file(&env)).unwrap(),
        "{\n\t\"credHelpers\": {\n\t\t\"contoso.azurecr.io\": \"acr-entra\",\n\t\t\"registry.contoso.com\": \"acr-entra\"\n\t}\n}\n"
    );
    let out = configure(&env, &["docker"]);
    assert!(
        out.subcommand_error()
            .starts_with("no HOST given and the config file"),
        "{out:?}"
    );
}

#[test]
fn configure_rejects_non_acr_hosts_and_unknown_clients() {
    let env = TestEnv::new();
    let out = configure(&env, &["docker", "ghcr.io"]);
    assert_eq!(
        out.subcommand_error(),
        "`ghcr.io` is not an ACR login server (*.azurecr.io, *.azurecr.cn, *.azurecr.us); for a custom domain, add it to the config file's `registries`"
    );
    let out = configure(&env, &["nerdctl", "myacr.azurecr.io"]);
    assert_eq!(
        out.subcommand_error(),
        "`configure`: unknown client `nerdctl` (usage: configure docker|podman|helm [HOST...] [--all [--force]] [--dry-run], or configure --remove docker|podman|helm [HOST...] [--dry-run])"
    );
    assert!(!docker_file(&env).exists());
}

#[test]
fn concurrent_configure_runs_lose_no_entry() {
    let env = TestEnv::new();
    let path = docker_file(&env);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(&path, r#"{"auths":{}}"#).unwrap();
    let hosts: Vec<String> = (0..8)
        .map(|i| format!("concurrent{i}.azurecr.io"))
        .collect();
    let outs: Vec<Output> = std::thread::scope(|s| {
        let handles: Vec<_> = hosts
            .iter()
            .map(|h| s.spawn(|| configure(&env, &["docker", h])))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for out in &outs {
        assert_eq!(out.code, Some(0), "{out:?}");
    }
    let new: serde_json::Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    for h in &hosts {
        assert_eq!(new["credHelpers"][h], "acr-entra", "{h} lost: {new}");
    }
    assert_eq!(new["auths"], serde_json::json!({}));
    let names: Vec<String> = fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names.len(),
        3,
        "config, backup and original, no temp files: {names:?}"
    );
}

#[test]
fn subcommand_help_exits_zero() {
    // install.sh probes `configure --help` before running `configure docker HOST…`.
    let env = TestEnv::new();
    for verb in ["configure", "token", "doctor", "kubelet"] {
        let out = env.helper().arg(verb).arg("--help").run();
        assert_eq!(out.code, Some(0), "{out:?}");
        assert!(out.stdout.starts_with(&format!("usage: {verb}")), "{out:?}");
    }
}

#[test]
fn configure_edits_the_target_of_a_symlinked_file() {
    let env = TestEnv::new();
    let real = env.path("dotfiles/docker-config.json");
    fs::create_dir_all(real.parent().unwrap()).unwrap();
    fs::write(&real, "{}").unwrap();
    let link = docker_file(&env);
    fs::create_dir_all(link.parent().unwrap()).unwrap();
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let out = configure(&env, &["docker", "myacr.azurecr.io"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink(),
        "the link stays"
    );
    assert_eq!(fs::read_to_string(&real).unwrap(), ONE_HOST);
    assert_eq!(fs::read_to_string(backup(&real)).unwrap(), "{}");
}

fn original(path: &Path) -> PathBuf {
    PathBuf::from(format!("{}.acr-entra.orig", path.display()))
}

/// `--dry-run` prints the file around the change: header values (`HttpHeaders`, where
/// `Authorization` goes) and passwords inside proxy URLs are masked like `auths`, and
/// every other byte is as in the file.
#[test]
fn configure_dry_run_masks_headers_and_proxy_passwords() {
    let env = TestEnv::new();
    let path = docker_file(&env);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let before = "{\n\t\"HttpHeaders\": {\n\t\t\"Authorization\": \"Bearer hdr-secret\"\n\t},\n\t\"proxies\": {\n\t\t\"default\": {\n\t\t\t\"httpProxy\": \"http://me:proxy-pass@proxy:3128\",\n\t\t\t\"noProxy\": \"*.local\"\n\t\t}\n\t}\n}\n";
    fs::write(&path, before).unwrap();
    let out = configure(&env, &["docker", "myacr.azurecr.io", "--dry-run"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        out.stdout,
        format!(
            "--- {p}\n+++ {p} (after configure docker)\n {{\n \t\"HttpHeaders\": {{\n \t\t\"Authorization\": \"REDACTED\"\n \t}},\n+\t\"credHelpers\": {{\n+\t\t\"myacr.azurecr.io\": \"acr-entra\"\n+\t}},\n \t\"proxies\": {{\n \t\t\"default\": {{\n \t\t\t\"httpProxy\": \"http://me:REDACTED@proxy:3128\",\n \t\t\t\"noProxy\": \"*.local\"\n \t\t}}\n \t}}\n }}\n",
            p = path.display()
        )
    );
    assert_eq!(fs::read_to_string(&path).unwrap(), before);
}

/// The first file without the helper is kept as `.acr-entra.orig` and never overwritten
/// (`.bak` is only the previous file); `configure --remove CLIENT [HOST]` takes out
/// exactly what configure added and puts back what it replaced, leaving every other
/// key alone.
#[test]
fn configure_keeps_the_original_and_remove_undoes_it() {
    let env = TestEnv::new();
    let path = docker_file(&env);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    let before = "{\n\t\"auths\": {\n\t\t\"ghcr.io\": {}\n\t},\n\t\"credHelpers\": {\n\t\t\"gcr.io\": \"gcloud\",\n\t\t\"myacr.azurecr.io\": \"acr-env\"\n\t},\n\t\"credsStore\": \"desktop\"\n}\n";
    fs::write(&path, before).unwrap();
    let out = configure(&env, &["docker", "myacr.azurecr.io", "other.azurecr.io"]);
    assert_eq!(
        out.stdout,
        format!(
            "docker: updated `{p}` (previous file kept as `{p}.acr-entra.bak`, and as `{p}.acr-entra.orig`)\n  credHelpers: myacr.azurecr.io → acr-entra (was \"acr-env\")\n  credHelpers: other.azurecr.io → acr-entra (added)\n",
            p = path.display()
        )
    );
    assert_eq!(fs::read_to_string(original(&path)).unwrap(), before);
    let out = configure(&env, &["docker", "--all", "--force"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(!out.stdout.contains(".orig"), "{out:?}");
    assert_eq!(fs::read_to_string(original(&path)).unwrap(), before, "kept");
    assert_ne!(fs::read_to_string(backup(&path)).unwrap(), before);

    // One host first: only its entry, back to what configure replaced.
    let out = configure(&env, &["--remove", "docker", "https://MyAcr.azurecr.io/"]);
    assert_eq!(
        out.stdout,
        format!(
            "docker: updated `{p}` (previous file kept as `{p}.acr-entra.bak`)\n  credHelpers: myacr.azurecr.io → \"acr-env\" (restored)\n",
            p = path.display()
        )
    );
    let out = configure(&env, &["--remove", "docker", "--dry-run"]);
    assert!(
        out.stdout
            .contains("\n-\t\"credsStore\": \"acr-entra\"\n+\t\"credsStore\": \"desktop\"\n"),
        "{out:?}"
    );
    let out = configure(&env, &["--remove", "docker"]);
    assert_eq!(
        out.stdout,
        format!(
            "docker: updated `{p}` (previous file kept as `{p}.acr-entra.bak`)\n  credsStore: \"desktop\" (restored)\n  credHelpers: other.azurecr.io removed\n",
            p = path.display()
        )
    );
    assert_eq!(fs::read_to_string(&path).unwrap(), before);
    let out = configure(&env, &["--remove", "docker"]);
    assert_eq!(
        out.stdout,
        format!(
            "docker: `{}` has no acr-entra entries; nothing changed\n",
            path.display()
        )
    );

    // A file configure created loses only what configure put there.
    let podman = env.path("xdg-config/containers/auth.json");
    configure(&env, &["podman", "myacr.azurecr.io"]);
    let mut value: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&podman).unwrap()).unwrap();
    value["auths"] = serde_json::json!({"quay.io": {"auth": "eDp5"}});
    fs::write(&podman, value.to_string()).unwrap();
    let out = configure(&env, &["--remove", "podman", "myacr.azurecr.io"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        fs::read_to_string(&podman).unwrap(),
        "{\n\t\"auths\": {\n\t\t\"quay.io\": {\n\t\t\t\"auth\": \"eDp5\"\n\t\t}\n\t}\n}\n"
    );
    assert_eq!(
        configure(&env, &["--remove", "docker", "--all"]).subcommand_error(),
        "`configure --remove` takes no --all or --force: it removes every entry configure made, or HOST's (usage: configure docker|podman|helm [HOST...] [--all [--force]] [--dry-run], or configure --remove docker|podman|helm [HOST...] [--dry-run])"
    );
}
