"""Renders each feed's articles as RSS 2.0, Atom 1.0 or JSON Feed 1.1."""

import json
from email.utils import format_datetime
from xml.sax.saxutils import escape, quoteattr

FORMATS = ("rss", "atom", "json")


def file_name(feed):
    return f"feed-{feed:04d}.{FORMATS[feed % 3]}"


def render(feed, articles, feed_url):
    """The document of feed number `feed`: its format is `feed` mod 3."""
    kind = FORMATS[feed % 3]
    home = f"https://www.publisher-{feed:04d}.example/"
    title = f"Publisher {feed:04d} — Latest news"
    if kind == "rss":
        return _rss(title, home, feed_url, articles)
    if kind == "atom":
        return _atom(title, home, feed_url, articles)
    return _json_feed(title, home, feed_url, articles)


def _rss(title, home, feed_url, articles):
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom" '
        'xmlns:dc="http://purl.org/dc/elements/1.1/">\n<channel>\n'
        f"<title>{escape(title)}</title>\n<link>{escape(home)}</link>\n"
        f'<atom:link href={quoteattr(feed_url)} rel="self" type="application/rss+xml"/>\n'
        "<description>Top stories</description>\n<language>en</language>\n"
        f"<lastBuildDate>{format_datetime(articles[0].published)}</lastBuildDate>\n"
    ]
    for a in articles:
        out.append(
            f"<item>\n<title>{escape(a.title)}</title>\n<link>{escape(a.link)}</link>\n"
            f'<guid isPermaLink="false">{escape(a.guid)}</guid>\n'
            f"<pubDate>{format_datetime(a.published)}</pubDate>\n"
            f"<dc:creator>{escape(a.author)}</dc:creator>\n"
            f"<description>{escape(a.body_html())}</description>\n</item>\n"
        )
    out.append("</channel>\n</rss>\n")
    return "".join(out).encode()


def _atom(title, home, feed_url, articles):
    out = [
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="en">\n'
        f"<title>{escape(title)}</title>\n<id>{escape(home)}</id>\n"
        f'<link rel="alternate" href={quoteattr(home)}/>\n'
        f'<link rel="self" href={quoteattr(feed_url)}/>\n'
        f"<updated>{articles[0].published.isoformat()}</updated>\n"
    ]
    for a in articles:
        out.append(
            f"<entry>\n<title>{escape(a.title)}</title>\n<id>{escape(a.guid)}</id>\n"
            f'<link rel="alternate" href={quoteattr(a.link)}/>\n'
            f"<published>{a.published.isoformat()}</published>\n"
            f"<updated>{a.published.isoformat()}</updated>\n"
            f"<author><name>{escape(a.author)}</name></author>\n"
            f'<content type="html">{escape(a.body_html())}</content>\n</entry>\n'
        )
    out.append("</feed>\n")
    return "".join(out).encode()


def _json_feed(title, home, feed_url, articles):
    document = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": title,
        "home_page_url": home,
        "feed_url": feed_url,
        "language": "en",
        "items": [
            {
                "id": a.guid,
                "url": a.link,
                "title": a.title,
                "content_html": a.body_html(),
                "date_published": a.published.isoformat(),
                "authors": [{"name": a.author}],
            }
            for a in articles
        ],
    }
    return json.dumps(document, ensure_ascii=False, indent=1).encode()
