//! What the benches share: a fresh PostgreSQL database when a server is given.

use sqlx::{Connection, Executor};

/// A new, empty database on the server named by HERALD_BENCH_DATABASE_URL,
/// TEST_DATABASE_URL or DATABASE_URL; `None` when none is set or reachable.
pub async fn postgres_url(bench: &str) -> Option<String> {
    let server = [
        "HERALD_BENCH_DATABASE_URL",
        "TEST_DATABASE_URL",
        "DATABASE_URL",
    ]
    .iter()
    .find_map(|name| std::env::var(name).ok())?;
    let mut admin = sqlx::PgConnection::connect(&server).await.ok()?;
    let name = format!("herald_bench_{bench}_{}", std::process::id());
    admin
        .execute(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name}"
        )))
        .await
        .ok()?;
    admin
        .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .await
        .ok()?;
    let mut url = url::Url::parse(&server).ok()?;
    url.set_path(&format!("/{name}"));
    Some(url.to_string())
}

/// Drops a database made by [`postgres_url`] once its bench is done.
pub async fn drop_postgres_database(url: &str) {
    let Ok(mut parsed) = url::Url::parse(url) else {
        return;
    };
    let name = parsed.path().trim_start_matches('/').to_owned();
    parsed.set_path("/postgres");
    if let Ok(mut admin) = sqlx::PgConnection::connect(parsed.as_str()).await {
        let _ = admin
            .execute(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
            )))
            .await;
    }
}
