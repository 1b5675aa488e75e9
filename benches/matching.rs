//! Rule matching throughput (target: ≥ 50,000 1 KB articles/s at 10,000 rules on
//! one core): the compiled [`Matcher`] against evaluating rules one at a time.
//!
//! # Why the data looks like this
//!
//! Throughput depends on how often rules fire (each hit is evaluated and reported),
//! so the data mimics a newsroom's watch list rather than random words:
//!
//! - **Rules** are mostly two- or three-term ANDs naming something: two entities
//!   (`Iran Pezeshkian`), or an entity and a news word (`Boeing strike`); some are a
//!   person's name as a phrase (`"Olaf Scholz"`) or one rare name alone, some OR
//!   groups (`(Iran OR Iraq OR Syria) sanctions`), some NOTs (`Tesla -shares`), some
//!   prefixes (`sanct* Hamas`) and a few NEARs (`Kremlin NEAR/5 talks`). Their
//!   entities are drawn evenly from well-known countries, cities and organisations
//!   (30%), people (25%: first name × surname) and a long tail of 20,000 invented
//!   company, product and place names (45%), since a large watch list is mostly
//!   the long tail.
//! - **Articles** are news prose: about 72% common words, 20% news vocabulary and
//!   8% names, 1 KB of content plus a title and a summary. Each article is about a
//!   cast of 2–5 entities that it names repeatedly, plus a few passing mentions;
//!   entity popularity is skewed (Zipf-like), so `Iran` is in far more articles
//!   than an invented supplier.
//!
//! With this data rules fire 0.5 (1,000 rules), 5.0 (10,000) and 50 (100,000)
//! times per article on average; 97% of articles fire at least one of 10,000
//! rules (printed as `hits per article` for each rule count): rare enough to be
//! a watch list, common enough that evaluation and hit reporting are measured.
//! OR groups and entity + news-word ANDs account for most hits.
//! The earlier version drew every rule and every name from ~200 famous entities,
//! so 10,000 rules fired 75 times per article, which no newsroom would tolerate.
//!
//! Set `HERALD_CORPUS` to a directory holding
//! `bulk/rss-link-database-2023/**/*_entries.json` to match real headlines and
//! descriptions instead (title = headline, summary = description without tags,
//! content = following descriptions of the same feed up to 1 KB); the rules stay
//! generated.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group};
use herald::rules::{Document, Matcher, Rule, RuleQuery, TokenizedDocument};

const COMMON: &[&str] = &[
    "the",
    "of",
    "and",
    "to",
    "in",
    "a",
    "said",
    "on",
    "for",
    "that",
    "with",
    "was",
    "is",
    "by",
    "at",
    "from",
    "as",
    "it",
    "has",
    "have",
    "were",
    "after",
    "its",
    "will",
    "be",
    "are",
    "an",
    "which",
    "this",
    "but",
    "not",
    "they",
    "their",
    "over",
    "who",
    "more",
    "than",
    "about",
    "into",
    "also",
    "had",
    "been",
    "would",
    "new",
    "last",
    "year",
    "week",
    "two",
    "first",
    "people",
    "while",
    "some",
    "other",
    "could",
    "since",
    "when",
    "there",
    "during",
    "before",
    "under",
    "still",
    "told",
    "according",
    "statement",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
    "percent",
    "million",
    "billion",
    "report",
];

const NEWS: &[&str] = &[
    "government",
    "minister",
    "president",
    "election",
    "sanctions",
    "talks",
    "officials",
    "military",
    "economy",
    "inflation",
    "market",
    "oil",
    "prices",
    "trade",
    "deal",
    "agreement",
    "war",
    "ceasefire",
    "troops",
    "protest",
    "police",
    "court",
    "parliament",
    "vote",
    "budget",
    "tax",
    "bank",
    "interest",
    "rates",
    "energy",
    "gas",
    "nuclear",
    "missile",
    "attack",
    "border",
    "refugees",
    "aid",
    "climate",
    "storm",
    "flood",
    "earthquake",
    "company",
    "shares",
    "profit",
    "investors",
    "technology",
    "chip",
    "exports",
    "imports",
    "tariffs",
    "strike",
    "union",
    "workers",
    "hospital",
    "health",
    "vaccine",
    "outbreak",
    "drought",
    "wildfire",
    "opposition",
    "coalition",
    "summit",
    "delegation",
    "embassy",
    "diplomats",
    "negotiations",
    "spokesman",
    "spokeswoman",
    "investigation",
    "prosecutors",
    "charges",
    "arrested",
    "killed",
    "injured",
    "casualties",
    "drone",
    "satellite",
    "launch",
    "regulator",
    "merger",
    "acquisition",
    "bankruptcy",
    "lawsuit",
    "ruling",
    "appeal",
    "referendum",
    "campaign",
    "candidate",
    "poll",
    "scandal",
    "resignation",
    "reform",
    "pension",
    "subsidies",
    "currency",
    "bond",
    "yields",
    "recession",
    "growth",
    "unemployment",
    "housing",
    "crisis",
    "emergency",
    "evacuation",
    "shipping",
    "port",
    "pipeline",
    "refinery",
    "cyberattack",
    "hackers",
    "ransomware",
    "espionage",
    "intelligence",
    "navy",
    "airstrike",
    "hostages",
    "rebels",
];

const COUNTRIES: &[&str] = &[
    "Iran",
    "Iraq",
    "Syria",
    "Israel",
    "Lebanon",
    "Egypt",
    "Turkey",
    "Russia",
    "Ukraine",
    "China",
    "Japan",
    "India",
    "Pakistan",
    "Afghanistan",
    "North Korea",
    "South Korea",
    "United States",
    "Canada",
    "Mexico",
    "Brazil",
    "Argentina",
    "Chile",
    "Venezuela",
    "Colombia",
    "France",
    "Germany",
    "Italy",
    "Spain",
    "Poland",
    "Hungary",
    "Sweden",
    "Norway",
    "Finland",
    "Britain",
    "Ireland",
    "Greece",
    "Saudi Arabia",
    "Qatar",
    "Yemen",
    "Sudan",
    "Ethiopia",
    "Kenya",
    "Nigeria",
    "South Africa",
    "Australia",
    "New Zealand",
    "Indonesia",
    "Vietnam",
    "Thailand",
    "Philippines",
    "Taiwan",
    "Belarus",
    "Georgia",
    "Armenia",
    "Azerbaijan",
    "Kazakhstan",
    "Libya",
    "Tunisia",
    "Morocco",
    "Algeria",
];

const CITIES: &[&str] = &[
    "Tehran",
    "Baghdad",
    "Damascus",
    "Beirut",
    "Cairo",
    "Ankara",
    "Moscow",
    "Kyiv",
    "Beijing",
    "Tokyo",
    "Delhi",
    "Islamabad",
    "Kabul",
    "Pyongyang",
    "Seoul",
    "Washington",
    "Ottawa",
    "Brasilia",
    "Paris",
    "Berlin",
    "Rome",
    "Madrid",
    "Warsaw",
    "Budapest",
    "Stockholm",
    "London",
    "Dublin",
    "Athens",
    "Riyadh",
    "Doha",
    "Khartoum",
    "Nairobi",
    "Lagos",
    "Sydney",
    "Jakarta",
    "Hanoi",
    "Bangkok",
    "Manila",
    "Taipei",
    "Minsk",
    "Tbilisi",
    "Geneva",
    "Brussels",
    "Vienna",
    "Davos",
    "Gaza",
    "Jerusalem",
    "Kharkiv",
    "Odesa",
    "Shanghai",
    "Hong Kong",
];

const ORGANISATIONS: &[&str] = &[
    "European Union",
    "United Nations",
    "World Bank",
    "Federal Reserve",
    "Nato",
    "Opec",
    "International Monetary Fund",
    "European Central Bank",
    "Security Council",
    "Red Cross",
    "World Health Organization",
    "Supreme Court",
    "Pentagon",
    "Kremlin",
    "White House",
    "Hezbollah",
    "Hamas",
    "Taliban",
    "Revolutionary Guards",
    "Wagner",
    "Interpol",
    "Europol",
    "Amnesty International",
    "Human Rights Watch",
    "Greenpeace",
    "Apple",
    "Microsoft",
    "Google",
    "Amazon",
    "Nvidia",
    "Tesla",
    "Samsung",
    "Huawei",
    "Toyota",
    "Shell",
    "Aramco",
    "Gazprom",
    "Boeing",
    "Airbus",
    "Pfizer",
];

const FIRST_NAMES: &[&str] = &[
    "Ali", "Mohammad", "Kim", "Vladimir", "Olena", "Xi", "Li", "Narendra", "Joe", "Donald",
    "Emmanuel", "Olaf", "Giorgia", "Pedro", "Viktor", "Ursula", "Recep", "Benjamin", "Abdel",
    "Masoud", "Ebrahim", "Sergei", "Antony", "Kamala", "Rishi", "Keir", "Justin", "Luiz", "Javier",
    "Claudia", "Yoon", "Fumio", "Anwar", "Cyril", "William", "Abiy", "Paul", "Maria", "Anna",
    "Jens",
];

const SURNAMES: &[&str] = &[
    "Khamenei",
    "Pezeshkian",
    "Araghchi",
    "Jong Un",
    "Putin",
    "Zelensky",
    "Jinping",
    "Qiang",
    "Modi",
    "Biden",
    "Trump",
    "Macron",
    "Scholz",
    "Meloni",
    "Sanchez",
    "Orban",
    "Leyen",
    "Erdogan",
    "Netanyahu",
    "Sisi",
    "Lavrov",
    "Blinken",
    "Harris",
    "Sunak",
    "Starmer",
    "Trudeau",
    "Lula",
    "Milei",
    "Sheinbaum",
    "Suk Yeol",
    "Kishida",
    "Ibrahim",
    "Ramaphosa",
    "Ruto",
    "Ahmed",
    "Kagame",
    "Stoltenberg",
    "Guterres",
    "Lagarde",
    "Powell",
    "Yellen",
    "Raisi",
    "Shoigu",
    "Medvedev",
    "Navalny",
    "Tusk",
    "Fico",
    "Babis",
    "Vucic",
    "Rutte",
    "Sullivan",
    "Burns",
    "Wray",
    "Garland",
    "Kennedy",
    "Musk",
    "Cook",
    "Nadella",
    "Pichai",
    "Huang",
];

const SYLLABLES: &[&str] = &[
    "zor", "vex", "kal", "mir", "dan", "tro", "bel", "qua", "nix", "sol", "ter", "ran", "vok",
    "lis", "ost", "gra", "phe", "ulm", "cor", "ta", "ven", "dri", "mos", "kel", "har", "ion",
    "pex", "lum", "sar", "bri",
];

/// splitmix64: deterministic and dependency-free, so the data never changes.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// Low indices far more often than high ones (roughly 1/rank): popularity.
    fn skewed(&mut self, n: usize) -> usize {
        let bound = self.below(n) + 1;
        self.below(bound)
    }

    fn percent(&mut self) -> usize {
        self.below(100)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

/// The names rules watch and articles mention.
struct Entities {
    /// Countries, cities and organisations.
    known: Vec<String>,
    /// First name × surname.
    people: Vec<String>,
    /// The long tail: companies, products, towns nobody outside a beat has heard of.
    invented: Vec<String>,
}

impl Entities {
    fn new(random: &mut Random) -> Self {
        let known = [COUNTRIES, CITIES, ORGANISATIONS]
            .concat()
            .into_iter()
            .map(str::to_owned)
            .collect();
        let people = FIRST_NAMES
            .iter()
            .flat_map(|first| SURNAMES.iter().map(move |last| format!("{first} {last}")))
            .collect();
        let invented = (0..20_000)
            .map(|_| {
                let name = invented_word(random);
                if random.percent() < 30 {
                    format!("{name} {}", invented_word(random))
                } else {
                    name
                }
            })
            .collect();
        Self {
            known,
            people,
            invented,
        }
    }

    /// An entity as a watch list names it: every name equally likely within its kind.
    fn for_rule(&self, random: &mut Random) -> String {
        let name = match random.percent() {
            0..=29 => &self.known[random.below(self.known.len())],
            30..=54 => &self.people[random.below(self.people.len())],
            _ => &self.invented[random.below(self.invented.len())],
        };
        quoted(name)
    }

    /// An entity as the news mentions it: famous names far more often.
    fn for_article(&self, random: &mut Random) -> &str {
        match random.percent() {
            0..=44 => &self.known[random.skewed(self.known.len())],
            45..=69 => &self.people[random.skewed(self.people.len())],
            _ => &self.invented[random.skewed(self.invented.len())],
        }
    }
}

fn invented_word(random: &mut Random) -> String {
    let syllables = 2 + random.below(2);
    let mut name: String = (0..syllables).map(|_| random.pick(SYLLABLES)).collect();
    name[..1].make_ascii_uppercase();
    name
}

/// Quoted when it has several words, as a rule author writes a phrase.
fn quoted(name: &str) -> String {
    if name.contains(' ') {
        format!("\"{name}\"")
    } else {
        name.to_owned()
    }
}

fn rule_query(entities: &Entities, random: &mut Random) -> String {
    let entity = |random: &mut Random| entities.for_rule(random);
    let news = |random: &mut Random| random.pick(NEWS).to_owned();
    match random.percent() {
        0..=29 => format!("{} {}", entity(random), entity(random)),
        30..=54 => {
            let query = format!("{} {}", entity(random), news(random));
            if random.percent() < 40 {
                format!("{query} {}", news(random))
            } else {
                query
            }
        }
        55..=64 => quoted(match random.percent() {
            0..=59 => &entities.people[random.below(entities.people.len())],
            _ => &entities.invented[random.below(entities.invented.len())],
        }),
        65..=76 => format!(
            "({} OR {} OR {}) {}",
            entity(random),
            entity(random),
            entity(random),
            news(random)
        ),
        77..=84 => format!("{} {} -{}", entity(random), entity(random), news(random)),
        85..=93 => {
            let stem = news(random);
            let cut = stem.len().min(4 + random.below(3));
            format!("{}* {}", &stem[..cut], entity(random))
        }
        _ => format!("{} NEAR/5 {}", entity(random), news(random)),
    }
}

fn rules(entities: &Entities, count: usize, random: &mut Random) -> Vec<Rule> {
    (0..count)
        .map(|index| {
            let text = rule_query(entities, random);
            let query = RuleQuery::parse(&text)
                .unwrap_or_else(|e| panic!("generated rule {text:?} is invalid: {e}"));
            Rule {
                name: format!("rule-{index}"),
                query,
                tags: Vec::new(),
            }
        })
        .collect()
}

struct Article {
    title: String,
    summary: String,
    content: String,
}

/// What one article is about: the few entities it names and the news words of its topic.
struct Story<'a> {
    cast: Vec<&'a str>,
    topic: Vec<&'static str>,
}

/// News prose about `story`: sentences of 8–25 words until the text reaches `bytes`.
fn prose(entities: &Entities, story: &Story<'_>, bytes: usize, random: &mut Random) -> String {
    let mut text = String::with_capacity(bytes + 200);
    while text.len() < bytes {
        let words = 8 + random.below(18);
        for index in 0..words {
            let mut word = match random.percent() {
                0..=71 => random.pick(COMMON).to_owned(),
                72..=91 => random.pick(&story.topic).to_owned(),
                92..=97 => random.pick(&story.cast).to_owned(),
                _ => entities.for_article(random).to_owned(),
            };
            if index == 0 {
                word[..1].make_ascii_uppercase();
            } else {
                text.push(' ');
            }
            text.push_str(&word);
            match random.percent() {
                0..=1 => text.push_str("’s"),
                2..=3 => text.push_str("'s"),
                4..=9 => text.push(','),
                _ => {}
            }
        }
        text.push_str(if random.percent() < 10 { "” " } else { ". " });
    }
    text
}

fn generated_articles(entities: &Entities, count: usize, random: &mut Random) -> Vec<Article> {
    (0..count)
        .map(|_| {
            let story = Story {
                cast: (0..2 + random.below(4))
                    .map(|_| entities.for_article(random))
                    .collect(),
                topic: (0..8 + random.below(8))
                    .map(|_| random.pick(NEWS))
                    .collect(),
            };
            Article {
                title: prose(entities, &story, 60, random),
                summary: prose(entities, &story, 150, random),
                content: prose(entities, &story, 1000, random),
            }
        })
        .collect()
}

/// Real headlines and descriptions from `$HERALD_CORPUS`, or `None` when unset.
fn corpus_articles(count: usize) -> Option<Vec<Article>> {
    let root = std::env::var("HERALD_CORPUS").ok()?;
    let pattern = format!("{root}/bulk/rss-link-database-2023/**/*_entries.json");
    let mut articles = Vec::new();
    let files = glob::glob(&pattern).unwrap_or_else(|e| panic!("bad corpus path: {e}"));
    for path in files.flatten() {
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        let Ok(serde_json::Value::Array(entries)) = serde_json::from_slice(&bytes) else {
            continue;
        };
        let field = |index: usize, name: &str| {
            entries[index]
                .get(name)
                .and_then(|v| v.as_str())
                .map(strip_tags)
                .unwrap_or_default()
        };
        for index in 0..entries.len() {
            let mut content = String::new();
            for next in index + 1..entries.len() {
                if content.len() >= 1000 {
                    break;
                }
                content.push_str(&field(next, "description"));
                content.push(' ');
            }
            articles.push(Article {
                title: field(index, "title"),
                summary: field(index, "description"),
                content,
            });
            if articles.len() == count {
                return Some(articles);
            }
        }
    }
    assert!(!articles.is_empty(), "no entries under {pattern}");
    Some(articles)
}

fn strip_tags(html: &str) -> String {
    let mut text = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                text.push(' ');
            }
            _ if !in_tag => text.push(c),
            _ => {}
        }
    }
    text
}

fn document(article: &Article) -> Document<'_> {
    Document {
        title: &article.title,
        summary: &article.summary,
        content: &article.content,
        author: "Staff Reporter",
        url: "https://news.example.com/world/2025/article",
        feed: "Example News https://news.example.com/rss",
        tags: &[],
    }
}

fn describe(count: usize, matcher: &Matcher, documents: &[Document<'_>]) {
    let hits: Vec<usize> = documents
        .iter()
        .map(|d| matcher.match_document(d).len())
        .collect();
    let total: usize = hits.iter().sum();
    let with_hits = hits.iter().filter(|&&h| h > 0).count();
    println!(
        "{count} rules: {:.2} hits per article, {:.0}% of articles fire at least one rule",
        total as f64 / documents.len() as f64,
        100.0 * with_hits as f64 / documents.len() as f64
    );
}

fn bench_matching(c: &mut Criterion) {
    let mut random = Random(0x5eed);
    let entities = Entities::new(&mut random);
    let articles =
        corpus_articles(2_000).unwrap_or_else(|| generated_articles(&entities, 500, &mut random));
    let documents: Vec<Document<'_>> = articles.iter().map(document).collect();
    let bytes: usize = articles
        .iter()
        .map(|a| a.title.len() + a.summary.len() + a.content.len())
        .sum();
    println!(
        "{} articles, {} bytes of text each on average",
        documents.len(),
        bytes / documents.len()
    );
    let rule_sets: Vec<(usize, Vec<Rule>)> = [1_000, 10_000, 100_000]
        .into_iter()
        .map(|count| (count, rules(&entities, count, &mut random)))
        .collect();

    let mut compiled = c.benchmark_group("compiled");
    compiled
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::Elements(documents.len() as u64));
    for (count, rules) in &rule_sets {
        let matcher = Matcher::compile(rules.iter().cloned());
        describe(*count, &matcher, &documents);
        compiled.bench_with_input(
            BenchmarkId::from_parameter(count),
            &matcher,
            |b, matcher| {
                b.iter(|| {
                    for document in &documents {
                        black_box(matcher.match_document(black_box(document)));
                    }
                });
            },
        );
    }
    compiled.finish();

    // Evaluating every rule is orders of magnitude slower, so it gets fewer articles.
    let mut naive = c.benchmark_group("one_rule_at_a_time");
    naive
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5));
    for (count, rules) in &rule_sets {
        let sample = &documents[..(200_000 / count).min(documents.len())];
        naive.throughput(Throughput::Elements(sample.len() as u64));
        naive.bench_with_input(BenchmarkId::from_parameter(count), rules, |b, rules| {
            b.iter(|| {
                for document in sample {
                    let tokens = TokenizedDocument::new(document);
                    let fired = rules
                        .iter()
                        .filter(|rule| rule.query.matches_tokenized(&tokens))
                        .count();
                    black_box(fired);
                }
            });
        });
    }
    naive.finish();

    let mut compile = c.benchmark_group("compile");
    compile
        .sample_size(10)
        .measurement_time(Duration::from_secs(5));
    for (count, rules) in rule_sets.iter().filter(|(count, _)| *count == 10_000) {
        compile.bench_with_input(BenchmarkId::from_parameter(count), rules, |b, rules| {
            b.iter(|| Matcher::compile(rules.iter().cloned()));
        });
    }
    compile.finish();
}

/// `HERALD_MATCH_PROFILE=RULES[:PASSES]` runs only the compiled matcher at one rule
/// count for a fixed number of passes over the articles (default 10), outside
/// criterion: for `valgrind --tool=callgrind`, whose instruction counts compare two
/// builds exactly only when both do the same work (criterion's `--profile-time`
/// runs as many iterations as fit in the time).
fn profile(spec: &str) {
    let (count, passes) = match spec.split_once(':') {
        Some((count, passes)) => (count, passes),
        None => (spec, "10"),
    };
    let (Ok(count), Ok(passes)) = (count.parse::<usize>(), passes.parse::<usize>()) else {
        panic!("HERALD_MATCH_PROFILE={spec:?}: expected RULES[:PASSES]");
    };
    let mut random = Random(0x5eed);
    let entities = Entities::new(&mut random);
    let articles =
        corpus_articles(2_000).unwrap_or_else(|| generated_articles(&entities, 500, &mut random));
    let documents: Vec<Document<'_>> = articles.iter().map(document).collect();
    // Generated in the same order as in the benchmark, so the rules are the same.
    let mut chosen = None;
    for size in [1_000, 10_000, 100_000] {
        let generated = rules(&entities, size, &mut random);
        if size == count {
            chosen = Some(generated);
        }
    }
    let chosen = chosen.unwrap_or_else(|| panic!("no rule set of {count}: 1000, 10000, 100000"));
    let matcher = Matcher::compile(chosen);
    let mut hits = 0;
    for _ in 0..passes {
        for document in &documents {
            hits += black_box(matcher.match_document(black_box(document))).len();
        }
    }
    println!("{count} rules, {passes} passes: {hits} hits");
}

criterion_group!(benches, bench_matching);

fn main() {
    if let Ok(spec) = std::env::var("HERALD_MATCH_PROFILE") {
        profile(&spec);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
