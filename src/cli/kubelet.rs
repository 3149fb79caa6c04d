//! `kubelet`: the kubelet image credential provider (`credentialprovider.kubelet.k8s.io/v1`).
//! kubelet runs the binary for each image matching the provider's `matchImages`, writes a
//! `CredentialProviderRequest` on stdin and reads a `CredentialProviderResponse` from
//! stdout. This file owns that wire format, the image-reference parsing that finds the
//! registry, the Go duration kubelet expects in `cacheDuration`, and the choice between
//! the node's own identity and a pod's workload identity (service-account token plus the
//! `kubernetes.azure.com/acr-client-id` annotation). Tokens come from `lifecycle::acr_token`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::cli::Args;
use crate::context::Context;
use crate::error::{Error, Result};
use crate::helper::{self, NULL_GUID};
use crate::identity::FederatedAssertion;
use crate::identity::PodIdentity;
use crate::lifecycle::{self, Target};
use crate::registry::RegistryHost;
use crate::secret::Secret;

pub const API_VERSION: &str = "credentialprovider.kubelet.k8s.io/v1";
pub const REQUEST_KIND: &str = "CredentialProviderRequest";
pub const RESPONSE_KIND: &str = "CredentialProviderResponse";
/// The pod's service-account annotation naming the Entra app (client id) to federate with.
pub const CLIENT_ID_ANNOTATION: &str = "kubernetes.azure.com/acr-client-id";
/// Optional: the tenant of that app; else the registry's config entry or AZURE_TENANT_ID.
pub const TENANT_ID_ANNOTATION: &str = "kubernetes.azure.com/acr-tenant-id";
/// Where an image without a registry component comes from.
pub const DOCKER_HUB: &str = "docker.io";

/// A `CredentialProviderRequest`. Unknown fields are ignored: kubelet may add some.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Request {
    api_version: Option<String>,
    kind: Option<String>,
    image: Option<String>,
    service_account_token: Option<String>,
    #[serde(default)]
    service_account_annotations: BTreeMap<String, String>,
}

#[derive(Serialize)]
struct AuthEntry<'a> {
    username: &'a str,
    password: &'a str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Response<'a> {
    kind: &'a str,
    api_version: &'a str,
    cache_key_type: &'a str,
    cache_duration: String,
    auth: BTreeMap<&'a str, AuthEntry<'a>>,
}

pub fn run(ctx: &Context, args: &[String], input: &[u8]) -> Result<String> {
    // kubelet shows a failed plugin's stderr (at -v=2), not its stdout: with
    // ACR_ENTRA_LOG=warn in the provider's env the error reaches stderr too.
    answer(ctx, args, input).inspect_err(|e| crate::warn!("kubelet: {}", e.one_line()))
}

fn answer(ctx: &Context, args: &[String], input: &[u8]) -> Result<String> {
    let args = Args::parse("kubelet", args, &[], &["registry-mirror"])?;
    if let Some(extra) = args.positional.first() {
        return Err(Error::Usage(format!(
            "`kubelet` takes no arguments but --registry-mirror (got `{}`); it reads a CredentialProviderRequest on stdin",
            crate::error::one_line(extra)
                .chars()
                .take(40)
                .collect::<String>()
        )));
    }
    let mirrors = mirrors(ctx, &args)?;
    let request = read_request(input)?;
    let registry = image_registry(&request.image)?;
    // An image on a mirrored upstream is pulled through the mirror ACR: mint for the
    // mirror, answer keyed by the upstream name kubelet matches.
    let target = RegistryHost::parse(&registry)
        .ok()
        .map(|asked| mirrors.get(&asked.key()).cloned().unwrap_or(asked))
        .and_then(|host| Some((helper::acr_target(ctx, &host)?, host)));
    let Some(((entry, cloud), host)) = target else {
        crate::debug!(
            "image `{}`: registry `{registry}` is not ACR",
            request.image
        );
        return Ok(write_response(None, 0));
    };
    let pod = pod_identity(
        ctx,
        &host,
        entry.and_then(|e| e.tenant_id.as_deref()),
        &request,
    )?;
    let dir = ctx.private_dir();
    let target = Target {
        pod: pod.as_ref(),
        ..Target::new(&host, entry, cloud)
    };
    let Some((token, expires_on)) =
        lifecycle::acr_token_or_anonymous(ctx, &dir, &target, crate::now())?
    else {
        return Ok(write_response(None, 0));
    };
    // A pod's credential is not cached by kubelet at all ("0s"): whatever its version or
    // `tokenAttributes.cacheType`, kubelet then cannot hand one pod's token to another;
    // the helper's own cache, keyed by the service account, answers the next call.
    let lifetime = if pod.is_some() {
        0
    } else {
        expires_on
            .saturating_sub(crate::now())
            .saturating_sub(ctx.settings.min_ttl.as_secs() as i64)
            .clamp(0, crate::exchange::MAX_LIFETIME)
    };
    Ok(write_response(Some((&registry, &token.0)), lifetime as u64))
}

/// The mirror rules: `--registry-mirror SRC:ACR` arguments (for provider configs that
/// cannot ship a file), then the config file's `mirrors`; an argument wins for its source.
fn mirrors(ctx: &Context, args: &Args) -> Result<BTreeMap<String, RegistryHost>> {
    let mut mirrors = ctx.config.mirrors.clone();
    for rule in args.values("registry-mirror") {
        let (source, mirror) = rule.rsplit_once(':').ok_or_else(|| {
            Error::Usage(format!(
                "--registry-mirror `{}` is not SOURCE:ACR (e.g. mcr.microsoft.com:myacr.azurecr.io)",
                crate::error::one_line(rule).chars().take(80).collect::<String>()
            ))
        })?;
        let (source, mirror) =
            crate::config::parse_mirror(source, mirror, |h| ctx.config.gets_tokens(h))
                .map_err(|why| Error::Usage(format!("--registry-mirror: {why}")))?;
        mirrors.insert(source.key(), mirror);
    }
    Ok(mirrors)
}

/// The request after validation.
#[derive(Debug)]
pub struct KubeletRequest {
    pub image: String,
    pub service_account_token: Option<Secret>,
    pub annotations: BTreeMap<String, String>,
}

pub fn read_request(input: &[u8]) -> Result<KubeletRequest> {
    if input.len() > crate::protocol::MAX_INPUT {
        return Err(Error::Usage("CredentialProviderRequest is too long".into()));
    }
    // serde_json's message may quote the service-account token: keep only the position.
    let raw: Request = serde_json::from_slice(input).map_err(|e| {
        Error::Usage(format!(
            "stdin is not a JSON CredentialProviderRequest (line {} column {})",
            e.line(),
            e.column()
        ))
    })?;
    let quoted = |v: Option<&str>| v.map_or_else(|| "none".to_string(), |v| format!("`{v}`"));
    if raw.api_version.as_deref() != Some(API_VERSION) {
        return Err(Error::Usage(format!(
            "unsupported apiVersion {} (this provider speaks {API_VERSION}; set apiVersion: {API_VERSION} in the CredentialProviderConfig)",
            quoted(raw.api_version.as_deref())
        )));
    }
    if raw.kind.as_deref() != Some(REQUEST_KIND) {
        return Err(Error::Usage(format!(
            "unsupported kind {} (expected {REQUEST_KIND})",
            quoted(raw.kind.as_deref())
        )));
    }
    let image = raw
        .image
        .map(|i| i.trim().to_string())
        .filter(|i| !i.is_empty())
        .ok_or_else(|| Error::Usage("CredentialProviderRequest has no image".into()))?;
    if image.chars().any(char::is_control) {
        return Err(Error::Usage("image contains control characters".into()));
    }
    Ok(KubeletRequest {
        image,
        service_account_token: raw
            .service_account_token
            .filter(|t| !t.is_empty())
            .map(Secret::new),
        annotations: raw.service_account_annotations,
    })
}

/// The registry part of an image reference, as written (docker's rule: the first path
/// component is a registry when it has a `.` or `:`, is `localhost`, or has upper-case
/// letters; otherwise the image is on Docker Hub).
pub fn image_registry(image: &str) -> Result<String> {
    let image = image.trim();
    if image.is_empty() || image.contains("://") {
        return Err(Error::Usage(format!(
            "`{}` is not an image reference",
            crate::error::one_line(image)
        )));
    }
    match image.split_once('/') {
        Some((first, _))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            Ok(first.to_string())
        }
        _ => Ok(DOCKER_HUB.to_string()),
    }
}

/// The pod's workload identity, when kubelet passed a service-account token and the
/// service account names a client id; `None` means the node's own identity.
fn pod_identity(
    ctx: &Context,
    host: &RegistryHost,
    config_tenant: Option<&str>,
    request: &KubeletRequest,
) -> Result<Option<PodIdentity>> {
    let annotation = |name: &str| {
        request
            .annotations
            .get(name)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let (Some(token), Some(client_id)) = (
        request.service_account_token.clone(),
        annotation(CLIENT_ID_ANNOTATION),
    ) else {
        if request.service_account_token.is_some() {
            crate::debug!(
                "service-account token without the `{CLIENT_ID_ANNOTATION}` annotation: using the node's identity"
            );
        }
        return Ok(None);
    };
    let tenant_id = annotation(TENANT_ID_ANNOTATION)
        .or_else(|| config_tenant.map(str::to_string))
        .or_else(|| ctx.settings.azure.tenant_id.clone());
    if tenant_id.is_none() {
        return Err(Error::Config(format!(
            "pod identity `{client_id}` for `{host}` has no tenant: add the `{TENANT_ID_ANNOTATION}` annotation to the service account, tenant_id to the registry's config entry, or set AZURE_TENANT_ID for kubelet"
        )));
    }
    crate::debug!("`{host}`: workload identity of the pod's service account, client `{client_id}`");
    Ok(Some(PodIdentity {
        client_id,
        tenant_id,
        assertion: FederatedAssertion::new(token),
    }))
}

/// The response: the token for `registry`, or an empty `auth` (non-ACR image).
pub fn write_response(credential: Option<(&str, &Secret)>, cache_seconds: u64) -> String {
    let mut auth = BTreeMap::new();
    if let Some((registry, token)) = credential {
        auth.insert(
            registry,
            AuthEntry {
                username: NULL_GUID,
                password: token.expose(),
            },
        );
    }
    let cache_seconds = if auth.is_empty() { 0 } else { cache_seconds };
    serde_json::to_string(&Response {
        kind: RESPONSE_KIND,
        api_version: API_VERSION,
        cache_key_type: "Registry",
        cache_duration: go_duration(cache_seconds),
        auth,
    })
    .unwrap_or_default()
}

/// Whole seconds as Go's `time.Duration.String()` prints them: `0s`, `45s`, `5m0s`,
/// `2h29m0s`.
pub fn go_duration(seconds: u64) -> String {
    let (h, m, s) = (seconds / 3600, seconds % 3600 / 60, seconds % 60);
    if h > 0 {
        format!("{h}h{m}m{s}s")
    } else if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        for (s, want) in [
            (0, "0s"),
            (1, "1s"),
            (59, "59s"),
            (60, "1m0s"),
            (61, "1m1s"),
            (3599, "59m59s"),
            (3600, "1h0m0s"),
            (8940, "2h29m0s"),
            (11_700, "3h15m0s"),
            (90_061, "25h1m1s"),
        ] {
            assert_eq!(go_duration(s), want, "{s}");
        }
    }

    #[test]
    fn image_registries() {
        for (image, want) in [
            ("myacr.azurecr.io/ns/img:tag", "myacr.azurecr.io"),
            (
                "myacr.azurecr.io:443/img@sha256:0123abcd",
                "myacr.azurecr.io:443",
            ),
            ("myacr.azurecr.io/img", "myacr.azurecr.io"),
            ("docker.io/library/x", "docker.io"),
            ("alpine", "docker.io"),
            ("alpine:3.20", "docker.io"),
            ("library/alpine", "docker.io"),
            ("localhost/img", "localhost"),
            ("localhost:5000/img", "localhost:5000"),
            ("MyHost/img", "MyHost"),
            ("img@sha256:0123abcd", "docker.io"),
            (
                "myacr.azurecr.io.evil.example/img",
                "myacr.azurecr.io.evil.example",
            ),
        ] {
            assert_eq!(image_registry(image).unwrap(), want, "{image}");
        }
        assert!(image_registry("").is_err());
        assert!(image_registry("https://myacr.azurecr.io/img").is_err());
    }

    #[test]
    fn responses_are_exact() {
        assert_eq!(
            write_response(None, 500),
            r#"{"kind":"CredentialProviderResponse","apiVersion":"credentialprovider.kubelet.k8s.io/v1","cacheKeyType":"Registry","cacheDuration":"0s","auth":{}}"#
        );
        assert_eq!(
            write_response(Some(("myacr.azurecr.io", &Secret::new("rt"))), 8940),
            r#"{"kind":"CredentialProviderResponse","apiVersion":"credentialprovider.kubelet.k8s.io/v1","cacheKeyType":"Registry","cacheDuration":"2h29m0s","auth":{"myacr.azurecr.io":{"username":"00000000-0000-0000-0000-000000000000","password":"rt"}}}"#
        );
    }

    #[test]
    fn requests() {
        let r = read_request(
            br#"{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderRequest","image":"myacr.azurecr.io/app:1","serviceAccountToken":"sa-token","serviceAccountAnnotations":{"kubernetes.azure.com/acr-client-id":"c1"},"future":1}"#,
        )
        .unwrap();
        assert_eq!(r.image, "myacr.azurecr.io/app:1");
        assert_eq!(r.service_account_token.unwrap().expose(), "sa-token");
        assert_eq!(r.annotations[CLIENT_ID_ANNOTATION], "c1");
        let r = read_request(
            br#"{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderRequest","image":"alpine"}"#,
        )
        .unwrap();
        assert!(r.service_account_token.is_none() && r.annotations.is_empty());
        for (input, want) in [
            (
                &br#"{"apiVersion":"credentialprovider.kubelet.k8s.io/v1beta1","kind":"CredentialProviderRequest","image":"alpine"}"#[..],
                "unsupported apiVersion `credentialprovider.kubelet.k8s.io/v1beta1`",
            ),
            (
                br#"{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderResponse","image":"alpine"}"#,
                "unsupported kind `CredentialProviderResponse` (expected CredentialProviderRequest)",
            ),
            (
                br#"{"apiVersion":"credentialprovider.kubelet.k8s.io/v1","kind":"CredentialProviderRequest"}"#,
                "CredentialProviderRequest has no image",
            ),
            (b"myacr.azurecr.io", "stdin is not a JSON CredentialProviderRequest"),
        ] {
            let e = read_request(input).unwrap_err().one_line();
            assert!(e.starts_with(want), "{e}");
        }
        let e = read_request(br#"{"serviceAccountToken":"hunter2""#)
            .unwrap_err()
            .one_line();
        assert!(!e.contains("hunter2"), "{e}");
    }
}
