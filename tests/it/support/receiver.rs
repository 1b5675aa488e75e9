//! A real webhook receiver on 127.0.0.1 (ephemeral port) inside the test process.
//!
//! Records every request (path, headers, exact body bytes, arrival time) and answers
//! each path from a script the test sets: the n-th hit gets the n-th [`Reply`], the
//! last one repeats; a path without a script answers 200 `ok`. It can be stopped
//! (connections refused) and restarted on the same port, to play a sink outage.
//! Knows nothing of herald.
//!
//! Start it inside the test's tokio runtime; it stops when that runtime ends.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::Response;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub struct Receiver {
    addr: SocketAddr,
    shared: Arc<Shared>,
    running: Mutex<Option<Running>>,
}

struct Running {
    shutdown: oneshot::Sender<()>,
    server: JoinHandle<()>,
}

#[derive(Default)]
struct Shared {
    paths: Mutex<HashMap<String, PathState>>,
}

#[derive(Default)]
struct PathState {
    script: Vec<Reply>,
    requests: Vec<ReceivedRequest>,
}

/// One request as the receiver saw it.
#[derive(Clone, Debug)]
pub struct ReceivedRequest {
    pub method: String,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// When its headers arrived.
    pub arrived: Instant,
}

impl ReceivedRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// One scripted answer.
#[derive(Clone, Debug)]
pub struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
    delay: Duration,
}

impl Reply {
    /// `status` with a body naming it.
    pub fn status(status: u16) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: format!("status {status}"),
            delay: Duration::ZERO,
        }
    }

    pub fn ok() -> Reply {
        Reply::status(200).with_body("ok")
    }

    pub fn with_body(mut self, body: &str) -> Reply {
        self.body = body.to_owned();
        self
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn with_retry_after(self, value: &str) -> Reply {
        self.with_header("retry-after", value)
    }

    /// Waits `delay` before answering.
    pub fn delayed(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }
}

impl Receiver {
    pub async fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared::default());
        let running = serve(listener, Arc::clone(&shared));
        Receiver {
            addr,
            shared,
            running: Mutex::new(Some(running)),
        }
    }

    /// `http://127.0.0.1:PORT{path}`; `path` starts with `/`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Sets how `path` answers from now on, hit after hit; records are kept.
    pub fn script(&self, path: &str, replies: Vec<Reply>) {
        self.with_path(path, |state| state.script = replies);
    }

    pub fn requests(&self, path: &str) -> Vec<ReceivedRequest> {
        self.with_path(path, |state| state.requests.clone())
    }

    /// Waits until `path` has received `count` requests and returns them; panics
    /// after `timeout`.
    pub async fn wait_for(
        &self,
        path: &str,
        count: usize,
        timeout: Duration,
    ) -> Vec<ReceivedRequest> {
        let deadline = Instant::now() + timeout;
        loop {
            let requests = self.requests(path);
            if requests.len() >= count {
                return requests;
            }
            assert!(
                Instant::now() < deadline,
                "{path}: {} requests after {timeout:?}, expected {count}",
                requests.len()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Closes the listener and every connection (after answering requests in
    /// flight): from now on connections to the port are refused.
    pub async fn stop(&self) {
        let running = self.running.lock().unwrap().take();
        if let Some(running) = running {
            let _ = running.shutdown.send(());
            running.server.await.unwrap();
        }
    }

    /// Listens again on the same port, keeping scripts and records.
    pub async fn restart(&self) {
        self.stop().await;
        let listener = TcpListener::bind(self.addr).await.unwrap();
        let running = serve(listener, Arc::clone(&self.shared));
        *self.running.lock().unwrap() = Some(running);
    }

    fn with_path<T>(&self, path: &str, f: impl FnOnce(&mut PathState) -> T) -> T {
        self.shared.with_path(path, f)
    }
}

impl Shared {
    fn with_path<T>(&self, path: &str, f: impl FnOnce(&mut PathState) -> T) -> T {
        let mut paths = self.paths.lock().unwrap();
        f(paths.entry(path.to_owned()).or_default())
    }
}

fn serve(listener: TcpListener, shared: Arc<Shared>) -> Running {
    let (shutdown, signal) = oneshot::channel::<()>();
    let app = Router::new().fallback(receive).with_state(shared);
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = signal.await;
            })
            .await
            .unwrap();
    });
    Running { shutdown, server }
}

async fn receive(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let arrived = Instant::now();
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 10 << 20).await.unwrap();
    let path = parts.uri.path().to_owned();
    let recorded = ReceivedRequest {
        method: parts.method.to_string(),
        path: path.clone(),
        headers: parts.headers,
        body,
        arrived,
    };
    let reply = shared.with_path(&path, |state| {
        state.requests.push(recorded);
        let hit = state.requests.len() - 1;
        state
            .script
            .get(hit.min(state.script.len().saturating_sub(1)))
            .cloned()
    });
    let reply = reply.unwrap_or_else(Reply::ok);
    tokio::time::sleep(reply.delay).await;
    respond(reply)
}

fn respond(reply: Reply) -> Response {
    let mut response = Response::new(Body::from(reply.body));
    *response.status_mut() = StatusCode::from_u16(reply.status).unwrap();
    for (name, value) in reply.headers {
        response.headers_mut().insert(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(&value).unwrap(),
        );
    }
    response
}
