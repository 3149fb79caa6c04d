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
    "fabrikam.azurecr.cn",
    "contoso.azurecr.us",
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
