//! Indexed search: the index only narrows which articles the matcher reads, so
//! a search answers exactly what reading every article would, whether the
//! articles are indexed, waiting in the backlog, changed since, or removed.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use futures::StreamExt;
use herald::domain::article::{ArticleCursor, ArticleText, NewArticle};
use herald::domain::feed::FeedSpec;
use herald::rules::{Document, Matcher, Rule, RuleQuery};
use herald::search::{self, FeedInfo, Scan};
use herald::store::{Incoming, Store};
use herald::stories::StorySettings;
use proptest::prelude::*;
use proptest::test_runner::{TestCaseError, TestRunner};

use crate::both_backends;
use crate::support::db::{Backend, TestDb};

/// Words articles are written from: forms the matcher folds together
/// (possessives, case, accents), forms it keeps apart (`Iranian`), phrases,
/// joined words, a script without spaces.
const TEXT_WORDS: &[&str] = &[
    "Iran",
    "Iran's",
    "Iranian",
    "Irán",
    "IRAN",
    "North Korea",
    "North",
    "Korea",
    "north-korean",
    "sanctions",
    "talks",
    "Tehran",
    "oil",
    "al-Qaeda",
    "U.S.",
    "北朝鮮",
    "nuclear",
    "nuclear-armed",
    "deal",
    "Pyongyang",
    "O'Neill",
    "C:\\temp",
    "the",
    "and",
];

/// Terms queries are written from: words, prefixes, phrases.
const QUERY_TERMS: &[&str] = &[
    "iran",
    "iran*",
    "\"north korea\"",
    "korea",
    "sanctions",
    "talks",
    "tehran",
    "oil",
    "al-qaeda",
    "u.s.",
    "北朝鮮",
    "nuc*",
    "irán",
    "pyongyang",
    "deal",
    "n*",
    "o'neill",
    "\"c:\\temp\"",
];

/// Words a NEAR pair may join.
const NEAR_WORDS: &[&str] = &["iran", "korea", "sanctions", "talks", "oil", "deal"];

const FIELDS: &[&str] = &["title:", "summary:", "content:", "author:", "feed:", "tag:"];

fn now() -> DateTime<Utc> {
    Utc::now()
}

fn text(max: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(TEXT_WORDS), 0..max).prop_map(|w| w.join(" "))
}

#[derive(Debug, Clone)]
struct GeneratedArticle {
    title: String,
    summary: String,
    content: String,
    author: String,
}

fn article() -> impl Strategy<Value = GeneratedArticle> {
    (text(6), text(12), text(12), text(3)).prop_map(|(title, summary, content, author)| {
        GeneratedArticle {
            // A title is never empty.
            title: if title.is_empty() {
                "Update".into()
            } else {
                title
            },
            summary,
            content,
            author,
        }
    })
}

fn query() -> impl Strategy<Value = String> {
    let term = prop::sample::select(QUERY_TERMS).prop_map(str::to_owned);
    let fielded = (
        prop::sample::select(FIELDS),
        prop::sample::select(QUERY_TERMS),
    )
        .prop_map(|(field, term)| format!("{field}{term}"));
    let near = (
        prop::sample::select(NEAR_WORDS),
        1..5u32,
        prop::sample::select(NEAR_WORDS),
    )
        .prop_map(|(a, n, b)| format!("{a} NEAR/{n} {b}"));
    let atom = prop_oneof![4 => term, 2 => fielded, 1 => near];
    atom.prop_recursive(3, 12, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} {b})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} OR {b})")),
            (inner.clone(), inner).prop_map(|(a, b)| format!("({a} NOT {b})")),
        ]
    })
}

#[derive(Debug, Clone)]
struct Case {
    indexed: Vec<GeneratedArticle>,
    waiting: Vec<GeneratedArticle>,
    queries: Vec<String>,
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop::collection::vec(article(), 1..10),
        prop::collection::vec(article(), 0..5),
        prop::collection::vec(query(), 1..8),
    )
        .prop_map(|(indexed, waiting, queries)| Case {
            indexed,
            waiting,
            queries,
        })
}

/// Stores `articles` as items of the feed, published a minute apart in pairs
/// (so that equal times are ordered by id).
async fn store_articles(store: &Store, feed_id: i64, first: usize, articles: &[GeneratedArticle]) {
    let incoming: Vec<Incoming> = articles
        .iter()
        .enumerate()
        .map(|(n, article)| {
            let key = format!("feed{feed_id}-item{}", first + n);
            Incoming::from(NewArticle {
                item_key: key.clone(),
                canonical_url: Some(format!("https://example.com/{key}")),
                url: Some(format!("https://example.com/{key}")),
                title: article.title.clone(),
                summary_html: None,
                summary_text: Some(article.summary.clone()).filter(|s| !s.is_empty()),
                content_html: None,
                content_text: Some(article.content.clone()).filter(|s| !s.is_empty()),
                author: Some(article.author.clone()).filter(|s| !s.is_empty()),
                language: None,
                published_at: now() - Duration::minutes(((first + n) / 2) as i64),
                updated_at: None,
                fingerprint: key,
            })
        })
        .collect();
    store
        .save_articles(feed_id, &incoming, &StorySettings::default(), now())
        .await
        .unwrap();
}

/// What reading every article of the window finds, newest first: the
/// reference indexed search must equal.
async fn by_reading_everything(
    store: &Store,
    rule: &Rule,
    feeds: &HashMap<i64, FeedInfo>,
    since: DateTime<Utc>,
) -> Vec<i64> {
    let matcher = Matcher::compile([rule.clone()]);
    let mut found = Vec::new();
    let mut articles = store.search_articles(None, since, None);
    while let Some(article) = articles.next().await {
        let article: ArticleText = article.unwrap();
        let (label, tags) = article.feed_ids.iter().filter_map(|id| feeds.get(id)).fold(
            (String::new(), Vec::new()),
            |(mut label, mut tags), info| {
                if !label.is_empty() {
                    label.push(' ');
                }
                label.push_str(&info.label);
                tags.extend(info.tags.iter().cloned());
                (label, tags)
            },
        );
        let document = Document {
            title: &article.title,
            summary: &article.summary,
            content: &article.content,
            author: &article.author,
            url: &article.url,
            feed: &label,
            tags: &tags,
        };
        if !matcher.match_document(&document).is_empty() {
            found.push(article.id);
        }
    }
    found
}

async fn searched(
    store: &Store,
    rule: &Rule,
    feeds: &HashMap<i64, FeedInfo>,
    scan: Scan,
) -> Vec<search::Match> {
    search::matching_articles(store, rule.clone(), feeds, scan, || {})
        .await
        .unwrap()
}

async fn search_equals_reading_everything(
    db: &TestDb,
    case: &Case,
    number: usize,
) -> Result<(), TestCaseError> {
    let store = &db.store;
    let feed = store
        .sync_feeds(&[FeedSpec {
            url: format!("https://outlet{number}.example/feed"),
            name: Some(format!("Outlet {number}")),
        }])
        .await
        .unwrap()[0]
        .id;
    store_articles(store, feed, 0, &case.indexed).await;
    search::catch_up(store).await.unwrap();
    store_articles(store, feed, case.indexed.len(), &case.waiting).await;
    let feeds = search::feed_infos(store.feeds().await.unwrap(), &[]);
    let since = now() - Duration::days(1);
    for source in &case.queries {
        let Ok(query) = RuleQuery::parse(source) else {
            continue;
        };
        let rule = Rule {
            name: "q".into(),
            query,
            tags: Vec::new(),
        };
        let expected = by_reading_everything(store, &rule, &feeds, since).await;
        let all = Scan {
            since,
            limit: None,
            after: None,
        };
        let found: Vec<i64> = searched(store, &rule, &feeds, all)
            .await
            .iter()
            .map(|m| m.article_id)
            .collect();
        prop_assert_eq!(&found, &expected, "query {}", source);
        // Page by page through the cursor: the same articles, once each.
        let mut paged = Vec::new();
        let mut after: Option<ArticleCursor> = None;
        loop {
            let page = Scan {
                since,
                limit: Some(3),
                after,
            };
            let matches = searched(store, &rule, &feeds, page).await;
            paged.extend(matches.iter().map(|m| m.article_id));
            match matches.last() {
                Some(last) if matches.len() == 3 => after = Some(last.cursor),
                _ => break,
            }
        }
        prop_assert_eq!(&paged, &expected, "query {} in pages of 3", source);
    }
    Ok(())
}

/// Generated articles and queries: indexed search finds what reading every
/// article finds, in the same order, including articles still waiting to be
/// indexed, and so do its pages.
fn indexed_search_equals_a_full_scan(backend: Backend) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let db = runtime.block_on(TestDb::new(backend));
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse::<u32>().ok())
        .map_or(24, |n| (n / 4).max(1));
    let mut runner = TestRunner::new(ProptestConfig::with_cases(cases));
    let number = std::sync::atomic::AtomicUsize::new(0);
    let result = runner.run(&case(), |case| {
        let n = number.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        runtime.block_on(search_equals_reading_everything(&db, &case, n))
    });
    if let Err(error) = result {
        panic!("{error}");
    }
}

#[test]
fn indexed_search_equals_a_full_scan_on_sqlite() {
    indexed_search_equals_a_full_scan(Backend::Sqlite);
}

#[test]
fn indexed_search_equals_a_full_scan_on_postgres() {
    indexed_search_equals_a_full_scan(Backend::Postgres);
}

both_backends!(
    the_index_follows_changes_and_removals,
    a_query_the_index_cannot_narrow_reads_every_article,
);

fn generated(title: &str, summary: &str) -> GeneratedArticle {
    GeneratedArticle {
        title: title.into(),
        summary: summary.into(),
        content: String::new(),
        author: String::new(),
    }
}

/// The feed `Wire` the single-feed tests store into.
async fn wire_feed(store: &Store) -> i64 {
    store
        .sync_feeds(&[FeedSpec {
            url: "https://wire.example/feed".into(),
            name: Some("Wire".into()),
        }])
        .await
        .unwrap()[0]
        .id
}

fn rule(query: &str) -> Rule {
    Rule {
        name: "q".into(),
        query: RuleQuery::parse(query).unwrap(),
        tags: Vec::new(),
    }
}

/// An article whose text changes is indexed again with its new words, and
/// a removed article leaves the index with it.
async fn the_index_follows_changes_and_removals(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = &db.store;
    let feed = wire_feed(store).await;
    store_articles(
        store,
        feed,
        0,
        &[
            generated("Oil prices rise", "Markets react."),
            generated("Iran talks", "Delegations meet in Tehran."),
        ],
    )
    .await;
    assert_eq!(store.search_backlog().await.unwrap(), 2);
    assert_eq!(search::catch_up(store).await.unwrap(), 2);
    assert_eq!(store.search_backlog().await.unwrap(), 0);
    let feeds = search::feed_infos(store.feeds().await.unwrap(), &[]);
    let since = now() - Duration::days(1);
    let find = |query: &'static str| {
        let feeds = feeds.clone();
        async move {
            let scan = Scan {
                since,
                limit: None,
                after: None,
            };
            let mut read = 0;
            let found = search::matching_articles(store, rule(query), &feeds, scan, || read += 1)
                .await
                .unwrap();
            let mut titles = Vec::new();
            for m in found {
                titles.push(store.article(m.article_id).await.unwrap().unwrap().title);
            }
            (titles, read)
        }
    };
    let (titles, read) = find("tehran").await;
    assert_eq!(titles, vec!["Iran talks"]);
    assert_eq!(read, 1, "only the indexed candidate is read");

    // The same item, changed: its new words are found once indexed again,
    // and found before that too (it waits in the backlog).
    let changed = Incoming::from(NewArticle {
        item_key: format!("feed{feed}-item0"),
        canonical_url: Some(format!("https://example.com/feed{feed}-item0")),
        url: Some(format!("https://example.com/feed{feed}-item0")),
        title: "Oil prices rise on Tehran news".into(),
        summary_html: None,
        summary_text: Some("Markets react.".into()),
        content_html: None,
        content_text: None,
        author: None,
        language: None,
        published_at: now(),
        updated_at: None,
        fingerprint: "changed".into(),
    });
    let saved = store
        .save_articles(feed, &[changed], &StorySettings::default(), now())
        .await
        .unwrap();
    assert_eq!(saved.updated, 1);
    assert_eq!(store.search_backlog().await.unwrap(), 1);
    let (titles, _) = find("tehran").await;
    assert_eq!(titles, vec!["Oil prices rise on Tehran news", "Iran talks"]);
    search::catch_up(store).await.unwrap();
    let (titles, read) = find("tehran").await;
    assert_eq!(titles, vec!["Oil prices rise on Tehran news", "Iran talks"]);
    assert_eq!(read, 2);
    let (titles, _) = find("oil -tehran").await;
    assert_eq!(titles, Vec::<String>::new());

    // Removed by retention: gone from the index (SQLite's index is a table of
    // its own, kept by a trigger) and from results.
    let policy = herald::domain::retention::PrunePolicy {
        articles_before: Some(now() + Duration::hours(1)),
        deliveries_before: None,
        fingerprints_before: None,
        batch: 100,
        pause: std::time::Duration::ZERO,
    };
    let report = store.prune(&policy).await.unwrap();
    assert_eq!(report.articles, 2, "{report:?}");
    let (titles, read) = find("tehran").await;
    assert_eq!((titles.len(), read), (0, 0));
    assert_eq!(store.search_backlog().await.unwrap(), 0);
}

/// `feed:` and `tag:` name no word of the text: such a query reads every
/// article of the window and still finds exactly its matches.
async fn a_query_the_index_cannot_narrow_reads_every_article(backend: Backend) {
    let db = TestDb::new(backend).await;
    let store = &db.store;
    let feed = wire_feed(store).await;
    store_articles(
        store,
        feed,
        0,
        &[
            generated("One", "a"),
            generated("Two", "b"),
            generated("Three", "c"),
        ],
    )
    .await;
    search::catch_up(store).await.unwrap();
    let feeds = search::feed_infos(store.feeds().await.unwrap(), &[]);
    let query = rule("feed:wire");
    assert!(!search::uses_index(&query));
    assert!(search::uses_index(&rule("feed:wire two")));
    let scan = Scan {
        since: now() - Duration::days(1),
        limit: None,
        after: None,
    };
    let mut read = 0;
    let found = search::matching_articles(store, query, &feeds, scan, || read += 1)
        .await
        .unwrap();
    assert_eq!((found.len(), read), (3, 3));
}
