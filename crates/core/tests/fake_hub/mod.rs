//! A stand-in for the Hugging Face Hub on 127.0.0.1 (std::net, one request per connection):
//! serves `/{repo}/resolve/{revision}/{file}` as the Hub does and records every request.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// Header names in lowercase.
    pub headers: HashMap<String, String>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(&name.to_ascii_lowercase()).map(String::as_str)
    }
}

/// An answer: status, headers and body.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn new(status: u16) -> Self {
        Self { status, headers: Vec::new(), body: Vec::new() }
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }
}

/// A repo of the fake Hub: its files at one commit on `main`.
#[derive(Debug, Clone)]
pub struct Repo {
    pub id: String,
    pub commit: String,
    pub files: HashMap<String, Vec<u8>>,
}

impl Repo {
    pub fn new(id: &str, commit: &str, files: &[(&str, &[u8])]) -> Self {
        let files = files.iter().map(|(name, bytes)| ((*name).to_owned(), bytes.to_vec())).collect();
        Self { id: id.to_owned(), commit: commit.to_owned(), files }
    }
}

/// The etag the fake Hub gives `bytes` (hex, so it is also a blob file name).
pub fn etag_of(bytes: &[u8]) -> String {
    use std::hash::{Hash, Hasher};
    let mut a = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut a);
    let mut b = std::collections::hash_map::DefaultHasher::new();
    (bytes, 1u8).hash(&mut b);
    format!("{:016x}{:016x}", a.finish(), b.finish())
}

/// Answer `req` as the Hub's `resolve` endpoint would for `repos`; `redirects` maps an old repo
/// id to its new one (answered with a relative 307, as the Hub does for renamed repos); a
/// repo in `private` answers 401 unless the request has `Authorization: Bearer <token>`.
pub fn resolve(req: &Request, repos: &[Repo], redirects: &[(&str, &str)], private: Option<(&str, &str)>) -> Response {
    let path = req.path.split('?').next().unwrap_or_default();
    let Some((repo_id, rest)) = path.strip_prefix('/').and_then(|p| p.split_once("/resolve/")) else {
        return Response::new(404).header("X-Error-Code", "RepoNotFound");
    };
    if let Some((_, new)) = redirects.iter().find(|(old, _)| *old == repo_id) {
        return Response::new(307).header("Location", format!("/{new}/resolve/{rest}"));
    }
    let Some(repo) = repos.iter().find(|r| r.id == repo_id) else {
        return Response::new(404).header("X-Error-Code", "RepoNotFound");
    };
    if let Some((private_repo, token)) = private {
        if private_repo == repo_id && req.header("authorization") != Some(&format!("Bearer {token}")) {
            return Response::new(401).header("X-Error-Code", "GatedRepo");
        }
    }
    let Some((revision, file)) = rest.split_once('/') else {
        return Response::new(404).header("X-Error-Code", "RevisionNotFound");
    };
    if revision != "main" && revision != repo.commit {
        return Response::new(404).header("X-Error-Code", "RevisionNotFound");
    }
    let Some(bytes) = repo.files.get(file) else {
        return Response::new(404).header("X-Error-Code", "EntryNotFound").header("X-Repo-Commit", &repo.commit);
    };
    let common =
        |r: Response| r.header("ETag", format!("\"{}\"", etag_of(bytes))).header("X-Repo-Commit", &repo.commit);
    match req.header("range").and_then(|r| r.strip_prefix("bytes=")).and_then(|r| r.split_once('-')) {
        Some((start, end)) => {
            let start: usize = start.parse().unwrap_or(0).min(bytes.len());
            let end: usize = end.parse().map(|e: usize| e + 1).unwrap_or(bytes.len()).min(bytes.len());
            let mut r = common(Response::new(206))
                .header("Content-Range", format!("bytes {start}-{}/{}", end.saturating_sub(1), bytes.len()));
            r.body = bytes[start..end.max(start)].to_vec();
            r
        }
        None => {
            let mut r = common(Response::new(200));
            r.body = bytes.clone();
            r
        }
    }
}

/// The Hub's current answer for small files: a relative 307 from
/// `/{repo}/resolve/{revision}/{file}` to `/api/resolve-cache/models/{repo}/{commit}/{file}?...`,
/// which then answers as `resolve` at the commit.
pub fn resolve_via_cache_api(req: &Request, repos: &[Repo]) -> Response {
    if let Some(rest) = req.path.strip_prefix("/api/resolve-cache/models/") {
        let rest = rest.split('?').next().unwrap_or_default();
        let mut parts = rest.splitn(4, '/');
        let (Some(org), Some(name), Some(commit), Some(file)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Response::new(404);
        };
        let inner = Request { path: format!("/{org}/{name}/resolve/{commit}/{file}"), ..req.clone() };
        return resolve(&inner, repos, &[], None);
    }
    let path = req.path.split('?').next().unwrap_or_default();
    let found = path.strip_prefix('/').and_then(|p| p.split_once("/resolve/")).and_then(|(repo_id, rest)| {
        let repo = repos.iter().find(|r| r.id == repo_id)?;
        let (_, file) = rest.split_once('/')?;
        Some((repo, file))
    });
    match found {
        Some((repo, file)) => Response::new(307)
            .header("Location", format!("/api/resolve-cache/models/{}/{}/{file}?etag=%22x%22", repo.id, repo.commit)),
        None => resolve(req, repos, &[], None),
    }
}

/// The server: runs until dropped.
pub struct FakeHub {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<Request>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FakeHub {
    /// Serve with `handler` on a free port of 127.0.0.1.
    pub fn start(handler: impl Fn(&Request) -> Response + Send + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (seen, stopped) = (requests.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    if let Some(req) = read_request(&stream) {
                        let response = handler(&req);
                        seen.lock().unwrap().push(req.clone());
                        write_response(stream, &req, &response);
                    }
                }
            }
        });
        Self { addr, requests, stop, thread: Some(thread) }
    }

    /// Serve `repos` as the Hub does.
    pub fn serving(repos: Vec<Repo>) -> Self {
        Self::start(move |req| resolve(req, &repos, &[], None))
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The requests so far, in order.
    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    /// Forget the requests so far.
    pub fn clear(&self) {
        self.requests.lock().unwrap().clear();
    }
}

impl Drop for FakeHub {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn read_request(stream: &TcpStream) -> Option<Request> {
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_owned(), parts.next()?.to_owned());
    let mut headers = HashMap::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            break;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
        }
    }
    Some(Request { method, path, headers })
}

fn write_response(mut stream: TcpStream, req: &Request, response: &Response) {
    let mut head = format!(
        "HTTP/1.1 {} Fake\r\nConnection: close\r\nContent-Length: {}\r\n",
        response.status,
        response.body.len()
    );
    for (name, value) in &response.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes());
    if req.method != "HEAD" {
        let _ = stream.write_all(&response.body);
    }
    let _ = stream.flush();
}

/// Whether a proxy variable that ureq 2 reads (for every host, `NO_PROXY` is not read) is set:
/// requests to 127.0.0.1 would then go to the proxy.
pub fn proxy_in_env() -> Option<&'static str> {
    ["ALL_PROXY", "all_proxy", "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"]
        .into_iter()
        .find(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()))
}
