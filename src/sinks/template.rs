//! Operators' message templates: a sink's `template`, rendered with minijinja
//! for each alert in place of herald's own message.
//!
//! Every value a template prints is escaped for the markup its target reads
//! ([`Markup`]), so feed text can never break out of the message: a title
//! holding `<!channel>` or `</b><a href=…>` prints as text. Only what the
//! operator marks `|safe` (their own constants) is printed as is. Undefined
//! names are errors, and a sample alert is rendered when a template is
//! compiled, so `herald check` finds a typo, not the first alert. A render
//! runs on a fuel budget, so a runaway loop ends in an error, not a hang.

use std::fmt;

use minijinja::{
    AutoEscape, Environment, Error, ErrorKind, Output, State, UndefinedBehavior, Value,
};
use serde::Serialize;

use crate::domain::alert::AlertMessage;

/// How a target reads a message's text, and so how printed values are escaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Markup {
    /// Slack mrkdwn: `&`, `<` and `>` as entities, so no link, mention or
    /// `<!channel>` can be formed.
    SlackMrkdwn,
    /// Discord markdown: formatting characters backslash-escaped, mentions broken.
    DiscordMarkdown,
    /// HTML (email, Telegram's HTML mode): `&`, `<`, `>`, `"`, `'` as entities.
    Html,
    /// Plain text (the log, ntfy, a Teams text run): printed as is.
    Plain,
}

impl Markup {
    fn name(self) -> &'static str {
        match self {
            Markup::SlackMrkdwn => "slack",
            Markup::DiscordMarkdown => "discord",
            Markup::Html => "html",
            Markup::Plain => "plain",
        }
    }

    /// `text` made inert for this markup.
    pub fn escape(self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        match self {
            Markup::Plain => out.push_str(text),
            Markup::SlackMrkdwn => {
                for c in text.chars() {
                    match c {
                        '&' => out.push_str("&amp;"),
                        '<' => out.push_str("&lt;"),
                        '>' => out.push_str("&gt;"),
                        _ => out.push(c),
                    }
                }
            }
            Markup::Html => {
                for c in text.chars() {
                    match c {
                        '&' => out.push_str("&amp;"),
                        '<' => out.push_str("&lt;"),
                        '>' => out.push_str("&gt;"),
                        '"' => out.push_str("&quot;"),
                        '\'' => out.push_str("&#39;"),
                        _ => out.push(c),
                    }
                }
            }
            Markup::DiscordMarkdown => {
                for c in text.chars() {
                    if matches!(
                        c,
                        '\\' | '*'
                            | '_'
                            | '~'
                            | '`'
                            | '|'
                            | '>'
                            | '<'
                            | '['
                            | ']'
                            | '('
                            | ')'
                            | '#'
                            | '-'
                            | ':'
                    ) {
                        out.push('\\');
                    }
                    out.push(c);
                    // `@everyone`, `@here` and `<@id>` read the same and ping nobody.
                    if c == '@' {
                        out.push('\u{200B}');
                    }
                }
            }
        }
        out
    }
}

/// The name a template is stored under; errors name the sink instead.
const NAME: &str = "template";

/// Template instructions one render may run: far more than any message
/// needs, and a stop for a loop over `range(10**9)`.
const FUEL: u64 = 100_000;

/// A compiled template for one target's markup.
pub struct MessageTemplate {
    environment: Environment<'static>,
    markup: Markup,
    source: String,
}

impl fmt::Debug for MessageTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessageTemplate")
            .field("markup", &self.markup)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl PartialEq for MessageTemplate {
    fn eq(&self, other: &Self) -> bool {
        self.markup == other.markup && self.source == other.source
    }
}

impl Eq for MessageTemplate {}

/// Why a template cannot be used: the engine's message and, when it knows,
/// the 1-based line and column in the template's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateError {
    pub message: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for TemplateError {}

impl MessageTemplate {
    /// Compiles `source` for `markup` and renders a sample alert with it, so
    /// that undefined names and unknown filters are found now.
    pub fn compile(source: &str, markup: Markup) -> Result<MessageTemplate, TemplateError> {
        let mut environment = Environment::new();
        environment.set_undefined_behavior(UndefinedBehavior::Strict);
        environment.set_fuel(Some(FUEL));
        environment.set_auto_escape_callback(move |_| AutoEscape::Custom(markup.name()));
        environment
            .set_formatter(move |out, state, value| print_escaped(markup, out, state, value));
        environment
            .add_template_owned(NAME, source.to_owned())
            .map_err(|error| located(&error, source))?;
        let template = MessageTemplate {
            environment,
            markup,
            source: source.to_owned(),
        };
        template.render(&sample())?;
        Ok(template)
    }

    pub fn markup(&self) -> Markup {
        self.markup
    }

    /// The message for `alert`, surrounding whitespace trimmed.
    pub fn render(&self, alert: &AlertMessage) -> Result<String, TemplateError> {
        let context = Value::from_serialize(Context::of(alert));
        self.environment
            .get_template(NAME)
            .and_then(|template| template.render(context))
            .map(|text| text.trim().to_owned())
            .map_err(|error| located(&error, &self.source))
    }
}

/// Prints `value` escaped for `markup`, unless the template marked it safe;
/// `none` prints nothing (an article without an author).
fn print_escaped(
    markup: Markup,
    out: &mut Output<'_>,
    _state: &State<'_, '_>,
    value: &Value,
) -> Result<(), Error> {
    let text = if value.is_none() || value.is_undefined() {
        String::new()
    } else if value.is_safe() {
        value.to_string()
    } else {
        markup.escape(&value.to_string())
    };
    out.write_str(&text)
        .map_err(|_| Error::new(ErrorKind::WriteFailure, "cannot write the message"))
}

/// The engine's error with where in `source` it is, as an editor counts.
fn located(error: &Error, source: &str) -> TemplateError {
    let mut message = error.detail().map_or_else(
        || error.kind().to_string(),
        |detail| format!("{}: {detail}", error.kind()),
    );
    if error.kind() == ErrorKind::OutOfFuel {
        message = "the template ran too long (a loop too large?)".to_owned();
    }
    let (line, column) = match error.range() {
        Some(range) => {
            let (line, column) = line_and_column(source, range.start);
            (Some(line), Some(column))
        }
        None => (error.line(), None),
    };
    TemplateError {
        message,
        line,
        column,
    }
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// What a template sees (documented in the README, "Message templates").
#[derive(Serialize)]
struct Context<'a> {
    rule: ContextRule<'a>,
    article: ContextArticle<'a>,
    story: ContextStory,
    /// The other outlets that carried the story.
    outlets: Vec<ContextOutlet<'a>>,
    matched: &'a [String],
    delivery_id: &'a str,
}

#[derive(Serialize)]
struct ContextRule<'a> {
    name: &'a str,
    query: &'a str,
}

#[derive(Serialize)]
struct ContextArticle<'a> {
    title: &'a str,
    url: Option<&'a str>,
    summary: Option<&'a str>,
    author: Option<&'a str>,
    language: Option<&'a str>,
    published_at: String,
    /// The feed credited with it.
    feed: Option<ContextOutlet<'a>>,
}

#[derive(Serialize)]
struct ContextStory {
    id: Option<i64>,
    /// Outlets that carried it, the credited one included.
    outlets: usize,
}

#[derive(Serialize)]
struct ContextOutlet<'a> {
    name: Option<&'a str>,
    url: &'a str,
}

impl<'a> Context<'a> {
    fn of(alert: &'a AlertMessage) -> Context<'a> {
        let article = &alert.article;
        let outlet = |source: &'a crate::domain::article::ArticleSource| ContextOutlet {
            name: source.name.as_deref(),
            url: &source.url,
        };
        Context {
            rule: ContextRule {
                name: &alert.rule.name,
                query: &alert.rule.query,
            },
            article: ContextArticle {
                title: &article.title,
                url: article.url.as_deref(),
                summary: article.summary.as_deref(),
                author: article.author.as_deref(),
                language: article.language.as_deref(),
                published_at: article.published_at.to_rfc3339(),
                feed: article.feeds.first().map(outlet),
            },
            story: ContextStory {
                id: article.story_id,
                outlets: 1 + alert.also_reported_by.len(),
            },
            outlets: alert.also_reported_by.iter().map(outlet).collect(),
            matched: &alert.matched,
            delivery_id: &alert.delivery_id,
        }
    }
}

/// An alert with every field filled in, for compiling.
fn sample() -> AlertMessage {
    use crate::domain::alert::FiredRule;
    use crate::domain::article::{Article, ArticleSource};
    let at = chrono::DateTime::<chrono::Utc>::UNIX_EPOCH;
    let source = |name: &str| ArticleSource {
        url: format!("https://{name}.example/rss"),
        name: Some(name.to_owned()),
    };
    AlertMessage {
        delivery_id: "sample".to_owned(),
        alert_id: 0,
        rule: FiredRule {
            name: "sample".to_owned(),
            query: "sample".to_owned(),
        },
        article: Article {
            id: 0,
            url: Some("https://wire.example/sample".to_owned()),
            canonical_url: None,
            title: "Sample".to_owned(),
            summary: Some("Sample".to_owned()),
            author: Some("Sample".to_owned()),
            language: Some("en".to_owned()),
            published_at: at,
            updated_at: None,
            first_seen_at: at,
            feeds: vec![source("wire")],
            story_id: Some(0),
        },
        matched: vec!["sample".to_owned()],
        also_reported_by: vec![source("other")],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sinks::tests::{HOSTILE, message};

    fn render(source: &str, markup: Markup) -> String {
        MessageTemplate::compile(source, markup)
            .unwrap()
            .render(&message())
            .unwrap()
    }

    #[test]
    fn the_documented_context_renders() {
        let text = render(
            "{{ rule.name }}: {{ article.title }} <{{ article.url }}> \
             ({{ story.outlets }} outlets; {{ matched | join(\", \") }}) \
             {% for outlet in outlets %}{{ outlet.name }} {% endfor %}",
            Markup::Plain,
        );
        let alert = message();
        assert!(
            text.starts_with(&format!("{}: {}", alert.rule.name, alert.article.title)),
            "{text}"
        );
        assert!(
            text.contains(alert.article.url.as_deref().unwrap()),
            "{text}"
        );
        assert!(
            text.contains(&format!("({} outlets;", 1 + alert.also_reported_by.len())),
            "{text}"
        );
    }

    #[test]
    fn feed_text_cannot_break_out_of_any_markup() {
        let mut alert = message();
        alert.article.title = format!(
            "</b><a href=\"http://evil\">x</a> <!channel> <@U123> @everyone [x](http://evil) {HOSTILE}"
        );
        for (markup, forbidden) in [
            (
                Markup::SlackMrkdwn,
                vec!["<!channel>", "<http", "<@U", "</b>"],
            ),
            (Markup::Html, vec!["<a ", "</b>", "</a>", "\"http"]),
            (
                Markup::DiscordMarkdown,
                vec!["@everyone", "[x](", "<@U", "](http"],
            ),
        ] {
            let template = MessageTemplate::compile("{{ article.title }}", markup).unwrap();
            let text = template.render(&alert).unwrap();
            for token in forbidden {
                assert!(!text.contains(token), "{markup:?}: {token} in {text}");
            }
        }
    }

    #[test]
    fn the_readme_example_compiles_and_reads_well() {
        let template = MessageTemplate::compile(
            "*{{ rule.name }}*: <{{ article.url }}|{{ article.title }}>\n\
             {% if article.summary %}{{ article.summary[:200] }}{% endif %}\n\
             {% if outlets %}also in {{ outlets | map(attribute=\"name\") | join(\", \") }}{% endif %}",
            Markup::SlackMrkdwn,
        )
        .unwrap();
        let mut alert = message();
        alert.also_reported_by = ["BBC", "NHK"]
            .into_iter()
            .map(|name| crate::domain::article::ArticleSource {
                url: format!("https://{name}.example/rss"),
                name: Some(name.to_owned()),
            })
            .collect();
        let text = template.render(&alert).unwrap();
        assert!(
            text.starts_with(&format!("*{}*: <", alert.rule.name)),
            "{text}"
        );
        assert!(text.ends_with("also in BBC, NHK"), "{text}");
        alert.article.summary = None;
        alert.also_reported_by.clear();
        let text = template.render(&alert).unwrap();
        assert!(!text.contains("also in"), "{text}");
    }

    #[test]
    fn safe_marks_the_operators_own_text() {
        let text = render(
            "{{ '<!here>' | safe }} {{ '<!here>' }}",
            Markup::SlackMrkdwn,
        );
        assert_eq!(text, "<!here> &lt;!here&gt;");
    }

    #[test]
    fn a_missing_value_prints_nothing_and_a_typo_is_an_error_with_its_place() {
        let mut alert = message();
        alert.article.author = None;
        let template = MessageTemplate::compile("by {{ article.author }}.", Markup::Plain).unwrap();
        assert_eq!(template.render(&alert).unwrap(), "by .");

        let error =
            MessageTemplate::compile("Hello\n  {{ artcle.title }}", Markup::Plain).unwrap_err();
        assert_eq!((error.line, error.column), (Some(2), Some(6)), "{error:?}");
        assert!(error.message.contains("undefined"), "{error}");

        let error = MessageTemplate::compile("{% if %}", Markup::Plain).unwrap_err();
        assert_eq!(error.line, Some(1), "{error:?}");
        assert!(error.message.contains("syntax error"), "{error}");

        let error =
            MessageTemplate::compile("{{ article.title | shout }}", Markup::Plain).unwrap_err();
        assert!(error.message.contains("unknown filter"), "{error}");
    }

    #[test]
    fn a_runaway_loop_is_stopped() {
        let error = MessageTemplate::compile(
            "{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
            Markup::Plain,
        )
        .unwrap_err();
        assert_eq!(
            error.message,
            "the template ran too long (a loop too large?)"
        );
    }

    #[test]
    fn columns_count_characters() {
        assert_eq!(line_and_column("é{{x}}", 2), (1, 2));
        assert_eq!(line_and_column("a\nbc", 3), (2, 2));
    }
}
