//! Checks of the fakes themselves, independent of the helper binary: a failing test
//! elsewhere then points at the helper, not at the test rig. Uses a tiny rustls client
//! that trusts only the test CA, and runs the fake CLIs through `/bin/sh -c` the way
//! the Azure SDK does.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::sync::Arc;

use serde_json::Value;

use crate::support::*;

/// One HTTP/1.1 exchange over TLS to 127.0.0.1:port with SNI `name`.
fn https(port: u16, name: &str, request: &str) -> (u16, String, String) {
    let mut roots = rustls::RootCertStore::empty();
    let ca = rustls::pki_types::CertificateDer::from(
        base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            tls::pki()
                .ca_pem
                .lines()
                .filter(|l| !l.starts_with("-----"))
                .collect::<String>(),
        )
        .unwrap(),
    );
    roots.add(ca).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let server_name = rustls::pki_types::ServerName::try_from(name.to_string()).unwrap();
    let conn = rustls::ClientConnection::new(Arc::new(config), server_name).unwrap();
    let sock = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut stream = rustls::StreamOwned::new(conn, sock);
    stream.write_all(request.as_bytes()).unwrap();
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    split_response(&String::from_utf8_lossy(&raw))
}

fn plain(port: u16, request: &str) -> (u16, String, String) {
    let mut sock = TcpStream::connect(("127.0.0.1", port)).unwrap();
    sock.write_all(request.as_bytes()).unwrap();
    let mut raw = String::new();
    sock.read_to_string(&mut raw).unwrap();
    split_response(&raw)
}

fn split_response(raw: &str) -> (u16, String, String) {
    let (head, body) = raw.split_once("\r\n\r\n").expect("a full response");
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head.to_ascii_lowercase(), body.to_string())
}

fn post_form(path: &str, host: &str, body: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
}

#[test]
fn fake_entra_issues_tokens_for_the_scope() {
    let entra = FakeEntra::start();
    let body = "grant_type=client_credentials&client_id=app&client_secret=s&scope=https%3A%2F%2Fmanagement.azure.com%2F.default";
    let (status, _, text) = https(
        entra.server.port(),
        "localhost",
        &post_form("/tenant-x/oauth2/v2.0/token", "localhost", body),
    );
    assert_eq!(status, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["expires_in"], 3599);
    let (_, claims) = jwt::decode(v["access_token"].as_str().unwrap());
    assert_eq!(claims["aud"], ARM_AUDIENCE);
    assert_eq!(claims["tid"], "tenant-x");
    assert_eq!(claims["appid"], "app");
    assert_eq!(entra.token_requests()[0].scope(), ARM_SCOPE);
    entra.set_mode(EntraMode::Fail(401));
    let (status, _, text) = https(
        entra.server.port(),
        "localhost",
        &post_form("/tenant-x/oauth2/v2.0/token", "localhost", body),
    );
    assert_eq!(status, 401);
    assert!(text.contains("AADSTS7000215"), "{text}");
}

#[test]
fn fake_acr_challenges_and_exchanges_with_chunked_bodies() {
    let acr = FakeAcr::start("myacr.azurecr.io");
    let (status, head, _) = https(
        acr.port(),
        "myacr.azurecr.io",
        "GET /v2/ HTTP/1.1\r\nhost: myacr.azurecr.io\r\n\r\n",
    );
    assert_eq!(status, 401);
    assert!(
        head.contains(r#"www-authenticate: bearer realm="https://myacr.azurecr.io/oauth2/token",service="myacr.azurecr.io""#),
        "{head}"
    );
    let token = jwt::entra_access_token(ACR_AUDIENCE, "t1", "oid", "app");
    let body =
        format!("grant_type=access_token&service=myacr.azurecr.io&tenant=t1&access_token={token}");
    let half = body.len() / 2;
    let chunked = format!(
        "POST /oauth2/exchange HTTP/1.1\r\nhost: myacr.azurecr.io\r\ncontent-type: application/x-www-form-urlencoded\r\ntransfer-encoding: chunked\r\n\r\n{:x}\r\n{}\r\n{:x}\r\n{}\r\n0\r\n\r\n",
        half,
        &body[..half],
        body.len() - half,
        &body[half..]
    );
    let (status, _, text) = https(acr.port(), "myacr.azurecr.io", &chunked);
    assert_eq!(status, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    let (_, claims) = jwt::decode(v["refresh_token"].as_str().unwrap());
    assert_eq!(claims["aud"], "myacr.azurecr.io");
    assert_eq!(claims["tenant"], "t1");
    assert!(claims["exp"].as_i64().unwrap() > jwt::now() + 3 * 3600);
    assert_eq!(acr.exchanges()[0].get("access_token"), Some(token.as_str()));

    acr.reject_audience(ACR_AUDIENCE);
    let (status, _, text) = https(
        acr.port(),
        "myacr.azurecr.io",
        &post_form("/oauth2/exchange", "myacr.azurecr.io", &body),
    );
    assert_eq!(status, 401, "{text}");
    assert!(text.contains("UNAUTHORIZED"));
    assert_eq!(acr.issued().len(), 1);
}

#[test]
fn fake_identity_endpoints_answer_like_azure() {
    let msi = FakeAppService::start();
    let req = format!(
        "GET /msi/token?api-version=2019-08-01&resource=https://containerregistry.azure.net&client_id=u1 HTTP/1.1\r\nhost: x\r\nmetadata: true\r\nx-identity-header: {}\r\n\r\n",
        msi.secret
    );
    let (status, _, text) = plain(msi.server.port(), &req);
    assert_eq!(status, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert!(v["expires_on"].is_string());
    assert_eq!(v["client_id"], "u1");
    assert_eq!(
        jwt::decode(v["access_token"].as_str().unwrap()).1["aud"],
        ACR_AUDIENCE
    );
    let (status, _, _) = plain(
        msi.server.port(),
        "GET /msi/token?api-version=2019-08-01&resource=r HTTP/1.1\r\nmetadata: true\r\n\r\n",
    );
    assert_eq!(status, 400);

    let imds = FakeImds::start();
    let (status, _, text) = plain(
        imds.server.port(),
        "GET /metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://containerregistry.azure.net HTTP/1.1\r\nmetadata: true\r\n\r\n",
    );
    assert_eq!(status, 200, "{text}");
    assert_eq!(imds.token_requests().len(), 1);
}

#[test]
fn fake_cli_scripts_answer_through_sh() {
    let env = TestEnv::new();
    let az = FakeCli::install(&env.bin, Tool::Az, CliMode::Ok);
    let azd = FakeCli::install(&env.bin, Tool::Azd, CliMode::Ok);
    let run = |cmd: &str| {
        let out = Command::new("/bin/sh")
            .arg("-c")
            .arg(cmd)
            .env_clear()
            .env("PATH", format!("{}:/usr/bin:/bin", env.bin.display()))
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    let v = run(
        "cd /bin && az account get-access-token -o json --scope https://management.azure.com/.default --tenant t",
    );
    assert_eq!(v["accessToken"], az.arm_token.as_str());
    assert_eq!(v["expires_on"], 1_893_456_000);
    let v = run(
        "cd /bin && azd auth token --output json --scope https://containerregistry.azure.net/.default",
    );
    assert_eq!(v["token"], azd.acr_token.as_str());
    assert_eq!(az.scopes(), [ARM_SCOPE]);
    assert_eq!(azd.scopes(), [ACR_SCOPE]);
    assert_eq!(az.invocations()[0].last().map(String::as_str), Some("t"));
}
