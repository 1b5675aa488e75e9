//! Rule matching throughput (SPEC §8: ≥ 50,000 1 KB articles/s at 10,000 rules on
//! one core): the compiled [`Matcher`] against evaluating rules one at a time.
//!
//! Rules and articles are generated from a fixed seed out of realistic news
//! vocabulary: common words, news words, countries, cities, organisations, people
//! and a pool of invented proper names standing in for the long tail of companies,
//! products and places that real watch lists name.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
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

    fn percent(&mut self) -> usize {
        self.below(100)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

struct Vocabulary {
    invented: Vec<String>,
}

impl Vocabulary {
    fn new(random: &mut Random) -> Self {
        let invented = (0..20_000)
            .map(|_| {
                let syllables = 2 + random.below(2);
                let mut name: String = (0..syllables).map(|_| random.pick(SYLLABLES)).collect();
                if let Some(first) = name.get_mut(..1) {
                    first.make_ascii_uppercase();
                }
                name
            })
            .collect();
        Self { invented }
    }

    /// A proper name as a rule would write it: quoted when it has several words.
    fn entity(&self, random: &mut Random) -> String {
        let name = match random.percent() {
            0..=14 => random.pick(COUNTRIES).to_owned(),
            15..=24 => random.pick(CITIES).to_owned(),
            25..=34 => random.pick(ORGANISATIONS).to_owned(),
            35..=49 => format!("{} {}", random.pick(FIRST_NAMES), random.pick(SURNAMES)),
            50..=54 => random.pick(SURNAMES).to_owned(),
            _ => self.invented[random.below(self.invented.len())].clone(),
        };
        if name.contains(' ') {
            format!("\"{name}\"")
        } else {
            name
        }
    }

    fn query(&self, random: &mut Random) -> String {
        let news = |random: &mut Random| random.pick(NEWS).to_owned();
        match random.percent() {
            0..=29 => self.entity(random),
            30..=49 => {
                let mut query = format!("{} {}", self.entity(random), news(random));
                if random.percent() < 40 {
                    query = format!("{query} {}", news(random));
                }
                query
            }
            50..=59 => format!("\"{} {}\"", random.pick(FIRST_NAMES), random.pick(SURNAMES)),
            60..=74 => format!(
                "({} OR {} OR {}) {}",
                self.entity(random),
                self.entity(random),
                self.entity(random),
                news(random)
            ),
            75..=82 => format!(
                "{} -{} -{}",
                self.entity(random),
                news(random),
                news(random)
            ),
            83..=92 => {
                let stem = news(random);
                let cut = stem.len().min(4 + random.below(3));
                format!("{}* {}", &stem[..cut], self.entity(random))
            }
            _ => format!("{} NEAR/5 {}", self.entity(random), news(random)),
        }
    }

    fn rules(&self, count: usize, random: &mut Random) -> Vec<Rule> {
        (0..count)
            .map(|index| {
                let text = self.query(random);
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

    fn word(&self, random: &mut Random) -> String {
        match random.percent() {
            0..=59 => random.pick(COMMON).to_owned(),
            60..=84 => random.pick(NEWS).to_owned(),
            85..=88 => random.pick(COUNTRIES).to_owned(),
            89..=91 => random.pick(CITIES).to_owned(),
            92..=93 => random.pick(ORGANISATIONS).to_owned(),
            94..=96 => format!("{} {}", random.pick(FIRST_NAMES), random.pick(SURNAMES)),
            _ => self.invented[random.below(self.invented.len())].clone(),
        }
    }

    /// Sentences of 8–25 words until the text reaches `bytes`.
    fn text(&self, bytes: usize, random: &mut Random) -> String {
        let mut text = String::with_capacity(bytes + 200);
        while text.len() < bytes {
            let words = 8 + random.below(18);
            for index in 0..words {
                let mut word = self.word(random);
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
}

struct Article {
    title: String,
    summary: String,
    content: String,
}

fn articles(vocabulary: &Vocabulary, count: usize, random: &mut Random) -> Vec<Article> {
    (0..count)
        .map(|_| Article {
            title: vocabulary.text(60, random),
            summary: vocabulary.text(150, random),
            content: vocabulary.text(1000, random),
        })
        .collect()
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

fn bench_matching(c: &mut Criterion) {
    let mut random = Random(0x5eed);
    let vocabulary = Vocabulary::new(&mut random);
    let articles = articles(&vocabulary, 200, &mut random);
    let documents: Vec<Document<'_>> = articles.iter().map(document).collect();
    let rule_sets: Vec<(usize, Vec<Rule>)> = [1_000, 10_000, 100_000]
        .into_iter()
        .map(|count| (count, vocabulary.rules(count, &mut random)))
        .collect();

    let mut compiled = c.benchmark_group("compiled");
    compiled
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .throughput(Throughput::Elements(documents.len() as u64));
    for (count, rules) in &rule_sets {
        let matcher = Matcher::compile(rules.iter().cloned());
        let fired: usize = documents
            .iter()
            .map(|d| matcher.match_document(d).len())
            .sum();
        println!(
            "{count} rules: {:.1} hits per article",
            fired as f64 / documents.len() as f64
        );
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

criterion_group!(benches, bench_matching);
criterion_main!(benches);
