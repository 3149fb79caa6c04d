//! Who a token belongs to, as plain data: the credential kinds, the identity chosen for a
//! registry (kind, cloud, authority, tenant, client/object/resource id, why it was chosen
//! and why the others were skipped), and a federated assertion (a pod's service-account
//! token, a CI job's OIDC token) with the subject it names. No I/O and no Entra calls: `entra` decides which identity applies
//! and gets its tokens; `cache` keys tokens by what `Identity::id` says.

use crate::jwt;
use crate::registry::Cloud;
use crate::secret::Secret;

/// How an Entra token is obtained.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CredentialKind {
    ClientSecret,
    ClientCertificate,
    WorkloadIdentity,
    GitHubActions,
    AzurePipelines,
    ManagedIdentity,
    AzureCli,
    Azd,
}

impl CredentialKind {
    /// The auto-pick order (README "Where the Entra token comes from"): what the user
    /// handed over for this purpose (a secret, a certificate, a federated token file or
    /// variable) first; then the CI job's own OIDC service, which the CI offers only to a
    /// job that asked for it; then the machine's managed identity, which every job on a
    /// runner shares; then the signed-in developer tools.
    pub const ALL: [CredentialKind; 8] = [
        CredentialKind::ClientSecret,
        CredentialKind::ClientCertificate,
        CredentialKind::WorkloadIdentity,
        CredentialKind::GitHubActions,
        CredentialKind::AzurePipelines,
        CredentialKind::ManagedIdentity,
        CredentialKind::AzureCli,
        CredentialKind::Azd,
    ];

    /// Every kind's name, for messages: `client-secret, …, azd`.
    pub fn names() -> String {
        CredentialKind::ALL.map(CredentialKind::name).join(", ")
    }

    /// The kinds whose assertion comes from a CI's OIDC token service, asked over the
    /// network: whom it names is known only from the token (or from a memo of it).
    pub fn fetches_assertion(self) -> bool {
        matches!(
            self,
            CredentialKind::GitHubActions | CredentialKind::AzurePipelines
        )
    }

    pub fn parse(text: &str) -> Option<CredentialKind> {
        CredentialKind::ALL
            .into_iter()
            .find(|k| k.name() == text.trim().to_ascii_lowercase())
    }

    pub fn name(self) -> &'static str {
        match self {
            CredentialKind::ClientSecret => "client-secret",
            CredentialKind::ClientCertificate => "client-certificate",
            CredentialKind::WorkloadIdentity => "workload-identity",
            CredentialKind::GitHubActions => "github-actions",
            CredentialKind::AzurePipelines => "azure-pipelines",
            CredentialKind::ManagedIdentity => "managed-identity",
            CredentialKind::AzureCli => "azure-cli",
            CredentialKind::Azd => "azd",
        }
    }
}

/// Why a credential kind cannot serve here: shown in errors, matched by `doctor`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unavailable {
    /// A variable it needs is not set.
    NotSet(&'static str),
    /// `what` is set, but not the client id and/or tenant it needs too.
    MissingApp {
        what: &'static str,
        missing: Vec<&'static str>,
    },
    /// The tool (`az`, `azd`) is not on `PATH`.
    NotOnPath(&'static str),
    /// The instance metadata service is not there.
    Imds(ImdsAbsent),
    /// A GitHub Actions job without the OIDC request variables: its workflow does not
    /// grant `id-token: write`.
    NoIdTokenPermission,
    /// A CI's OIDC request URL that is not https: its bearer token must not cross the
    /// network in clear text.
    NotHttps(&'static str),
    /// The variable named to hold a federated token is unset or empty.
    EmptyVariable(String),
    /// An Azure Pipelines job (`SYSTEM_OIDCREQUESTURI` is set) without these.
    PipelinesIncomplete(Vec<&'static str>),
}

/// Why the instance metadata service counts as absent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ImdsAbsent {
    /// Assumed, to work out the identity that applies without it (no probe was made).
    Assumed,
    /// Nothing answered within the probe's second.
    NoAnswer(String),
    /// Something answered, but not as IMDS does (a proxy or a firewall page).
    NotImds(u16),
    /// A probe in this boot failed `age` seconds ago, saying `why`; not asked again yet.
    Remembered { age: i64, why: String },
}

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unavailable::NotSet(name) => write!(f, "{name} not set"),
            Unavailable::MissingApp { what, missing } => write!(
                f,
                "{what} is set but {} is not (set it, or add it to the registry's config entry)",
                missing.join(" and ")
            ),
            Unavailable::NotOnPath(program) => write!(f, "`{program}` not on PATH"),
            Unavailable::Imds(absent) => write!(f, "instance metadata service: {absent}"),
            Unavailable::NoIdTokenPermission => write!(
                f,
                "GITHUB_ACTIONS is true but ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN are not set: \
                 the workflow lacks `permissions: id-token: write` (add it to the workflow or the job)"
            ),
            Unavailable::NotHttps(name) => write!(f, "{name} is not an https:// URL"),
            Unavailable::PipelinesIncomplete(missing) => write!(
                f,
                "SYSTEM_OIDCREQUESTURI is set (Azure Pipelines) but {} not: map them into the step's `env:` \
                 (`SYSTEM_ACCESSTOKEN: $(System.AccessToken)`, the service connection's id and its app's client and tenant ids)",
                missing.join(", ")
            ),
            Unavailable::EmptyVariable(name) => write!(
                f,
                "`{name}` (named to hold the federated token) is not set or empty"
            ),
        }
    }
}

impl std::fmt::Display for ImdsAbsent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ImdsAbsent::Assumed => write!(f, "assumed absent"),
            ImdsAbsent::NoAnswer(why) => write!(f, "no answer within 1s ({why})"),
            ImdsAbsent::NotImds(status) => write!(
                f,
                "something answered {status} at the metadata address, but not like IMDS (a proxy or firewall?)"
            ),
            ImdsAbsent::Remembered { age, why } => write!(
                f,
                "{why}, {age}s ago (believed for {} minutes; ACR_ENTRA_NO_CACHE=1 asks every time)",
                crate::cache::IMDS_ABSENT_TTL / 60
            ),
        }
    }
}

/// Where a managed identity's tokens come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ManagedSource {
    /// App Service, Functions, Container Apps: `IDENTITY_ENDPOINT` + `IDENTITY_HEADER`.
    AppService,
    /// Azure Arc-enabled servers: `IDENTITY_ENDPOINT` + `IMDS_ENDPOINT`.
    Arc,
    /// The VM instance metadata service.
    Imds,
}

/// The identity chosen for one registry, with everything needed to mint and to key the
/// cache. Holds no secret: those are read from `Settings` when the token is requested.
#[derive(Clone, Debug)]
pub struct Identity {
    pub kind: CredentialKind,
    /// Why this kind was chosen, for logs and `doctor`.
    pub why: String,
    /// Why each earlier kind was skipped (auto-pick only).
    pub skipped: Vec<String>,
    pub cloud: Cloud,
    pub authority: String,
    /// Tenant from the config or `AZURE_TENANT_ID`; `None` lets the token's `tid` decide.
    pub tenant: Option<String>,
    pub client_id: Option<String>,
    pub object_id: Option<String>,
    pub resource_id: Option<String>,
    pub managed_source: Option<ManagedSource>,
    /// A federated token in hand, used instead of a token file: kubelet's for a pod, a
    /// CI's from a variable or fetched from its OIDC service. It carries whom it names,
    /// which keys the cache.
    pub assertion: Option<FederatedAssertion>,
    /// For the kinds that fetch their assertion, whom it named the last time this job
    /// fetched one (remembered in the cache), before this process fetches its own.
    pub remembered_subject: Option<String>,
    /// The tenant came from the registry's config entry (so `az`/`azd` get `--tenant`).
    pub tenant_from_config: bool,
    /// For `az`/`azd`: a digest of the tool's account file, so signing in as someone
    /// else (or logging out) keys a different cache entry. Never the file's content.
    pub account: Option<String>,
}

/// A federated token (a pod's service-account token, a CI job's OIDC token), with who
/// it says it is. The fields are private and `new` fills both: an identity cannot reach
/// the cache key without the subject its token names, so two pods or two CI jobs that
/// name the same client id never share a cached token.
#[derive(Clone, Debug)]
pub struct FederatedAssertion {
    token: Secret,
    subject: String,
}

impl FederatedAssertion {
    /// The token's issuer, subject and audience (`system:serviceaccount:NS:NAME` for a
    /// Kubernetes token, `repo:ORG/REPO:ref:…` for GitHub), or a digest of the whole token
    /// when those cannot be read. The claims are not verified here (Entra does that); they
    /// only keep identities apart.
    pub fn new(token: Secret) -> FederatedAssertion {
        let claim = |name| jwt::string_claim(token.expose(), name);
        let subject = match (claim("iss"), claim("sub")) {
            (Some(iss), Some(sub)) => format!(
                "iss={iss} sub={sub} aud={}",
                claim("aud").unwrap_or_default()
            ),
            _ => {
                let digest = crate::digest::sha256(token.expose().as_bytes());
                format!("token-digest={}", crate::digest::hex(&digest[..16]))
            }
        };
        FederatedAssertion { token, subject }
    }

    pub fn token(&self) -> &Secret {
        &self.token
    }

    pub fn subject(&self) -> &str {
        &self.subject
    }
}

impl Identity {
    /// Who this is, for the cache key: never a secret. `None` while a kind that fetches
    /// its assertion does not know whom the assertion names yet: no cached token may
    /// answer for it then.
    pub fn id(&self) -> Option<String> {
        let client = self.client_id.as_deref().unwrap_or_default();
        let subject = self
            .assertion
            .as_ref()
            .map(FederatedAssertion::subject)
            .or(self.remembered_subject.as_deref());
        if let Some(subject) = subject {
            return Some(format!("client:{client};assertion:{subject}"));
        }
        if self.kind.fetches_assertion() {
            return None;
        }
        if let Some(id) = &self.resource_id {
            return Some(format!("resource:{id}"));
        }
        if let Some(id) = &self.object_id {
            return Some(format!("object:{id}"));
        }
        Some(match (self.kind, &self.client_id) {
            (CredentialKind::AzureCli | CredentialKind::Azd, _) => format!(
                "signed-in-user:{}",
                self.account.as_deref().unwrap_or("unknown")
            ),
            (_, Some(id)) => format!("client:{id}"),
            (_, None) => "system-assigned".into(),
        })
    }

    /// Who this is, for messages: the cache key's id, or the client id alone while the
    /// assertion's subject is not known.
    pub fn shown(&self) -> String {
        self.id()
            .unwrap_or_else(|| format!("client:{}", self.client_id.as_deref().unwrap_or_default()))
    }
}

impl Identity {
    /// An identity of `kind` in `cloud` at `authority`, nothing else known yet; callers
    /// fill in what they know with struct-update syntax.
    pub fn new(kind: CredentialKind, cloud: Cloud, authority: String) -> Identity {
        Identity {
            kind,
            why: String::new(),
            skipped: Vec::new(),
            cloud,
            authority,
            tenant: None,
            client_id: None,
            object_id: None,
            resource_id: None,
            managed_source: None,
            assertion: None,
            remembered_subject: None,
            tenant_from_config: false,
            account: None,
        }
    }

    /// A public-cloud identity of `kind` with nothing else set, for unit tests.
    #[cfg(test)]
    pub fn for_test(kind: CredentialKind) -> Identity {
        Identity::new(
            kind,
            Cloud::Public,
            Cloud::Public.authority_host().to_string(),
        )
    }
}

/// A kubelet-supplied workload identity: service-account token and the pod's client id.
#[derive(Debug, Clone)]
pub struct PodIdentity {
    pub client_id: String,
    pub tenant_id: Option<String>,
    pub assertion: FederatedAssertion,
}
