//! Waiting on a running herald from outside: bounded polls of a condition, its
//! readiness endpoint, a port to give it.

use std::time::{Duration, Instant};

/// Waits until `check` holds, at most `timeout`; `what` names it in the panic.
pub async fn wait_until<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(Instant::now() < deadline, "{what}: not within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `GET {base}/readyz`: its status and body, or `(0, why)` when it cannot be asked.
pub async fn readiness(base: &str) -> (u16, String) {
    match reqwest::get(format!("{base}/readyz")).await {
        Ok(response) => (
            response.status().as_u16(),
            response.text().await.unwrap_or_default(),
        ),
        Err(error) => (0, error.to_string()),
    }
}

/// A port free on 127.0.0.1 a moment ago, for a herald's `[api] listen`.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}
