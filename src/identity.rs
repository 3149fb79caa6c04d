//! Who a token belongs to, as plain data: the credential kinds, the identity chosen for a
//! registry (kind, cloud, authority, tenant, client/object/resource id, why it was chosen
//! and why the others were skipped), and a pod's service-account assertion with the
//! subject it names. No I/O and no Entra calls: `entra` decides which identity applies
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
    ManagedIdentity,
    AzureCli,
    Azd,
}

impl CredentialKind {
    /// The auto-pick order (README "Where the Entra token comes from").
    pub const ALL: [CredentialKind; 6] = [
        CredentialKind::ClientSecret,
        CredentialKind::ClientCertificate,
        CredentialKind::WorkloadIdentity,
        CredentialKind::ManagedIdentity,
        CredentialKind::AzureCli,
        CredentialKind::Azd,
    ];

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
    /// A service-account token given by kubelet, used instead of a token file; it
    /// carries whom it names, which keys the cache.
    pub inline_assertion: Option<PodAssertion>,
    /// The tenant came from the registry's config entry (so `az`/`azd` get `--tenant`).
    pub tenant_from_config: bool,
    /// For `az`/`azd`: a digest of the tool's account file, so signing in as someone
    /// else (or logging out) keys a different cache entry. Never the file's content.
    pub account: Option<String>,
}

/// A service-account token that kubelet passed for one pod, with who it says it is.
/// The fields are private and `new` fills both: a pod identity cannot reach the cache
/// key without the service account it belongs to, so two pods that name the same client
/// id never share a cached token.
#[derive(Clone, Debug)]
pub struct PodAssertion {
    token: Secret,
    subject: String,
}

impl PodAssertion {
    /// The token's issuer, subject and audience (`system:serviceaccount:NS:NAME` for a
    /// Kubernetes token), or a digest of the whole token when those cannot be read. The
    /// claims are not verified here (Entra does that); they only keep pods apart.
    pub fn new(token: Secret) -> PodAssertion {
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
        PodAssertion { token, subject }
    }

    pub fn token(&self) -> &Secret {
        &self.token
    }

    pub fn subject(&self) -> &str {
        &self.subject
    }
}

impl Identity {
    /// Who this is, for the cache key: never a secret.
    pub fn id(&self) -> String {
        if let Some(pod) = &self.inline_assertion {
            let client = self.client_id.as_deref().unwrap_or_default();
            return format!("client:{client};pod:{}", pod.subject());
        }
        if let Some(id) = &self.resource_id {
            return format!("resource:{id}");
        }
        if let Some(id) = &self.object_id {
            return format!("object:{id}");
        }
        match (self.kind, &self.client_id) {
            (CredentialKind::AzureCli | CredentialKind::Azd, _) => format!(
                "signed-in-user:{}",
                self.account.as_deref().unwrap_or("unknown")
            ),
            (_, Some(id)) => format!("client:{id}"),
            (_, None) => "system-assigned".into(),
        }
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
            inline_assertion: None,
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
    pub assertion: PodAssertion,
}
