//! A small threaded HTTP/1.1 server for the fakes: plain or TLS (rustls), one request
//! per connection (`Connection: close`), a handler closure that sees every parsed
//! request, and a log of all requests for assertions. Responses can also hang or trickle
//! one byte per second, and a whole server can hang right after `accept`. Everything
//! stops when the `Server` is dropped.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// One request as the server read it.
#[derive(Clone, Debug)]
pub struct Req {
    pub method: String,
    pub path: String,
    /// The raw query string, without `?`.
    pub query: String,
    /// Header names lower-cased, in the order received.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Req {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn query_pairs(&self) -> Vec<(String, String)> {
        parse_form(&self.query)
    }

    pub fn query_param(&self, name: &str) -> Option<String> {
        self.query_pairs()
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    /// The body as `application/x-www-form-urlencoded` pairs, in order.
    pub fn form(&self) -> Vec<(String, String)> {
        parse_form(&String::from_utf8_lossy(&self.body))
    }

    pub fn form_value(&self, name: &str) -> Option<String> {
        self.form()
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// How the server delivers a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    Normal,
    /// Read the request, then never answer (until the server stops).
    Hang,
    /// Write the response one byte per second.
    Trickle,
}

#[derive(Clone, Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub delivery: Delivery,
}

impl Resp {
    pub fn new(status: u16) -> Resp {
        Resp {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            delivery: Delivery::Normal,
        }
    }

    pub fn json(status: u16, value: &serde_json::Value) -> Resp {
        Resp::new(status)
            .header("content-type", "application/json; charset=utf-8")
            .body(value.to_string())
    }

    pub fn text(status: u16, text: &str) -> Resp {
        Resp::new(status)
            .header("content-type", "text/plain")
            .body(text)
    }

    pub fn hang() -> Resp {
        Resp {
            delivery: Delivery::Hang,
            ..Resp::new(200)
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Resp {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Resp {
        self.body = body.into();
        self
    }

    pub fn trickle(mut self) -> Resp {
        self.delivery = Delivery::Trickle;
        self
    }

    fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!("HTTP/1.1 {} {}\r\n", self.status, reason(self.status));
        for (k, v) in &self.headers {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        out.push_str(&format!(
            "content-length: {}\r\nconnection: close\r\n\r\n",
            self.body.len()
        ));
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(&self.body);
        bytes
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        302 => "Found",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}

type Handler = dyn Fn(&Req) -> Resp + Send + Sync;

/// What the server does with each accepted connection.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Serve,
    /// Accept, then hold the connection without reading or writing.
    HangAfterAccept,
}

struct Shared {
    stop: AtomicBool,
    requests: Mutex<Vec<Req>>,
    connections: Mutex<usize>,
    /// Answers given instead of the handler's to the next requests for a path: a service
    /// that throttles, scripted.
    refusals: Mutex<Vec<(String, Resp)>>,
}

/// A running fake server; stops on drop.
pub struct Server {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept_thread: Option<thread::JoinHandle<()>>,
}

impl Server {
    /// Serve `handler` on `127.0.0.1:0`, over TLS when `tls` is given.
    pub fn start(
        tls: Option<Arc<rustls::ServerConfig>>,
        handler: impl Fn(&Req) -> Resp + Send + Sync + 'static,
    ) -> Server {
        Server::spawn(tls, Mode::Serve, Arc::new(handler))
    }

    /// A server that accepts connections and then never says anything (no TLS
    /// handshake either): a black-holed endpoint.
    pub fn hang_after_accept() -> Server {
        Server::spawn(
            None,
            Mode::HangAfterAccept,
            Arc::new(|_: &Req| Resp::new(500)),
        )
    }

    fn spawn(tls: Option<Arc<rustls::ServerConfig>>, mode: Mode, handler: Arc<Handler>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            requests: Mutex::new(Vec::new()),
            connections: Mutex::new(0),
            refusals: Mutex::new(Vec::new()),
        });
        let s = shared.clone();
        let accept_thread = thread::spawn(move || {
            for stream in listener.incoming() {
                if s.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                *s.connections.lock().unwrap() += 1;
                let s = s.clone();
                let handler = handler.clone();
                let tls = tls.clone();
                thread::spawn(move || match mode {
                    Mode::HangAfterAccept => {
                        wait_for_stop(&s, Duration::from_secs(600));
                        let _ = stream.shutdown(Shutdown::Both);
                    }
                    Mode::Serve => serve_connection(stream, tls, &s, &*handler),
                });
            }
        });
        Server {
            addr,
            shared,
            accept_thread: Some(accept_thread),
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Every request read so far, in arrival order.
    pub fn requests(&self) -> Vec<Req> {
        self.shared.requests.lock().unwrap().clone()
    }

    pub fn request_count(&self) -> usize {
        self.shared.requests.lock().unwrap().len()
    }

    /// Answer the next `times` requests for `path` with `resp` instead of the handler's
    /// answer (they are still recorded).
    pub fn refuse(&self, path: &str, resp: Resp, times: usize) {
        let mut refusals = self.shared.refusals.lock().unwrap();
        refusals.extend(std::iter::repeat_n((path.to_string(), resp), times));
    }

    /// Accepted TCP connections, whether or not a request was read.
    pub fn connection_count(&self) -> usize {
        *self.shared.connections.lock().unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(t) = self.accept_thread.take() {
            let _ = t.join();
        }
    }
}

/// A port on 127.0.0.1 where nothing listens (bound, then released).
pub fn dead_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn wait_for_stop(shared: &Shared, limit: Duration) {
    let start = Instant::now();
    while !shared.stop.load(Ordering::SeqCst) && start.elapsed() < limit {
        thread::sleep(Duration::from_millis(50));
    }
}

fn serve_connection(
    stream: TcpStream,
    tls: Option<Arc<rustls::ServerConfig>>,
    shared: &Shared,
    handler: &Handler,
) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(30)));
    match tls {
        Some(config) => {
            let Ok(conn) = rustls::ServerConnection::new(config) else {
                return;
            };
            serve_stream(rustls::StreamOwned::new(conn, stream), shared, handler);
        }
        None => serve_stream(stream, shared, handler),
    }
}

fn serve_stream<S: Read + Write>(stream: S, shared: &Shared, handler: &Handler) {
    let mut reader = BufReader::new(stream);
    let Some(req) = read_request(&mut reader) else {
        return;
    };
    shared.requests.lock().unwrap().push(req.clone());
    let refusal = {
        let mut refusals = shared.refusals.lock().unwrap();
        let at = refusals.iter().position(|(path, _)| *path == req.path);
        at.map(|at| refusals.remove(at).1)
    };
    let resp = refusal.unwrap_or_else(|| handler(&req));
    let stream = reader.get_mut();
    match resp.delivery {
        Delivery::Normal => {
            let _ = stream.write_all(&resp.to_bytes());
            let _ = stream.flush();
        }
        Delivery::Hang => wait_for_stop(shared, Duration::from_secs(600)),
        Delivery::Trickle => {
            for byte in resp.to_bytes() {
                if shared.stop.load(Ordering::SeqCst)
                    || stream.write_all(&[byte]).is_err()
                    || stream.flush().is_err()
                {
                    return;
                }
                thread::sleep(Duration::from_secs(1));
            }
        }
    }
}

fn read_line<R: BufRead>(reader: &mut R) -> Option<String> {
    let mut line = Vec::new();
    let n = reader.read_until(b'\n', &mut line).ok()?;
    if n == 0 {
        return None;
    }
    while line.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        line.pop();
    }
    Some(String::from_utf8_lossy(&line).into_owned())
}

fn read_request<R: BufRead>(reader: &mut R) -> Option<Req> {
    let request_line = read_line(reader)?;
    let mut parts = request_line.split(' ');
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (target, String::new()),
    };
    let mut headers = Vec::new();
    loop {
        let line = read_line(reader)?;
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let get = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let mut body = Vec::new();
    if get("transfer-encoding").is_some_and(|v| v.to_ascii_lowercase().contains("chunked")) {
        loop {
            let size_line = read_line(reader)?;
            let size_hex = size_line.split(';').next()?.trim();
            let size = usize::from_str_radix(size_hex, 16).ok()?;
            if size == 0 {
                // Trailers until the empty line.
                while !read_line(reader)?.is_empty() {}
                break;
            }
            let mut chunk = vec![0; size];
            reader.read_exact(&mut chunk).ok()?;
            body.extend_from_slice(&chunk);
            read_line(reader)?;
        }
    } else if let Some(len) = get("content-length").and_then(|v| v.parse::<usize>().ok()) {
        body = vec![0; len];
        reader.read_exact(&mut body).ok()?;
    }
    Some(Req {
        method,
        path,
        query,
        headers,
        body,
    })
}

/// Decode `application/x-www-form-urlencoded` text into ordered pairs.
pub fn parse_form(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

pub fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("zz");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 2;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
