//! A real HTTP feed server on 127.0.0.1 (ephemeral port) inside the test process.
//!
//! Serves, per path, whatever the test sets at runtime: feeds built from a few
//! [`Item`]s, raw bytes, compressed bodies, redirects, error statuses, stalls, endless
//! or bomb bodies, and sequences that answer differently hit after hit. Answers
//! conditional requests like a well-behaved publisher, and records every request and
//! the number in flight per path. Knows nothing of herald.
//!
//! Start it inside the test's tokio runtime; it stops when that runtime ends.

use std::collections::HashMap;
use std::convert::Infallible;
use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use chrono::{DateTime, TimeZone, Utc};
use futures::future::BoxFuture;
use futures::{FutureExt, Stream, StreamExt, stream};
use tokio::net::TcpListener;
use tokio::sync::watch;

pub struct FeedServer {
    base_url: String,
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    paths: Mutex<HashMap<String, PathState>>,
}

#[derive(Default)]
struct PathState {
    route: Option<Route>,
    requests: Vec<RecordedRequest>,
    in_flight: usize,
    max_in_flight: usize,
}

/// One request as the server saw it.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    pub method: String,
    pub path_and_query: String,
    pub headers: HeaderMap,
    pub arrived: std::time::Instant,
}

impl RecordedRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }
}

impl FeedServer {
    pub async fn start() -> FeedServer {
        FeedServer::start_on("127.0.0.1").await
    }

    /// On another address, such as `127.0.0.2`: all of 127.0.0.0/8 is loopback on Linux.
    pub async fn start_on(ip: &str) -> FeedServer {
        let listener = TcpListener::bind((ip, 0)).await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        let shared = Arc::new(Shared::default());
        let app = Router::new()
            .fallback(serve)
            .with_state(Arc::clone(&shared));
        tokio::spawn(async move { axum::serve(listener, app).await });
        FeedServer { base_url, shared }
    }

    /// `http://IP:PORT`, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The full URL of `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// Defines or replaces what `path` serves; hits and records are kept.
    pub fn set(&self, path: &str, route: Route) {
        self.with_path(path, |state| state.route = Some(route));
    }

    /// Requests received for `path` so far (a path never set answers 404 and counts).
    pub fn hits(&self, path: &str) -> usize {
        self.with_path(path, |state| state.requests.len())
    }

    pub fn requests(&self, path: &str) -> Vec<RecordedRequest> {
        self.with_path(path, |state| state.requests.clone())
    }

    /// Requests to `path` being answered right now (until their headers are sent).
    pub fn in_flight(&self, path: &str) -> usize {
        self.with_path(path, |state| state.in_flight)
    }

    /// The most requests to `path` that were ever in flight at once.
    pub fn max_in_flight(&self, path: &str) -> usize {
        self.with_path(path, |state| state.max_in_flight)
    }

    /// Waits until `count` requests to `path` are in flight; panics after 10 seconds.
    pub async fn wait_for_in_flight(&self, path: &str, count: usize) {
        for _ in 0..1000 {
            if self.in_flight(path) >= count {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("{path}: never saw {count} requests in flight");
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

/// Counts a request in flight for as long as its handler runs, even if it is dropped.
struct InFlight {
    shared: Arc<Shared>,
    path: String,
}

impl InFlight {
    fn enter(shared: &Arc<Shared>, path: &str) -> InFlight {
        shared.with_path(path, |state| {
            state.in_flight += 1;
            state.max_in_flight = state.max_in_flight.max(state.in_flight);
        });
        InFlight {
            shared: Arc::clone(shared),
            path: path.to_owned(),
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.shared
            .with_path(&self.path, |state| state.in_flight -= 1);
    }
}

async fn serve(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let path = request.uri().path().to_owned();
    let recorded = RecordedRequest {
        method: request.method().to_string(),
        path_and_query: request
            .uri()
            .path_and_query()
            .map(ToString::to_string)
            .unwrap_or_default(),
        headers: request.headers().clone(),
        arrived: std::time::Instant::now(),
    };
    let (route, hit) = shared.with_path(&path, |state| {
        state.requests.push(recorded);
        (state.route.clone(), state.requests.len() - 1)
    });
    let _in_flight = InFlight::enter(&shared, &path);
    match route {
        Some(route) => respond(route, hit, request.headers().clone()).await,
        None => text(StatusCode::NOT_FOUND, "no route set for this path"),
    }
}

/// What a path serves. Build with the constructors, adjust with the `with_*` methods.
#[derive(Clone)]
pub struct Route {
    kind: Kind,
    extra_headers: Vec<(HeaderName, HeaderValue)>,
}

#[derive(Clone)]
enum Kind {
    Document(Document),
    Redirect {
        status: StatusCode,
        location: String,
    },
    Status(StatusCode),
    StallBeforeHeaders,
    StallAfterHeaders,
    Filler {
        bytes: u64,
        declare_length: bool,
    },
    GzipBomb {
        inflated: u64,
    },
    Sequence(Vec<Route>),
    Delayed(Duration, Box<Route>),
    Held(Gate, Box<Route>),
}

#[derive(Clone)]
struct Document {
    body: Bytes,
    content_type: String,
    etag: Option<String>,
    last_modified: Option<String>,
    content_encoding: Option<&'static str>,
}

impl Route {
    /// `body` served as is with `content_type` (any bytes: ISO-8859-1, windows-1251,
    /// broken XML), with a strong ETag derived from the body.
    pub fn document(content_type: &str, body: impl Into<Bytes>) -> Route {
        let body = body.into();
        Route::from(Kind::Document(Document {
            etag: Some(strong_etag(&body)),
            body,
            content_type: content_type.to_owned(),
            last_modified: None,
            content_encoding: None,
        }))
    }

    pub fn rss(title: &str, items: &[Item]) -> Route {
        Route::document("application/rss+xml; charset=utf-8", rss_feed(title, items))
    }

    pub fn atom(title: &str, items: &[Item]) -> Route {
        Route::document(
            "application/atom+xml; charset=utf-8",
            atom_feed(title, items),
        )
    }

    pub fn rdf(title: &str, items: &[Item]) -> Route {
        Route::document("application/rdf+xml; charset=utf-8", rdf_feed(title, items))
    }

    pub fn json_feed(title: &str, items: &[Item]) -> Route {
        Route::document(
            "application/feed+json; charset=utf-8",
            json_feed(title, items),
        )
    }

    /// `status` (301, 302, 303, 307, 308) to `location`, absolute or relative, sent as is.
    pub fn redirect(status: u16, location: &str) -> Route {
        Route::from(Kind::Redirect {
            status: StatusCode::from_u16(status).unwrap(),
            location: location.to_owned(),
        })
    }

    /// A bare status with a short text body; add `with_retry_after` for 429/503.
    pub fn status(status: u16) -> Route {
        Route::from(Kind::Status(StatusCode::from_u16(status).unwrap()))
    }

    /// Accepts the request and never answers.
    pub fn stall() -> Route {
        Route::from(Kind::StallBeforeHeaders)
    }

    /// Sends 200 headers and the first bytes of a feed, then nothing ever again.
    pub fn stall_body() -> Route {
        Route::from(Kind::StallAfterHeaders)
    }

    /// `bytes` of filler streamed without a Content-Length, never held in memory.
    pub fn huge_body(bytes: u64) -> Route {
        Route::from(Kind::Filler {
            bytes,
            declare_length: false,
        })
    }

    /// Like [`Route::huge_body`], announcing its size in Content-Length up front.
    pub fn huge_body_with_length(bytes: u64) -> Route {
        Route::from(Kind::Filler {
            bytes,
            declare_length: true,
        })
    }

    /// A small gzip stream (`Content-Encoding: gzip`) inflating to `inflated` zero
    /// bytes, compressed lazily as the client reads, so an unread bomb costs nothing.
    pub fn gzip_bomb(inflated: u64) -> Route {
        Route::from(Kind::GzipBomb { inflated })
    }

    /// The n-th hit answers with the n-th route; the last one repeats afterwards.
    pub fn sequence(routes: Vec<Route>) -> Route {
        Route::from(Kind::Sequence(routes))
    }

    /// Waits `delay` before answering.
    pub fn delayed(self, delay: Duration) -> Route {
        Route::from(Kind::Delayed(delay, Box::new(self)))
    }

    /// Holds every request until `gate` is opened.
    pub fn held_by(self, gate: &Gate) -> Route {
        Route::from(Kind::Held(gate.clone(), Box::new(self)))
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Route {
        self.extra_headers.push((
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        ));
        self
    }

    pub fn with_retry_after(self, value: &str) -> Route {
        self.with_header("retry-after", value)
    }

    /// Sends `Last-Modified` and answers a later `If-Modified-Since` with 304.
    pub fn with_last_modified(self, http_date: &str) -> Route {
        self.map_document(|document| document.last_modified = Some(http_date.to_owned()))
    }

    pub fn without_etag(self) -> Route {
        self.map_document(|document| document.etag = None)
    }

    /// Serves the document gzip-compressed (`Content-Encoding: gzip`).
    pub fn gzip(self) -> Route {
        self.encoded("gzip", |body| {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            encoder.write_all(body).unwrap();
            encoder.finish().unwrap()
        })
    }

    /// Serves the document zlib-compressed (`Content-Encoding: deflate`, RFC 9110 §8.4.1.2).
    pub fn deflate(self) -> Route {
        self.encoded("deflate", |body| {
            let mut encoder =
                flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
            encoder.write_all(body).unwrap();
            encoder.finish().unwrap()
        })
    }

    /// Serves the document brotli-compressed (`Content-Encoding: br`).
    pub fn brotli(self) -> Route {
        self.encoded("br", |body| {
            let mut compressed = Vec::new();
            {
                let mut encoder = brotli::CompressorWriter::new(&mut compressed, 4096, 5, 22);
                encoder.write_all(body).unwrap();
            }
            compressed
        })
    }

    fn encoded(self, encoding: &'static str, compress: impl FnOnce(&[u8]) -> Vec<u8>) -> Route {
        self.map_document(|document| {
            document.body = Bytes::from(compress(&document.body));
            document.content_encoding = Some(encoding);
        })
    }

    fn map_document(mut self, f: impl FnOnce(&mut Document)) -> Route {
        match &mut self.kind {
            Kind::Document(document) => f(document),
            _ => panic!("only a document route has a body to change"),
        }
        self
    }
}

impl From<Kind> for Route {
    fn from(kind: Kind) -> Route {
        Route {
            kind,
            extra_headers: Vec::new(),
        }
    }
}

/// Opens once; every request held by it then proceeds.
#[derive(Clone)]
pub struct Gate {
    open: Arc<watch::Sender<bool>>,
}

impl Gate {
    pub fn new() -> Gate {
        Gate {
            open: Arc::new(watch::Sender::new(false)),
        }
    }

    pub fn open(&self) {
        self.open.send_replace(true);
    }
}

fn respond(route: Route, hit: usize, request: HeaderMap) -> BoxFuture<'static, Response> {
    async move {
        let mut response = match route.kind {
            Kind::Document(document) => document_response(&document, &request),
            Kind::Redirect { status, location } => {
                let mut response = text(status, "moved");
                response
                    .headers_mut()
                    .insert(header::LOCATION, HeaderValue::from_str(&location).unwrap());
                response
            }
            Kind::Status(status) => text(status, &format!("status {}", status.as_u16())),
            Kind::StallBeforeHeaders => std::future::pending().await,
            Kind::StallAfterHeaders => stalled_body(),
            Kind::Filler {
                bytes,
                declare_length,
            } => filler(bytes, declare_length),
            Kind::GzipBomb { inflated } => gzip_bomb(inflated),
            Kind::Sequence(routes) => match routes.get(hit.min(routes.len().saturating_sub(1))) {
                Some(next) => respond(next.clone(), hit, request).await,
                None => text(StatusCode::INTERNAL_SERVER_ERROR, "empty sequence"),
            },
            Kind::Delayed(delay, next) => {
                tokio::time::sleep(delay).await;
                respond(*next, hit, request).await
            }
            Kind::Held(gate, next) => {
                let _ = gate.open.subscribe().wait_for(|open| *open).await;
                respond(*next, hit, request).await
            }
        };
        response.headers_mut().extend(route.extra_headers);
        response
    }
    .boxed()
}

fn text(status: StatusCode, body: &str) -> Response {
    let mut response = Response::new(Body::from(body.to_owned()));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    response
}

fn document_response(document: &Document, request: &HeaderMap) -> Response {
    let unchanged = is_unchanged(document, request);
    let mut response = if unchanged {
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::NOT_MODIFIED;
        response
    } else {
        Response::new(Body::from(document.body.clone()))
    };
    let headers = response.headers_mut();
    let mut set = |name, value: Option<&str>| {
        if let Some(value) = value {
            headers.insert(name, HeaderValue::from_str(value).unwrap());
        }
    };
    set(header::ETAG, document.etag.as_deref());
    set(header::LAST_MODIFIED, document.last_modified.as_deref());
    if !unchanged {
        set(header::CONTENT_TYPE, Some(&document.content_type));
        set(header::CONTENT_ENCODING, document.content_encoding);
    }
    response
}

/// RFC 9110 §13.1: If-None-Match (weak comparison) wins; If-Modified-Since only without it.
fn is_unchanged(document: &Document, request: &HeaderMap) -> bool {
    let header_text = |name| {
        request
            .get(name)
            .and_then(|value: &HeaderValue| value.to_str().ok())
    };
    if let Some(tags) = header_text(header::IF_NONE_MATCH) {
        let current = document
            .etag
            .as_deref()
            .map(|etag| etag.trim_start_matches("W/"));
        return tags
            .split(',')
            .map(|tag| tag.trim().trim_start_matches("W/"))
            .any(|tag| tag == "*" || Some(tag) == current);
    }
    let since = header_text(header::IF_MODIFIED_SINCE).and_then(parse_http_date);
    let modified = document.last_modified.as_deref().and_then(parse_http_date);
    matches!((since, modified), (Some(since), Some(modified)) if modified <= since)
}

fn parse_http_date(value: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc2822(value)
        .ok()
        .map(|date| date.with_timezone(&Utc))
}

fn strong_etag(body: &[u8]) -> String {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut hasher = DefaultHasher::new();
    body.hash(&mut hasher);
    format!("\"{:016x}\"", hasher.finish())
}

fn stalled_body() -> Response {
    let start = stream::once(async {
        Ok::<_, Infallible>(Bytes::from_static(b"<?xml version=\"1.0\"?>\n<rss>"))
    });
    let mut response = Response::new(Body::from_stream(start.chain(stream::pending())));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/rss+xml"),
    );
    response
}

const FILLER_CHUNK: usize = 64 * 1024;
static FILLER: [u8; FILLER_CHUNK] = [b'x'; FILLER_CHUNK];

fn filler(bytes: u64, declare_length: bool) -> Response {
    let chunk = FILLER_CHUNK as u64;
    let chunks = stream::iter(0..bytes.div_ceil(chunk)).map(move |index| {
        let size = (bytes - index * chunk).min(chunk) as usize;
        Ok::<_, Infallible>(Bytes::from_static(&FILLER[..size]))
    });
    let mut response = Response::new(Body::from_stream(chunks));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/rss+xml"),
    );
    if declare_length {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(bytes));
    }
    response
}

fn gzip_bomb(inflated: u64) -> Response {
    let deflate = zero_deflate();
    let blocks = inflated.div_ceil(ZERO_BLOCK as u64).max(1);
    let length = GZIP_HEADER.len() as u64
        + deflate.first.len() as u64
        + (blocks - 1) * deflate.repeat.len() as u64
        + deflate.end.len() as u64
        + 8;
    let mut response = Response::new(Body::from_stream(gzip_zero_blocks(blocks)));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/rss+xml"),
    );
    headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    response
}

const ZERO_BLOCK: usize = 64 * 1024;
/// RFC 1952 member header: deflate, no name, no mtime, unknown OS.
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

/// Raw deflate pieces of a stream of zeros, each ending on a byte boundary (sync flush).
/// `repeat` only refers back into a window of zeros, so once `first` has filled the
/// window it can follow itself any number of times: a bomb of any size costs one
/// compression of two blocks.
struct ZeroDeflate {
    first: Bytes,
    repeat: Bytes,
    end: Bytes,
    block_crc: flate2::Crc,
}

fn zero_deflate() -> &'static ZeroDeflate {
    static PIECES: OnceLock<ZeroDeflate> = OnceLock::new();
    PIECES.get_or_init(|| {
        let zeros = [0u8; ZERO_BLOCK];
        let mut compress = flate2::Compress::new(flate2::Compression::default(), false);
        let mut piece = |input: &[u8], flush| {
            let mut output = Vec::with_capacity(input.len() + 1024);
            let before = compress.total_in();
            compress.compress_vec(input, &mut output, flush).unwrap();
            assert_eq!(compress.total_in() - before, input.len() as u64);
            Bytes::from(output)
        };
        let first = piece(&zeros, flate2::FlushCompress::Sync);
        let repeat = piece(&zeros, flate2::FlushCompress::Sync);
        let end = piece(&[], flate2::FlushCompress::Finish);
        let mut block_crc = flate2::Crc::new();
        block_crc.update(&zeros);
        ZeroDeflate {
            first,
            repeat,
            end,
            block_crc,
        }
    })
}

enum BombStep {
    Head,
    Repeat { left: u64 },
    Trailer,
    Done,
}

/// A complete gzip member of `blocks` blocks of zeros; the CRC for its trailer is
/// built block by block as the client reads, so an unread bomb costs nothing.
fn gzip_zero_blocks(blocks: u64) -> impl Stream<Item = Result<Bytes, Infallible>> {
    let deflate = zero_deflate();
    let after_block = move |left: u64| match left {
        0 => BombStep::Trailer,
        left => BombStep::Repeat { left },
    };
    stream::unfold(
        (BombStep::Head, flate2::Crc::new()),
        move |(step, mut crc)| async move {
            let (chunk, next) = match step {
                BombStep::Head => {
                    crc.combine(&deflate.block_crc);
                    let chunk = [&GZIP_HEADER[..], &deflate.first].concat();
                    (Bytes::from(chunk), after_block(blocks - 1))
                }
                BombStep::Repeat { left } => {
                    crc.combine(&deflate.block_crc);
                    (Bytes::clone(&deflate.repeat), after_block(left - 1))
                }
                BombStep::Trailer => {
                    // ISIZE is the length modulo 2^32 (RFC 1952 §2.3.1).
                    let size = (blocks * ZERO_BLOCK as u64) as u32;
                    let chunk = [
                        &deflate.end[..],
                        &crc.sum().to_le_bytes(),
                        &size.to_le_bytes(),
                    ]
                    .concat();
                    (Bytes::from(chunk), BombStep::Done)
                }
                BombStep::Done => return None,
            };
            Some((Ok(chunk), (next, crc)))
        },
    )
}

/// One entry of a test feed.
#[derive(Clone, Debug, PartialEq)]
pub struct Item {
    pub guid: String,
    pub link: String,
    pub title: String,
    pub description: String,
    pub pub_date: Option<DateTime<Utc>>,
}

impl Item {
    /// A distinct, complete item: `item-n`, `https://example.com/articles/n`, published
    /// `n` hours after 2026-01-01T00:00:00Z.
    pub fn numbered(n: u32) -> Item {
        Item {
            guid: format!("item-{n}"),
            link: format!("https://example.com/articles/{n}"),
            title: format!("Article {n}"),
            description: format!("<p>Body of article {n}.</p>"),
            pub_date: Some(
                Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
                    + chrono::Duration::hours(n.into()),
            ),
        }
    }

    /// [`Item::numbered`] under `title`, published now: news to alert on.
    pub fn titled(n: u32, title: &str) -> Item {
        Item {
            title: title.to_owned(),
            pub_date: Some(Utc::now()),
            ..Item::numbered(n)
        }
    }
}

const SITE: &str = "https://example.com/";

pub fn rss_feed(title: &str, items: &[Item]) -> String {
    let entries: String = items
        .iter()
        .map(|item| {
            let date = item.pub_date.map(|date| format!("<pubDate>{}</pubDate>", date.to_rfc2822()));
            format!(
                "<item><guid isPermaLink=\"false\">{}</guid><link>{}</link><title>{}</title><description>{}</description>{}</item>\n",
                escape(&item.guid),
                escape(&item.link),
                escape(&item.title),
                escape(&item.description),
                date.unwrap_or_default(),
            )
        })
        .collect();
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<rss version=\"2.0\"><channel><title>{}</title><link>{SITE}</link><description>{}</description>\n{entries}</channel></rss>\n",
        escape(title),
        escape(title),
    )
}

pub fn atom_feed(title: &str, items: &[Item]) -> String {
    let updated = latest_date(items).to_rfc3339();
    let entries: String = items
        .iter()
        .map(|item| {
            let date = item.pub_date.map(|date| date.to_rfc3339());
            format!(
                "<entry><id>{}</id><link href=\"{}\"/><title>{}</title><summary type=\"html\">{}</summary><updated>{}</updated></entry>\n",
                escape(&item.guid),
                escape(&item.link),
                escape(&item.title),
                escape(&item.description),
                date.unwrap_or_else(|| updated.clone()),
            )
        })
        .collect();
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\"><id>{SITE}</id><title>{}</title><link href=\"{SITE}\"/><updated>{updated}</updated>\n{entries}</feed>\n",
        escape(title),
    )
}

/// RSS 1.0 (RDF): items are identified by their `rdf:about`, here the link.
pub fn rdf_feed(title: &str, items: &[Item]) -> String {
    let list: String = items
        .iter()
        .map(|item| format!("<rdf:li rdf:resource=\"{}\"/>", escape(&item.link)))
        .collect();
    let entries: String = items
        .iter()
        .map(|item| {
            let date = item.pub_date.map(|date| format!("<dc:date>{}</dc:date>", date.to_rfc3339()));
            format!(
                "<item rdf:about=\"{}\"><title>{}</title><link>{}</link><description>{}</description>{}</item>\n",
                escape(&item.link),
                escape(&item.title),
                escape(&item.link),
                escape(&item.description),
                date.unwrap_or_default(),
            )
        })
        .collect();
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\" xmlns=\"http://purl.org/rss/1.0/\" xmlns:dc=\"http://purl.org/dc/elements/1.1/\">\n<channel rdf:about=\"{SITE}\"><title>{}</title><link>{SITE}</link><description>{}</description><items><rdf:Seq>{list}</rdf:Seq></items></channel>\n{entries}</rdf:RDF>\n",
        escape(title),
        escape(title),
    )
}

pub fn json_feed(title: &str, items: &[Item]) -> String {
    let items: Vec<serde_json::Value> = items
        .iter()
        .map(|item| {
            let mut entry = serde_json::json!({
                "id": item.guid,
                "url": item.link,
                "title": item.title,
                "content_html": item.description,
            });
            if let Some(date) = item.pub_date {
                entry["date_published"] = date.to_rfc3339().into();
            }
            entry
        })
        .collect();
    serde_json::json!({
        "version": "https://jsonfeed.org/version/1.1",
        "title": title,
        "home_page_url": SITE,
        "items": items,
    })
    .to_string()
}

fn latest_date(items: &[Item]) -> DateTime<Utc> {
    items
        .iter()
        .filter_map(|item| item.pub_date)
        .max()
        .unwrap_or_else(|| Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap())
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}
