//! Secretless CI: GitHub Actions and Azure Pipelines jobs whose OIDC token (fetched from
//! the fake CI service at each mint) is the client assertion Entra checks against the
//! app's federated credentials, and any other CI's token taken from a variable
//! (`ACR_ENTRA_FEDERATED_TOKEN_ENV`). Each job runs with the variables its CI sets and
//! no secret; the fakes count what each push costs. Jobs with other subjects never share
//! a cache entry, exactly as pods do not.

use serde_json::json;

use crate::support::ci::{
    DEVOPS_ORG_ID, EXCHANGE_AUDIENCE, FakeOidc, GITHUB_ISSUER, Job, OidcMode,
};
use crate::support::env::Helper;
use crate::support::*;

const HOST: &str = "myacr.azurecr.io";
const CLIENT: &str = "c1c1c1c1-0000-4000-8000-00000000c1c1";
const TENANT: &str = "tenant-ci-0001";
const MAIN: &str = "repo:octo-org/app:ref:refs/heads/main";
const FORK_PR: &str = "repo:octo-org/app:pull_request";

/// One runner: its cache, a fake Entra that trusts `CLIENT` for the given subjects of
/// `issuer`, a fake ACR and a CI's OIDC service.
struct Runner {
    env: TestEnv,
    entra: FakeEntra,
    acr: FakeAcr,
    oidc: FakeOidc,
}

impl Runner {
    fn github(trusted: &[&str]) -> Runner {
        Runner::start(FakeOidc::github(), GITHUB_ISSUER, trusted)
    }

    fn pipelines(trusted: &[&str]) -> Runner {
        Runner::start(
            FakeOidc::pipelines(),
            &format!("https://vstoken.dev.azure.com/{DEVOPS_ORG_ID}"),
            trusted,
        )
    }

    fn start(oidc: FakeOidc, issuer: &str, trusted: &[&str]) -> Runner {
        let entra = FakeEntra::start();
        for subject in trusted {
            entra.trust(CLIENT, issuer, subject, EXCHANGE_AUDIENCE);
        }
        Runner {
            env: TestEnv::new(),
            entra,
            acr: FakeAcr::start(HOST),
            oidc,
        }
    }

    /// What every job on this runner has: the fakes reachable, the authority.
    fn base(&self) -> Helper {
        self.env
            .helper()
            .env("AZURE_AUTHORITY_HOST", self.entra.authority())
            .env("CI", "true")
            .connect_to(&self.acr.connect_to())
            .connect_to(&self.oidc.connect_to())
    }

    /// `get` in a GitHub Actions job with `permissions: id-token: write`: the variables
    /// GitHub sets, and the app's ids as `azure/login` users set them. No secret.
    fn github_job(&self, job: &Job, name: &str) -> Helper {
        self.base()
            .arg("get")
            .stdin(HOST)
            .env("GITHUB_ACTIONS", "true")
            .env("GITHUB_REPOSITORY", "octo-org/app")
            .env("GITHUB_RUN_ID", name)
            .env("RUNNER_ENVIRONMENT", "self-hosted")
            .env("ACTIONS_RUNTIME_TOKEN", &job.bearer)
            .env("ACTIONS_ID_TOKEN_REQUEST_URL", self.oidc.github_url(name))
            .env("ACTIONS_ID_TOKEN_REQUEST_TOKEN", &job.bearer)
            .env("AZURE_CLIENT_ID", CLIENT)
            .env("AZURE_TENANT_ID", TENANT)
    }

    /// `get` in an Azure Pipelines script step that maps the job's access token and the
    /// service connection's ids into its environment.
    fn pipelines_job(&self, job: &Job, name: &str) -> Helper {
        self.base()
            .arg("get")
            .stdin(HOST)
            .env("TF_BUILD", "True")
            .env(
                "SYSTEM_TEAMFOUNDATIONCOLLECTIONURI",
                "https://dev.azure.com/octo-org/",
            )
            .env("SYSTEM_OIDCREQUESTURI", self.oidc.pipelines_url(name))
            .env("SYSTEM_ACCESSTOKEN", &job.bearer)
            .env("AZURESUBSCRIPTION_SERVICE_CONNECTION_ID", &job.connection)
            .env("AZURESUBSCRIPTION_CLIENT_ID", CLIENT)
            .env("AZURESUBSCRIPTION_TENANT_ID", TENANT)
    }

    /// (OIDC, Entra, exchange) requests so far.
    fn counts(&self) -> (usize, usize, usize) {
        (
            self.oidc.request_count(),
            self.entra.request_count(),
            self.acr.exchange_count(),
        )
    }

    fn cache_files(&self, prefix: &str) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.env.cache)
            .map(|d| {
                d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                    .filter(|n| n.starts_with(prefix))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }
}

/// A cold job mints with its OIDC token as the assertion (one request each to the CI,
/// Entra and ACR); its next `get` is a file read; a later job with the same subject
/// asks the CI who it is and is answered from the cache.
#[test]
fn github_actions_job_mints_with_its_oidc_token_and_reuses_the_entry() {
    let r = Runner::github(&[MAIN]);
    let job = r.oidc.job("request-token-job-1", MAIN);
    let out = r.github_job(&job, "1").run();
    out.assert_answer(HOST, &r.acr.issued()[0]);
    assert_eq!(r.counts(), (1, 1, 1), "cold: OIDC, Entra, exchange");
    let oidc = &r.oidc.requests()[0];
    assert_eq!(oidc.method, "GET");
    assert_eq!(
        oidc.header("authorization"),
        Some("Bearer request-token-job-1")
    );
    assert_eq!(oidc.query_param("api-version").as_deref(), Some("2.0"));
    assert_eq!(
        oidc.query_param("audience").as_deref(),
        Some(EXCHANGE_AUDIENCE)
    );
    assert!(
        oidc.query
            .ends_with("&audience=api%3A%2F%2FAzureADTokenExchange"),
        "{}",
        oidc.query
    );
    let sent = &r.entra.token_requests()[0];
    assert_eq!(sent.tenant, TENANT);
    assert_eq!(sent.get("client_id"), Some(CLIENT));
    assert_eq!(
        sent.get("client_assertion"),
        Some(r.oidc.issued()[0].as_str()),
        "the job's OIDC token, verbatim"
    );
    assert_eq!(sent.get("client_secret"), None);

    // The same job again (docker calls the helper per image): no request at all.
    let out = r.github_job(&job, "1").run();
    out.assert_answer(HOST, &r.acr.issued()[0]);
    assert_eq!(r.counts(), (1, 1, 1), "warm in the same job: a file read");

    // The next job of the same branch: asks GitHub who it is, then the cache answers.
    let next = r.oidc.job("request-token-job-2", MAIN);
    let out = r.github_job(&next, "2").run();
    out.assert_answer(HOST, &r.acr.issued()[0]);
    assert_eq!(r.counts(), (2, 1, 1), "warm runner: one OIDC request only");
    // Neither the request tokens nor the OIDC tokens are on disk.
    for name in std::fs::read_dir(&r.env.cache).unwrap() {
        let path = name.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        for secret in [
            "request-token-job-1",
            "request-token-job-2",
            &r.oidc.issued()[0],
            &r.oidc.issued()[1],
        ] {
            assert!(!text.contains(secret), "{} holds a secret", path.display());
            assert!(!path.display().to_string().contains(secret));
        }
    }
    assert_eq!(r.cache_files("subject-").len(), 2, "one record per job");
    assert_eq!(r.cache_files("token-").len(), 1, "one entry per subject");
}

/// Two jobs on one self-hosted runner with the same client id: the main branch's, which
/// Entra trusts, and a pull request's, which it does not. The pull request mints with its
/// own token and gets Entra's refusal, never the main branch's cached token; a third job
/// of another repository keys its own entry too.
#[test]
fn github_jobs_with_other_subjects_never_share_a_token() {
    let r = Runner::github(&[MAIN, "repo:octo-org/other:ref:refs/heads/main"]);
    let main = r.oidc.job("rt-main", MAIN);
    r.github_job(&main, "main")
        .run()
        .assert_answer(HOST, &r.acr.issued()[0]);
    let pr = r.oidc.job("rt-pr", FORK_PR);
    let out = r.github_job(&pr, "pr").run();
    let line = out.assert_loud_error();
    assert!(line.contains("AADSTS700213"), "{line}");
    assert!(line.contains(FORK_PR), "{line}");
    assert!(
        !out.stdout.contains(&r.acr.issued()[0]),
        "the PR got main's token"
    );
    assert_eq!(
        r.counts(),
        (2, 2, 1),
        "the PR job asked Entra with its own token"
    );
    let assertions: Vec<String> = r
        .entra
        .token_requests()
        .iter()
        .filter_map(|t| t.get("client_assertion").map(str::to_string))
        .collect();
    assert_eq!(jwt::decode(&assertions[1]).1["sub"], FORK_PR);

    let other = r
        .oidc
        .job("rt-other", "repo:octo-org/other:ref:refs/heads/main");
    let out = r.github_job(&other, "other").run();
    out.assert_answer(HOST, &r.acr.issued()[1]);
    assert_ne!(r.acr.issued()[0], r.acr.issued()[1]);
    assert_eq!(r.cache_files("token-").len(), 2);

    // Main again, in a new job: its own entry.
    let again = r.oidc.job("rt-main-2", MAIN);
    r.github_job(&again, "main-2")
        .run()
        .assert_answer(HOST, &r.acr.issued()[0]);
    assert_eq!(r.acr.exchange_count(), 2);
}

/// Without `ACR_ENTRA_CREDENTIAL` the job's OIDC service is picked; a client secret in the
/// environment still comes first (the documented order).
#[test]
fn github_actions_is_picked_automatically_after_secrets() {
    let r = Runner::github(&[MAIN]);
    let job = r.oidc.job("rt-auto", MAIN);
    let out = r
        .github_job(&job, "auto")
        .env("ACR_ENTRA_LOG", "debug")
        .run();
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stderr
            .contains("credential github-actions (ACTIONS_ID_TOKEN_REQUEST_URL and _TOKEN are set"),
        "{}",
        out.stderr
    );
    assert_eq!(r.counts(), (1, 1, 1));

    let r = Runner::github(&[MAIN]);
    let job = r.oidc.job("rt-auto", MAIN);
    let out = r
        .github_job(&job, "auto")
        .env("AZURE_CLIENT_SECRET", "a-client-secret")
        .run();
    out.assert_answer(HOST, &r.acr.issued()[0]);
    assert_eq!(r.oidc.request_count(), 0, "the secret was used");
    assert_eq!(
        r.entra.token_requests()[0].get("client_secret"),
        Some("a-client-secret")
    );
}

/// A GitHub job whose workflow does not grant `id-token: write` has no request variables:
/// the error says exactly that, forced or picked, with no network request.
#[test]
fn github_actions_without_id_token_permission_says_so() {
    let r = Runner::github(&[MAIN]);
    let job = r.oidc.job("rt", MAIN);
    let no_permission = |h: Helper| {
        h.env_remove("ACTIONS_ID_TOKEN_REQUEST_URL")
            .env_remove("ACTIONS_ID_TOKEN_REQUEST_TOKEN")
            .run()
    };
    let out = no_permission(
        r.github_job(&job, "1")
            .env("ACR_ENTRA_CREDENTIAL", "github-actions"),
    );
    assert_eq!(
        out.assert_loud_error(),
        "credential `github-actions` (set by ACR_ENTRA_CREDENTIAL) cannot be used: GITHUB_ACTIONS is true but \
         ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN are not set: the workflow lacks \
         `permissions: id-token: write` (add it to the workflow or the job)"
    );
    let out = no_permission(r.github_job(&job, "1"));
    let line = out.assert_loud_error();
    assert!(
        line.contains("github-actions: GITHUB_ACTIONS is true but ACTIONS_ID_TOKEN_REQUEST_URL"),
        "{line}"
    );
    assert!(line.contains("`permissions: id-token: write`"), "{line}");
    assert_eq!(r.counts(), (0, 0, 0));
}

/// An audience the federated credential does not name, and a token that expired before
/// Entra read it: Entra's refusal, named and loud.
#[test]
fn github_actions_wrong_audience_and_expired_token_are_loud() {
    let r = Runner::github(&[MAIN]);
    let job = r.oidc.job("rt", MAIN);
    let out = r
        .github_job(&job, "1")
        .env("ACR_ENTRA_OIDC_AUDIENCE", "api://SomethingElse")
        .run();
    let line = out.assert_loud_error();
    assert!(line.starts_with("credential `github-actions`"), "{line}");
    assert!(line.contains("AADSTS700212"), "{line}");
    assert_eq!(
        r.oidc.requests()[0].query_param("audience").as_deref(),
        Some("api://SomethingElse")
    );

    r.oidc.set_mode(OidcMode::Expired);
    let line = r
        .github_job(&job, "1")
        .run()
        .assert_loud_error()
        .to_string();
    assert!(line.contains("AADSTS700024"), "{line}");
    assert_eq!(r.acr.exchange_count(), 0);
}

/// The OIDC service failing: a 5xx is one line naming the service, never the request
/// token; a short `Retry-After` is waited out; a long one fails at once.
#[test]
fn github_oidc_service_failures_are_one_line_within_the_budget() {
    let r = Runner::github(&[MAIN]);
    let job = r.oidc.job("rt-secret-bearer", MAIN);
    r.oidc.set_mode(OidcMode::Fail(500));
    let out = r.github_job(&job, "1").env("ACR_ENTRA_LOG", "trace").run();
    assert_eq!(out.code, Some(1));
    let line = out.stdout_line();
    assert!(
        line.starts_with(&format!(
            "credential `github-actions`: the job's OIDC token service `https://{}/",
            crate::support::ci::GITHUB_HOST
        )),
        "{line}"
    );
    assert!(line.contains("answered 500"), "{line}");
    assert!(
        !line.contains("api-version"),
        "no query in messages: {line}"
    );
    for text in [&out.stdout, &out.stderr] {
        assert!(!text.contains("rt-secret-bearer"), "{out:?}");
    }
    assert_eq!(r.counts(), (1, 0, 0));

    r.oidc.set_mode(OidcMode::Throttle {
        retry_after: 1,
        times: 1,
    });
    let out = r.github_job(&job, "1").run();
    out.assert_answer(HOST, &r.acr.issued()[0]);
    assert_eq!(r.oidc.request_count(), 3, "the 429 was waited out");

    let job2 = r.oidc.job("rt-2", "repo:octo-org/app:environment:prod");
    r.oidc.set_mode(OidcMode::Throttle {
        retry_after: 3600,
        times: 1,
    });
    let out = r.github_job(&job2, "2").run();
    let line = out.assert_loud_error();
    assert!(line.contains("answered 429 (too many requests)"), "{line}");
    assert!(line.contains("3600 s"), "{line}");
    out.assert_within(std::time::Duration::from_secs(10));
}

/// The request URL must be https: the job's token is never sent in clear text, and the
/// request token and OIDC token never reach stderr at any level.
#[test]
fn github_request_url_must_be_https_and_tokens_never_logged() {
    let r = Runner::github(&[MAIN]);
    let job = r.oidc.job("rt-log-check", MAIN);
    let out = r
        .github_job(&job, "1")
        .env(
            "ACTIONS_ID_TOKEN_REQUEST_URL",
            format!(
                "http://127.0.0.1:{}/idtoken?api-version=2.0",
                r.oidc.server.port()
            ),
        )
        .env("ACR_ENTRA_CREDENTIAL", "github-actions")
        .run();
    assert_eq!(
        out.assert_loud_error(),
        "credential `github-actions` (set by ACR_ENTRA_CREDENTIAL) cannot be used: ACTIONS_ID_TOKEN_REQUEST_URL is not an https:// URL"
    );
    assert_eq!(r.oidc.request_count(), 0);

    let out = r.github_job(&job, "1").env("ACR_ENTRA_LOG", "trace").run();
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stderr.contains(MAIN),
        "the subject is logged: {}",
        out.stderr
    );
    for secret in ["rt-log-check", &r.oidc.issued()[0], &r.acr.issued()[0]] {
        assert!(!out.stderr.contains(secret), "{}", out.stderr);
    }
}

/// An Azure Pipelines job: the request `AzurePipelinesCredential` sends (POST, bearer,
/// `X-TFS-FedAuthRedirect: Suppress`, api-version 7.1, the service connection), client and
/// tenant from the `AZURESUBSCRIPTION_` variables, then the cache.
#[test]
fn azure_pipelines_job_mints_through_its_service_connection() {
    let r = Runner::pipelines(&["sc://octo-org/web/acr-push"]);
    let job = r
        .oidc
        .pipelines_job("system-access-token-1", "3f2b-conn-id", "acr-push");
    let out = r.pipelines_job(&job, "1").run();
    out.assert_answer(HOST, &r.acr.issued()[0]);
    assert_eq!(r.counts(), (1, 1, 1));
    let req = &r.oidc.requests()[0];
    assert_eq!(req.method, "POST");
    assert_eq!(
        req.header("authorization"),
        Some("Bearer system-access-token-1")
    );
    assert_eq!(req.header("x-tfs-fedauthredirect"), Some("Suppress"));
    assert_eq!(req.header("content-length"), Some("0"));
    assert_eq!(
        req.query,
        "api-version=7.1&serviceConnectionId=3f2b-conn-id"
    );
    let sent = &r.entra.token_requests()[0];
    assert_eq!(
        (sent.tenant.as_str(), sent.get("client_id")),
        (TENANT, Some(CLIENT))
    );
    assert_eq!(
        sent.get("client_assertion"),
        Some(r.oidc.issued()[0].as_str())
    );
    r.pipelines_job(&job, "1")
        .run()
        .assert_answer(HOST, &r.acr.issued()[0]);
    assert_eq!(r.counts(), (1, 1, 1), "the job's next get is a file read");

    // Another pipeline on the agent, through another service connection, that Entra does
    // not trust: its own token, Entra's refusal, never the first one's entry.
    let other = r
        .oidc
        .pipelines_job("system-access-token-2", "9a9a-conn-id", "other");
    let line = r
        .pipelines_job(&other, "2")
        .run()
        .assert_loud_error()
        .to_string();
    assert!(line.contains("AADSTS700213"), "{line}");
    assert!(line.contains("sc://octo-org/web/other"), "{line}");
    assert_eq!(r.acr.exchange_count(), 1);
}

/// What a step forgot to map, and a service connection the pipeline may not use.
#[test]
fn azure_pipelines_misconfiguration_names_the_fix() {
    let r = Runner::pipelines(&["sc://octo-org/web/acr-push"]);
    let job = r.oidc.pipelines_job("sat", "conn-1", "acr-push");
    let out = r
        .pipelines_job(&job, "1")
        .env_remove("SYSTEM_ACCESSTOKEN")
        .env("ACR_ENTRA_CREDENTIAL", "azure-pipelines")
        .run();
    assert_eq!(
        out.assert_loud_error(),
        "credential `azure-pipelines` (set by ACR_ENTRA_CREDENTIAL) cannot be used: SYSTEM_OIDCREQUESTURI is set \
         (Azure Pipelines) but SYSTEM_ACCESSTOKEN not: map them into the step's `env:` (`SYSTEM_ACCESSTOKEN: \
         $(System.AccessToken)`, the service connection's id and its app's client and tenant ids)"
    );
    assert_eq!(r.oidc.request_count(), 0);

    let out = r
        .pipelines_job(&job, "1")
        .env(
            "AZURESUBSCRIPTION_SERVICE_CONNECTION_ID",
            "not-this-pipelines",
        )
        .run();
    let line = out.assert_loud_error();
    assert!(line.contains("answered 404"), "{line}");
    assert!(
        line.contains("check AZURESUBSCRIPTION_SERVICE_CONNECTION_ID"),
        "{line}"
    );
    assert!(!line.contains("sat"), "{line}");

    // AZURE_CLIENT_ID wins over the AZURESUBSCRIPTION_ pair, as in the Azure SDKs (the
    // fake Entra holds no federated credential for that app, so it accepts).
    let out = r
        .pipelines_job(&job, "1")
        .env("AZURE_CLIENT_ID", "another-client")
        .run();
    assert_eq!(out.code, Some(0), "{out:?}");
    let last = r.entra.token_requests().last().cloned().unwrap();
    assert_eq!(last.get("client_id"), Some("another-client"));
}

/// A token the job's CI put into a variable (GitLab's `id_tokens:`): read at each mint,
/// keyed by its subject; a variable that is unset is one line naming it, even with a
/// secret at hand; a registry's entry can name its own variable.
#[test]
fn federated_token_from_a_variable_serves_any_ci() {
    let r = Runner::start(
        FakeOidc::github(),
        "https://gitlab.example.com",
        &["project_path:octo/app:ref_type:branch:ref:main"],
    );
    let gitlab = |sub: &str| {
        jwt::make(
            &json!({"alg": "RS256", "kid": "gitlab"}),
            &json!({"iss": "https://gitlab.example.com", "sub": sub, "aud": EXCHANGE_AUDIENCE, "exp": jwt::now() + 300}),
        )
    };
    let main = gitlab("project_path:octo/app:ref_type:branch:ref:main");
    let job = |token: &str| {
        r.base()
            .arg("get")
            .stdin(HOST)
            .env("GITLAB_CI", "true")
            .env("ACR_ENTRA_FEDERATED_TOKEN_ENV", "ACR_OIDC_TOKEN")
            .env("ACR_OIDC_TOKEN", token)
            .env("AZURE_CLIENT_ID", CLIENT)
            .env("AZURE_TENANT_ID", TENANT)
    };
    job(&main).run().assert_answer(HOST, &r.acr.issued()[0]);
    assert_eq!(
        r.entra.token_requests()[0].get("client_assertion"),
        Some(main.as_str())
    );
    job(&main).run().assert_answer(HOST, &r.acr.issued()[0]);
    assert_eq!(r.entra.request_count(), 1, "the same subject: cached");

    let mr = gitlab("project_path:octo/app:ref_type:branch:ref:feature");
    let line = job(&mr).run().assert_loud_error().to_string();
    assert!(line.contains("AADSTS700213"), "{line}");
    assert_eq!(
        r.acr.exchange_count(),
        1,
        "another subject never gets main's token"
    );

    let out = job("")
        .env("AZURE_CLIENT_SECRET", "a-secret-that-must-not-be-used")
        .run();
    assert_eq!(
        out.assert_loud_error(),
        "credential `workload-identity` (ACR_ENTRA_FEDERATED_TOKEN_ENV names a federated token variable) cannot be used: \
         `ACR_OIDC_TOKEN` (named to hold the federated token) is not set or empty"
    );
    let out = job(&main)
        .env("ACR_ENTRA_FEDERATED_TOKEN_ENV", "not a name")
        .run();
    assert_eq!(
        out.assert_loud_error(),
        "ACR_ENTRA_FEDERATED_TOKEN_ENV=`not a name` is not an environment variable name (letters, digits and `_`)"
    );

    // The registry's entry names its own variable, which wins.
    let config = r
        .env
        .config(&json!({"registries": {HOST: {"federated_token_env": "REGISTRY_TOKEN"}}}));
    let out = job("not-used")
        .env("ACR_ENTRA_CONFIG", &config)
        .env("REGISTRY_TOKEN", &main)
        .run();
    out.assert_answer(HOST, &r.acr.issued()[0]);
    assert_eq!(
        r.entra.request_count(),
        2,
        "cached under main's subject already"
    );
}

/// `doctor` in a GitHub job: the OIDC request timed, the token's claims (never the token
/// or the request token), then one mint; a subject Entra does not trust ends with the
/// hint that says which federated credential to create, and a job without `id-token:
/// write` with the permission to add.
#[test]
fn doctor_shows_the_jobs_oidc_claims_and_github_hints() {
    let r = Runner::github(&[MAIN]);
    let job = r.oidc.job("rt-doctor", MAIN);
    let doctor = |h: Helper| h.arg("doctor").arg(HOST).run();
    let base = |job: &Job| {
        // `github_job` runs `get`; doctor takes its host as an argument instead.
        r.base()
            .env("GITHUB_ACTIONS", "true")
            .env("ACTIONS_ID_TOKEN_REQUEST_URL", r.oidc.github_url("d"))
            .env("ACTIONS_ID_TOKEN_REQUEST_TOKEN", &job.bearer)
            .env("AZURE_CLIENT_ID", CLIENT)
            .env("AZURE_TENANT_ID", TENANT)
    };
    let out = doctor(base(&job));
    assert_eq!(out.code, Some(0), "{}", out.stdout);
    assert!(
        out.stdout.contains(
            "\ncredential:  github-actions (ACTIONS_ID_TOKEN_REQUEST_URL and _TOKEN are set"
        ),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("\noidc token:  fetched from the job's OIDC service in "),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(&format!(
            "\nassertion:   iss `{GITHUB_ISSUER}`, sub `{MAIN}`, aud `{EXCHANGE_AUDIENCE}`, exp "
        )),
        "{}",
        out.stdout
    );
    for secret in ["rt-doctor", &r.oidc.issued()[0], &r.acr.issued()[0]] {
        assert!(!out.stdout.contains(secret), "{}", out.stdout);
    }

    let pr = r.oidc.job("rt-doctor-pr", FORK_PR);
    let out = doctor(base(&pr));
    assert_eq!(out.code, Some(1), "{}", out.stdout);
    assert!(
        out.stdout.contains(&format!("sub `{FORK_PR}`")),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(
            "\nhint:        the app has no federated credential matching this job's token: add one with issuer \
             `https://token.actions.githubusercontent.com`"
        ),
        "{}",
        out.stdout
    );

    let out = doctor(
        base(&job)
            .env_remove("ACTIONS_ID_TOKEN_REQUEST_URL")
            .env_remove("ACTIONS_ID_TOKEN_REQUEST_TOKEN"),
    );
    assert_eq!(out.code, Some(1), "{}", out.stdout);
    assert!(
        out.stdout.contains(
            "\nhint:        the GitHub Actions job cannot ask for an OIDC token: add `permissions: id-token: write`"
        ),
        "{}",
        out.stdout
    );

    r.oidc.set_mode(OidcMode::Expired);
    let out = doctor(base(&job));
    assert!(out.stdout.contains("AADSTS700024"), "{}", out.stdout);
    assert!(out.stdout.contains("(expired 1m0s ago)"), "{}", out.stdout);
    assert!(
        out.stdout
            .contains("\nhint:        the federated token had expired when Entra read it"),
        "{}",
        out.stdout
    );
    assert!(
        !out.stdout.contains("this machine's clock is off"),
        "{}",
        out.stdout
    );
}

/// Azure Pipelines picked without `ACR_ENTRA_CREDENTIAL`, its OIDC service answering 503
/// (waited out within the budget when it says when to come back, one line when not) and
/// handing out a token that expired.
#[test]
fn azure_pipelines_auto_pick_throttling_and_expiry() {
    let r = Runner::pipelines(&["sc://octo-org/web/acr-push"]);
    let job = r.oidc.pipelines_job("sat-auto", "conn-auto", "acr-push");
    let out = r
        .pipelines_job(&job, "1")
        .env("ACR_ENTRA_LOG", "debug")
        .run();
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stderr.contains("credential azure-pipelines (SYSTEM_OIDCREQUESTURI, SYSTEM_ACCESSTOKEN and the service connection are set (Azure Pipelines))"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("sat-auto"), "{}", out.stderr);

    let other = r.oidc.pipelines_job("sat-2", "conn-2", "acr-push-2");
    r.entra.trust(
        CLIENT,
        &format!("https://vstoken.dev.azure.com/{DEVOPS_ORG_ID}"),
        "sc://octo-org/web/acr-push-2",
        EXCHANGE_AUDIENCE,
    );
    r.oidc.set_mode(OidcMode::Fail(503));
    let line = r
        .pipelines_job(&other, "2")
        .run()
        .assert_loud_error()
        .to_string();
    assert!(
        line.starts_with("credential `azure-pipelines`: the job's OIDC token service `https://dev.azure.com/octo-org/"),
        "{line}"
    );
    assert!(
        line.contains("answered 503 (service unavailable)"),
        "{line}"
    );
    r.oidc.set_mode(OidcMode::Throttle {
        retry_after: 1,
        times: 1,
    });
    r.pipelines_job(&other, "2")
        .run()
        .assert_answer(HOST, &r.acr.issued()[1]);

    // A new job of the first subject, handed an expired token: the subject's cached
    // entry answers (the token only had to say whom it names); a subject without an
    // entry gets Entra's refusal.
    r.oidc.set_mode(OidcMode::Expired);
    let same = r.oidc.pipelines_job("sat-3", "conn-auto", "acr-push");
    r.pipelines_job(&same, "3")
        .run()
        .assert_answer(HOST, &r.acr.issued()[0]);
    let fresh = r.oidc.pipelines_job("sat-4", "conn-4", "acr-push-4");
    let line = r
        .pipelines_job(&fresh, "4")
        .run()
        .assert_loud_error()
        .to_string();
    assert!(line.contains("AADSTS700024"), "{line}");
    assert_eq!(r.acr.exchange_count(), 2);
}

/// A token in a variable that is not a JWT is still sent (Entra decides), and keyed by
/// its digest: two such tokens never share an entry; an expired JWT is Entra's
/// `AADSTS700024`, loud.
#[test]
fn federated_token_variable_that_is_not_a_jwt_is_keyed_by_its_digest() {
    let r = Runner::start(FakeOidc::github(), "https://unused.example", &[]);
    let job = |token: &str| {
        r.base()
            .arg("get")
            .stdin(HOST)
            .env("ACR_ENTRA_FEDERATED_TOKEN_ENV", "BUILDKITE_OIDC_TOKEN")
            .env("BUILDKITE_OIDC_TOKEN", token)
            .env("AZURE_CLIENT_ID", "opaque-client")
            .env("AZURE_TENANT_ID", TENANT)
    };
    job("opaque-token-one")
        .run()
        .assert_answer(HOST, &r.acr.issued()[0]);
    assert_eq!(
        r.entra.token_requests()[0].get("client_assertion"),
        Some("opaque-token-one")
    );
    job("opaque-token-one")
        .run()
        .assert_answer(HOST, &r.acr.issued()[0]);
    job("opaque-token-two")
        .run()
        .assert_answer(HOST, &r.acr.issued()[1]);
    assert_eq!(r.acr.exchange_count(), 2, "two tokens, two entries");
    assert_eq!(r.cache_files("token-").len(), 2);

    let expired = jwt::make(
        &json!({"alg": "RS256"}),
        &json!({"iss": "https://ci.example", "sub": "job", "aud": EXCHANGE_AUDIENCE, "exp": jwt::now() - 60}),
    );
    r.entra.trust(
        "opaque-client",
        "https://ci.example",
        "job",
        EXCHANGE_AUDIENCE,
    );
    let line = job(&expired).run().assert_loud_error().to_string();
    assert!(line.contains("AADSTS700024"), "{line}");
}
