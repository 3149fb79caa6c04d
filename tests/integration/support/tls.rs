//! The test PKI, made once per test process with rcgen: a CA and one server certificate
//! for every host name the fakes pretend to be. Each test writes the CA to its own
//! `ca.pem` and hands it to the helper through `SSL_CERT_FILE`. Also the RSA client
//! certificate used for `client-certificate` tests.

use std::sync::{Arc, OnceLock};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// Names on the fake servers' certificate.
pub const SERVER_NAMES: &[&str] = &[
    "localhost",
    "127.0.0.1",
    "myacr.azurecr.io",
    "other.azurecr.io",
    "third.azurecr.io",
    "fabrikam.azurecr.cn",
    "contoso.azurecr.us",
    "myacr.eastus.geo.azurecr.io",
    "myacr-abh2c0fkbyfpgqd5.azurecr.io",
    // The CI OIDC services, reached through `ACR_ENTRA_CONNECT_TO`.
    "pipelines.actions.githubusercontent.com",
    "dev.azure.com",
];

pub struct Pki {
    pub ca_pem: String,
    pub server_config: Arc<rustls::ServerConfig>,
}

pub fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "acr-entra integration test CA");
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca = ca_params.self_signed(&ca_key).unwrap();

        let server_key = KeyPair::generate().unwrap();
        let names: Vec<String> = SERVER_NAMES.iter().map(|s| (*s).to_string()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "acr-entra fake server");
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let server = params.signed_by(&server_key, &ca, &ca_key).unwrap();

        let chain = vec![server.der().clone(), ca.der().clone()];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der()));
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
        Pki {
            ca_pem: ca.pem(),
            server_config: Arc::new(config),
        }
    })
}

pub fn server_config() -> Arc<rustls::ServerConfig> {
    pki().server_config.clone()
}

/// A fixed 2048-bit RSA test key (ring cannot generate RSA keys, so rcgen gets this one
/// and makes a fresh certificate for it). Test material only.
pub const CLIENT_RSA_KEY_PEM: &str = "\
-----BEGIN PRIVATE KEY-----\n\
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDDG862XLOGYghD\n\
iIj9qyOrUcVGJGi7dRhiJBhiECgicXbQSrX8KSVSPPFnztJfAB0nyBpQ/18MBhic\n\
Uyc77ADeiOZuLzETxt2R5RFNAbCUyNHxlsO60/Pm2fAVDdsPuXy5bCL5PMGx6g0f\n\
E0SZdXLVuIL78eFaGx7fv+ymeUB+gDuEeQ+7ZuMwHdLTFtGvHPSqDinD+U8vfIIO\n\
WZtyuIFBN4cc+HA1sdX4M8zsKMPaTeYmIOdwZND1zu/ipz409B0ssZEwwAcbaaHV\n\
bETuSmqIQCTEHcqf+JVeTij9kdevyBfHpoCnrIPvX/B1mnNEyx4x5UeUtvho4OU0\n\
U+CoNGTnAgMBAAECggEAGSNwEtcG2n2vCuSAog523g//FvaB+AUySxLTgW8LfMSZ\n\
xmSZ5g93G412nSVsvYjKOOHzYhRFLstqSFn+aB4UTpfc+L1j2WR6D94vyHg7RDBL\n\
vJDsTxoYBtp1sIDEhNYlV86zAuHtIvtBDYvx/sO/NAI9/jBAFNgBtlqIJzrgMGwj\n\
heELH6Znx1uCnVEC64xoadx/lxIq/zKZHCX+4IBkceBes8DqiiYy8umBDMoT6Vhb\n\
1t94AdHxWmIbjQrcBA9hxoZ71TAHrcHFqzKeRdhmoL/VVGYKDI6ndTUnaxuMSURB\n\
9aTb/c+hCLb3OVVadMEF38u7f+2bomX9DIkwFdnKIQKBgQDvIwzv71r+3TDzIrWj\n\
145gqncmfHIMWTVor77FwutkfSDFR9t0aVO5wRzU/jA0LsacugFHlB7eDe3z0omh\n\
KDwLoHpsvqTKITO6AZVMZ2fau/2vbIBLcAkUKqJbwlUXtW8Ot1YiM2G6oBSauZXT\n\
j3haEeyW2WQp0MGfl/ToksIl3QKBgQDQ3fLyDrLGrkNHeHxWFicD3IPt8vM/4plP\n\
fmeRNwn2Ax/Vt4j3GN3GFIOgi8ThDzQuZw0aqtt/z6QrgU7wJu52geZOLCNWRL9S\n\
RdMLrGXC0Uc/Aad87Pk0r1j0otU0QC68XR0Fuat5I+E51ViMe9t6fUzfbkiiNZoi\n\
fMXoeBpTkwKBgQC2Gtf4QyrlWKW1EWKHMVhQDqALo8rp0mlUnjjFuqis7oitEwpw\n\
fODwXLnLDQLCSjifExp0Wryi1rK08UgzfEM1i3CPLSKqdlxAsoHyG/C/ZldKZnLQ\n\
f7G6NLlM7REFq/m1mDG0e7JZfxwRs3AAGopI9MtZGJUpLrq0APDUxyWn1QKBgCaY\n\
PKI50RMhdFEqlF8b7M2r270GXah6aLXlt6F/uBl7blCBf4+ZSrGlbMUnzpN/ybah\n\
WCyLUdAGQGHBnSKHLx0616GuSkFQpsG/IUZQ7uTW4wFjft14tHvlwtxBkn/7NCee\n\
VRSPwH28AYw8PgaHhIDX0nKe4FEI8phY0gEo4ER9AoGAH0y+oqhkuPa/Dd7gyAHi\n\
MHvywakv6jS7iXe3iau3L/I915W2vsBlD96+UNBcDmEnKNOfKXQiKPAeTp7PqQ38\n\
SUzBshVCnyVAE4BRbvdLsW1RPULAKScPGYyrQP7B+0w+if/rP07TALTGX7s4Kv3u\n\
7Q/8kk8ROgWYYiDuoGwx/J0=\n\
-----END PRIVATE KEY-----\n\
";

/// A client certificate for `client-certificate` tests.
pub struct ClientCert {
    /// Certificate followed by the private key, both PEM.
    pub pem: String,
    pub cert_der: CertificateDer<'static>,
    /// The RSA public key as ring wants it for verification (PKCS#1 `RSAPublicKey`).
    pub public_key_raw: Vec<u8>,
}

pub fn client_cert(client_id: &str) -> ClientCert {
    let key = KeyPair::from_pem(CLIENT_RSA_KEY_PEM).unwrap();
    assert!(key.is_compatible(&rcgen::PKCS_RSA_SHA256));
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.distinguished_name.push(
        DnType::CommonName,
        format!("acr-entra test app {client_id}"),
    );
    let cert = params.self_signed(&key).unwrap();
    ClientCert {
        pem: format!("{}{}", cert.pem(), CLIENT_RSA_KEY_PEM),
        cert_der: cert.der().clone(),
        public_key_raw: key.public_key_raw().to_vec(),
    }
}

/// A PKCS#12 file (AES-256-CBC, SHA-256 MAC, password `PFX_PASSWORD`) holding
/// `CLIENT_RSA_KEY_PEM` and `PFX_CERT_PEM`, made once with openssl 3 (`pkcs12 -export`).
pub const PFX_BASE64: &str = "MIIJ7wIBAzCCCaUGCSqGSIb3DQEHAaCCCZYEggmSMIIJjjCCBAIGCSqGSIb3DQEHBqCCA/MwggPvAgEAMIID6AYJKoZIhvcNAQcBMFcGCSqGSIb3DQEFDTBKMCkGCSqGSIb3DQEFDDAcBAh9MZVx4AoTagICCAAwDAYIKoZIhvcNAgkFADAdBglghkgBZQMEASoEEIkk8oDoaiW8vmTAJBtt7TaAggOAPc8WWMJ+qXdgigYjQYPYgKk2hYriKkdjgXDjUps2XnkCkiHgVoq83rrfZJYnI0pCAqwOmu3n9SX/rQVil73uyt6/tTvkOc9yVT4dDfrY2xuDq4i18S9Sng/XWhIjzYAZhQ4KfaZ2yeugpaNTpFDl4SZjHaMDn/Trf1wN300e0C6xTScqu77jYZGhxmLByky8nla9FnJmIzPdlJkmvXTqVHA1E1UnNtZEAW0RGLM4kA4Dh4qvfj3FFfi4h0NXc6eWmG2NCMqSY7LkN2MjmxmahCoXmw6pp6hPy/pBacivuJls2IgnbLUOLb7xmbeD/YhwpPBniOPE9PAAbar450up7MsU/UZ0GKA/59pTPCok3U2inSfvcc6kDH4X7JrG360RG2RMKjYW6ULo99ZG9Zick77fbIfrDamjF6fje6yQDklgA3KKwrwe3x+eQm0S3IVVOQWdyA2RuC8Kw9MQk40wFIC2jZ9amJQuZZwjHwV3T3VYv9x9mxsYai6Fh0ZwOLZvOB0zDw/B3MtJ1xwgAb7hx/WIbpkhzLQCPp9Ql3Tf4ApUqNjNNdTUlMq6x0/VKNnK/H8yOTSVCVHMPrnsn8owoyG0fWp2h6eTUvTSAKZRbCA9kifRgLL0BUJ2+vWJFbpD1MbW0ZsDPSoYx84zqziMjAwuX6XLTF3hLTuF+nj68fVdLsJwNhFWAzKqjPZBieVGM22eKasgwdPdCbITwumdQk0QE5CUPjVb/er0buhlAH+1fPxfVzJqs4GRWryNKFZcN1wBvhA2TqHkhfmWk3icv7WBNcNWPbod25/H9nqbz2hWyp95ChfT+2pYroH+ZYtekfyhxZYz0ochTO6RokdL+cac4eKQ3ttLEBc4l7xNPv6rc+51Xio/yCWF1W5AHxS92MefxlrirSW5XSHY1ZJTzj8vLo1ynzv2aQDBqR7R9R6hu1O9CX2K9DuIOfSfppIvvrcadFAtts5ruz2DCvXoIcmWU55l005v4bQ32Qo7L4IQrJx0QtTEtJSLG4xC2Z4PbQsFpje8uJLWzDvzxDlv7jDKG/vDJtuT8ONR6ztI72sL9GYScQSCwECrStlhqhr2+YNKxN5YGw16UtiBvlgE5lam/DdWk2GyHio73SiWl8jD+PGTXz3zCQeZgcBIwwm9cWO86w7OchTc8EHtTAtV4TpmbVf+WXPkqtEsEIDX3LQwggWEBgkqhkiG9w0BBwGgggV1BIIFcTCCBW0wggVpBgsqhkiG9w0BDAoBAqCCBTEwggUtMFcGCSqGSIb3DQEFDTBKMCkGCSqGSIb3DQEFDDAcBAhorRfelAO5EAICCAAwDAYIKoZIhvcNAgkFADAdBglghkgBZQMEASoEECBsxZ/eyqOF/obQEYBRi0cEggTQgN5MDGNoLq5EYJgUQFnz18jjxyJGpYqdkp2uZ022lnXVzXWkHv3szh0wA0gfYrdmHbLBJW/0df4PM1n9q+Np5X78/fEBRWBHtHJKZvr/0E5X6UIT7HewGD0l5iMhimvZgHKvdiF9v9CxiIFSoONJ3wG2uMtFVEFegh5733rmgJcq1itPdpEmtMAhfkCHcXiALEP7B/wAfbOc9PIKwWFOhel8A+uuz2Guo3Obe2SdJkViwRlZfvelw6XF9MTMWj0kxwZXDY0hlBLeatCz0WLosZi2Dr38sGhmWQgWZx/TQmwm4iHaT0lqG5DQ5owWkF1U7/MDLWrjoRqzgFrSd9OnNkyTsqr/iJMIf8rmwALr9RpDmA2Nztl+xQnWDQ9UGAuD1rMZOGW5EnNCjWexj05I4PBHesFPP8CmA9slz8q5TjK/SV/Rkf0F5Ym+H84rN6wOi0r9A9OIauMXAFE2ItKoDLG1dlx9e6OSp/32EuaBxOoAN+FItUa5EsQLnKnD1IAjWS1HNBiQ2/Z24x21kBOXRv8rnrw6W7Qm9DkqmuXSlrYA2BvF/jgKfIYKQQxQuOl6l4zZ2etuJe6y2gqPWVG/814i2PpgzYH4KISQT/+TLWbO6iK8POIq3TlPyRkHptZwPhyDA3DxTSuSI/+h8SM8CFV9DsMEMgEu84yJobLazodsQ4NXnVFfuhbPSkZd9JkS+NudM6emzcQtrMpRPOnSxGIa3W9kyGwuoMbpoXo9BxtazOEyF6ZJyK6yDnzsAncHDnkU2Vg0of/tkFWZSVIP8vYaY0EvlvPUP3aDpTPtKoIgBwU9+wfPvL6aClX/jyaMunLUiAZx6rDe0iIAS16B0by2Lb48/+wAJHuxJm31pGr7jOugArPsFOIbYuWBwyl+30hr4rYi8bFLl1rFwMsPTpVFUOkqTqHgHzgdta6tQZuib9wmCKT5xH+TIFkz0oeSw7KB9v/2UTqn21B56RzbGoYWmaEljhMhl7eWpX0LCajo4nI5jMdhYRkmtW1gDJQB2eEEpgvf2bbJ56z0F+Pm24Dvol+NnJla752oD/g3BWtlqJTKA5JJJgqR5BGWu+yHvnTduHrSXhNhFwdzy/Psh4L3PGG1hLTWatqX5tq2ctYUZSYEIZJIypY0vlAtzmCxF17GvS5PPD+3ixa6DbgNT6R61KmE8QcAkmvsortMDcpmRWQH78VlN/VW8kq1ZsclHvp/3AHj2ThLr80sw8HT7gt/WOWBsj6i1cfvTIiIN2+8GSyd0H8Hs/avfnCSBVOgcLWTHorq3/L+zXLS4AzbC/KQGGrMNR91YDEZub8R9Iu+UPNnT6ZVs320FtRrzIhKsJTHzMMNDvoC7HxnAB/yXoSDL+H38u5Zy+7lcEoXjDIv81HXGzCFjLRvDbLvfEqcR1rqSsVVe52qJGvyF+SEZFz11QqdVwmg6n8X4YExEz5T0SRIFmMfAe/NDisY4goN1e7auOW8B44f4EAwXfK5ygWbaFEGAsmpX+x7JqcJwEricgIjk1/MtDgSqxETzPrL9xSrYArc1dxQIAJUtGG/HQWFaF5kd2aGPq3KPnV5fQAdELxfQn49wzn9dikM1B2kvjqJP1wtdxOgJqIgSjCogFnKji4AdtbxpPKl0AEZwekxJTAjBgkqhkiG9w0BCRUxFgQU1/m+IpCrZ+d/pAKMFdbnHg/DGUYwQTAxMA0GCWCGSAFlAwQCAQUABCARONusoGu5aQ2A5OgQWqFBNLLxAfkDZaBQSyauvgTJYwQIfXOigFe5/H8CAggA";
pub const PFX_PASSWORD: &str = "pfx-test-password";

/// `PFX_BASE64` decoded: the PKCS#12 file's bytes.
pub fn pfx_bytes() -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(PFX_BASE64)
        .unwrap()
}

/// The DER of `PFX_CERT_PEM`, the certificate inside `PFX_BASE64`.
pub fn pfx_cert_der() -> Vec<u8> {
    use base64::Engine;
    let b64: String = PFX_CERT_PEM
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap()
}
/// The certificate inside `PFX_BASE64` (self-signed, valid for 100 years).
pub const PFX_CERT_PEM: &str = "\
-----BEGIN CERTIFICATE-----\n\
MIIDHTCCAgWgAwIBAgIUXGUCxM5bviGbc/hRgbnTEmms0ZcwDQYJKoZIhvcNAQEL\n\
BQAwHTEbMBkGA1UEAwwSYWNyLWVudHJhIHRlc3QgcGZ4MCAXDTI2MTEyMzIxMzky\n\
NFoYDzIxMjYxMDMwMjEzOTI0WjAdMRswGQYDVQQDDBJhY3ItZW50cmEgdGVzdCBw\n\
ZngwggEiMA0GCSqGSIb3DQEBAQUAA4IBDwAwggEKAoIBAQDDG862XLOGYghDiIj9\n\
qyOrUcVGJGi7dRhiJBhiECgicXbQSrX8KSVSPPFnztJfAB0nyBpQ/18MBhicUyc7\n\
7ADeiOZuLzETxt2R5RFNAbCUyNHxlsO60/Pm2fAVDdsPuXy5bCL5PMGx6g0fE0SZ\n\
dXLVuIL78eFaGx7fv+ymeUB+gDuEeQ+7ZuMwHdLTFtGvHPSqDinD+U8vfIIOWZty\n\
uIFBN4cc+HA1sdX4M8zsKMPaTeYmIOdwZND1zu/ipz409B0ssZEwwAcbaaHVbETu\n\
SmqIQCTEHcqf+JVeTij9kdevyBfHpoCnrIPvX/B1mnNEyx4x5UeUtvho4OU0U+Co\n\
NGTnAgMBAAGjUzBRMB0GA1UdDgQWBBTdod5UpAtIEKoZq9+RTXhkhUKVhjAfBgNV\n\
HSMEGDAWgBTdod5UpAtIEKoZq9+RTXhkhUKVhjAPBgNVHRMBAf8EBTADAQH/MA0G\n\
CSqGSIb3DQEBCwUAA4IBAQAyVqRamVhDihBxEOwSQz0VdJKouHZvNVHs7IF0jufA\n\
hcjR2YdIVw4k5C5oasSTFDbx0JKLR7VKaI/Nbkhme0LAwbTJoSJJ9W6cbXWEW9Fr\n\
l5ub5/dLW9fCTGCbjwTCTffeQYuyDZ1g8MXcKC3HSkUHy+UXKyrWG9nGReX3Pw4M\n\
5cGr4E2TDUBoNFy49+m4to28zEkekpgEJcfygnUtFneuXP0yRmFgqIk1wp8/0zXN\n\
4Hw5/MLrnIkA1upIWDTZwmRg2tolbNQudV8/QCxgBNQd2VoknAw955CrbGaAPDPu\n\
YZ4JkT+D7RvHGWsta6lmR6z9a15u3OByqXW2tZajPzfA\n\
-----END CERTIFICATE-----\n\
";
