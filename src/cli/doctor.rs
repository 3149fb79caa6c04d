//! `doctor HOST`: a human-readable account, on stdout, of what `get` would do for HOST
//! and why — the host verdict, the config entry, the credential kind chosen (and why the
//! others were skipped), the audience, the cache entry — then one real mint with each
//! step timed and the redacted claims of the result (`exp`, `aud`, `tenant`, permission
//! actions; never the token). Failures end with remediation hints: this file owns the
//! mapping from known failures (ARM audience disabled, missing AcrPull/AcrPush, firewall,
//! `az` not logged in, IMDS unreachable, clock skew, Entra's AADSTS codes for a rejected
//! secret, an unregistered certificate, an unknown app or tenant, a federation mismatch)
//! to what to do. It writes nothing: not the cache, not the store. Exit 0 when a token
//! was minted, 1 otherwise.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use crate::cache::{Cache, TokenKey};
use crate::config::{Env, RegistryConfig, Settings};
use crate::context::{Context, Dir};
use crate::entra;
use crate::error::{Error, Facts, Result};
use crate::helper;
use crate::identity::{CredentialKind, Unavailable};
use crate::identity::{Identity, ManagedSource};
use crate::jwt;
use crate::mint::{self, Start, StepKind};
use crate::registry::{Audience, Cloud, RegistryHost};
use crate::store::Store;

/// The report and whether a token was minted.
#[derive(Debug)]
pub struct Report {
    pub text: String,
    pub ok: bool,
}

/// What the minted token says of the registry's role-assignment mode: nothing. Its
/// `permissions` are the registry-wide actions in both modes, so doctor says where to look.
const ROLE_MODE: &str = "role mode: not visible in the token (RBAC and ABAC registries issue the same claims); \
    `az acr show -n NAME --query roleAssignmentMode` tells, and ABAC mode ignores AcrPull/AcrPush";

/// Clock differences beyond this are reported as skew.
const SKEW_LIMIT: i64 = 5 * 60;

/// One remediation hint, by the failure it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hint {
    ArmAudienceDisabled,
    MissingRole,
    Firewall,
    AzNotLoggedIn,
    AzdNotLoggedIn,
    ImdsUnreachable,
    ClockSkew,
    RegistryUnreachable,
    Tls,
    NoCredential,
    NotAcr,
    SecretRejected,
    CertificateNotRegistered,
    AppNotFound,
    TenantNotFound,
    FederationMismatch,
    GitHubFederationMismatch,
    PipelinesFederationMismatch,
    FederatedTokenExpired,
    IdTokenPermission,
    OidcService,
    EntraUnreachable,
    ToolTimeout,
    FederatedSignature,
    Throttled,
}

impl Hint {
    // A table of texts, one arm per hint: splitting it would only scatter them.
    #[allow(clippy::too_many_lines)]
    pub fn text(self) -> &'static str {
        match self {
            Hint::ArmAudienceDisabled => {
                "the registry refuses ARM-audience tokens (its `authentication-as-arm` policy is disabled): \
                 use the ACR audience: remove `\"audience\": \"arm\"` from the registry's config entry or set it to `\"acr\"`"
            }
            Hint::MissingRole => {
                "ACR refused the identity: assign it the AcrPull role (AcrPush to push) on the registry, e.g. \
                 `az role assignment create --assignee OBJECT_ID --role AcrPull --scope REGISTRY_ID`; \
                 or, in a registry in ABAC mode (`az acr show -n NAME --query roleAssignmentMode`), which ignores AcrPull/AcrPush, \
                 Container Registry Repository Reader (Writer to push, Contributor to delete; Catalog Lister to list the catalog); \
                 or the tenant is wrong: the Entra token must come from the registry's tenant (set AZURE_TENANT_ID or tenant_id in the config entry)"
            }
            Hint::Firewall => {
                "the registry's network rules block this machine (firewall or private endpoint): \
                 add this machine's public IP (`az acr network-rule add`) or reach the registry through its private endpoint"
            }
            Hint::AzNotLoggedIn => {
                "the Azure CLI is not logged in or its login expired: run `az login` (or `az login --tenant TENANT`)"
            }
            Hint::AzdNotLoggedIn => {
                "the Azure Developer CLI is not logged in or its login expired: run `azd auth login`"
            }
            Hint::ImdsUnreachable => {
                "the instance metadata service (169.254.169.254) is unreachable: this is not an Azure VM, VMSS or AKS node, \
                 or a proxy or firewall blocks it; assign a managed identity, or choose another credential with ACR_ENTRA_CREDENTIAL"
            }
            Hint::ClockSkew => {
                "this machine's clock is off: tokens look expired or not yet valid; sync it (`timedatectl set-ntp true`, chrony or ntpd)"
            }
            Hint::Tls => {
                "TLS with the registry failed: if a proxy inspects TLS or the registry uses a private CA, \
                 trust that CA through SSL_CERT_FILE or SSL_CERT_DIR"
            }
            Hint::RegistryUnreachable => {
                "the registry did not answer: check DNS, HTTPS_PROXY/NO_PROXY and the network path to port 443"
            }
            Hint::NoCredential => {
                "no Entra credential: set ACR_ENTRA_CREDENTIAL and the variables it needs (see README), or run `az login`"
            }
            Hint::SecretRejected => {
                "Entra refused the client secret (wrong, or expired): create a new one \
                 (`az ad app credential reset --id CLIENT_ID --append`) and set AZURE_CLIENT_SECRET"
            }
            Hint::CertificateNotRegistered => {
                "Entra does not know this certificate: upload it to the app registration \
                 (Certificates & secrets; the thumbprint to look for is on the `certificate` line above), \
                 or point AZURE_CLIENT_CERTIFICATE_PATH at the one that is registered"
            }
            Hint::AppNotFound => {
                "no application with this client id in this tenant: check AZURE_CLIENT_ID, and \
                 AZURE_TENANT_ID (or the config entry's tenant_id) for the tenant the app lives in"
            }
            Hint::TenantNotFound => {
                "the tenant does not exist in this cloud: check AZURE_TENANT_ID (or tenant_id), \
                 and AZURE_AUTHORITY_HOST or the config's `cloud` for sovereign clouds"
            }
            Hint::FederationMismatch => {
                "the app has no federated credential matching this token's issuer and subject: \
                 add one for the cluster's OIDC issuer and `system:serviceaccount:NAMESPACE:NAME` \
                 (`az identity federated-credential create` or the app's Certificates & secrets)"
            }
            Hint::GitHubFederationMismatch => {
                "the app has no federated credential matching this job's token: add one with issuer \
                 `https://token.actions.githubusercontent.com`, audience `api://AzureADTokenExchange` and the subject on the \
                 `assertion` line above (`repo:ORG/REPO:ref:refs/heads/BRANCH`, `repo:ORG/REPO:environment:NAME` or \
                 `repo:ORG/REPO:pull_request`), e.g. `az ad app federated-credential create --id CLIENT_ID --parameters fic.json`"
            }
            Hint::PipelinesFederationMismatch => {
                "the app has no federated credential for this service connection: its issuer is \
                 `https://vstoken.dev.azure.com/ORGANIZATION_ID` and its subject `sc://ORG/PROJECT/CONNECTION` \
                 (the `assertion` line above shows both); create the connection as workload identity federation, or add that \
                 credential to the app that AZURESUBSCRIPTION_CLIENT_ID names"
            }
            Hint::FederatedTokenExpired => {
                "the federated token had expired when Entra read it: a CI's token lives minutes (GitLab's `id_tokens` and \
                 CircleCI's for the job's first hour), so a long job must not reuse one from its start; re-run the step, \
                 or for a token file, check that whatever writes it still refreshes it"
            }
            Hint::EntraUnreachable => {
                "Entra ID could not be reached (no answer at all, so the credential was never checked): \
                 set HTTPS_PROXY (and NO_PROXY) if this network needs a proxy, and let the firewall pass \
                 the authority on the error line (login.microsoftonline.com:443 in the public cloud)"
            }
            Hint::ToolTimeout => {
                "the tool did not answer within ACR_ENTRA_TIMEOUT and was stopped: it may be waiting at a prompt \
                 (MFA, an upgrade, a device code) or be very slow; run `az account get-access-token` (or `azd auth token`) \
                 by hand to see, or raise ACR_ENTRA_TIMEOUT"
            }
            Hint::FederatedSignature => {
                "Entra could not verify the federated token's signature: the issuer's OIDC discovery document and keys \
                 must be publicly reachable (AKS: `--enable-oidc-issuer`; a self-managed cluster must publish them), \
                 and the token must come from the issuer the federated credential names"
            }
            Hint::IdTokenPermission => {
                "the GitHub Actions job cannot ask for an OIDC token: add `permissions: id-token: write` \
                 (and `contents: read`) to the workflow or the job"
            }
            Hint::OidcService => {
                "the CI's OIDC token service refused or did not answer: the line above names it and why; \
                 GitHub needs `permissions: id-token: write`, Azure Pipelines `SYSTEM_ACCESSTOKEN: $(System.AccessToken)` \
                 in the step's env and a service connection that uses workload identity federation"
            }
            Hint::Throttled => {
                "the service is throttling requests from this machine, its tenant or its network: \
                 try again at the time the error names, or raise ACR_ENTRA_TIMEOUT so the wait fits; \
                 machines that start together share the limit, and a cached token is answered without waiting"
            }
            Hint::NotAcr => {
                "`get` answers \"credentials not found\" for this host; if it is an ACR custom domain or a test registry, \
                 add it to the config file's `registries`"
            }
        }
    }
}

pub fn run(args: &[String], env: &Env) -> Result<Report> {
    let args = crate::cli::Args::parse("doctor", args, &[], &[])?;
    let [host] = args.positional.as_slice() else {
        return Err(Error::Usage("usage: doctor HOST".into()));
    };
    let mut out = Doc::default();
    let _ = writeln!(
        out.text,
        "acr-entra doctor: `{}` ({} {})",
        crate::error::one_line(host),
        crate::NAME,
        crate::VERSION
    );
    let settings = match Settings::from_env(env) {
        Ok(s) => s,
        Err(e) => return Ok(out.fail(&e.one_line(), &[])),
    };
    crate::log::set_level(settings.log_level);
    let ctx = match Context::load(settings) {
        Ok(c) => c,
        Err(e) => {
            out.line("config", &e.one_line());
            return Ok(out.fail("the config file cannot be used", &[]));
        }
    };
    Ok(diagnose(&ctx, host, out))
}

#[derive(Default)]
struct Doc {
    text: String,
}

impl Doc {
    /// Every line goes through `printable`: values come from files and servers.
    fn line(&mut self, label: &str, value: &str) {
        let _ = writeln!(
            self.text,
            "{:<12} {}",
            format!("{label}:"),
            crate::error::printable(value)
        );
    }

    fn sub(&mut self, text: &str) {
        let _ = writeln!(self.text, "  {}", crate::error::printable(text));
    }

    fn hints(&mut self, hints: &[Hint]) {
        let mut seen = Vec::new();
        for h in hints {
            if !seen.contains(h) {
                seen.push(*h);
                self.line("hint", h.text());
            }
        }
    }

    /// The report so far, ending in the failure and its hints.
    fn fail(&mut self, why: &str, hints: &[Hint]) -> Report {
        self.line("result", &format!("FAILED: {why}"));
        self.hints(hints);
        Report {
            text: std::mem::take(&mut self.text).trim_end().to_string(),
            ok: false,
        }
    }
}

fn diagnose(ctx: &Context, input: &str, mut out: Doc) -> Report {
    let (host, registry, cloud) = match host_section(ctx, input, &mut out) {
        Ok(found) => found,
        Err(report) => return report,
    };
    let dir = directory_section(ctx, &host, &mut out);
    out.line(
        "config",
        &config_line(ctx, &host, ctx.config.registry(&host)),
    );
    clients_section(ctx, &host, &mut out);
    let identity = match credential_section(ctx, registry, cloud, &mut out) {
        Ok(identity) => identity,
        Err(report) => return report,
    };
    let audience = registry.and_then(|r| r.audience.clone());
    let cache = dir.get().filter(|_| !ctx.settings.no_cache).map(Cache::new);
    let remembered = cache.as_ref().and_then(|c| c.remembered(&host).audience);
    out.line(
        "audience",
        &audience_line(audience.as_ref(), remembered.as_ref(), &identity),
    );
    out.line(
        "cache",
        &match TokenKey::new(&host, &identity, audience.as_ref()) {
            Some(key) => cache_line(ctx, &dir, cache.as_ref(), &key),
            None => "the entry is known once the job's OIDC token names its subject".into(),
        },
    );
    mint_section(ctx, &host, registry, &identity, out)
}

/// The host's verdict: ACR or listed (and its cloud), or a report that nothing is minted.
fn host_section<'c>(
    ctx: &'c Context,
    input: &str,
    out: &mut Doc,
) -> std::result::Result<(RegistryHost, Option<&'c RegistryConfig>, Cloud), Report> {
    let Ok(host) = RegistryHost::parse(input) else {
        return Err(out.fail(
            &format!(
                "`{}` is not a registry host name",
                crate::error::one_line(input)
            ),
            &[],
        ));
    };
    let Some((registry, cloud)) = helper::acr_target(ctx, &host) else {
        out.line("host", &format!("`{host}` is not an ACR login server (*.azurecr.io, *.azurecr.cn, *.azurecr.us) and not listed in the config file"));
        out.line("config", &ctx.config.shown());
        return Err(out.fail("no token is minted for this host", &[Hint::NotAcr]));
    };
    let why = if host.acr_cloud().is_some() {
        "an ACR login server"
    } else {
        "listed in the config file's registries"
    };
    out.line(
        "host",
        &format!("`{host}` is {why}; {} cloud", cloud.name()),
    );
    Ok((host, registry, cloud))
}

/// Whether the clients will reach this helper for `host`: the binary on PATH, and what
/// docker's and podman's files send the host to.
fn clients_section(ctx: &Context, host: &RegistryHost, out: &mut Doc) {
    use crate::cli::routing;
    let key = host.key();
    out.line(
        "clients",
        &match routing::on_path(ctx) {
            Ok(path) => format!("`{}` is on PATH", path.display()),
            Err(warning) => format!("problem: {warning}"),
        },
    );
    out.sub(&routing::docker(ctx, &key).describe("docker", &key));
    out.sub(&routing::containers(ctx, &key).describe("podman", &key));
}

/// The same trusted directory `get` reads, or why it is not used; and a stored
/// credential there that would answer before any mint.
fn directory_section(ctx: &Context, host: &RegistryHost, out: &mut Doc) -> Dir {
    let dir = match ctx.open_dir() {
        Ok(Some(dir)) => Dir::Ready(dir),
        Ok(None) => Dir::Missing,
        Err(e) => {
            out.line(
                "directory",
                &format!(
                    "problem: not used: {} (`get` ignores its cache and stored credentials, so it mints on every call)",
                    e.one_line()
                ),
            );
            Dir::Unusable
        }
    };
    if let Some(stored) = dir.get().and_then(|d| Store::new(d).get(host)) {
        out.sub(&format!(
            "note: a credential stored by `docker login` (user `{}`) answers `get` before any mint; `docker logout {host}` removes it",
            stored.username
        ));
    }
    dir
}

/// The credential kind chosen and why (with the IMDS probe timed when it ran), or a
/// report that there is none.
fn credential_section(
    ctx: &Context,
    registry: Option<&RegistryConfig>,
    cloud: Cloud,
    out: &mut Doc,
) -> std::result::Result<Identity, Report> {
    let start = Instant::now();
    let probed = std::cell::Cell::new(None);
    let probe = || {
        let result = entra::probe_imds(&ctx.settings);
        probed.set(Some((start.elapsed(), result.is_ok())));
        result
    };
    let on_path = |p: &str| entra::on_path(&ctx.settings, p);
    let chosen = entra::choose(&ctx.settings, registry, cloud, &probe, &on_path);
    let probe_line = probed
        .get()
        .map(|(elapsed, answered)| probe_line(ctx, elapsed, answered));
    let identity = match chosen {
        Ok(identity) => identity,
        Err(e) => {
            let hints: &[Hint] = match &e {
                Error::Unavailable {
                    kind: CredentialKind::ManagedIdentity,
                    reason: Unavailable::Imds(_),
                    ..
                } => &[Hint::ImdsUnreachable],
                Error::Unavailable {
                    reason: Unavailable::NoIdTokenPermission,
                    ..
                } => &[Hint::IdTokenPermission],
                Error::NoCredential { skipped, .. }
                    if skipped
                        .iter()
                        .any(|(_, why)| *why == Unavailable::NoIdTokenPermission) =>
                {
                    &[Hint::IdTokenPermission, Hint::NoCredential]
                }
                Error::NoCredential { .. } => &[Hint::NoCredential],
                _ => &[],
            };
            out.line("credential", &e.one_line());
            if let Some(probe) = &probe_line {
                out.sub(probe);
            }
            return Err(out.fail("no credential to mint with", hints));
        }
    };
    credential_lines(out, &identity);
    if let Some(probe) = &probe_line {
        out.sub(probe);
    }
    if identity.kind == CredentialKind::ClientCertificate {
        out.line("certificate", &certificate_line(&ctx.settings));
    }
    assertion_section(ctx, identity, out)
}

/// What doctor's own probe of the instance metadata service saw, and any failure `get`
/// still believes: doctor probes afresh, so without it a managed identity assigned a
/// minute ago would look fine here and still be skipped by `get` for a few minutes.
fn probe_line(ctx: &Context, elapsed: Duration, answered: bool) -> String {
    let seen = format!(
        "instance metadata service probe: {} in {}",
        if answered { "answered" } else { "no answer" },
        millis(elapsed)
    );
    let remembered = ctx
        .open_dir()
        .ok()
        .flatten()
        .and_then(|dir| crate::lifecycle::remembered_imds_absence(&ctx.settings, &dir));
    match remembered {
        None => seen,
        Some((age, why)) => format!(
            "{seen}; `get` remembers a failed probe {age}s ago ({why}) and does not probe again for {}s (ACR_ENTRA_NO_CACHE=1 probes every time)",
            crate::cache::IMDS_ABSENT_TTL - age
        ),
    }
}

/// A CI job's OIDC token, fetched now as `get` would (timed), and the claims of any
/// federated token in hand: issuer, subject, audience and expiry, never the token.
fn assertion_section(
    ctx: &Context,
    identity: Identity,
    out: &mut Doc,
) -> std::result::Result<Identity, Report> {
    let identity = if identity.kind.fetches_assertion() {
        let start = Instant::now();
        match entra::with_assertion(
            &identity,
            &ctx.settings,
            &crate::http::shared(&ctx.settings),
        ) {
            Ok(fetched) => {
                out.line(
                    "oidc token",
                    &format!(
                        "fetched from the job's OIDC service in {}",
                        millis(start.elapsed())
                    ),
                );
                fetched
            }
            Err(e) => {
                out.line(
                    "oidc token",
                    &format!("failed in {}: {}", millis(start.elapsed()), e.one_line()),
                );
                return Err(out.fail(
                    "the job's OIDC token could not be had",
                    &[Hint::OidcService],
                ));
            }
        }
    } else {
        identity
    };
    if let Some(assertion) = &identity.assertion {
        out.line("assertion", &assertion_line(assertion.token().expose()));
    }
    Ok(identity)
}

/// `iss`, `sub`, `aud` and `exp` of a federated token; never the token.
pub fn assertion_line(token: &str) -> String {
    let text = |name: &str| jwt::string_claim(token, name).unwrap_or_else(|| "?".into());
    let now = crate::now();
    let exp = jwt::expiry(token).map_or_else(
        || "?".into(),
        |exp| {
            if exp > now {
                format!("{} (in {})", crate::utc(exp), human(exp - now))
            } else {
                format!("{} (expired {} ago)", crate::utc(exp), human(now - exp))
            }
        },
    );
    if jwt::claims(token).is_none() {
        return "not a JWT: Entra will refuse it unless it is one".into();
    }
    format!(
        "iss `{}`, sub `{}`, aud `{}`, exp {exp}",
        text("iss"),
        text("sub"),
        text("aud")
    )
}

/// One real mint with each step timed, then the token's claims or the failure's hints.
fn mint_section(
    ctx: &Context,
    host: &RegistryHost,
    registry: Option<&RegistryConfig>,
    identity: &Identity,
    mut out: Doc,
) -> Report {
    out.line(
        "mint",
        "one real mint (fresh challenge, nothing cached or written):",
    );
    let mut steps = Vec::new();
    let minted = mint::mint(
        &ctx.settings,
        &ctx.config,
        host,
        registry,
        identity,
        &Start::default(),
        &mut |step| steps.push(step),
    );
    for step in &steps {
        let status = step
            .error
            .as_ref()
            .map_or_else(|| "ok".to_string(), |e| format!("failed: {}", e.line));
        out.sub(&format!(
            "{:<12} {:>8}  {}; {status}",
            step.kind.name(),
            millis(step.elapsed),
            step.detail
        ));
    }
    let m = match minted {
        Ok(m) => m,
        Err(e) => {
            let failed = steps.iter().rfind(|s| s.error.is_some()).map(|s| s.kind);
            let audience = registry.and_then(|r| r.audience.as_ref());
            let hints = hints_for(&e.facts(), failed, identity, audience);
            return out.fail(&e.one_line(), &hints);
        }
    };
    let now = crate::now();
    out.line("token", &claims_line(m.token.0.expose(), m.expires_on, now));
    out.sub(&format!("audience that worked: {}", m.audience.name()));
    out.sub(ROLE_MODE);
    out.line("result", "ok: a token was minted");
    if let Some(seconds) = clock_skew(m.token.0.expose(), now) {
        out.line(
            "warning",
            &format!(
                "the token was issued {} this machine's clock",
                ahead_behind(seconds)
            ),
        );
        out.hints(&[Hint::ClockSkew]);
    }
    Report {
        text: out.text.trim_end().to_string(),
        ok: true,
    }
}

fn config_line(ctx: &Context, host: &RegistryHost, entry: Option<&RegistryConfig>) -> String {
    let path = ctx.config.shown();
    let Some(entry) = entry else {
        let state = if ctx.config.exists() {
            format!("{} registries", ctx.config.registries.len())
        } else {
            "absent".into()
        };
        return format!("{path} ({state}): no entry for `{host}`, defaults apply");
    };
    let mut parts = Vec::new();
    let RegistryConfig {
        credential,
        client_id,
        object_id,
        resource_id,
        tenant_id,
        audience,
        cloud,
        anonymous,
        federated_token_env,
    } = entry;
    if let Some(v) = credential {
        parts.push(format!("credential {}", v.name()));
    }
    if let Some(v) = client_id {
        parts.push(format!("client_id {v}"));
    }
    if let Some(v) = object_id {
        parts.push(format!("object_id {v}"));
    }
    if let Some(v) = resource_id {
        parts.push(format!("resource_id {v}"));
    }
    if let Some(v) = tenant_id {
        parts.push(format!("tenant_id {v}"));
    }
    if let Some(v) = audience {
        parts.push(format!("audience {}", v.name()));
    }
    if let Some(v) = cloud {
        parts.push(format!("cloud {}", v.name()));
    }
    if *anonymous {
        parts.push("anonymous pulls allowed".into());
    }
    if let Some(v) = federated_token_env {
        parts.push(format!("federated token from `{v}`"));
    }
    if parts.is_empty() {
        parts.push("empty".into());
    }
    format!("{path}: entry for `{host}`: {}", parts.join(", "))
}

fn credential_lines(out: &mut Doc, identity: &Identity) {
    let mut who = Vec::new();
    if let Some(t) = &identity.tenant {
        who.push(format!("tenant {t}"));
    }
    if let Some(c) = &identity.client_id {
        who.push(format!("client id {c}"));
    }
    if let Some(s) = identity.managed_source {
        who.push(
            match s {
                ManagedSource::AppService => "App Service endpoint",
                ManagedSource::Arc => "Azure Arc endpoint",
                ManagedSource::Imds => "IMDS",
            }
            .into(),
        );
    }
    who.push(format!("authority {}", identity.authority));
    out.line(
        "credential",
        &format!(
            "{} ({}); {}",
            identity.kind.name(),
            identity.why,
            who.join(", ")
        ),
    );
    if identity.skipped.is_empty() && identity.why.starts_with("set by") {
        out.sub("other kinds not considered: the kind is set explicitly");
    }
    for skipped in &identity.skipped {
        out.sub(&format!("skipped {skipped}"));
    }
}

/// The certificate file as Entra sees it: its SHA-1 thumbprint in the upper-case hex the
/// app registration's "Certificates & secrets" lists, or why it cannot be used.
fn certificate_line(settings: &Settings) -> String {
    let Some(path) = settings.azure.certificate_path.as_deref() else {
        return "AZURE_CLIENT_CERTIFICATE_PATH is not set".into();
    };
    let password = settings
        .azure
        .certificate_password
        .as_ref()
        .map(crate::secret::Secret::expose);
    let read = crate::files::read_user_file(path, crate::files::MAX_FILE)
        .map_err(|e| e.to_string())
        .and_then(|bytes| crate::certfile::read(&bytes, password).map_err(|e| e.to_string()));
    match read {
        Ok(cert) => format!(
            "`{}`: thumbprint {}{}",
            path.display(),
            crate::certfile::thumbprint_hex(&cert.certificate),
            if settings.azure.send_certificate_chain {
                format!(
                    "; chain of {} sent as x5c (AZURE_CLIENT_SEND_CERTIFICATE_CHAIN)",
                    cert.others.len() + 1
                )
            } else {
                String::new()
            }
        ),
        Err(why) => format!("`{}`: {why}", path.display()),
    }
}

fn audience_line(
    forced: Option<&Audience>,
    remembered: Option<&Audience>,
    identity: &Identity,
) -> String {
    match (forced, remembered) {
        (Some(a), _) => format!(
            "{} (`{}`), set by the config entry; no fallback",
            a.name(),
            a.scope(identity.cloud)
        ),
        (None, Some(Audience::Arm)) => format!(
            "arm (`{}`) first, remembered from the last mint; acr on a 401",
            Audience::Arm.scope(identity.cloud)
        ),
        (None, _) => format!(
            "acr (`{}`); arm (`{}`) if the exchange answers 401",
            Audience::Acr.scope(identity.cloud),
            Audience::Arm.scope(identity.cloud)
        ),
    }
}

fn cache_line(ctx: &Context, dir: &Dir, cache: Option<&Cache>, key: &TokenKey) -> String {
    let Some(cache) = cache else {
        return match (
            ctx.settings.no_cache,
            dir,
            ctx.settings.cache_dir.as_deref(),
        ) {
            (true, _, _) => "off (ACR_ENTRA_NO_CACHE)".into(),
            (false, Dir::Unusable, _) => "not used (see directory)".into(),
            (false, _, Some(path)) => {
                format!("dir `{}` absent; the first mint creates it", path.display())
            }
            (false, _, None) => "no cache directory (set ACR_ENTRA_CACHE_DIR or HOME)".into(),
        };
    };
    let dir = format!(
        "dir `{}` {}",
        cache.dir().path().display(),
        mode_text(Some(cache.dir().mode()))
    );
    let path = cache.token_path(key);
    let mode = cache.token_mode(key);
    let now = crate::now();
    let min_ttl = human(ctx.settings.min_ttl.as_secs() as i64);
    match cache.get(key) {
        Some(e) => format!(
            "{dir}; entry `{}` {}: age {}, expires {} ({})",
            path.display(),
            mode_text(mode),
            human(now.saturating_sub(e.created_on)),
            crate::utc(e.expires_on),
            if e.is_fresh(now, ctx.settings.min_ttl) {
                format!(
                    "fresh: in {}, above the {min_ttl} minimum",
                    human(e.remaining(now))
                )
            } else if e.remaining(now) > 0 {
                format!(
                    "stale: only {} left, below the {min_ttl} minimum",
                    human(e.remaining(now))
                )
            } else {
                format!("expired {} ago", human(e.remaining(now).saturating_neg()))
            }
        ),
        None if mode.is_some() => format!(
            "{dir}; entry `{}` unreadable, corrupt or of another version (will be rewritten)",
            path.display()
        ),
        None => format!("{dir}; no entry yet (`{}`)", path.display()),
    }
}

fn mode_text(mode: Option<u32>) -> String {
    match mode {
        Some(mode) => {
            let mode = mode & 0o777;
            let warn = if mode & 0o077 != 0 {
                " (group or others have access)"
            } else {
                ""
            };
            format!("mode {mode:04o}{warn}")
        }
        None => "absent".into(),
    }
}

/// `exp`, `aud`, `tenant` and permission actions of a refresh token; never the token.
pub fn claims_line(token: &str, expires_on: i64, now: i64) -> String {
    let claims = jwt::claims(token).unwrap_or_default();
    let text = |name: &str| jwt::string_claim(token, name).unwrap_or_else(|| "?".into());
    let actions = claims
        .get("permissions")
        .and_then(|p| p.get("actions"))
        .and_then(|a| a.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str())
                .collect::<Vec<_>>()
                .join(",")
        })
        .filter(|a| !a.is_empty())
        .unwrap_or_else(|| "?".into());
    format!(
        "exp {} (in {}), aud `{}`, tenant `{}`, permissions {actions}",
        crate::utc(expires_on),
        human(expires_on - now),
        text("aud"),
        text("tenant"),
    )
}

/// How far the token's issue time (`iat`, else `nbf`) is from `now`, when beyond the limit.
pub fn clock_skew(token: &str, now: i64) -> Option<i64> {
    let claims = jwt::claims(token)?;
    let issued = ["iat", "nbf"]
        .iter()
        .find_map(|c| claims.get(*c)?.as_i64())?;
    let skew = issued - now;
    (skew.abs() > SKEW_LIMIT).then_some(skew)
}

fn ahead_behind(seconds: i64) -> String {
    if seconds > 0 {
        format!("{} ahead of", human(seconds))
    } else {
        format!("{} behind", human(-seconds))
    }
}

/// Entra codes that mean this machine's clock is off (an assertion outside its valid
/// time range; a token not yet valid).
const CLOCK_CODES: [u32; 2] = [700_024, 50058];

/// The hints for a failed mint, from its error's facts and the step that failed.
pub fn hints_for(
    facts: &Facts,
    failed: Option<StepKind>,
    identity: &Identity,
    forced: Option<&Audience>,
) -> Vec<Hint> {
    // A throttled party says nothing about the identity or the path to it.
    if facts.throttled {
        return vec![Hint::Throttled];
    }
    let mut hints = Vec::new();
    // A federated token (a file, a variable, a CI's) was issued by the CI or cluster:
    // its time range says when that issuer meant it to expire, not how this machine's
    // clock runs.
    if facts.aadsts.iter().any(|c| CLOCK_CODES.contains(c)) {
        hints.push(
            if identity.kind == CredentialKind::WorkloadIdentity
                || identity.kind.fetches_assertion()
            {
                Hint::FederatedTokenExpired
            } else {
                Hint::ClockSkew
            },
        );
    }
    match failed {
        Some(StepKind::Challenge) if facts.tls => hints.push(Hint::Tls),
        Some(StepKind::Challenge) => hints.push(Hint::RegistryUnreachable),
        Some(StepKind::EntraToken) => hints.extend(entra_hints(facts, identity)),
        Some(StepKind::Exchange) => hints.extend(exchange_hints(facts, forced)),
        None => {}
    }
    hints
}

/// Hints for a failed Entra token request: a network failure first (the credential was
/// never checked), then by AADSTS code read for the credential kind in use, then by kind.
fn entra_hints(facts: &Facts, identity: &Identity) -> Vec<Hint> {
    let kind = identity.kind;
    let imds = kind == CredentialKind::ManagedIdentity
        && identity.managed_source == Some(ManagedSource::Imds);
    if facts.network && !imds {
        return vec![Hint::EntraUnreachable];
    }
    let federated = kind == CredentialKind::WorkloadIdentity || kind.fetches_assertion();
    let federation = match kind {
        CredentialKind::GitHubActions => Hint::GitHubFederationMismatch,
        CredentialKind::AzurePipelines => Hint::PipelinesFederationMismatch,
        _ => Hint::FederationMismatch,
    };
    // An invalid assertion signature is an unregistered certificate for a certificate
    // credential, and an unverifiable issuer for a federated token.
    let signature = if federated {
        Hint::FederatedSignature
    } else {
        Hint::CertificateNotRegistered
    };
    let entra_codes: [(&[u32], Hint); 5] = [
        (&[7_000_215, 7_000_222], Hint::SecretRejected),
        (&[700_027, 700_023], signature),
        (&[700_016], Hint::AppNotFound),
        (&[90002], Hint::TenantNotFound),
        (&[70021, 700_211, 700_212, 700_213], federation),
    ];
    let mut hints: Vec<Hint> = entra_codes
        .into_iter()
        .filter(|(codes, _)| facts.aadsts.iter().any(|c| codes.contains(c)))
        .map(|(_, hint)| hint)
        .collect();
    match kind {
        CredentialKind::AzureCli | CredentialKind::Azd if facts.timed_out => {
            hints.push(Hint::ToolTimeout);
        }
        CredentialKind::AzureCli => hints.push(Hint::AzNotLoggedIn),
        CredentialKind::Azd => hints.push(Hint::AzdNotLoggedIn),
        CredentialKind::ManagedIdentity if imds => hints.push(Hint::ImdsUnreachable),
        _ => {}
    }
    hints
}

/// Hints for a failed exchange: the registry's firewall, or a refused identity (the ARM
/// audience disabled when that was forced, else a missing role).
fn exchange_hints(facts: &Facts, forced: Option<&Audience>) -> Vec<Hint> {
    match facts.status {
        _ if facts.firewall => vec![Hint::Firewall],
        Some(401) if forced == Some(&Audience::Arm) => vec![Hint::ArmAudienceDisabled],
        Some(401 | 403) => vec![Hint::MissingRole],
        _ => Vec::new(),
    }
}

fn millis(d: Duration) -> String {
    format!("{} ms", d.as_millis())
}

/// `3h15m`, `5m3s`, `42s`.
pub fn human(seconds: i64) -> String {
    let s = seconds.max(0);
    let (h, m, sec) = (s / 3600, s % 3600 / 60, s % 60);
    match (h, m) {
        (0, 0) => format!("{sec}s"),
        (0, _) => format!("{m}m{sec}s"),
        _ => format!("{h}h{m}m"),
    }
}

#[cfg(test)]
#[allow(clippy::too_many_lines)]
mod tests {
    use super::*;
    use serde_json::json;

    fn identity(kind: CredentialKind, source: Option<ManagedSource>) -> Identity {
        Identity {
            managed_source: source,
            ..Identity::for_test(kind)
        }
    }

    fn entra(codes: &[u32]) -> Facts {
        Facts {
            aadsts: codes.to_vec(),
            ..Facts::default()
        }
    }

    fn status(code: u16) -> Facts {
        Facts {
            status: Some(code),
            ..Facts::default()
        }
    }

    type Case = (Facts, StepKind, Identity, Option<Audience>, &'static [Hint]);

    /// One case per hint, matched on the error's fields: rewording a message cannot
    /// change a hint.
    #[test]
    fn hints_by_failure() {
        let secret = identity(CredentialKind::ClientSecret, None);
        let firewall = Facts {
            status: Some(403),
            firewall: true,
            ..Facts::default()
        };
        let tls = Facts {
            tls: true,
            ..Facts::default()
        };
        let cases: [Case; 25] = [
            (
                entra(&[7_000_215]),
                StepKind::EntraToken,
                secret.clone(),
                None,
                &[Hint::SecretRejected],
            ),
            (
                entra(&[700_027]),
                StepKind::EntraToken,
                identity(CredentialKind::ClientCertificate, None),
                None,
                &[Hint::CertificateNotRegistered],
            ),
            (
                entra(&[700_016]),
                StepKind::EntraToken,
                secret.clone(),
                None,
                &[Hint::AppNotFound],
            ),
            (
                entra(&[90002]),
                StepKind::EntraToken,
                secret.clone(),
                None,
                &[Hint::TenantNotFound],
            ),
            (
                entra(&[700_211]),
                StepKind::EntraToken,
                identity(CredentialKind::WorkloadIdentity, None),
                None,
                &[Hint::FederationMismatch],
            ),
            // 70021 is its own code, not a prefix of 700211's.
            (
                entra(&[70021]),
                StepKind::EntraToken,
                secret.clone(),
                None,
                &[Hint::FederationMismatch],
            ),
            (
                status(401),
                StepKind::Exchange,
                secret.clone(),
                Some(Audience::Arm),
                &[Hint::ArmAudienceDisabled],
            ),
            (
                status(401),
                StepKind::Exchange,
                secret.clone(),
                None,
                &[Hint::MissingRole],
            ),
            (
                status(403),
                StepKind::Exchange,
                secret.clone(),
                None,
                &[Hint::MissingRole],
            ),
            (
                firewall,
                StepKind::Exchange,
                secret.clone(),
                None,
                &[Hint::Firewall],
            ),
            (
                Facts::default(),
                StepKind::EntraToken,
                identity(CredentialKind::AzureCli, None),
                None,
                &[Hint::AzNotLoggedIn],
            ),
            (
                Facts::default(),
                StepKind::EntraToken,
                identity(CredentialKind::ManagedIdentity, Some(ManagedSource::Imds)),
                None,
                &[Hint::ImdsUnreachable],
            ),
            (
                entra(&[700_024]),
                StepKind::EntraToken,
                secret.clone(),
                None,
                &[Hint::ClockSkew],
            ),
            // The same code for a federated token: the CI's or cluster's token expired.
            (
                entra(&[700_024]),
                StepKind::EntraToken,
                identity(CredentialKind::GitHubActions, None),
                None,
                &[Hint::FederatedTokenExpired],
            ),
            (
                entra(&[700_024]),
                StepKind::EntraToken,
                identity(CredentialKind::WorkloadIdentity, None),
                None,
                &[Hint::FederatedTokenExpired],
            ),
            // Advice by kind: an invalid signature, an unreachable Entra, a hanging tool.
            (
                entra(&[700_027]),
                StepKind::EntraToken,
                identity(CredentialKind::WorkloadIdentity, None),
                None,
                &[Hint::FederatedSignature],
            ),
            (
                entra(&[700_027]),
                StepKind::EntraToken,
                identity(CredentialKind::ClientCertificate, None),
                None,
                &[Hint::CertificateNotRegistered],
            ),
            (
                Facts {
                    network: true,
                    ..Facts::default()
                },
                StepKind::EntraToken,
                secret.clone(),
                None,
                &[Hint::EntraUnreachable],
            ),
            (
                Facts {
                    timed_out: true,
                    ..Facts::default()
                },
                StepKind::EntraToken,
                identity(CredentialKind::AzureCli, None),
                None,
                &[Hint::ToolTimeout],
            ),
            (
                Facts {
                    timed_out: true,
                    ..Facts::default()
                },
                StepKind::EntraToken,
                identity(CredentialKind::Azd, None),
                None,
                &[Hint::ToolTimeout],
            ),
            // A federation mismatch says what to create for the CI in use.
            (
                entra(&[700_213]),
                StepKind::EntraToken,
                identity(CredentialKind::GitHubActions, None),
                None,
                &[Hint::GitHubFederationMismatch],
            ),
            (
                entra(&[700_213]),
                StepKind::EntraToken,
                identity(CredentialKind::AzurePipelines, None),
                None,
                &[Hint::PipelinesFederationMismatch],
            ),
            (
                Facts::default(),
                StepKind::Challenge,
                secret.clone(),
                None,
                &[Hint::RegistryUnreachable],
            ),
            (tls, StepKind::Challenge, secret.clone(), None, &[Hint::Tls]),
            (
                Facts {
                    status: Some(429),
                    throttled: true,
                    ..Facts::default()
                },
                StepKind::EntraToken,
                identity(CredentialKind::ManagedIdentity, Some(ManagedSource::Imds)),
                None,
                &[Hint::Throttled],
            ),
        ];
        for (facts, kind, id, forced, want) in cases {
            assert_eq!(
                hints_for(&facts, Some(kind), &id, forced.as_ref()),
                want,
                "{facts:?} {kind:?}"
            );
        }
    }

    /// The facts come from the errors themselves, however they are worded.
    #[test]
    fn errors_carry_their_facts() {
        let e = Error::entra("credential `client-secret` could not get an Entra token: AADSTS7000215: Invalid client secret provided.".into());
        assert_eq!(e.facts(), entra(&[7_000_215]));
        assert!(Error::network("x".into(), true).facts().tls);
    }

    #[test]
    fn claims_and_skew() {
        let token = jwt::make_unsigned(
            &json!({"exp": 1_700_011_700, "iat": 1_700_000_000, "aud": "myacr.azurecr.io", "tenant": "t1", "permissions": {"actions": ["read", "write"]}}),
        );
        assert_eq!(
            claims_line(&token, 1_700_011_700, 1_700_000_000),
            "exp 2023-11-15 01:28:20 UTC (in 3h15m), aud `myacr.azurecr.io`, tenant `t1`, permissions read,write"
        );
        assert!(!claims_line(&token, 0, 0).contains(&token));
        assert_eq!(clock_skew(&token, 1_700_000_100), None);
        assert_eq!(clock_skew(&token, 1_700_003_600), Some(-3600));
        assert_eq!(clock_skew("garbage", 0), None);
    }

    #[test]
    fn assertion_claims_never_the_token() {
        let now = crate::now();
        let token = jwt::make_unsigned(&json!({
            "iss": "https://token.actions.githubusercontent.com",
            "sub": "repo:octo/app:ref:refs/heads/main",
            "aud": "api://AzureADTokenExchange",
            "exp": now + 300,
        }));
        let line = assertion_line(&token);
        assert!(
            line.starts_with("iss `https://token.actions.githubusercontent.com`, sub `repo:octo/app:ref:refs/heads/main`, aud `api://AzureADTokenExchange`, exp "),
            "{line}"
        );
        assert!(
            line.ends_with("(in 5m0s)") || line.ends_with("(in 4m59s)"),
            "{line}"
        );
        assert!(!line.contains(&token));
        assert_eq!(
            assertion_line("opaque-token"),
            "not a JWT: Entra will refuse it unless it is one"
        );
    }

    #[test]
    fn times() {
        assert_eq!(crate::utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(crate::utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(crate::utc(1_798_761_599), "2026-12-31 23:59:59 UTC");
        assert_eq!(human(42), "42s");
        assert_eq!(human(303), "5m3s");
        assert_eq!(human(11_700), "3h15m");
        assert_eq!(human(-5), "0s");
    }
}
