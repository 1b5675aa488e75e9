//! What docs/schema.md tells operators to run, run against a real server.

use herald::domain::article::NewArticle;
use herald::domain::feed::FeedSpec;
use herald::store::{Incoming, Store};
use herald::stories::StorySettings;
use sqlx::{Connection, Executor, PgConnection, Row};

use crate::support::db::{Backend, TestDb};

/// The SQL block under `marker` in docs/schema.md.
fn documented_block(marker: &str) -> String {
    let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/schema.md"))
        .expect("docs/schema.md");
    let after = &docs[docs.find(marker).expect("the marker is in docs/schema.md")..];
    let start = after
        .find("```sql\n")
        .expect("a sql block follows the marker")
        + 7;
    let end = start + after[start..].find("```").expect("the block ends");
    after[start..end].to_owned()
}

#[tokio::test]
async fn the_documented_reader_role_reads_articles_and_nothing_secret() {
    let db = TestDb::new(Backend::Postgres).await;
    let database = url::Url::parse(&db.url).unwrap().path()[1..].to_owned();
    let role = format!("reader_{database}");
    store_one_article(&db.store, "https://user:secret@example.com/feed.xml").await;

    let grants = documented_block("<!-- reader-role")
        .replace("herald_reader", &role)
        .replace("DATABASE herald", &format!("DATABASE {database}"));
    let mut admin = PgConnection::connect(&db.url).await.unwrap();
    admin
        .execute(sqlx::AssertSqlSafe(format!("DROP ROLE IF EXISTS {role}")))
        .await
        .unwrap();
    admin.execute(sqlx::AssertSqlSafe(grants)).await.unwrap();

    let mut reader_url = url::Url::parse(&db.url).unwrap();
    reader_url.set_username(&role).unwrap();
    reader_url.set_password(Some("change-me")).unwrap();
    let mut reader = PgConnection::connect(reader_url.as_str()).await.unwrap();
    let titles: Vec<String> = sqlx::query_scalar("SELECT title FROM articles")
        .fetch_all(&mut reader)
        .await
        .unwrap();
    assert_eq!(titles.len(), 1, "the reader sees the stored article");
    let feed_row = sqlx::query("SELECT id, status FROM feeds")
        .fetch_one(&mut reader)
        .await
        .unwrap();
    assert_eq!(feed_row.get::<String, _>("status"), "never");
    let secret = sqlx::query("SELECT url FROM feeds")
        .fetch_one(&mut reader)
        .await;
    assert!(secret.is_err(), "feeds.url (credentials) is not readable");
    let outbox = sqlx::query("SELECT count(*) FROM deliveries")
        .fetch_one(&mut reader)
        .await;
    assert!(outbox.is_err(), "the outbox is not readable");
    let write = sqlx::query("DELETE FROM articles")
        .execute(&mut reader)
        .await;
    assert!(write.is_err(), "the reader cannot write");

    drop(reader);
    admin
        .execute(sqlx::AssertSqlSafe(format!(
            "DROP OWNED BY {role}; DROP ROLE {role}"
        )))
        .await
        .unwrap();
}

async fn store_one_article(store: &Store, feed_url: &str) {
    let feeds = store
        .sync_feeds(&[FeedSpec {
            url: feed_url.to_owned(),
            name: None,
        }])
        .await
        .unwrap();
    let article = NewArticle {
        item_key: "a".into(),
        canonical_url: Some("https://example.com/a".into()),
        url: Some("https://example.com/a".into()),
        title: "Talks resume".into(),
        summary_html: None,
        summary_text: Some("Delegations met in Geneva.".into()),
        content_html: None,
        content_text: None,
        author: None,
        language: None,
        published_at: chrono::Utc::now(),
        updated_at: None,
        fingerprint: "a".into(),
    };
    store
        .save_articles(
            feeds[0].id,
            &[Incoming::from(article)],
            &StorySettings::default(),
            chrono::Utc::now(),
        )
        .await
        .unwrap();
}
