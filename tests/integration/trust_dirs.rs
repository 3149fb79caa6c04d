//! Trust in the private directory, tried as another user on the same machine would: a
//! cache directory swapped for a symbolic link while `get` runs, a host record planted
//! in a directory that is refused (read by `token --scope`) or that breaks the realm
//! policy, a directory owned by someone else in a process without `/proc`, `doctor`
//! reading a planted store, and a config file in the working directory of a uid without
//! a home. Each test fails on a build that re-resolves paths after checking them or
//! forgets the check at one call site.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::hostile::scripted;
use crate::support::http::Resp;
use crate::support::subcommands::{FakeRegistry, RegistryMode};
use crate::support::users::{self, ATTACKER, VICTIM};
use crate::support::*;

const HOST: &str = "myacr.azurecr.io";
const CLIENT: &str = "dddddddd-1111-4444-8888-222222222222";
const SECRET: &str = "trust-dirs-client-secret";
const TENANT: &str = "tenant-trust-dirs";

/// A TLS server that records every request and answers like a token service, so that
/// anything the helper sends it counts: the attacker's host.
fn attacker() -> http::Server {
    scripted(|_| Resp::json(200, &json!({"refresh_token": "x", "access_token": "y"})))
}

/// The name `host-<digest>.json` the helper gives `HOST`'s record, learnt from one mint
/// into a scratch directory.
fn host_record_name(env: &TestEnv, entra: &FakeEntra, acr: &FakeAcr) -> String {
    let scratch = env.path("scratch-cache");
    let out = env
        .get(HOST)
        .env("ACR_ENTRA_CACHE_DIR", scratch.display().to_string())
        .client_secret(&entra.authority(), CLIENT, SECRET, TENANT)
        .connect_to(&acr.connect_to())
        .run();
    assert_eq!(out.code, Some(0), "{out:?}");
    fs::read_dir(&scratch)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.starts_with("host-") && n.ends_with(".json"))
        .expect("a host record")
}

/// A host record that sends the exchange (or `token --scope`) to `base`.
fn planted_record(base: &str) -> String {
    json!({
        "version": 1,
        "login_server": HOST,
        "challenge": {"base": base, "service": HOST},
        "audience": "acr",
    })
    .to_string()
}

/// The cache directory is a symbolic link that another user swaps, as fast as they can,
/// between the victim's own 0700 directory and their 0777 one holding a host record that
/// points the exchange at their server. However the swaps fall, no token reaches them:
/// the helper refuses a linked directory (and, were it not a link, would open every file
/// relative to the one directory it checked).
#[test]
fn symlink_swap_of_the_cache_directory_never_sends_a_token_elsewhere() {
    let env = TestEnv::new();
    let entra = FakeEntra::start();
    let acr = FakeAcr::start(HOST);
    let evil = attacker();
    let record = host_record_name(&env, &entra, &acr);

    // As root: the victim and the attacker are two other uids. Otherwise both are this
    // user, which still shows whether the helper re-resolves the path after its check.
    let victim = users::as_user(VICTIM);
    let (victim_uid, attacker_uid) = match &victim {
        Ok(_) => (Some(VICTIM), Some(ATTACKER)),
        Err(why) => {
            users::skip(&format!("{why}; racing as one user"));
            (None, None)
        }
    };
    // A sticky world-writable parent, as /tmp is.
    let shared = env.path("shared");
    fs::create_dir(&shared).unwrap();
    let own = shared.join("victim");
    let theirs = shared.join("attacker");
    fs::create_dir(&own).unwrap();
    fs::create_dir(&theirs).unwrap();
    fs::write(
        theirs.join(&record),
        planted_record(&format!("https://localhost:{}", evil.port())),
    )
    .unwrap();
    fs::set_permissions(&own, fs::Permissions::from_mode(0o700)).unwrap();
    fs::set_permissions(&theirs, fs::Permissions::from_mode(0o777)).unwrap();
    fs::set_permissions(theirs.join(&record), fs::Permissions::from_mode(0o644)).unwrap();
    let mut binary = None;
    if let (Some(v), Some(a)) = (victim_uid, attacker_uid) {
        users::chown_tree(env.dir.path(), v);
        users::chown_tree(&theirs, a);
        binary = Some(users::binary_for(&env.path("bin"), v));
    }
    fs::set_permissions(&shared, fs::Permissions::from_mode(0o1777)).unwrap();
    let link = shared.join("cache");
    std::os::unix::fs::symlink(&own, &link).unwrap();

    // The racer: replace the link atomically (rename over it), alternating targets.
    let stop = Arc::new(AtomicBool::new(false));
    let racer = {
        let (stop, link, own, theirs) = (stop.clone(), link.clone(), own.clone(), theirs.clone());
        let tmp = shared.join("cache.tmp");
        thread::spawn(move || {
            let mut swaps = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let target = if swaps.is_multiple_of(2) {
                    &theirs
                } else {
                    &own
                };
                let _ = fs::remove_file(&tmp);
                if std::os::unix::fs::symlink(target, &tmp).is_ok() {
                    let _ = fs::rename(&tmp, &link);
                }
                swaps += 1;
            }
            swaps
        })
    };
    let start = Instant::now();
    let mut runs = 0;
    let mut answered = 0;
    while runs < 300 && start.elapsed() < Duration::from_secs(45) && evil.request_count() == 0 {
        let mut h = env
            .get(HOST)
            .env("ACR_ENTRA_CACHE_DIR", link.display().to_string())
            // Never fresh, so every run mints and reads the host record.
            .env("ACR_ENTRA_MIN_TTL", "5h")
            .client_secret(&entra.authority(), CLIENT, SECRET, TENANT)
            .connect_to(&acr.connect_to())
            .connect_to(&format!(
                "localhost:{}:127.0.0.1:{}",
                evil.port(),
                evil.port()
            ));
        if let (Ok(wrapper), Some(binary)) = (&victim, &binary) {
            let wrapper: Vec<&str> = wrapper.iter().map(String::as_str).collect();
            h = h.wrapped(&wrapper).binary(binary);
        }
        let out = h.run();
        runs += 1;
        if out.code == Some(0) {
            answered += 1;
        }
    }
    stop.store(true, Ordering::Relaxed);
    let swaps = racer.join().unwrap();
    {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "symlink race: {runs} gets, {swaps} swaps, {:.1}s",
            start.elapsed().as_secs_f64()
        );
    }
    assert_eq!(
        evil.request_count(),
        0,
        "after {runs} gets and {swaps} swaps, the attacker's host got {:?}",
        evil.requests()
            .iter()
            .map(|r| r.path.clone())
            .collect::<Vec<_>>()
    );
    assert!(swaps > 100, "the racer hardly ran ({swaps} swaps)");
    assert_eq!(answered, runs, "every get still answered by minting");
}

/// `token --scope` in a cache directory that others can write to: the directory is
/// refused, and so is the host record planted there; the refresh token goes to the
/// registry's own token service, not to the planted one. A record in a private
/// directory whose realm the policy refuses (a hand edit, an older config) is ignored
/// the same way.
#[test]
fn token_scope_ignores_planted_and_refused_host_records() {
    let env = TestEnv::new();
    let entra = FakeEntra::start();
    let registry = FakeRegistry::start(HOST, RegistryMode::Normal);
    let evil = attacker();
    let acr_for_name = FakeAcr::start(HOST);
    let record = host_record_name(&env, &entra, &acr_for_name);
    let token = |cache: &Path| {
        env.helper()
            .args(&["token", HOST, "--scope", "repository:app:pull"])
            .env("ACR_ENTRA_CACHE_DIR", cache.display().to_string())
            .env("ACR_ENTRA_LOG", "warn")
            .client_secret(&entra.authority(), CLIENT, SECRET, TENANT)
            .connect_to(&registry.connect_to())
            .connect_to(&format!(
                "localhost:{}:127.0.0.1:{}",
                evil.port(),
                evil.port()
            ))
            .run()
    };
    let base = format!("https://localhost:{}", evil.port());

    // A world-writable directory with a planted record.
    let open = env.path("open-cache");
    fs::create_dir(&open).unwrap();
    fs::write(open.join(&record), planted_record(&base)).unwrap();
    fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
    let out = token(&open);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stderr.contains("chmod 700"), "{out:?}");
    assert_eq!(evil.request_count(), 0, "the planted realm got a request");

    // A private directory whose record names a realm the policy refuses.
    let private = env.path("private-cache");
    fs::create_dir(&private).unwrap();
    fs::set_permissions(&private, fs::Permissions::from_mode(0o700)).unwrap();
    fs::write(private.join(&record), planted_record(&base)).unwrap();
    let out = token(&private);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(evil.request_count(), 0, "the refused realm got a request");
    assert!(
        out.stderr.contains("ignoring the remembered token realm"),
        "{out:?}"
    );
    // Both answers came from the registry's own token service.
    assert_eq!(
        out.stdout_line(),
        registry.access_tokens().last().unwrap().as_str()
    );
}

/// In a process that cannot read `/proc` (a minimal container, a sandbox), a directory
/// owned by another user is still refused: the owner check takes the effective uid from
/// the system call. A credential planted there is never answered or listed.
#[test]
fn without_proc_a_directory_of_another_user_is_still_refused() {
    if !users::is_root() {
        users::skip("needs root to mount over /proc in a private namespace");
        return;
    }
    let probe = std::process::Command::new("unshare")
        .args(["-m", "--propagation", "private", "true"])
        .status();
    if !probe.is_ok_and(|s| s.success()) {
        users::skip("no mount namespace here");
        return;
    }
    let env = TestEnv::new();
    fs::write(
        env.cache.join("credentials.json"),
        json!({"version": 1, "entries": [
            {"server_url": "ghcr.io", "username": "planted", "secret": "planted-secret"}
        ]})
        .to_string(),
    )
    .unwrap();
    fs::set_permissions(&env.cache, fs::Permissions::from_mode(0o700)).unwrap();
    users::chown_tree(&env.cache, ATTACKER);
    let no_proc = [
        "unshare",
        "-m",
        "--propagation",
        "private",
        "sh",
        "-c",
        "mount -t tmpfs tmpfs /proc && exec \"$@\"",
        "sh",
    ];
    let out = env.get("ghcr.io").wrapped(&no_proc).run();
    assert_eq!(
        (out.code, out.stdout_line()),
        (Some(1), env::NOT_FOUND),
        "{out:?}"
    );
    out.assert_warned("cache unusable");
    let out = env.helper().arg("list").wrapped(&no_proc).run();
    assert_eq!(out.stdout, "{}\n", "{out:?}");
}

/// `doctor` reads the store through the same checked directory as `get`: a planted store
/// in a world-writable directory is reported as not used, not as the credential that
/// answers. What it prints from files is escaped, so a stored user name cannot send
/// escape sequences to the terminal.
#[test]
fn doctor_ignores_a_planted_store_and_escapes_what_it_prints() {
    let env = TestEnv::new();
    let entra = FakeEntra::start();
    let acr = FakeAcr::start(HOST);
    let hostile_user = "ev\u{1b}[31mil\u{1b}]0;owned\u{7}\r\nresult: ok";
    let doctor = |h: env::Helper| {
        h.args(&["doctor", HOST])
            .client_secret(&entra.authority(), CLIENT, SECRET, TENANT)
            .connect_to(&acr.connect_to())
            .run()
    };
    fs::write(
        env.cache.join("credentials.json"),
        json!({"version": 1, "entries": [
            {"server_url": HOST, "username": hostile_user, "secret": "planted-secret"}
        ]})
        .to_string(),
    )
    .unwrap();
    fs::set_permissions(&env.cache, fs::Permissions::from_mode(0o777)).unwrap();
    let out = doctor(env.helper());
    assert!(
        !out.stdout.contains("stored by `docker login`"),
        "doctor claims the planted credential answers: {out:?}"
    );
    assert!(out.stdout.contains("not used"), "{out:?}");
    assert!(
        !out.stdout.contains('\u{1b}') && !out.stdout.contains('\u{7}'),
        "{out:?}"
    );

    // The same record in a private directory (`store` itself refuses control
    // characters, but an older build or a hand edit may have written it): noted, and
    // printed escaped.
    fs::set_permissions(&env.cache, fs::Permissions::from_mode(0o700)).unwrap();
    let out = doctor(env.helper());
    assert!(out.stdout.contains("stored by `docker login`"), "{out:?}");
    assert!(out.stdout.contains("\\u{1b}[31m"), "escaped: {out:?}");
    assert!(
        !out.stdout.contains('\u{1b}') && !out.stdout.contains('\r'),
        "{out:?}"
    );
    assert!(
        !out.stdout.lines().any(|l| l.starts_with("result: ok")),
        "a stored name must not forge a report line: {out:?}"
    );
}

/// A uid without a passwd entry and without HOME (a container, a CI runner) has no
/// config file: a `acr-entra-config.json` in the working directory (a cloned repository)
/// cannot list a host that then receives Entra tokens.
#[test]
fn no_home_means_no_config_file_never_one_in_the_working_directory() {
    let wrapper = match users::as_user(VICTIM) {
        Ok(w) => w,
        Err(why) => {
            // Without a uid lacking a passwd entry, the home lookup would find one.
            users::skip(&why);
            return;
        }
    };
    let env = TestEnv::new();
    let entra = FakeEntra::start();
    // A registry with ACR's endpoints, naming itself by the Host it is asked for.
    let evil = scripted(|req| match req.path.as_str() {
        "/oauth2/exchange" => Resp::json(200, &json!({"refresh_token": "r"})),
        _ => {
            let host = req.header("host").unwrap_or_default().to_string();
            Resp::json(401, &json!({"errors": []})).header(
                "www-authenticate",
                &format!(r#"Bearer realm="https://{host}/oauth2/token",service="{host}""#),
            )
        }
    });
    let listed = format!("localhost:{}", evil.port());
    let repo = env.path("repo");
    fs::create_dir(&repo).unwrap();
    fs::write(
        repo.join("acr-entra-config.json"),
        json!({"registries": {listed.clone(): {"credential": "client-secret"}}}).to_string(),
    )
    .unwrap();
    users::chown_tree(env.dir.path(), VICTIM);
    let binary = users::binary_for(&env.path("bin"), VICTIM);
    let wrapper: Vec<&str> = wrapper.iter().map(String::as_str).collect();
    let out = env
        .get(&listed)
        .wrapped(&wrapper)
        .binary(&binary)
        .cwd(&repo)
        .env_remove("HOME")
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("XDG_CACHE_HOME")
        .env_remove("ACR_ENTRA_CACHE_DIR")
        .client_secret(&entra.authority(), CLIENT, SECRET, TENANT)
        .run();
    out.assert_not_found();
    assert_eq!(evil.request_count(), 0);
    assert_eq!(entra.request_count(), 0);
}
