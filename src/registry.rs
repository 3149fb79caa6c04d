//! Registry host names: parse what a client sends (`host[:port]`, with or without a
//! scheme, path, query or trailing dot), normalise it, and decide whether it is an Azure
//! Container Registry login server and in which cloud. The ACR match is anchored with a
//! dot boundary (`name.azurecr.io`, `name-hash.azurecr.io`, `name.region.geo.azurecr.io`)
//! so that `myacr.azurecr.io.evil.example` and `evil-azurecr.io` never get a token.
//! Nothing here reads the environment or touches the network.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Which Azure cloud a registry lives in: decides the Entra authority and ARM audience.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cloud {
    Public,
    China,
    UsGov,
}

impl Cloud {
    pub fn parse(text: &str) -> Option<Cloud> {
        match text.trim().to_ascii_lowercase().as_str() {
            "public" | "azurepublic" | "azurecloud" => Some(Cloud::Public),
            "china" | "azurechina" | "azurechinacloud" => Some(Cloud::China),
            "usgov" | "azuregovernment" | "azureusgovernment" => Some(Cloud::UsGov),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Cloud::Public => "public",
            Cloud::China => "china",
            Cloud::UsGov => "usgov",
        }
    }

    /// Entra ID authority for this cloud.
    pub fn authority_host(self) -> &'static str {
        match self {
            Cloud::Public => "https://login.microsoftonline.com",
            Cloud::China => "https://login.chinacloudapi.cn",
            Cloud::UsGov => "https://login.microsoftonline.us",
        }
    }

    /// The audience this cloud's Entra expects in a federated (workload identity, CI
    /// OIDC) token, as the federated credential names it.
    pub fn token_exchange_audience(self) -> &'static str {
        match self {
            Cloud::Public => "api://AzureADTokenExchange",
            Cloud::China => "api://AzureADTokenExchangeChina",
            Cloud::UsGov => "api://AzureADTokenExchangeUSGov",
        }
    }

    /// The ARM audience scope, the fallback when a registry refuses the ACR audience.
    pub fn arm_scope(self) -> &'static str {
        match self {
            Cloud::Public => "https://management.azure.com/.default",
            Cloud::China => "https://management.chinacloudapi.cn/.default",
            Cloud::UsGov => "https://management.usgovcloudapi.net/.default",
        }
    }
}

/// The ACR audience scope; the same in every cloud.
pub const ACR_SCOPE: &str = "https://containerregistry.azure.net/.default";

const ACR_SUFFIXES: [(&str, Cloud); 3] = [
    ("azurecr.io", Cloud::Public),
    ("azurecr.cn", Cloud::China),
    ("azurecr.us", Cloud::UsGov),
];

/// A normalised registry host: lower-case name without trailing dot, optional port
/// (443 dropped), IPv6 literals kept in brackets.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RegistryHost {
    host: String,
    port: Option<u16>,
    /// `http://` was written in front of a loopback host.
    plain_http: bool,
}

/// Why a server URL could not be turned into a host.
#[derive(Debug, PartialEq, Eq)]
pub enum HostError {
    Empty,
    ControlCharacters,
    /// Not a host name we would ever send credentials to (userinfo, bad characters…).
    Invalid,
}

impl RegistryHost {
    /// Parse a server URL the way docker, podman and docker-py send it.
    pub fn parse(input: &str) -> Result<RegistryHost, HostError> {
        if input
            .chars()
            .any(|c| c.is_control() && !c.is_ascii_whitespace())
        {
            return Err(HostError::ControlCharacters);
        }
        let text = input.trim();
        if text.is_empty() {
            return Err(HostError::Empty);
        }
        if text.chars().any(char::is_control) {
            return Err(HostError::ControlCharacters);
        }
        let (rest, plain_http) = strip_scheme(text)?;
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let authority = &rest[..end];
        // Userinfo, and backslashes that some URL parsers read as `/`, never reach a host.
        if authority.is_empty() || authority.contains(['@', '\\']) || rest.contains('\\') {
            return Err(HostError::Invalid);
        }
        let (host, port) = split_port(authority)?;
        let host = host.to_ascii_lowercase();
        let host = host.strip_suffix('.').unwrap_or(&host).to_string();
        if !valid_host(&host) {
            return Err(HostError::Invalid);
        }
        let port = port.filter(|p| *p != 443 || plain_http);
        Ok(RegistryHost {
            host,
            port,
            plain_http,
        })
    }

    /// The host name (IPv6 in brackets), without port.
    pub fn name(&self) -> &str {
        &self.host
    }

    pub fn port(&self) -> Option<u16> {
        self.port
    }

    /// `host[:port]`: the key in config, store and cache, and the URL authority.
    pub fn key(&self) -> String {
        match self.port {
            Some(p) => format!("{}:{p}", self.host),
            None => self.host.clone(),
        }
    }

    /// The client wrote `http://` in front of the host.
    pub fn wants_plain_http(&self) -> bool {
        self.plain_http
    }

    /// The cloud of an ACR login server, or `None` when the name is not one.
    pub fn acr_cloud(&self) -> Option<Cloud> {
        ACR_SUFFIXES.iter().find_map(|(suffix, cloud)| {
            let prefix = self.host.strip_suffix(suffix)?.strip_suffix('.')?;
            acr_prefix_ok(prefix).then_some(*cloud)
        })
    }

    /// The ACR login server this host probably meant, when its name is one or two edits
    /// from an ACR suffix (`myacr.azureccr.io`, `myacr.azurecr.com`): for a hint only, it
    /// never gets a token.
    pub fn near_acr(&self) -> Option<String> {
        if self.acr_cloud().is_some() {
            return None;
        }
        let (name, rest) = self.host.split_once('.')?;
        ACR_SUFFIXES
            .iter()
            .map(|(suffix, _)| (crate::typo::edit_distance(rest, suffix), *suffix))
            .filter(|(d, _)| *d <= 2)
            // On a tie the public cloud's, listed first.
            .min_by_key(|(d, _)| *d)
            .map(|(_, suffix)| format!("{name}.{suffix}"))
            .filter(|guess| RegistryHost::parse(guess).is_ok_and(|h| h.acr_cloud().is_some()))
    }

    /// `localhost`, `127.0.0.0/8` or `::1`: the only hosts allowed plain http.
    pub fn is_loopback(&self) -> bool {
        if self.host == "localhost" {
            return true;
        }
        if let Ok(v4) = self.host.parse::<Ipv4Addr>() {
            return v4.is_loopback();
        }
        let inner = self.host.trim_start_matches('[').trim_end_matches(']');
        inner.parse::<Ipv6Addr>().is_ok_and(|v6| v6.is_loopback())
    }
}

impl fmt::Display for RegistryHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.key())
    }
}

fn strip_scheme(text: &str) -> Result<(&str, bool), HostError> {
    let lower_prefix = |p: &str| {
        text.get(..p.len())
            .is_some_and(|t| t.eq_ignore_ascii_case(p))
    };
    if lower_prefix("https://") {
        Ok((&text[8..], false))
    } else if lower_prefix("http://") {
        Ok((&text[7..], true))
    } else if text.contains("://") {
        Err(HostError::Invalid)
    } else {
        Ok((text, false))
    }
}

fn split_port(authority: &str) -> Result<(&str, Option<u16>), HostError> {
    if authority.starts_with('[') {
        let close = authority.find(']').ok_or(HostError::Invalid)?;
        let host = &authority[..=close];
        let rest = &authority[close + 1..];
        if rest.is_empty() {
            return Ok((host, None));
        }
        let port = rest.strip_prefix(':').ok_or(HostError::Invalid)?;
        return Ok((host, Some(parse_port(port)?)));
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => Ok((host, Some(parse_port(port)?))),
        None => Ok((authority, None)),
    }
}

fn parse_port(text: &str) -> Result<u16, HostError> {
    if text.is_empty() || text.len() > 5 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(HostError::Invalid);
    }
    match text.parse::<u16>() {
        Ok(0) | Err(_) => Err(HostError::Invalid),
        Ok(p) => Ok(p),
    }
}

/// A DNS name (letters, digits, hyphens, dots; labels 1–63, total ≤ 253) or an IP literal.
fn valid_host(host: &str) -> bool {
    if host.starts_with('[') {
        return host.ends_with(']') && host[1..host.len() - 1].parse::<Ipv6Addr>().is_ok();
    }
    if host.is_empty() || host.len() > 253 {
        return false;
    }
    host.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

/// What may stand before `.azurecr.<tld>`: `name`, `name-hash` (domain-name-label
/// scope) or `name.region.geo` (a geo-replica's regional endpoint).
fn acr_prefix_ok(prefix: &str) -> bool {
    let labels: Vec<&str> = prefix.split('.').collect();
    match labels.as_slice() {
        [name] => registry_label_ok(name),
        // A geo-replica's regional endpoint, also of a domain-name-label registry
        // (`name-hash.region.geo`); `name.region.data` endpoints are blob-redirect
        // targets, not login servers, and stay unmatched.
        [name, region, "geo"] => {
            registry_label_ok(name)
                && !region.is_empty()
                && region.len() <= 40
                && region.bytes().all(|b| b.is_ascii_alphanumeric())
        }
        _ => false,
    }
}

fn registry_label_ok(label: &str) -> bool {
    match label.split_once('-') {
        None => registry_name_ok(label),
        Some((name, hash)) => {
            registry_name_ok(name)
                && !hash.is_empty()
                && hash.len() <= 16
                && hash.bytes().all(|b| b.is_ascii_alphanumeric())
        }
    }
}

fn registry_name_ok(name: &str) -> bool {
    (5..=50).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Which audience the Entra token is requested for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Audience {
    Acr,
    Arm,
    /// A full audience URI or scope, as written in the config.
    Custom(String),
}

impl Audience {
    pub fn parse(text: &str) -> Option<Audience> {
        let text = text.trim();
        match text.to_ascii_lowercase().as_str() {
            "acr" => Some(Audience::Acr),
            "arm" => Some(Audience::Arm),
            _ if text.starts_with("https://") => Some(Audience::Custom(text.to_string())),
            _ => None,
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Audience::Acr => "acr",
            Audience::Arm => "arm",
            Audience::Custom(uri) => uri,
        }
    }

    /// The OAuth scope to ask Entra for.
    pub fn scope(&self, cloud: Cloud) -> String {
        match self {
            Audience::Acr => ACR_SCOPE.to_string(),
            Audience::Arm => cloud.arm_scope().to_string(),
            Audience::Custom(uri) if uri.ends_with("/.default") => uri.clone(),
            Audience::Custom(uri) => format!("{}/.default", uri.trim_end_matches('/')),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cloud_of(input: &str) -> Option<Cloud> {
        RegistryHost::parse(input).ok().and_then(|h| h.acr_cloud())
    }

    #[test]
    fn acr_hosts_in_every_form() {
        for input in [
            "myacr.azurecr.io",
            "MyAcr.AzureCR.IO",
            "https://myacr.azurecr.io",
            "https://myacr.azurecr.io/",
            "https://myacr.azurecr.io/v2/",
            "http://myacr.azurecr.io",
            "  myacr.azurecr.io\n",
            "myacr.azurecr.io.",
            "myacr.azurecr.io:443",
            "myacr.azurecr.io/library/alpine:3",
            "myacr.azurecr.io?x=1",
            "myacr-abc123.azurecr.io",
            "myacr.westeurope.geo.azurecr.io",
            "contoso-abc123.eastus.geo.azurecr.io",
        ] {
            assert_eq!(cloud_of(input), Some(Cloud::Public), "{input:?}");
        }
        assert_eq!(cloud_of("fabrikam.azurecr.cn"), Some(Cloud::China));
        assert_eq!(cloud_of("contoso.azurecr.us"), Some(Cloud::UsGov));
        // Every form in every cloud: plain, domain-name label, regional, both.
        for (suffix, cloud) in [
            ("azurecr.io", Cloud::Public),
            ("azurecr.cn", Cloud::China),
            ("azurecr.us", Cloud::UsGov),
        ] {
            for name in [
                "contoso",
                "contoso-abc123",
                "contoso.chinanorth3.geo",
                "contoso-abc123.usgovvirginia.geo",
            ] {
                assert_eq!(
                    cloud_of(&format!("{name}.{suffix}")),
                    Some(cloud),
                    "{name}.{suffix}"
                );
            }
            for hostile in [
                "contoso.eastus.data",
                "contoso-abc123.eastus.data",
                "contoso-abc123.geo",
                "contoso-.eastus.geo",
                "contoso-abc123.east-us.geo",
                "x.contoso-abc123.eastus.geo",
            ] {
                assert_eq!(
                    cloud_of(&format!("{hostile}.{suffix}")),
                    None,
                    "{hostile}.{suffix}"
                );
            }
        }
    }

    #[test]
    fn near_misses_name_the_login_server_they_probably_meant() {
        let near = |h: &str| RegistryHost::parse(h).unwrap().near_acr();
        assert_eq!(
            near("myacr.azureccr.io").as_deref(),
            Some("myacr.azurecr.io")
        );
        assert_eq!(
            near("myacr.azurecr.com").as_deref(),
            Some("myacr.azurecr.io")
        );
        assert_eq!(
            near("contoso.azurecr.cm").as_deref(),
            Some("contoso.azurecr.cn")
        );
        for far in [
            "myacr.azurecr.io",
            "myacr.azurecr.io.evil.example",
            "docker.io",
            "ghcr.io",
            "mcr.microsoft.com",
            "abc.azurecr.com",
        ] {
            assert_eq!(near(far), None, "{far}");
        }
    }

    #[test]
    fn hostile_and_foreign_hosts_are_not_acr() {
        for input in [
            "myacr.azurecr.io.evil.example",
            "myacr.azurecr.io.evil.example.",
            "evil-azurecr.io",
            "azurecr.io",
            ".azurecr.io",
            "myacr.azurecr.io@evil.example",
            "evil.example@myacr.azurecr.io",
            "user:pass@myacr.azurecr.io",
            "https://myacr.azurecr.io@evil.example/",
            "myacr.azurecr.io%2eevil.example",
            "myacr%2eazurecr.io",
            "myacr-azurecr.io",
            "myacrazurecr.io",
            "myacr.azurecr.iox",
            "myacr.azurecr.io-evil.example",
            "myacr.azurecr.com",
            "myacr.azurecr.io.cn",
            "mcr.microsoft.com",
            "docker.io",
            "ghcr.io",
            "index.docker.io",
            "a.azurecr.io",
            "abcd.azurecr.io",
            "my_acr.azurecr.io",
            "my-acr-x.azurecr.io",
            "-myacr.azurecr.io",
            &format!("{}.azurecr.io", "a".repeat(51)),
            "evil.myacr.azurecr.io",
            "x.myacr.westeurope.geo.azurecr.io",
            "myacr.westeurope.data.azurecr.io",
            "myacr.geo.azurecr.io",
            "myacr.azurecr.io:notaport",
            "myacr.azurecr.io:99999",
            "myacr.azurecr.io:0",
            "ftp://myacr.azurecr.io",
            "oci://myacr.azurecr.io",
            "myacr.azurecr.io\\@evil.example",
            "myacr.azurecr.io evil.example",
            "xn--myacr-xyz.azurecr.io.evil",
            "xn--80ak6aa92e.azurecr.io",
            "myacr．azurecr.io",
            "myacr.azurecr.ｉｏ",
            "127.0.0.1",
            "[::1]:5000",
            "",
            "   ",
            "https://",
            "https:///v2/",
            "myacr.azurecr.io\0",
            "myacr.azurecr.io\r\nHost: evil",
        ] {
            assert_eq!(cloud_of(input), None, "{input:?}");
        }
    }

    #[test]
    fn normalises_keys() {
        let key = |s: &str| RegistryHost::parse(s).map(|h| h.key());
        assert_eq!(
            key("https://MyAcr.azurecr.io:443/v2/").unwrap(),
            "myacr.azurecr.io"
        );
        assert_eq!(key("localhost:5443").unwrap(), "localhost:5443");
        assert_eq!(key("http://localhost:5000/").unwrap(), "localhost:5000");
        assert_eq!(key("[::1]:5000").unwrap(), "[::1]:5000");
        assert_eq!(key(""), Err(HostError::Empty));
        assert_eq!(key("a\0b"), Err(HostError::ControlCharacters));
        assert_eq!(key("user@host"), Err(HostError::Invalid));
    }

    #[test]
    fn loopback_detection() {
        let lo = |s: &str| RegistryHost::parse(s).unwrap().is_loopback();
        assert!(lo("localhost:5443"));
        assert!(lo("127.0.0.1"));
        assert!(lo("127.1.2.3:80"));
        assert!(lo("[::1]:5000"));
        assert!(!lo("10.0.0.1"));
        assert!(!lo("localhost.evil.example"));
        assert!(!lo("myacr.azurecr.io"));
    }
}
