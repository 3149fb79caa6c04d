//! The bridge from `azure_core` to our `ureq` agent: `AzureTransport` implements
//! `azure_core`'s `HttpClient` by running each request on a short-lived thread (see
//! `http::send_async`), so `azure_identity` credentials share our one TLS stack, our
//! timeouts, our no-redirect rule and our throttling rule (`throttle`: a 429 or 503 is
//! waited out below `azure_core`'s retry policy, or fails with its facts kept here for
//! `entra::token`, never as a response that policy would wait on). It also points the
//! fixed IMDS address at `AZURE_POD_IDENTITY_AUTHORITY_HOST` when that is set, as the
//! other Azure SDKs do.

use std::sync::{Arc, Mutex};

use azure_core::http::headers::Headers;
use azure_core::http::{AsyncRawResponse, Body, ClientOptions, HttpClient, Request, StatusCode};
use azure_core::http::{FixedRetryOptions, RetryOptions, Transport};

use crate::http::{Failure, Http, HttpError, HttpRequest, send_async};

/// The address `azure_identity` uses for VM managed identity.
pub const IMDS_BASE: &str = "http://169.254.169.254";

#[derive(Debug, Clone)]
pub struct AzureTransport {
    http: Http,
    imds_base: Option<String>,
    /// The last throttled request's error, shared by every clone.
    throttled: Arc<Mutex<Option<HttpError>>>,
    /// The last request that got no answer at all (refused, unresolved, timed out, TLS):
    /// a network failure to report as one, not as a credential problem.
    unreachable: Arc<Mutex<Option<HttpError>>>,
}

impl AzureTransport {
    pub fn new(http: Http, imds_base: Option<String>) -> AzureTransport {
        AzureTransport {
            http,
            imds_base,
            throttled: Arc::default(),
            unreachable: Arc::default(),
        }
    }

    /// The error of a request that stayed throttled, if one did: what the credential's
    /// failure really was.
    pub fn throttled(&self) -> Option<HttpError> {
        self.throttled.lock().ok()?.take()
    }

    /// The error of the last request that got no answer, if one did.
    pub fn unreachable(&self) -> Option<HttpError> {
        self.unreachable.lock().ok()?.take()
    }

    /// Client options every credential gets: this transport, one quick retry (connection
    /// failures and 5xx answers other than 503; throttling never reaches it, see the
    /// module), and the authority host (always set explicitly, so no crate reads the
    /// environment for it).
    pub fn client_options(&self, authority_host: &str) -> ClientOptions {
        let mut cloud = azure_core::cloud::CustomConfiguration::default();
        cloud.authority_host = authority_host.to_string();
        let timeout = self.http.timeout();
        ClientOptions {
            transport: Some(Transport::new(Arc::new(self.clone()))),
            retry: RetryOptions::fixed(FixedRetryOptions {
                delay: azure_core::time::Duration::milliseconds(300),
                max_retries: 1,
                max_total_elapsed: azure_core::time::Duration::milliseconds(
                    timeout.as_millis() as i64
                ),
            }),
            cloud: Some(Arc::new(azure_core::cloud::CloudConfiguration::Custom(
                cloud,
            ))),
            ..ClientOptions::default()
        }
    }

    fn target_url(&self, url: &str) -> String {
        match &self.imds_base {
            Some(base) if url.starts_with(IMDS_BASE) => {
                format!("{}{}", base.trim_end_matches('/'), &url[IMDS_BASE.len()..])
            }
            _ => url.to_string(),
        }
    }
}

#[async_trait::async_trait]
impl HttpClient for AzureTransport {
    async fn execute_request(&self, request: &Request) -> azure_core::Result<AsyncRawResponse> {
        let url = self.target_url(request.url().as_str());
        let headers = request
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), v.as_str().to_string()))
            .collect();
        let body = match request.body() {
            Body::Bytes(b) if b.is_empty() => None,
            Body::Bytes(b) => Some(b.to_vec()),
            Body::SeekableStream(_) => {
                return Err(azure_core::Error::with_message(
                    azure_core::error::ErrorKind::Other,
                    "streaming request bodies are not supported",
                ));
            }
        };
        let outgoing = HttpRequest {
            method: request.method().as_str(),
            url,
            headers,
            body,
        };
        let response = send_async(self.http.clone(), outgoing).await.map_err(|e| {
            // Connection failures may be retried; TLS and timeouts would only fail again,
            // and a throttled request has had all the waiting its budget allows.
            let kind = match e.failure {
                Failure::Connect => azure_core::error::ErrorKind::Connection,
                Failure::NotResolved
                | Failure::Timeout
                | Failure::Tls
                | Failure::Throttled(_)
                | Failure::Other => azure_core::error::ErrorKind::Other,
            };
            let message = e.message.clone();
            let slot = match e.failure {
                Failure::Throttled(_) => Some(&self.throttled),
                Failure::Connect | Failure::NotResolved | Failure::Timeout | Failure::Tls => {
                    Some(&self.unreachable)
                }
                Failure::Other => None,
            };
            if let Some(Ok(mut slot)) = slot.map(|s| s.lock()) {
                *slot = Some(e);
            }
            azure_core::Error::with_message(kind, message)
        })?;
        let mut headers = Headers::new();
        for (k, v) in response.headers {
            headers.insert(k.to_ascii_lowercase(), v);
        }
        Ok(AsyncRawResponse::from_bytes(
            StatusCode::from(response.status),
            headers,
            response.body,
        ))
    }
}
