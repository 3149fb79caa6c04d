//! Entra ID access tokens. `choose` decides which credential kind serves a registry —
//! forced by the registry's config entry or `ACR_ENTRA_CREDENTIAL`, otherwise the first
//! the environment provides in the documented order — and says why each other kind was
//! skipped. `token` builds that `azure_identity` credential over our transport and
//! drives its future with a deadline; this is the only async code in the crate.

pub mod arc;
pub mod assertion;
pub mod oidc;
pub mod process;
pub mod transport;

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use azure_core::credentials::TokenCredential;
use azure_identity::{
    AzureCliCredential, AzureCliCredentialOptions, AzureDeveloperCliCredential,
    AzureDeveloperCliCredentialOptions, ClientAssertionCredential,
    ClientAssertionCredentialOptions, ClientSecretCredential, ClientSecretCredentialOptions,
    ManagedIdentityCredential, ManagedIdentityCredentialOptions, UserAssignedId,
};

use crate::config::{
    ACR_ENTRA_FEDERATED_TOKEN_ENV, ACTIONS_ID_TOKEN_REQUEST_TOKEN, ACTIONS_ID_TOKEN_REQUEST_URL,
    AZURE_AUTHORITY_HOST, AZURE_CLIENT_CERTIFICATE_PATH, AZURE_CLIENT_ID, AZURE_CLIENT_SECRET,
    AZURE_FEDERATED_TOKEN_FILE, AZURE_TENANT_ID, AZURESUBSCRIPTION_CLIENT_ID,
    AZURESUBSCRIPTION_SERVICE_CONNECTION_ID, AZURESUBSCRIPTION_TENANT_ID, RegistryConfig,
    SYSTEM_ACCESSTOKEN, SYSTEM_OIDCREQUESTURI, Settings,
};
use crate::error::{Error, Party, Result, one_line, redact_text};
use crate::http::{Http, HttpRequest};
use crate::identity::{
    CredentialKind, FederatedAssertion, Identity, ImdsAbsent, ManagedSource, PodIdentity,
    Unavailable,
};
use crate::registry::Cloud;
use crate::secret::{EntraToken, Secret};
use assertion::{CertificateAssertion, FederatedToken};
use transport::{AzureTransport, IMDS_BASE};

/// `identity` as chosen: its kind, why, where a managed identity's tokens come from, a
/// federated token taken from a variable, Azure Pipelines' own client and tenant
/// variables, and for `az`/`azd` which account is signed in.
fn chosen(
    mut identity: Identity,
    kind: CredentialKind,
    why: String,
    source: Option<ManagedSource>,
    settings: &Settings,
    registry: &RegistryConfig,
) -> Identity {
    identity.kind = kind;
    identity.why = why;
    identity.managed_source = source;
    if kind == CredentialKind::WorkloadIdentity && identity.assertion.is_none() {
        identity.assertion = token_env(settings, registry)
            .and_then(|(name, _)| settings.ci.federated_token(name))
            .map(FederatedAssertion::new);
    }
    if kind == CredentialKind::AzurePipelines {
        let (client, tenant) = pipelines_app(&identity, settings);
        identity.client_id = client;
        identity.tenant = tenant;
    }
    identity.account = match kind {
        CredentialKind::AzureCli => account_digest(settings.azure.az_profile.as_deref()),
        CredentialKind::Azd => account_digest(settings.azure.azd_config.as_deref()),
        _ => None,
    };
    identity
}

/// A short digest of the file where `az` (`azureProfile.json`) or `azd` (`config.json`)
/// records who is signed in. Any change there (another user, another tenant, a logout)
/// changes the cache key; the file's content never leaves this function. A missing or
/// unreadable file is "unknown", one shared entry as before.
fn account_digest(path: Option<&std::path::Path>) -> Option<String> {
    let bytes = crate::files::read_user_file(path?, 4 * crate::files::MAX_FILE).ok()?;
    Some(crate::digest::hex(&crate::digest::sha256(&bytes)[..8]))
}

/// Choose the credential for a registry. `probe_imds` is asked only when the managed
/// identity must come from IMDS; `on_path` says whether a program is on `PATH`.
pub fn choose(
    settings: &Settings,
    registry: Option<&RegistryConfig>,
    cloud: Cloud,
    probe_imds: &dyn Fn() -> std::result::Result<(), ImdsAbsent>,
    on_path: &dyn Fn(&str) -> bool,
) -> Result<Identity> {
    let azure = &settings.azure;
    let reg = registry.cloned().unwrap_or_default();
    let authority = authority(settings, cloud)?;
    let mut identity = Identity {
        tenant: reg.tenant_id.clone().or_else(|| azure.tenant_id.clone()),
        client_id: reg.client_id.clone().or_else(|| azure.client_id.clone()),
        object_id: reg.object_id.clone(),
        resource_id: reg.resource_id.clone(),
        tenant_from_config: reg.tenant_id.is_some(),
        ..Identity::new(CredentialKind::ClientSecret, cloud, authority)
    };
    // Naming a variable that holds a federated token chooses workload identity as
    // naming the kind would: a variable that turns out empty is then an error naming
    // it, never a silent fall-through to another identity.
    let named_token = |from: &str| {
        (
            CredentialKind::WorkloadIdentity,
            format!("{from} names a federated token variable"),
        )
    };
    let forced = match (reg.credential, settings.credential) {
        (Some(kind), _) => Some((kind, "set by the registry's config entry".to_string())),
        (None, _) if reg.federated_token_env.is_some() => {
            Some(named_token("the registry's config entry"))
        }
        (None, Some(kind)) => Some((kind, "set by ACR_ENTRA_CREDENTIAL".to_string())),
        (None, None) if settings.ci.token_env.is_some() => {
            Some(named_token(ACR_ENTRA_FEDERATED_TOKEN_ENV))
        }
        (None, None) => None,
    };
    if let Some((kind, why)) = forced {
        match availability(kind, &identity, settings, &reg, probe_imds, on_path) {
            Ok((_, source)) => return Ok(chosen(identity, kind, why, source, settings, &reg)),
            Err(reason) => return Err(Error::Unavailable { kind, why, reason }),
        }
    }
    let mut skipped: Vec<(CredentialKind, Unavailable)> = Vec::new();
    for kind in CredentialKind::ALL {
        match availability(kind, &identity, settings, &reg, probe_imds, on_path) {
            Ok((why, source)) => {
                identity.skipped = skipped
                    .iter()
                    .map(|(kind, why): &(CredentialKind, Unavailable)| {
                        format!("{}: {why}", kind.name())
                    })
                    .collect();
                return Ok(chosen(identity, kind, why, source, settings, &reg));
            }
            Err(reason) => skipped.push((kind, reason)),
        }
    }
    let lead = half_set(settings, &skipped);
    Err(Error::NoCredential { skipped, lead })
}

/// What the environment half-sets, when nothing serves: a kind whose variables are
/// partly there (a secret without its tenant, a CI job without its permission), else a
/// service principal's client and tenant ids without a secret, certificate or federated
/// token. `None` when nothing points at one kind.
fn half_set(settings: &Settings, skipped: &[(CredentialKind, Unavailable)]) -> Option<String> {
    let partial = skipped.iter().find(|(_, why)| {
        matches!(
            why,
            Unavailable::MissingApp { .. }
                | Unavailable::NoIdTokenPermission
                | Unavailable::PipelinesIncomplete(_)
                | Unavailable::EmptyVariable(_)
        )
    });
    if let Some((kind, why)) = partial {
        return Some(format!("{}: {why}", kind.name()));
    }
    let azure = &settings.azure;
    (azure.client_id.is_some() && azure.tenant_id.is_some()).then(|| {
        format!(
            "{AZURE_CLIENT_ID} and {AZURE_TENANT_ID} are set but no {AZURE_CLIENT_SECRET}, \
             {AZURE_CLIENT_CERTIFICATE_PATH} or {AZURE_FEDERATED_TOKEN_FILE} for the service \
             principal: set one"
        )
    })
}

/// The workload identity of a pod, as kubelet passed it: its service-account token as
/// the client assertion for the client id its annotations name.
pub fn pod_identity(
    settings: &Settings,
    registry: Option<&RegistryConfig>,
    cloud: Cloud,
    pod: &PodIdentity,
) -> Result<Identity> {
    let authority = authority(settings, cloud)?;
    Ok(Identity {
        why: "kubelet passed a service-account token for this pod".into(),
        tenant: pod
            .tenant_id
            .clone()
            .or_else(|| registry.and_then(|r| r.tenant_id.clone()))
            .or_else(|| settings.azure.tenant_id.clone()),
        client_id: Some(pod.client_id.clone()),
        assertion: Some(pod.assertion.clone()),
        ..Identity::new(CredentialKind::WorkloadIdentity, cloud, authority)
    })
}

/// The Entra authority: `AZURE_AUTHORITY_HOST` (https only), else the cloud's.
pub fn authority(settings: &Settings, cloud: Cloud) -> Result<String> {
    match &settings.azure.authority_host {
        Some(host) if !host.to_ascii_lowercase().starts_with("https://") => Err(Error::Config(
            format!("{AZURE_AUTHORITY_HOST}=`{host}` must be an https:// URL"),
        )),
        Some(host) => Ok(host.trim_end_matches('/').to_string()),
        None => Ok(cloud.authority_host().to_string()),
    }
}

type Available = (String, Option<ManagedSource>);

/// Whether the environment provides `kind`, and why; or why not.
fn availability(
    kind: CredentialKind,
    identity: &Identity,
    settings: &Settings,
    registry: &RegistryConfig,
    probe_imds: &dyn Fn() -> std::result::Result<(), ImdsAbsent>,
    on_path: &dyn Fn(&str) -> bool,
) -> std::result::Result<Available, Unavailable> {
    let azure = &settings.azure;
    let ci = &settings.ci;
    let need_app =
        |what: &'static str| need_app(identity.client_id.as_ref(), identity.tenant.as_ref(), what);
    match kind {
        CredentialKind::ClientSecret => {
            if azure.client_secret.is_none() {
                return Err(Unavailable::NotSet(AZURE_CLIENT_SECRET));
            }
            need_app(AZURE_CLIENT_SECRET)?;
            Ok((format!("{AZURE_CLIENT_SECRET} is set"), None))
        }
        CredentialKind::ClientCertificate => {
            if azure.certificate_path.is_none() {
                return Err(Unavailable::NotSet(AZURE_CLIENT_CERTIFICATE_PATH));
            }
            need_app(AZURE_CLIENT_CERTIFICATE_PATH)?;
            Ok((format!("{AZURE_CLIENT_CERTIFICATE_PATH} is set"), None))
        }
        CredentialKind::WorkloadIdentity => {
            if let Some((name, from)) = token_env(settings, registry) {
                if ci.federated_token(name).is_none() {
                    return Err(Unavailable::EmptyVariable(name.to_string()));
                }
                need_app(ACR_ENTRA_FEDERATED_TOKEN_ENV)?;
                return Ok((format!("{from} names `{name}`, which is set"), None));
            }
            if azure.federated_token_file.is_none() {
                return Err(Unavailable::NotSet(AZURE_FEDERATED_TOKEN_FILE));
            }
            need_app(AZURE_FEDERATED_TOKEN_FILE)?;
            Ok((format!("{AZURE_FEDERATED_TOKEN_FILE} is set"), None))
        }
        CredentialKind::GitHubActions | CredentialKind::AzurePipelines => {
            ci_availability(kind, identity, settings)
        }
        CredentialKind::ManagedIdentity => managed_identity(settings, probe_imds),
        CredentialKind::AzureCli | CredentialKind::Azd => {
            let program = if kind == CredentialKind::AzureCli {
                "az"
            } else {
                "azd"
            };
            if on_path(program) {
                Ok((format!("`{program}` is on PATH"), None))
            } else {
                Err(Unavailable::NotOnPath(program))
            }
        }
    }
}

/// Whether a CI's OIDC service can serve (GitHub Actions or Azure Pipelines), and why;
/// or what the job's configuration lacks.
fn ci_availability(
    kind: CredentialKind,
    identity: &Identity,
    settings: &Settings,
) -> std::result::Result<Available, Unavailable> {
    let ci = &settings.ci;
    match kind {
        CredentialKind::GitHubActions => {
            match (&ci.github_url, &ci.github_token) {
                (None, None) if ci.in_github_actions => {
                    return Err(Unavailable::NoIdTokenPermission);
                }
                (None, _) => return Err(Unavailable::NotSet(ACTIONS_ID_TOKEN_REQUEST_URL)),
                (_, None) => return Err(Unavailable::NotSet(ACTIONS_ID_TOKEN_REQUEST_TOKEN)),
                (Some(url), Some(_)) if !is_https(url) => {
                    return Err(Unavailable::NotHttps(ACTIONS_ID_TOKEN_REQUEST_URL));
                }
                (Some(_), Some(_)) => {}
            }
            need_app(
                identity.client_id.as_ref(),
                identity.tenant.as_ref(),
                ACTIONS_ID_TOKEN_REQUEST_URL,
            )?;
            Ok((
                "ACTIONS_ID_TOKEN_REQUEST_URL and _TOKEN are set (GitHub Actions, id-token: write)"
                    .into(),
                None,
            ))
        }
        _ => {
            let Some(url) = &ci.pipelines_url else {
                return Err(Unavailable::NotSet(SYSTEM_OIDCREQUESTURI));
            };
            if !is_https(url) {
                return Err(Unavailable::NotHttps(SYSTEM_OIDCREQUESTURI));
            }
            let (client, tenant) = pipelines_app(identity, settings);
            let mut missing = Vec::new();
            if ci.pipelines_token.is_none() {
                missing.push(SYSTEM_ACCESSTOKEN);
            }
            if ci.service_connection_id.is_none() {
                missing.push(AZURESUBSCRIPTION_SERVICE_CONNECTION_ID);
            }
            if client.is_none() {
                missing.push(AZURESUBSCRIPTION_CLIENT_ID);
            }
            if tenant.is_none() {
                missing.push(AZURESUBSCRIPTION_TENANT_ID);
            }
            if !missing.is_empty() {
                return Err(Unavailable::PipelinesIncomplete(missing));
            }
            Ok((
                "SYSTEM_OIDCREQUESTURI, SYSTEM_ACCESSTOKEN and the service connection are set (Azure Pipelines)"
                    .into(),
                None,
            ))
        }
    }
}

/// The variable holding a federated token, and who named it: the registry's config
/// entry, else `ACR_ENTRA_FEDERATED_TOKEN_ENV`.
fn token_env<'a>(
    settings: &'a Settings,
    registry: &'a RegistryConfig,
) -> Option<(&'a str, &'static str)> {
    match (&registry.federated_token_env, &settings.ci.token_env) {
        (Some(name), _) => Some((name, "the registry's config entry")),
        (None, Some(name)) => Some((name, ACR_ENTRA_FEDERATED_TOKEN_ENV)),
        (None, None) => None,
    }
}

/// Azure Pipelines' client and tenant: the registry's entry or `AZURE_*` as for every
/// kind, else the `AZURESUBSCRIPTION_*` variables the Azure SDKs read there.
fn pipelines_app(identity: &Identity, settings: &Settings) -> (Option<String>, Option<String>) {
    let ci = &settings.ci;
    (
        identity
            .client_id
            .clone()
            .or_else(|| ci.pipelines_client_id.clone()),
        identity
            .tenant
            .clone()
            .or_else(|| ci.pipelines_tenant_id.clone()),
    )
}

fn is_https(url: &str) -> bool {
    url.trim().to_ascii_lowercase().starts_with("https://")
}

/// An app credential also needs the client id and the tenant.
fn need_app(
    client_id: Option<&String>,
    tenant: Option<&String>,
    what: &'static str,
) -> std::result::Result<(), Unavailable> {
    let mut missing = Vec::new();
    if client_id.is_none() {
        missing.push(AZURE_CLIENT_ID);
    }
    if tenant.is_none() {
        missing.push(AZURE_TENANT_ID);
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Unavailable::MissingApp { what, missing })
    }
}

/// Where a managed identity's tokens would come from: App Service or Arc variables, else
/// the instance metadata service if it answers the probe.
fn managed_identity(
    settings: &Settings,
    probe_imds: &dyn Fn() -> std::result::Result<(), ImdsAbsent>,
) -> std::result::Result<Available, Unavailable> {
    let azure = &settings.azure;
    if azure.identity_endpoint.is_some() && azure.identity_header.is_some() {
        return Ok((
            "IDENTITY_ENDPOINT and IDENTITY_HEADER are set (App Service)".into(),
            Some(ManagedSource::AppService),
        ));
    }
    if azure.identity_endpoint.is_some() && azure.imds_endpoint.is_some() {
        return Ok((
            "IDENTITY_ENDPOINT and IMDS_ENDPOINT are set (Azure Arc)".into(),
            Some(ManagedSource::Arc),
        ));
    }
    probe_imds().map_err(Unavailable::Imds)?;
    Ok((
        "the instance metadata service answered".into(),
        Some(ManagedSource::Imds),
    ))
}

/// Where the instance metadata service is asked: `AZURE_POD_IDENTITY_AUTHORITY_HOST`,
/// else its fixed address.
pub fn imds_base(settings: &Settings) -> String {
    settings
        .azure
        .pod_identity_host
        .clone()
        .unwrap_or_else(|| IMDS_BASE.to_string())
}

/// Ask IMDS whether it is there: one GET, no proxy, no retry, at most a second.
pub fn probe_imds(settings: &Settings) -> std::result::Result<(), ImdsAbsent> {
    let base = imds_base(settings);
    let http = Http::with_timeout(settings, settings.timeout.min(Duration::from_secs(1)));
    let url = format!(
        "{}/metadata/identity/oauth2/token?api-version=2018-02-01",
        base.trim_end_matches('/')
    );
    match http.send(&HttpRequest::get(url).header("metadata", "true")) {
        Ok(r) if looks_like_imds(&r.body) => Ok(()),
        Ok(r) => Err(ImdsAbsent::NotImds(r.status)),
        Err(e) => Err(ImdsAbsent::NoAnswer(e.message)),
    }
}

/// IMDS answers JSON: a token, or (without `resource`, as in the probe) an error object.
fn looks_like_imds(body: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(body)
        .is_ok_and(|v| v.get("error").is_some() || v.get("access_token").is_some())
}

/// Whether `program` is an executable file in one of `PATH`'s directories.
pub fn on_path(settings: &Settings, program: &str) -> bool {
    find_on_path(settings, program).is_some()
}

/// The first program named `program` in `PATH`'s directories, as a client that runs it by
/// name would find it.
pub fn find_on_path(settings: &Settings, program: &str) -> Option<std::path::PathBuf> {
    crate::platform::find_on_path(
        settings.path.as_ref()?,
        settings.pathext.as_deref(),
        program,
    )
}

/// Get an Entra access token for `scope` from the chosen identity.
pub fn token(
    identity: &Identity,
    settings: &Settings,
    http: &Http,
    scope: &str,
) -> Result<EntraToken> {
    crate::debug!(
        "requesting an Entra token: credential {} ({}), scope `{scope}`, authority `{}`",
        identity.kind.name(),
        identity.why,
        identity.authority
    );
    let fetched;
    let identity = if identity.kind.fetches_assertion() && identity.assertion.is_none() {
        fetched = with_assertion(identity, settings, http)?;
        &fetched
    } else {
        identity
    };
    let known = known_secrets(identity, settings);
    let scrub = |message: String| {
        known
            .iter()
            .fold(message, |m, s| m.replace(s.as_str(), "REDACTED"))
    };
    let fail = |message: String| {
        Error::entra(format!(
            "credential `{}` ({}) could not get an Entra token for `{scope}`: {}{}",
            identity.kind.name(),
            identity.why,
            one_line(&redact_text(&scrub(message))),
            hint(identity)
        ))
    };
    if identity.managed_source == Some(ManagedSource::Arc) {
        return arc::token(settings, http, identity, scope).map_err(|e| match e {
            arc::ArcError::Throttled(e) => e.into_error(Party::ManagedIdentity),
            e => fail(e.to_string()),
        });
    }
    let transport = AzureTransport::new(http.clone(), settings.azure.pod_identity_host.clone());
    let credential = build(identity, settings, &transport).map_err(|e| match e {
        Built::Config(err) => err,
        Built::Azure(e) => fail(error_chain(&e)),
    })?;
    let deadline = deadline(settings);
    let result =
        block_on_deadline(credential.get_token(&[scope], None), deadline).ok_or_else(|| {
            fail(format!(
                "{} {}s",
                crate::error::NO_TOKEN_TEXT,
                deadline.as_secs()
            ))
        })?;
    let access = result.map_err(|e| match (transport.throttled(), transport.unreachable()) {
        (Some(e), _) => e.into_error(party(identity)),
        (None, Some(e)) => unreachable(identity, &e),
        (None, None) => fail(error_chain(&e)),
    })?;
    let secret = access.token.secret();
    if secret.is_empty() {
        return Err(fail("the answer held an empty token".into()));
    }
    Ok(EntraToken(Secret::new(secret)))
}

/// The secrets an Entra request sends, as sent and form-encoded: a server (or a proxy in
/// front of a custom authority) that echoes them in an error must not get them printed
/// (client secrets are not token-shaped, so `redact_text` alone misses them).
fn known_secrets(identity: &Identity, settings: &Settings) -> Vec<String> {
    [
        settings.azure.client_secret.as_ref(),
        settings.azure.certificate_password.as_ref(),
        settings.azure.identity_header.as_ref(),
        settings.ci.github_token.as_ref(),
        settings.ci.pipelines_token.as_ref(),
        identity.assertion.as_ref().map(FederatedAssertion::token),
    ]
    .into_iter()
    .flatten()
    .map(Secret::expose)
    .filter(|s| s.len() >= 4)
    .flat_map(|s| {
        let encoded = crate::exchange::form(&[("", s)]);
        [s.to_string(), encoded[1..].to_string()]
    })
    .collect()
}

/// `identity` with its assertion in hand: for the kinds that fetch one, this job's OIDC
/// token, fetched now (its subject then keys the cache); others as they are.
pub fn with_assertion(identity: &Identity, settings: &Settings, http: &Http) -> Result<Identity> {
    let mut identity = identity.clone();
    if identity.kind.fetches_assertion() {
        identity.assertion = Some(oidc::fetch(&identity, settings, http)?);
    }
    Ok(identity)
}

/// A token request that got no answer: a network failure (proxy, firewall, DNS), said
/// as one with the host that could not be reached, never blamed on the credential. The
/// transport's message names the URL without its query.
fn unreachable(identity: &Identity, e: &crate::http::HttpError) -> Error {
    let party = party(identity);
    let hint = match identity.managed_source {
        Some(_) => {
            "the managed identity endpoint must be reachable from this machine without a proxy"
                .to_string()
        }
        None => {
            let host = identity
                .authority
                .trim_start_matches("https://")
                .trim_end_matches('/');
            let port = if host.contains(':') { "" } else { ":443" };
            format!(
                "check HTTPS_PROXY/NO_PROXY and that the firewall lets this machine reach `{host}{port}`"
            )
        }
    };
    Error::network(
        format!(
            "{party} could not be reached: {}: a network failure, not a credential problem; {hint}",
            e.message
        ),
        e.failure == crate::http::Failure::Tls,
    )
}

/// Who answers an identity's token requests.
fn party(identity: &Identity) -> Party {
    match identity.kind {
        CredentialKind::ManagedIdentity => Party::ManagedIdentity,
        kind => Party::Entra(kind),
    }
}

/// The most one Entra token request may take: each HTTP call is bounded by the timeout,
/// and this also covers retries and a credential (IMDS) that brings its own long retry
/// policy.
pub fn deadline(settings: &Settings) -> Duration {
    settings.timeout * 2 + Duration::from_secs(1)
}

fn hint(identity: &Identity) -> &'static str {
    match identity.kind {
        CredentialKind::ClientSecret => {
            "; check AZURE_CLIENT_ID, AZURE_CLIENT_SECRET and AZURE_TENANT_ID (an expired secret is a common cause)"
        }
        CredentialKind::ClientCertificate => {
            "; check AZURE_CLIENT_ID, AZURE_TENANT_ID and that the certificate is registered on the app"
        }
        CredentialKind::WorkloadIdentity => {
            "; check the federated credential's issuer and subject, and AZURE_CLIENT_ID/AZURE_TENANT_ID"
        }
        CredentialKind::GitHubActions => {
            "; the app needs a federated credential for issuer https://token.actions.githubusercontent.com and this job's subject (repo:ORG/REPO:ref:…, :environment:…, :pull_request), and AZURE_CLIENT_ID/AZURE_TENANT_ID must name it"
        }
        CredentialKind::AzurePipelines => {
            "; check that the service connection uses workload identity federation and that its app (AZURESUBSCRIPTION_CLIENT_ID or AZURE_CLIENT_ID) has the federated credential sc://ORG/PROJECT/CONNECTION"
        }
        CredentialKind::ManagedIdentity => {
            "; check that a managed identity is assigned to this resource (and its client id, if user-assigned)"
        }
        CredentialKind::AzureCli => "; run `az login` (or `az login --tenant TENANT`)",
        CredentialKind::Azd => "; run `azd auth login`",
    }
}

enum Built {
    Config(Error),
    Azure(azure_core::Error),
}

impl From<azure_core::Error> for Built {
    fn from(e: azure_core::Error) -> Built {
        Built::Azure(e)
    }
}

fn build(
    identity: &Identity,
    settings: &Settings,
    transport: &AzureTransport,
) -> std::result::Result<Arc<dyn TokenCredential>, Built> {
    let client_options = transport.client_options(&identity.authority);
    let tenant = identity.tenant.clone().unwrap_or_default();
    let client_id = identity.client_id.clone().unwrap_or_default();
    let executor = Arc::new(process::TimedExecutor {
        timeout: settings.timeout,
    });
    // `az`/`azd` get `--tenant` only when the registry's config names one: the signed-in
    // account may not belong to `AZURE_TENANT_ID`'s tenant.
    let tool_tenant = identity
        .tenant
        .clone()
        .filter(|_| identity.tenant_from_config);
    Ok(match identity.kind {
        CredentialKind::ClientSecret => {
            let secret = settings.azure.client_secret.clone().unwrap_or_default();
            ClientSecretCredential::new(
                &tenant,
                client_id,
                azure_core::credentials::Secret::new(secret.expose().to_string()),
                Some(ClientSecretCredentialOptions { client_options }),
            )?
        }
        CredentialKind::ClientCertificate
        | CredentialKind::WorkloadIdentity
        | CredentialKind::GitHubActions
        | CredentialKind::AzurePipelines => {
            assertion_credential(identity, settings, tenant, client_id, client_options)?
        }
        CredentialKind::ManagedIdentity => {
            let user_assigned_id = if let Some(id) = &identity.resource_id {
                Some(UserAssignedId::ResourceId(id.clone()))
            } else if let Some(id) = &identity.object_id {
                Some(UserAssignedId::ObjectId(id.clone()))
            } else {
                identity.client_id.clone().map(UserAssignedId::ClientId)
            };
            ManagedIdentityCredential::new(Some(ManagedIdentityCredentialOptions {
                user_assigned_id,
                client_options,
            }))?
        }
        CredentialKind::AzureCli => AzureCliCredential::new(Some(AzureCliCredentialOptions {
            tenant_id: tool_tenant,
            executor: Some(executor),
            ..AzureCliCredentialOptions::default()
        }))?,
        CredentialKind::Azd => {
            AzureDeveloperCliCredential::new(Some(AzureDeveloperCliCredentialOptions {
                tenant_id: tool_tenant,
                executor: Some(executor),
            }))?
        }
    })
}

/// A client-assertion credential: an RS256 JWT signed with the certificate's key, or a
/// federated token (kubelet's for a pod, a CI job's from its variable or its OIDC
/// service, else the token file, re-read on every mint).
fn assertion_credential(
    identity: &Identity,
    settings: &Settings,
    tenant: String,
    client_id: String,
    client_options: azure_core::http::ClientOptions,
) -> std::result::Result<Arc<dyn TokenCredential>, Built> {
    let azure = &settings.azure;
    let options = Some(ClientAssertionCredentialOptions { client_options });
    if identity.kind == CredentialKind::ClientCertificate {
        let path = azure.certificate_path.clone().unwrap_or_default();
        let endpoint = format!("{}/{tenant}/oauth2/v2.0/token", identity.authority);
        let assertion = CertificateAssertion::load(
            &path,
            azure.certificate_password.as_ref(),
            &client_id,
            &endpoint,
            azure.send_certificate_chain,
        )
        .map_err(Built::Config)?;
        return Ok(ClientAssertionCredential::new(
            tenant, client_id, assertion, options,
        )?);
    }
    let source = match &identity.assertion {
        Some(given) => FederatedToken::Inline(given.token().clone()),
        None if identity.kind.fetches_assertion() => {
            return Err(Built::Config(Error::Config(format!(
                "credential `{}`: the job's OIDC token was not fetched",
                identity.kind.name()
            ))));
        }
        None => FederatedToken::File(azure.federated_token_file.clone().unwrap_or_default()),
    };
    Ok(ClientAssertionCredential::new(
        tenant, client_id, source, options,
    )?)
}

/// The error and its sources on one line.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}

/// Drive a future to completion on this thread, giving up after `deadline`.
pub fn block_on_deadline<T>(future: impl Future<Output = T>, deadline: Duration) -> Option<T> {
    let (tx, rx) = futures::channel::oneshot::channel::<()>();
    std::thread::spawn(move || {
        std::thread::sleep(deadline);
        let _ = tx.send(());
    });
    futures::executor::block_on(async {
        match futures::future::select(pin!(future), rx).await {
            futures::future::Either::Left((value, _)) => Some(value),
            futures::future::Either::Right(_) => None,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_imds_shaped_answers_count() {
        assert!(looks_like_imds(
            br#"{"error":"invalid_request","error_description":"Required query variable 'resource' is missing"}"#
        ));
        assert!(looks_like_imds(br#"{"access_token":"x","expires_on":"1"}"#));
        assert!(!looks_like_imds(b"resolve_deny: denied destination"));
        assert!(!looks_like_imds(b"<html>blocked</html>"));
        assert!(!looks_like_imds(b"{}"));
        assert!(!looks_like_imds(b""));
    }
}
