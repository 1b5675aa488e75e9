use proptest::prelude::*;

use super::document::leaf_matches_reference;
use super::*;

// ---------------------------------------------------------------- grammar

/// Parses `input` and compares its canonical, fully parenthesised form.
fn check(input: &str, expected: &str) {
    match RuleQuery::parse(input) {
        Ok(query) => assert_eq!(query.to_string(), expected, "query {input:?}"),
        Err(e) => panic!("query {input:?} failed: {e}"),
    }
}

fn check_error(input: &str, expected: &str) {
    match RuleQuery::parse(input) {
        Ok(query) => panic!("query {input:?} parsed as {query}, expected error {expected:?}"),
        Err(e) => assert_eq!(e.to_string(), expected, "query {input:?}"),
    }
}

#[test]
fn precedence_and_grouping() {
    check("iran", "iran");
    check("a OR b c", "(a OR (b AND c))");
    check("a b OR c", "((a AND b) OR c)");
    check("a AND b OR c AND d", "((a AND b) OR (c AND d))");
    check("a AND b c", "(a AND b AND c)");
    check("NOT a b", "(NOT a AND b)");
    check("-a b", "(NOT a AND b)");
    check("a -b", "(a AND NOT b)");
    check("a NOT b OR c", "((a AND NOT b) OR c)");
    check("NOT (a OR b) c", "(NOT (a OR b) AND c)");
    check("(a OR b) (c OR d)", "((a OR b) AND (c OR d))");
    check("((a))", "a");
    check("a NOT NOT b", "(a AND NOT NOT b)");
    check("a --b", "(a AND NOT NOT b)");
    check("a (b OR -c)", "(a AND (b OR NOT c))");
    check(
        "iran -sport -football",
        "(iran AND NOT sport AND NOT football)",
    );
}

#[test]
fn atoms_fields_and_near() {
    check("Iran", "iran");
    check("Iran*", "iran*");
    check("\"North Korea's\"", "\"north korea\"");
    check("\"Iran\"", "iran");
    check("al-Qaeda", "\"al qaeda\"");
    check("north-kor*", "north-kor*");
    check("北朝鮮", "\"北 朝 鮮\"");
    check("\"Re:Zero\"", "\"re:zero\"");
    check("10:30", "\"10 30\"");
    check("Tehrán", "tehran");
    check("title:iran", "title:iran");
    check("TITLE:Iran", "title:iran");
    check("title:\"North Korea\"", "title:\"north korea\"");
    check(
        "summary:x content:y author:Smith",
        "(summary:x AND content:y AND author:smith)",
    );
    check("url:bbc.co.uk", "url:\"bbc co uk\"");
    check("feed:\"Reuters World\"", "feed:\"reuters world\"");
    check("tag:World", "tag:world");
    check("title:iran*", "title:iran*");
    check(":title:AND*", ":title:and*");
    check("iran NEAR/5 sanctions", "iran NEAR/5 sanctions");
    check(
        "\"north korea\" NEAR/0 iran*",
        "\"north korea\" NEAR/0 iran*",
    );
    check("a b NEAR/2 c", "(a AND b NEAR/2 c)");
    check("a NEAR/1000 b", "a NEAR/1000 b");
    check("iran and iraq", "(iran AND and AND iraq)");
    check("foo(bar)", "(foo AND bar)");
}

#[test]
fn every_error_names_what_was_expected_and_where() {
    check_error("", "empty query");
    check_error("   ", "empty query");
    check_error(
        "\"North Korea\" AND ",
        "expected term after AND at column 19",
    );
    check_error("iran AND OR x", "expected term after AND at column 10");
    check_error("iran OR", "expected term after OR at column 8");
    check_error("OR iran", "expected term before OR at column 1");
    check_error("AND iran", "expected term before AND at column 1");
    check_error("(OR a)", "expected term before OR at column 2");
    check_error("NOT", "expected term after NOT at column 4");
    check_error("iran -", "expected term after \"-\" at column 7");
    check_error("()", "expected term after \"(\" at column 2");
    check_error("a AND )", "expected term after AND at column 7");
    check_error("abc \"de", "unclosed quote at column 5");
    check_error("(a", "unclosed \"(\" at column 1");
    check_error("x (a OR (b)", "unclosed \"(\" at column 3");
    check_error("ab)", "unbalanced \")\" at column 3");
    check_error(") a", "unbalanced \")\" at column 1");
    check_error("a OR b )", "unbalanced \")\" at column 8");
    check_error("a NEAR/x b", "expected a number after NEAR/ at column 8");
    check_error("ab NEAR/", "expected a number after NEAR/ at column 9");
    check_error(
        "a NEAR/1001 b",
        "NEAR/ distance is over the limit of 1000 at column 8",
    );
    check_error(
        "a NEAR/99999999999 b",
        "NEAR/ distance is over the limit of 1000 at column 8",
    );
    check_error(
        "NEAR/3 a",
        "NEAR/3 must stand between two words or phrases at column 1",
    );
    check_error(
        "a NEAR/3",
        "NEAR/3 must stand between two words or phrases at column 3",
    );
    check_error(
        "a NEAR/3 (b)",
        "NEAR/3 must stand between two words or phrases at column 3",
    );
    check_error(
        "(a) NEAR/3 b",
        "NEAR/3 must stand between two words or phrases at column 5",
    );
    check_error(
        "title:a NEAR/3 b",
        "NEAR/3 must stand between two words or phrases at column 9",
    );
    let fields = "(fields are title, summary, content, author, url, feed and tag; quote a word that contains a colon)";
    check_error(
        "titel:iran",
        &format!("unknown field \"titel\" at column 1 {fields}"),
    );
    check_error(
        "iran http://x",
        &format!("unknown field \"http\" at column 6 {fields}"),
    );
    check_error(
        "title:",
        "expected a word or phrase after title: at column 7",
    );
    check_error(
        "title:(a)",
        "expected a word or phrase after title: at column 7",
    );
    check_error(
        "title: OR",
        "expected a word or phrase after title: at column 8",
    );
    check_error(
        "a*b",
        "\"*\" is only allowed at the end of a word at column 2",
    );
    check_error(
        "x *",
        "\"*\" is only allowed at the end of a word at column 3",
    );
    check_error(
        "\"north korea\"*",
        "\"*\" is only allowed at the end of a word at column 14",
    );
    check_error("+++", "no letters or digits in +++ at column 1");
    check_error("iran \"\"", "no letters or digits in \"\" at column 6");
    let pure_negative =
        "query matches articles that contain none of its terms; add a term that must appear";
    check_error("-iran", pure_negative);
    check_error("NOT iran NOT iraq", pure_negative);
    check_error("a OR -b", pure_negative);
    check_error("NOT (a -a)", pure_negative);
    let deep = format!("{}a{}", "(".repeat(100), ")".repeat(100));
    check_error(&deep, "query nests deeper than 64 levels at column 65");
    check_error(
        &"NOT ".repeat(100),
        "query nests deeper than 64 levels at column 257",
    );
}

#[test]
fn error_column_is_exposed_for_callers() {
    let error = RuleQuery::parse("iran AND").unwrap_err();
    assert_eq!(error.column(), Some(9));
    assert_eq!(RuleQuery::parse("-x").unwrap_err().column(), None);
}

#[test]
fn lowercase_operators_are_words_with_a_warning() {
    let query = RuleQuery::parse("iran and iraq Or syria near/5 x").unwrap();
    let warnings: Vec<String> = query.warnings().iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        [
            "\"and\" at column 6 is searched as a word; write AND if you meant the operator",
            "\"Or\" at column 15 is searched as a word; write OR if you meant the operator",
            "\"near/5\" at column 24 is searched as a word; write NEAR/5 if you meant the operator",
        ]
    );
    assert!(
        RuleQuery::parse("iran AND \"and\"")
            .unwrap()
            .warnings()
            .is_empty()
    );
}

#[test]
fn a_star_inside_quotes_is_reported_not_silently_dropped() {
    let query = RuleQuery::parse("\"North Korea*\" Iran").unwrap();
    let warnings: Vec<String> = query.warnings().iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        [
            "\"*\" at column 13 inside the phrase \"North Korea*\" is ignored: it searches \"North Korea\"; \
             write North-Korea* (words joined by \"-\") for a phrase whose last word is a prefix"
        ]
    );
    // What it says: the star is dropped, a prefix is not searched.
    let korean = article("North Korean envoy in Iran", "");
    let korea = article("North Korea envoy in Iran", "");
    assert!(!fires("\"North Korea*\" Iran", &korean));
    assert!(fires("\"North Korea*\" Iran", &korea));
    assert!(fires("North-Korea* Iran", &korean));

    let middle = RuleQuery::parse("\"North* Korea\"").unwrap();
    assert_eq!(
        middle.warnings()[0].to_string(),
        "\"*\" at column 7 inside the phrase \"North* Korea\" is ignored: it searches \"North Korea\""
    );
    assert!(
        RuleQuery::parse("\"North Korea\" Kor*")
            .unwrap()
            .warnings()
            .is_empty()
    );
}

/// The table of docs/rules.md, "What matches and what does not".
#[test]
fn documented_matches_hold() {
    let cases: &[(&str, &[&str], &[&str])] = &[
        (
            "Iran",
            &[
                "IRAN",
                "iran",
                "Iran's",
                "Iran\u{2019}s",
                "(Iran)",
                "Iran.",
                "Iran-Iraq",
            ],
            &["Iranian", "Iranians"],
        ),
        ("Iran*", &["Iran", "Iranian", "Iran's"], &["Irak"]),
        (
            "\"North Korea\"",
            &[
                "North Korea",
                "north korea's",
                "North  Korea",
                "North-Korea",
            ],
            &["North and South Korea", "Korea, North"],
        ),
        (
            "North-Korea*",
            &["North Korean", "North Koreans", "North Korea"],
            &["South Korean"],
        ),
        ("Sao Paulo", &["S\u{e3}o Paulo", "SAO PAULO"], &[]),
        ("\"S\u{e3}o Paulo\"", &["Sao Paulo"], &[]),
        ("Tehran", &["Tehran", "Teh\u{ad}ran"], &["Teheran"]),
        ("Zurich", &["Z\u{fc}rich"], &["Zuerich"]),
        ("strasse", &["STRASSE"], &["Stra\u{df}e"]),
        ("U.S.", &["U.S.", "u.s."], &["US", "U.S.A."]),
        ("1,000", &["1,000"], &["1000"]),
        (
            "\u{5317}\u{671d}\u{9bae}",
            &[
                "\u{5317}\u{671d}\u{9bae}",
                "\u{5317}\u{671d}\u{9bae}\u{306e}",
            ],
            &["\u{671d}\u{9bae}", "\u{5357}\u{671d}\u{9bae}"],
        ),
        (
            "\u{645}\u{62d}\u{645}\u{62f}",
            &["\u{645}\u{64f}\u{62d}\u{64e}\u{645}\u{651}\u{64e}\u{62f}"],
            &[],
        ),
        ("Iran", &["\u{ff29}\u{ff52}\u{ff41}\u{ff4e}"], &[]),
        ("e-mail", &["e mail"], &[]),
    ];
    for (query, matching, other) in cases {
        for title in *matching {
            assert!(
                fires(query, &article(title, "")),
                "{query} should match {title:?}"
            );
        }
        for title in *other {
            assert!(
                !fires(query, &article(title, "")),
                "{query} should not match {title:?}"
            );
        }
    }
}

// ---------------------------------------------------------------- semantics

fn article<'a>(title: &'a str, content: &'a str) -> Document<'a> {
    Document {
        title,
        content,
        ..Document::default()
    }
}

/// Whether `query` fires on `document`, asserting that the reference evaluator
/// and the compiled matcher agree.
fn fires(query: &str, document: &Document<'_>) -> bool {
    let parsed = RuleQuery::parse(query).unwrap();
    let reference = parsed.matches(document);
    let matcher = Matcher::compile([Rule {
        name: "r".into(),
        query: parsed,
        tags: Vec::new(),
    }]);
    let compiled = !matcher.match_document(document).is_empty();
    assert_eq!(
        compiled, reference,
        "matcher and reference disagree on {query:?}"
    );
    compiled
}

const NK_TITLE: &str = "North Korea's economy minister arrives in Tehran";
const NK_STORY: &str = "A delegation from Pyongyang, led by the minister for external economic \
     relations, landed in Tehran on Monday for talks with IRAN's trade officials. \
     Diplomats called it a rare public exchange between two nations that both live \
     under heavy international sanctions.";

#[test]
fn north_korea_iran_story() {
    let story = article(NK_TITLE, NK_STORY);
    assert!(fires("\"North Korea\" Iran", &story));
    let iranian_only = article(
        "North Korea hosts Iranian officials",
        "Iranian diplomats met a delegation from North Korea in Tehran.",
    );
    assert!(!fires("\"North Korea\" Iran", &iranian_only));
    assert!(fires("\"North Korea\" Iran*", &iranian_only));
    let korea_only = article("North Korea fires missile", "Launch seen from Seoul.");
    assert!(!fires("\"North Korea\" Iran", &korea_only));
    let iran_only = article("Iran oil exports rise", "Tehran says output is up.");
    assert!(!fires("\"North Korea\" Iran", &iran_only));
    // "korea north" is not the phrase.
    assert!(!fires(
        "\"North Korea\"",
        &article("", "Korea, north of the river")
    ));
}

#[test]
fn long_words_sharing_their_first_eight_bytes_are_told_apart() {
    // The matcher keys words on their first eight bytes and length; the rest must
    // still be compared, in anchors, later phrase words and NEAR partners alike.
    let text = article("", "The sanctioner met internationalists in Vladivostok");
    assert!(!fires("sanctioned", &text));
    assert!(fires("sanctioner", &text));
    assert!(!fires("\"sanctioner met internationalism\"", &text));
    assert!(fires("\"sanctioner met internationalists\"", &text));
    assert!(!fires("vladivostak NEAR/3 internationalists", &text));
    assert!(fires("vladivostok NEAR/3 internationalists", &text));
    assert!(!fires("met NEAR/1 vladivostak", &text));
    assert!(fires("met NEAR/2 vladivostok", &text));
    assert!(fires("internationalis*", &text));
    assert!(!fires("internationalin*", &text));
    assert!(!fires("internationalistsx*", &text));
    assert!(fires("sanctioner*", &text));
    assert!(!fires("sanctionez*", &text));
    assert!(fires("met NEAR/0 internationalis*", &text));
    assert!(!fires("met NEAR/0 internationalin*", &text));
}

#[test]
fn wide_conjunctions_and_disjunctions() {
    // The matcher keeps up to 64 values in one integer and falls back to a
    // growable stack past that; both sides of the edge must agree with the reference.
    for width in [2, 63, 64, 65, 100] {
        let words: Vec<String> = (0..width).map(|i| format!("w{i}")).collect();
        let all = words.join(" ");
        let all_but_last = words[..width - 1].join(" ");
        let last = &words[width - 1];
        let and = words.join(" AND ");
        let or = words.join(" OR ");
        assert!(fires(&and, &article("", &all)), "{width}");
        assert!(!fires(&and, &article("", &all_but_last)), "{width}");
        assert!(fires(&or, &article("", last)), "{width}");
        assert!(!fires(&or, &article("", "nothing here")), "{width}");
        let nested = format!("x ({or}) -({and})");
        assert!(fires(&nested, &article("x", last)), "{width}");
        assert!(!fires(&nested, &article("x", &all)), "{width}");
    }
}

#[test]
fn rules_with_several_required_branches() {
    // The matcher skips a rule triggered by one required branch when no leaf of
    // another occurs; every branch shape must still fire exactly when it should.
    let queries = [
        "(iran OR iraq OR syria) talks",
        "talks (iran OR iraq) (oil OR gas*)",
        "(iran OR \"north korea\") (talks NEAR/2 oil OR sanct*)",
        "(iran OR iraq) -talks (oil OR gas)",
    ];
    let texts = [
        "talks",
        "talks in iraq",
        "talks in iraq about gasoline",
        "north korea and iran oil talks",
        "iran sanctioned",
        "iraq oil",
        "syria talks oil",
    ];
    for query in queries {
        for text in texts {
            fires(query, &article("", text));
        }
    }
    assert!(!fires(queries[0], &article("", "talks")));
    assert!(fires(queries[0], &article("", "talks in iraq")));
    assert!(fires(
        queries[1],
        &article("", "talks in iraq about gasoline")
    ));
    assert!(!fires(queries[1], &article("", "talks in iraq")));
    assert!(fires(
        queries[2],
        &article("", "north korea and iran oil talks")
    ));
    assert!(fires(queries[2], &article("", "iran sanctioned")));
    assert!(fires(queries[3], &article("", "iraq oil")));
    assert!(!fires(queries[3], &article("", "syria talks oil")));
}

#[test]
fn hits_list_the_positive_terms_present() {
    let rules = [
        "\"North Korea\" Iran -sport",
        "pyongyang OR seoul",
        "tehran*",
    ]
    .map(|q| Rule {
        name: q.to_owned(),
        query: RuleQuery::parse(q).unwrap(),
        tags: Vec::new(),
    });
    let matcher = Matcher::compile(rules);
    let hits = matcher.match_document(&article(NK_TITLE, NK_STORY));
    assert_eq!(hits.len(), 3);
    assert_eq!(
        hits.to_vec(),
        [
            RuleHit {
                rule: 0,
                terms: vec!["\"north korea\"".into(), "iran".into()]
            },
            RuleHit {
                rule: 1,
                terms: vec!["pyongyang".into()]
            },
            RuleHit {
                rule: 2,
                terms: vec!["tehran*".into()]
            },
        ]
    );
    assert_eq!(matcher.rule_name(2), Some("tehran*"));
    assert_eq!(matcher.rule_name(3), None);
    assert_eq!(matcher.len(), 3);
}

#[test]
fn near_counts_words_between_in_either_order() {
    let five_apart = article("", "iran a b c d e sanctions");
    let six_apart = article("", "iran a b c d e f sanctions");
    assert!(fires("iran NEAR/5 sanctions", &five_apart));
    assert!(!fires("iran NEAR/4 sanctions", &five_apart));
    assert!(!fires("iran NEAR/5 sanctions", &six_apart));
    assert!(fires("sanctions NEAR/5 iran", &five_apart));
    assert!(!fires("sanctions NEAR/5 iran", &six_apart));
    assert!(fires(
        "iran NEAR/0 sanctions",
        &article("", "Iran sanctions")
    ));
    assert!(!fires(
        "iran NEAR/0 sanctions",
        &article("", "sanctions on Iran")
    ));
    assert!(fires(
        "\"north korea\" NEAR/1 iran",
        &article("", "Iran and North Korea")
    ));
    assert!(!fires(
        "\"north korea\" NEAR/0 iran",
        &article("", "Iran and North Korea")
    ));
    // Two occurrences are needed for a word near itself.
    assert!(!fires("iran NEAR/3 iran", &article("", "iran")));
    assert!(fires("iran NEAR/3 iran", &article("", "iran and iran")));
    // Never across fields.
    assert!(!fires(
        "iran NEAR/5 sanctions",
        &article("Iran", "sanctions")
    ));
}

#[test]
fn prefixes_match_word_starts_only() {
    let text = article("", "Iranian and Iraqi ministers");
    assert!(fires("iran*", &text));
    assert!(fires("ira*", &text));
    assert!(!fires("iran", &text));
    assert!(!fires("ranian*", &text));
    assert!(fires("minister*", &text));
    assert!(fires("i*", &text));
    assert!(fires("north-kor*", &article("", "North Korean troops")));
    assert!(!fires("north-kor*", &article("", "Korean troops north of")));
}

#[test]
fn fields_restrict_where_a_term_is_searched() {
    let tags = vec!["World News".to_owned(), "Security".to_owned()];
    let document = Document {
        title: "Iran talks",
        summary: "Summary about oil",
        content: "Body mentions Pyongyang",
        author: "Jane Smith",
        url: "https://www.bbc.co.uk/news/world-123",
        feed: "Reuters World https://feeds.reuters.com/world",
        tags: &tags,
    };
    let cases = [
        ("title:iran", true),
        ("content:iran", false),
        ("summary:oil", true),
        ("title:oil", false),
        ("content:pyongyang", true),
        ("oil", true),
        ("pyongyang", true),
        ("smith", false),
        ("author:smith", true),
        ("author:\"jane smith\"", true),
        ("url:bbc", true),
        ("url:\"bbc.co.uk\"", true),
        ("url:world", true),
        ("bbc", false),
        ("feed:reuters", true),
        ("feed:feeds.reuters.com", true),
        ("feed:bbc", false),
        ("tag:security", true),
        ("tag:world", true),
        ("tag:\"world news\"", true),
        ("tag:\"news security\"", false),
        ("tag:sport", false),
        ("security", false),
    ];
    for (query, expected) in cases {
        assert_eq!(fires(query, &document), expected, "query {query:?}");
    }
}

#[test]
fn tag_scope_limits_a_rule_to_tagged_feeds() {
    let rule = |tags: &[&str]| Rule {
        name: "scoped".into(),
        query: RuleQuery::parse("iran").unwrap(),
        tags: tags.iter().map(|t| (*t).to_owned()).collect(),
    };
    let matcher = Matcher::compile([rule(&["Security", "middle-east"]), rule(&[])]);
    let fired = |tags: &[&str]| {
        let tags: Vec<String> = tags.iter().map(|t| (*t).to_owned()).collect();
        let document = Document {
            title: "Iran",
            tags: &tags,
            ..Document::default()
        };
        let hits: Vec<usize> = matcher
            .match_document(&document)
            .iter()
            .map(|h| h.rule)
            .collect();
        hits
    };
    assert_eq!(fired(&["security"]), [0, 1]);
    assert_eq!(fired(&["sport", "Middle East"]), [0, 1]);
    assert_eq!(fired(&["sport"]), [1]);
    assert_eq!(fired(&[]), [1]);
}

#[test]
fn diacritics_case_and_scripts() {
    assert!(fires("Tehran", &article("", "Talks in Tehrán")));
    assert!(fires("Tehrán", &article("", "Talks in TEHRAN")));
    assert!(fires("zurich", &article("", "Zürich")));
    assert!(fires("Москва", &article("", "МОСКВА заявила")));
    assert!(fires("москв*", &article("", "из Москвы")));
    assert!(!fires("Москва", &article("", "из Москвы")));
    assert!(fires(
        "\"北朝鮮\"",
        &article("", "北朝鮮とイランが会談した")
    ));
    assert!(fires(
        "北朝鮮 イラン",
        &article("", "北朝鮮とイランが会談した")
    ));
    assert!(!fires("北朝鮮", &article("", "北京と朝鮮")));
    assert!(fires(
        "إيران",
        &article("", "وفد من كوريا الشمالية في إِيرَان")
    ));
    assert!(fires("ايران", &article("", "وفد في إيران")));
    assert!(!fires("ايران", &article("", "وفد في الإيرانية")));
}

#[test]
fn matching_shared_terms_in_many_rules() {
    let queries = [
        "iran",
        "iran oil",
        "iran -oil",
        "title:iran",
        "\"iran oil\"",
    ];
    let matcher = Matcher::compile(queries.map(|q| Rule {
        name: q.into(),
        query: RuleQuery::parse(q).unwrap(),
        tags: Vec::new(),
    }));
    let hits: Vec<usize> = matcher
        .match_document(&article("Oil", "Iran oil output"))
        .iter()
        .map(|h| h.rule)
        .collect();
    assert_eq!(hits, [0, 1, 4]);
    assert!(
        Matcher::compile([])
            .match_document(&article("Iran", ""))
            .is_empty()
    );
}

// ---------------------------------------------------------------- properties

const VOCABULARY: &[&str] = &[
    "iran", "korea", "north", "oil", "talks", "iranian", "IRAN's", "Korea's", "oilfield",
];

fn text_strategy() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(VOCABULARY), 0..14).prop_map(|w| w.join(" "))
}

fn word_strategy() -> impl Strategy<Value = String> {
    prop::sample::select(&["iran", "korea", "north", "oil", "talks", "iranian"][..])
        .prop_map(String::from)
}

fn leaf_strategy() -> impl Strategy<Value = String> {
    let field =
        prop::sample::select(&["", "title:", "content:", "summary:", "author:", "tag:"][..]);
    prop_oneof![
        word_strategy(),
        word_strategy().prop_map(|w| format!("{}*", &w[..2])),
        (field, word_strategy()).prop_map(|(f, w)| format!("{f}{w}")),
        (word_strategy(), word_strategy()).prop_map(|(a, b)| format!("\"{a} {b}\"")),
        (word_strategy(), 0..4u32, word_strategy())
            .prop_map(|(a, n, b)| format!("{a} NEAR/{n} {b}")),
        (word_strategy(), word_strategy(), 0..3u32, word_strategy())
            .prop_map(|(a, b, n, c)| format!("\"{a} {b}\" NEAR/{n} {c}*")),
    ]
}

fn query_strategy() -> impl Strategy<Value = String> {
    leaf_strategy().prop_recursive(4, 16, 3, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} OR {b})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} {b})")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("({a} AND {b})")),
            inner.clone().prop_map(|a| format!("-{a}")),
            inner.prop_map(|a| format!("NOT ({a})")),
        ]
    })
}

#[derive(Debug, Clone)]
struct TestDocument {
    title: String,
    summary: String,
    content: String,
    author: String,
    tags: Vec<String>,
}

fn document_strategy() -> impl Strategy<Value = TestDocument> {
    let tags = prop::collection::vec(
        prop::sample::select(&["world", "security", "oil"][..]),
        0..3,
    );
    (
        text_strategy(),
        text_strategy(),
        text_strategy(),
        text_strategy(),
        tags,
    )
        .prop_map(|(title, summary, content, author, tags)| TestDocument {
            title,
            summary,
            content,
            author,
            tags: tags.into_iter().map(String::from).collect(),
        })
}

/// One rule at a time with the reference evaluator: the definition of a hit.
fn reference_hits(rules: &[Rule], document: &Document<'_>) -> Vec<RuleHit> {
    let tokens = TokenizedDocument::new(document);
    let in_scope = |rule: &Rule| {
        rule.tags.is_empty()
            || rule
                .tags
                .iter()
                .any(|t| document.tags.iter().any(|d| d.eq_ignore_ascii_case(t)))
    };
    rules
        .iter()
        .enumerate()
        .filter(|(_, rule)| in_scope(rule) && rule.query.matches_tokenized(&tokens))
        .map(|(index, rule)| {
            let mut terms: Vec<std::sync::Arc<str>> = Vec::new();
            rule.query.expr.visit_leaves(true, &mut |leaf, positive| {
                let display = leaf.to_string();
                if positive
                    && leaf_matches_reference(leaf, &tokens)
                    && !terms.iter().any(|t| **t == *display)
                {
                    terms.push(display.into());
                }
            });
            RuleHit { rule: index, terms }
        })
        .collect()
}

#[test]
fn a_long_run_of_field_prefixes_is_an_error_not_a_stack_overflow() {
    // Found by the property tests: `title:` repeated 3,000 times overflowed the stack
    // (an abort, not a panic) in the lexer, which took each prefix by recursion.
    let error = RuleQuery::parse(&"title:".repeat(100_000)).unwrap_err();
    assert_eq!(
        error,
        QueryError::ExpectedAtomAfterField {
            field: "title",
            column: 7
        }
    );
    let query = RuleQuery::parse("title:url:iran").unwrap_err();
    assert_eq!(query.column(), Some(7));
}

/// Parses `input`; an error must point inside it (a 1-based character column, at most
/// one past the end) and read as one line.
fn check_error_position(input: &str) -> Result<(), TestCaseError> {
    let Err(error) = RuleQuery::parse(input) else {
        return Ok(());
    };
    let message = error.to_string();
    prop_assert!(!message.contains('\n'), "{message:?}");
    if let Some(column) = error.column() {
        let end = input.chars().count() + 1;
        prop_assert!(
            (1..=end).contains(&column),
            "column {column} of {end}: {message} in {input:?}"
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        // scripts/fuzz asks for more.
        std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(200)
    ))]

    #[test]
    fn compiled_matcher_agrees_with_reference(
        queries in prop::collection::vec(
            (query_strategy(), prop::sample::select(&["", "world", "security"][..])), 1..30),
        documents in prop::collection::vec(document_strategy(), 1..6),
    ) {
        let rules: Vec<Rule> = queries
            .iter()
            .filter_map(|(query, tag)| {
                let query = RuleQuery::parse(query).ok()?;
                let tags = if tag.is_empty() { Vec::new() } else { vec![(*tag).to_owned()] };
                Some(Rule { name: String::new(), query, tags })
            })
            .collect();
        let matcher = Matcher::compile(rules.clone());
        for doc in &documents {
            let document = Document {
                title: &doc.title,
                summary: &doc.summary,
                content: &doc.content,
                author: &doc.author,
                tags: &doc.tags,
                ..Document::default()
            };
            let hits = matcher.match_document(&document);
            prop_assert_eq!(hits.len(), hits.iter().count());
            prop_assert_eq!(hits.to_vec(), reference_hits(&rules, &document));
        }
    }

    #[test]
    fn generated_queries_parse_unless_purely_negative(query in query_strategy()) {
        match RuleQuery::parse(&query) {
            Ok(parsed) => {
                let reparsed = RuleQuery::parse(&parsed.to_string()).unwrap();
                prop_assert_eq!(reparsed.expr, parsed.expr);
            }
            Err(e) => prop_assert_eq!(e, QueryError::NoRequiredTerm),
        }
    }

    #[test]
    fn parser_never_panics_on_arbitrary_text(input in ".{0,60}") {
        check_error_position(&input)?;
    }

    #[test]
    fn parser_never_panics_on_arbitrary_strings(input in any::<String>()) {
        check_error_position(&input)?;
    }

    #[test]
    fn parser_never_overflows_the_stack_on_deep_input(
        piece in prop::sample::select(&["(", "-", "NOT ", "-(", "NOT (", "(x OR ", "x NEAR/1 ", "\"", "title:"][..]),
        repeat in 1..3000usize,
        tail in prop::sample::select(&["", "x", "x)", ")"][..]),
    ) {
        check_error_position(&format!("{}{tail}", piece.repeat(repeat)))?;
    }

    #[test]
    fn parser_never_panics_on_grammar_soup(
        pieces in prop::collection::vec(prop::sample::select(&[
            "(", ")", "\"", " ", "-", "*", ":", "AND", "OR", "NOT", "NEAR/", "NEAR/3", "3",
            "title:", "url:", "tag:", "x", "iran", "and", "é", "北", "'s", "/", "\u{301}",
        ][..]), 0..20),
    ) {
        let input: String = pieces.concat();
        check_error_position(&input)?;
        if let Ok(parsed) = RuleQuery::parse(&input) {
            // The canonical form is itself a valid query with the same meaning.
            let reparsed = RuleQuery::parse(&parsed.to_string());
            prop_assert_eq!(reparsed.map(|q| q.expr), Ok(parsed.expr), "input {:?}", input);
        }
    }
}

#[test]
fn word_heads_read_from_the_buffer_equal_those_built_byte_by_byte() {
    let tokens = TokenList::new("Iran's sanctions, a b internationalisation Tehrán x 北朝鮮");
    let mut count = 0;
    for (word, head) in tokens.iter_with_heads() {
        assert_eq!(head, super::text::word_head(word.as_bytes()), "{word}");
        count += 1;
    }
    assert_eq!(count, tokens.len());
}

#[test]
fn word_bytes_read_from_the_buffer_are_the_words() {
    let tokens = TokenList::new("Iran's sanctions, a b internationalisation Tehrán x 北朝鮮");
    let bytes: Vec<&[u8]> = tokens.iter_bytes_with_heads().map(|(w, _)| w).collect();
    let words: Vec<&[u8]> = tokens.iter().map(str::as_bytes).collect();
    assert_eq!(bytes, words);
}

/// Compiles `queries` together and checks every document against the reference.
fn assert_rule_set_agrees(queries: &[&str], documents: &[Document<'_>]) {
    let rules: Vec<Rule> = queries
        .iter()
        .map(|query| Rule {
            name: (*query).to_owned(),
            query: RuleQuery::parse(query).unwrap(),
            tags: Vec::new(),
        })
        .collect();
    let matcher = Matcher::compile(rules.clone());
    for document in documents {
        assert_eq!(
            matcher.match_document(document).to_vec(),
            reference_hits(&rules, document),
            "{document:?}"
        );
    }
}

#[test]
fn near_pairs_sharing_an_anchor_agree_with_reference() {
    // Pairs on one anchor share one scan of the widest window among them: each must
    // still keep its own distance, right term length and fields, and the pairs
    // past the window's largest distance are checked one by one.
    let queries = [
        "iran NEAR/0 talks",
        "iran NEAR/2 talks",
        "iran NEAR/1 \"oil prices\"",
        "iran NEAR/0 \"oil pri*\"",
        "iran NEAR/3 sanct*",
        "iran NEAR/3 iran",
        "iran NEAR/16 deal",
        "iran NEAR/17 deal",
        "iran NEAR/40 vote",
        "iran* NEAR/1 talks",
        "\"north korea\" NEAR/2 talks",
        "\"north korea\" NEAR/1 iran",
        "talks NEAR/4 iran",
    ];
    let filler = |n: usize| vec!["x"; n].join(" ");
    let texts = [
        "Iran talks".to_owned(),
        "talks Iran".to_owned(),
        "talks x Iran".to_owned(),
        "Iran x x talks x x x x Iran".to_owned(),
        "oil prices Iran".to_owned(),
        "oil price x Iran".to_owned(),
        "Iran oil prices".to_owned(),
        "Iran x oil prices".to_owned(),
        "Iran x sanctioned x x x".to_owned(),
        "Iranian talks about North Korea x talks".to_owned(),
        "North Korea x Iran x x talks".to_owned(),
        format!("Iran {} deal", filler(16)),
        format!("Iran {} deal", filler(17)),
        format!("deal {} Iran", filler(17)),
        format!("deal {} Iran", filler(18)),
        format!("vote {} Iran {} vote", filler(41), filler(40)),
        "Iran".to_owned(),
        "talks".to_owned(),
    ];
    let mut documents = Vec::new();
    for text in &texts {
        documents.push(article("", text));
        documents.push(article(text, ""));
        documents.push(article(text, text));
    }
    assert_rule_set_agrees(&queries, &documents);
}

#[test]
fn rules_sharing_triggers_and_filters_agree_with_reference() {
    // Watches hold one filter leaf inline and several in a shared list.
    let queries = [
        "iran sanctions",
        "iran talks",
        "(iran OR iraq OR syria) sanctions",
        "(iran OR iraq) (talks OR deal)",
        "iran -talks",
        "iran",
        "(iraq OR syria) iran oil",
    ];
    let texts = [
        "Iran sanctions",
        "Iraq sanctions",
        "Syria talks",
        "Iraq deal",
        "Iran oil talks",
        "Syria oil Iran",
        "sanctions",
        "",
    ];
    let documents: Vec<_> = texts.iter().map(|text| article("", text)).collect();
    assert_rule_set_agrees(&queries, &documents);
}
