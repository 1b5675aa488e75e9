//! The watch-rule query language: lexer, parser, syntax tree and its canonical text.

use std::fmt;

use super::text::{TextKind, TokenList};

/// Farther than any article paragraph; a bigger number is almost surely a typo.
pub const MAX_NEAR_DISTANCE: u32 = 1000;

/// Deep enough for any hand-written rule, shallow enough that recursion cannot
/// overflow the stack on hostile input.
pub const MAX_NESTING: usize = 64;

/// A field a term can be restricted to with `field:term`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    Title,
    Summary,
    Content,
    Author,
    Url,
    Feed,
    Tag,
}

impl Field {
    pub const ALL: [Field; 7] = [
        Field::Title,
        Field::Summary,
        Field::Content,
        Field::Author,
        Field::Url,
        Field::Feed,
        Field::Tag,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Field::Title => "title",
            Field::Summary => "summary",
            Field::Content => "content",
            Field::Author => "author",
            Field::Url => "url",
            Field::Feed => "feed",
            Field::Tag => "tag",
        }
    }

    fn from_name(name: &str) -> Option<Field> {
        Field::ALL
            .into_iter()
            .find(|field| field.as_str().eq_ignore_ascii_case(name))
    }

    pub(crate) fn text_kind(self) -> TextKind {
        match self {
            Field::Url | Field::Feed => TextKind::Address,
            _ => TextKind::Prose,
        }
    }

    pub(crate) fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// Fields searched by a term with no `field:` prefix.
pub(crate) const DEFAULT_FIELDS: u8 = 0b111;

/// Why a query was rejected; every positioned error names a 1-based character column.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    #[error("empty query")]
    Empty,
    #[error("expected term after {after} at column {column}")]
    ExpectedTermAfter { after: String, column: usize },
    #[error("expected term before {operator} at column {column}")]
    ExpectedTermBefore { operator: String, column: usize },
    #[error("unclosed quote at column {column}")]
    UnclosedQuote { column: usize },
    #[error("unclosed \"(\" at column {column}")]
    UnclosedParen { column: usize },
    #[error("unbalanced \")\" at column {column}")]
    UnbalancedParen { column: usize },
    #[error("expected a number after NEAR/ at column {column}")]
    NearWithoutNumber { column: usize },
    #[error("NEAR/ distance is over the limit of {MAX_NEAR_DISTANCE} at column {column}")]
    NearTooFar { column: usize },
    #[error("{operator} must stand between two words or phrases at column {column}")]
    MisplacedNear { operator: String, column: usize },
    #[error(
        "unknown field \"{name}\" at column {column} (fields are title, summary, content, author, url, feed and tag; quote a word that contains a colon)"
    )]
    UnknownField { name: String, column: usize },
    #[error("expected a word or phrase after {field}: at column {column}")]
    ExpectedAtomAfterField { field: &'static str, column: usize },
    #[error("\"*\" is only allowed at the end of a word at column {column}")]
    MisplacedStar { column: usize },
    #[error("no letters or digits in {term} at column {column}")]
    NoWords { term: String, column: usize },
    #[error("query nests deeper than {MAX_NESTING} levels at column {column}")]
    TooDeep { column: usize },
    #[error("query matches articles that contain none of its terms; add a term that must appear")]
    NoRequiredTerm,
}

impl QueryError {
    /// The 1-based character column the error points at, when it points at one.
    pub fn column(&self) -> Option<usize> {
        match self {
            QueryError::Empty | QueryError::NoRequiredTerm => None,
            QueryError::ExpectedTermAfter { column, .. }
            | QueryError::ExpectedTermBefore { column, .. }
            | QueryError::UnclosedQuote { column }
            | QueryError::UnclosedParen { column }
            | QueryError::UnbalancedParen { column }
            | QueryError::NearWithoutNumber { column }
            | QueryError::NearTooFar { column }
            | QueryError::MisplacedNear { column, .. }
            | QueryError::UnknownField { column, .. }
            | QueryError::ExpectedAtomAfterField { column, .. }
            | QueryError::MisplacedStar { column }
            | QueryError::NoWords { column, .. }
            | QueryError::TooDeep { column } => Some(*column),
        }
    }
}

/// Something legal but probably unintended, for `herald check` and `herald
/// rules test` to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryWarning {
    pub kind: WarningKind,
    /// The word, or the phrase without its quotes.
    pub word: String,
    /// Of the word, or of the `*` in a phrase.
    pub column: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WarningKind {
    /// `and`, `or`, `not`, `near/N`: searched as words.
    LowercaseOperator,
    /// A `*` inside quotes: word splitting drops it, so `"North Korea*"` is
    /// the phrase `north korea`, never a prefix.
    StarInPhrase,
}

impl fmt::Display for QueryWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            WarningKind::LowercaseOperator => write!(
                f,
                "\"{}\" at column {} is searched as a word; write {} if you meant the operator",
                self.word,
                self.column,
                self.word.to_ascii_uppercase()
            ),
            WarningKind::StarInPhrase => {
                let words: Vec<&str> = self
                    .word
                    .split(|c: char| c.is_whitespace() || c == '*')
                    .filter(|word| !word.is_empty())
                    .collect();
                write!(
                    f,
                    "\"*\" at column {} inside the phrase \"{}\" is ignored: it searches \"{}\"",
                    self.column,
                    self.word,
                    words.join(" ")
                )?;
                if self.word.trim_end().ends_with('*') && !words.is_empty() {
                    write!(
                        f,
                        "; write {}* (words joined by \"-\") for a phrase whose last word is a prefix",
                        words.join("-")
                    )?;
                }
                Ok(())
            }
        }
    }
}

/// A sequence of normalised words that must appear consecutively; the last one
/// may be a prefix (`iran*`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Term {
    pub words: Vec<String>,
    pub prefix: bool,
}

impl Term {
    /// Whether the term occurs in `tokens` starting at `position`.
    pub fn occurs_at(&self, tokens: &TokenList, position: usize) -> bool {
        let last = self.words.len().saturating_sub(1);
        self.words
            .iter()
            .enumerate()
            .all(|(offset, word)| match tokens.get(position + offset) {
                Some(token) if self.prefix && offset == last => token.starts_with(word.as_str()),
                Some(token) => token == word,
                None => false,
            })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum LeafKind {
    Term(Term),
    /// Both terms occur, not overlapping, with at most `distance` words between them.
    Near {
        left: Term,
        right: Term,
        distance: u32,
    },
}

/// One condition on the words of a document: a term or a NEAR pair, in some fields.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Leaf {
    pub field: Option<Field>,
    pub kind: LeafKind,
}

impl Leaf {
    pub fn fields(&self) -> u8 {
        self.field.map_or(DEFAULT_FIELDS, Field::bit)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Expr {
    Leaf(Leaf),
    Not(Box<Expr>),
    And(Vec<Expr>),
    Or(Vec<Expr>),
}

impl Expr {
    /// Evaluates with `leaf` deciding each leaf; short-circuits like the operators read.
    pub fn eval(&self, leaf: &mut impl FnMut(&Leaf) -> bool) -> bool {
        match self {
            Expr::Leaf(l) => leaf(l),
            Expr::Not(inner) => !inner.eval(leaf),
            Expr::And(items) => items.iter().all(|item| item.eval(leaf)),
            Expr::Or(items) => items.iter().any(|item| item.eval(leaf)),
        }
    }

    /// Calls `visit` with every leaf and whether it sits under an even number of NOTs.
    pub fn visit_leaves<'a>(&'a self, positive: bool, visit: &mut impl FnMut(&'a Leaf, bool)) {
        match self {
            Expr::Leaf(l) => visit(l, positive),
            Expr::Not(inner) => inner.visit_leaves(!positive, visit),
            Expr::And(items) | Expr::Or(items) => {
                for item in items {
                    item.visit_leaves(positive, visit);
                }
            }
        }
    }
}

/// A parsed, validated watch-rule query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleQuery {
    pub(crate) expr: Expr,
    warnings: Vec<QueryWarning>,
}

impl RuleQuery {
    /// Parses `source`; see the module documentation for the language.
    pub fn parse(source: &str) -> Result<RuleQuery, QueryError> {
        let lexed = lex(source)?;
        let end_column = source.chars().count() + 1;
        let expr = Parser {
            tokens: &lexed.tokens,
            next: 0,
            end_column,
            depth: 0,
        }
        .parse_query()?;
        // Candidate selection relies on this: a query true for an article with no
        // words could fire on articles that contain none of its terms.
        if expr.eval(&mut |_| false) {
            return Err(QueryError::NoRequiredTerm);
        }
        Ok(RuleQuery {
            expr,
            warnings: lexed.warnings,
        })
    }

    /// What a full-text index must return for this query (a superset of its
    /// matches), or `None` when no word of it narrows the search.
    pub fn index_query(&self) -> Option<super::IndexQuery> {
        super::IndexQuery::of(&self.expr)
    }

    /// Lower-case `and`, `or`, `not`, `near/N` that are searched as words.
    pub fn warnings(&self) -> &[QueryWarning] {
        &self.warnings
    }
}

/// The canonical, fully parenthesised form; parsing it gives the same query.
impl fmt::Display for RuleQuery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.expr)
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Leaf(leaf) => write!(f, "{leaf}"),
            Expr::Not(inner) => write!(f, "NOT {inner}"),
            Expr::And(items) => write_joined(f, items, " AND "),
            Expr::Or(items) => write_joined(f, items, " OR "),
        }
    }
}

fn write_joined(f: &mut fmt::Formatter<'_>, items: &[Expr], separator: &str) -> fmt::Result {
    f.write_str("(")?;
    for (index, item) in items.iter().enumerate() {
        if index > 0 {
            f.write_str(separator)?;
        }
        write!(f, "{item}")?;
    }
    f.write_str(")")
}

impl fmt::Display for Leaf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(field) = self.field {
            write!(f, "{}:", field.as_str())?;
        }
        match &self.kind {
            LeafKind::Term(term) => write!(f, "{term}"),
            LeafKind::Near {
                left,
                right,
                distance,
            } => write!(f, "{left} NEAR/{distance} {right}"),
        }
    }
}

impl fmt::Display for Term {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.prefix {
            // Joined by "-" because a quoted phrase cannot carry a "*". A leading
            // ":" keeps `title:x*` (one word) from reading as a field on re-parse:
            // an empty name is no field, and normalising drops the colon again.
            let guard = if self.words.iter().any(|w| w.contains(':')) {
                ":"
            } else {
                ""
            };
            return write!(f, "{guard}{}*", self.words.join("-"));
        }
        match self.words.as_slice() {
            [word] if !word.contains(':') => f.write_str(word),
            words => write!(f, "\"{}\"", words.join(" ")),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum TokenKind {
    OpenParen,
    CloseParen,
    And,
    Or,
    Not,
    Minus,
    Near(u32),
    Field(Field),
    Word { text: String, prefix: bool },
    Phrase(String),
}

#[derive(Debug, Clone)]
struct Token {
    kind: TokenKind,
    column: usize,
}

impl Token {
    fn starts_unary(&self) -> bool {
        matches!(
            self.kind,
            TokenKind::OpenParen
                | TokenKind::Not
                | TokenKind::Minus
                | TokenKind::Field(_)
                | TokenKind::Word { .. }
                | TokenKind::Phrase(_)
        )
    }

    /// How the token reads in an error message.
    fn describe(&self) -> String {
        match &self.kind {
            TokenKind::OpenParen => "\"(\"".to_owned(),
            TokenKind::CloseParen => "\")\"".to_owned(),
            TokenKind::And => "AND".to_owned(),
            TokenKind::Or => "OR".to_owned(),
            TokenKind::Not => "NOT".to_owned(),
            TokenKind::Minus => "\"-\"".to_owned(),
            TokenKind::Near(distance) => format!("NEAR/{distance}"),
            TokenKind::Field(field) => format!("{}:", field.as_str()),
            TokenKind::Word { text, .. } => text.clone(),
            TokenKind::Phrase(text) => format!("\"{text}\""),
        }
    }
}

struct Lexed {
    tokens: Vec<Token>,
    warnings: Vec<QueryWarning>,
}

fn lex(source: &str) -> Result<Lexed, QueryError> {
    let chars: Vec<char> = source.chars().collect();
    let mut lexed = Lexed {
        tokens: Vec::new(),
        warnings: Vec::new(),
    };
    let mut index = 0;
    while let Some(&c) = chars.get(index) {
        let column = index + 1;
        index += 1;
        let kind = match c {
            c if c.is_whitespace() => continue,
            '(' => TokenKind::OpenParen,
            ')' => TokenKind::CloseParen,
            '-' => TokenKind::Minus,
            '"' => {
                let length = chars[index..]
                    .iter()
                    .position(|&c| c == '"')
                    .ok_or(QueryError::UnclosedQuote { column })?;
                let phrase: String = chars[index..index + length].iter().collect();
                if let Some(star) = phrase.chars().position(|c| c == '*') {
                    lexed.warnings.push(QueryWarning {
                        kind: WarningKind::StarInPhrase,
                        word: phrase.clone(),
                        column: column + 1 + star,
                    });
                }
                index += length + 1;
                TokenKind::Phrase(phrase)
            }
            _ => {
                let start = index - 1;
                while chars
                    .get(index)
                    .is_some_and(|&c| !c.is_whitespace() && !matches!(c, '(' | ')' | '"'))
                {
                    index += 1;
                }
                let bare: String = chars[start..index].iter().collect();
                lex_bare(&bare, column, &mut lexed)?;
                continue;
            }
        };
        lexed.tokens.push(Token { kind, column });
    }
    Ok(lexed)
}

/// Classifies a run of characters without spaces, quotes or parentheses.
///
/// A field prefix is followed by the rest of the run, lexed the same way: a loop, not
/// recursion, since `title:title:…` can be as long as the query, and a query can come
/// from an API request.
fn lex_bare(mut bare: &str, mut column: usize, lexed: &mut Lexed) -> Result<(), QueryError> {
    loop {
        let kind = match bare {
            "AND" => TokenKind::And,
            "OR" => TokenKind::Or,
            "NOT" => TokenKind::Not,
            _ if bare.starts_with("NEAR/") => lex_near(&bare["NEAR/".len()..], column)?,
            _ => {
                if let Some((name, rest)) = split_field(bare) {
                    let field = Field::from_name(name).ok_or_else(|| QueryError::UnknownField {
                        name: name.to_owned(),
                        column,
                    })?;
                    lexed.tokens.push(Token {
                        kind: TokenKind::Field(field),
                        column,
                    });
                    if rest.is_empty() {
                        return Ok(());
                    }
                    column += name.chars().count() + 1;
                    bare = rest;
                    continue;
                }
                warn_on_lowercase_operator(bare, column, &mut lexed.warnings);
                lex_word(bare, column)?
            }
        };
        lexed.tokens.push(Token { kind, column });
        return Ok(());
    }
}

fn lex_near(digits: &str, column: usize) -> Result<TokenKind, QueryError> {
    let number_column = column + "NEAR/".len();
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(QueryError::NearWithoutNumber {
            column: number_column,
        });
    }
    match digits.parse::<u32>() {
        Ok(distance) if distance <= MAX_NEAR_DISTANCE => Ok(TokenKind::Near(distance)),
        _ => Err(QueryError::NearTooFar {
            column: number_column,
        }),
    }
}

/// `title:iran` → `("title", "iran")`; only an ASCII-letter name counts as a field,
/// so `10:30` stays a word.
fn split_field(bare: &str) -> Option<(&str, &str)> {
    let (name, rest) = bare.split_once(':')?;
    let is_name = !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphabetic());
    is_name.then_some((name, rest))
}

fn lex_word(bare: &str, column: usize) -> Result<TokenKind, QueryError> {
    let (stem, prefix) = match bare.strip_suffix('*') {
        Some(stem) => (stem, true),
        None => (bare, false),
    };
    if let Some(star) = stem.chars().position(|c| c == '*') {
        return Err(QueryError::MisplacedStar {
            column: column + star,
        });
    }
    if prefix && stem.is_empty() {
        return Err(QueryError::MisplacedStar { column });
    }
    Ok(TokenKind::Word {
        text: stem.to_owned(),
        prefix,
    })
}

fn warn_on_lowercase_operator(bare: &str, column: usize, warnings: &mut Vec<QueryWarning>) {
    let lower = bare.to_ascii_lowercase();
    let looks_like_operator = matches!(lower.as_str(), "and" | "or" | "not")
        || lower
            .strip_prefix("near/")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
    if looks_like_operator {
        warnings.push(QueryWarning {
            kind: WarningKind::LowercaseOperator,
            word: bare.to_owned(),
            column,
        });
    }
}

struct Parser<'a> {
    tokens: &'a [Token],
    next: usize,
    end_column: usize,
    depth: usize,
}

/// What came before the place a term is expected, for error messages.
#[derive(Clone, Copy)]
enum Context<'t> {
    Start,
    After(&'t Token),
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<&'a Token> {
        self.tokens.get(self.next)
    }

    fn bump(&mut self) -> Option<&'a Token> {
        let token = self.tokens.get(self.next)?;
        self.next += 1;
        Some(token)
    }

    fn column_here(&self) -> usize {
        self.peek().map_or(self.end_column, |token| token.column)
    }

    fn parse_query(mut self) -> Result<Expr, QueryError> {
        if self.tokens.is_empty() {
            return Err(QueryError::Empty);
        }
        let expr = self.parse_or(Context::Start)?;
        match self.peek() {
            None => Ok(expr),
            Some(token) if token.kind == TokenKind::CloseParen => {
                Err(QueryError::UnbalancedParen {
                    column: token.column,
                })
            }
            Some(token) => Err(misplaced(token, Context::Start)),
        }
    }

    fn parse_or(&mut self, context: Context<'a>) -> Result<Expr, QueryError> {
        let mut items = vec![self.parse_and(context)?];
        while let Some(token) = self.peek().filter(|t| t.kind == TokenKind::Or) {
            self.next += 1;
            items.push(self.parse_and(Context::After(token))?);
        }
        Ok(collapse(items, Expr::Or))
    }

    fn parse_and(&mut self, context: Context<'a>) -> Result<Expr, QueryError> {
        let mut items = vec![self.parse_unary(context)?];
        while let Some(token) = self.peek() {
            match token.kind {
                TokenKind::And => {
                    self.next += 1;
                    items.push(self.parse_unary(Context::After(token))?);
                }
                TokenKind::Near(_) => return Err(misplaced(token, context)),
                _ if token.starts_unary() => items.push(self.parse_unary(context)?),
                _ => break,
            }
        }
        Ok(collapse(items, Expr::And))
    }

    fn parse_unary(&mut self, context: Context<'a>) -> Result<Expr, QueryError> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(QueryError::TooDeep {
                column: self.column_here(),
            });
        }
        let expr = match self.peek() {
            Some(token) if matches!(token.kind, TokenKind::Not | TokenKind::Minus) => {
                self.next += 1;
                Expr::Not(Box::new(self.parse_unary(Context::After(token))?))
            }
            _ => self.parse_primary(context)?,
        };
        self.depth -= 1;
        Ok(expr)
    }

    fn parse_primary(&mut self, context: Context<'a>) -> Result<Expr, QueryError> {
        let Some(token) = self.bump() else {
            return Err(self.expected_term(context));
        };
        match &token.kind {
            TokenKind::OpenParen => self.parse_group(token),
            TokenKind::Field(field) => self.parse_fielded(*field),
            TokenKind::Word { .. } | TokenKind::Phrase(_) => {
                let left = atom_term(token, None)?;
                self.parse_near_tail(left)
            }
            _ => Err(misplaced(token, context)),
        }
    }

    fn parse_group(&mut self, open: &'a Token) -> Result<Expr, QueryError> {
        let inner = self.parse_or(Context::After(open))?;
        match self.bump() {
            Some(token) if token.kind == TokenKind::CloseParen => Ok(inner),
            _ => Err(QueryError::UnclosedParen {
                column: open.column,
            }),
        }
    }

    fn parse_fielded(&mut self, field: Field) -> Result<Expr, QueryError> {
        let Some(token) = self.peek().filter(|t| atom_parts(t).is_some()) else {
            return Err(QueryError::ExpectedAtomAfterField {
                field: field.as_str(),
                column: self.column_here(),
            });
        };
        self.next += 1;
        Ok(Expr::Leaf(Leaf {
            field: Some(field),
            kind: LeafKind::Term(atom_term(token, Some(field))?),
        }))
    }

    fn parse_near_tail(&mut self, left: Term) -> Result<Expr, QueryError> {
        let near = self.peek().and_then(|t| match t.kind {
            TokenKind::Near(distance) => Some((t, distance)),
            _ => None,
        });
        let Some((near, distance)) = near else {
            return Ok(Expr::Leaf(Leaf {
                field: None,
                kind: LeafKind::Term(left),
            }));
        };
        self.next += 1;
        let Some(token) = self.peek().filter(|t| atom_parts(t).is_some()) else {
            return Err(QueryError::MisplacedNear {
                operator: near.describe(),
                column: near.column,
            });
        };
        self.next += 1;
        Ok(Expr::Leaf(Leaf {
            field: None,
            kind: LeafKind::Near {
                left,
                right: atom_term(token, None)?,
                distance,
            },
        }))
    }

    fn expected_term(&self, context: Context<'_>) -> QueryError {
        match context {
            Context::Start => QueryError::Empty,
            Context::After(previous) => QueryError::ExpectedTermAfter {
                after: previous.describe(),
                column: self.column_here(),
            },
        }
    }
}

/// The error for `token` found where a term should start.
fn misplaced(token: &Token, context: Context<'_>) -> QueryError {
    let column = token.column;
    match (&token.kind, context) {
        (TokenKind::Near(_), _) => QueryError::MisplacedNear {
            operator: token.describe(),
            column,
        },
        (TokenKind::CloseParen, Context::Start) => QueryError::UnbalancedParen { column },
        (TokenKind::And | TokenKind::Or, Context::Start) => QueryError::ExpectedTermBefore {
            operator: token.describe(),
            column,
        },
        (TokenKind::And | TokenKind::Or, Context::After(previous))
            if previous.kind == TokenKind::OpenParen =>
        {
            QueryError::ExpectedTermBefore {
                operator: token.describe(),
                column,
            }
        }
        (_, Context::After(previous)) => QueryError::ExpectedTermAfter {
            after: previous.describe(),
            column,
        },
        (_, Context::Start) => QueryError::ExpectedTermBefore {
            operator: token.describe(),
            column,
        },
    }
}

fn collapse(mut items: Vec<Expr>, combine: fn(Vec<Expr>) -> Expr) -> Expr {
    if items.len() == 1 {
        items.swap_remove(0)
    } else {
        combine(items)
    }
}

/// The text of a word or phrase token and whether it ends in `*`.
fn atom_parts(token: &Token) -> Option<(&str, bool)> {
    match &token.kind {
        TokenKind::Word { text, prefix } => Some((text, *prefix)),
        TokenKind::Phrase(text) => Some((text, false)),
        _ => None,
    }
}

/// Normalises a word or phrase token into a [`Term`] with the field's word splitter.
fn atom_term(token: &Token, field: Option<Field>) -> Result<Term, QueryError> {
    let kind = field.map_or(TextKind::Prose, Field::text_kind);
    let (text, prefix) = atom_parts(token).unwrap_or_default();
    let words: Vec<String> = TokenList::with_kind(text, kind)
        .iter()
        .map(str::to_owned)
        .collect();
    if words.is_empty() {
        return Err(QueryError::NoWords {
            term: token.describe(),
            column: token.column,
        });
    }
    Ok(Term { words, prefix })
}
