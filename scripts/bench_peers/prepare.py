"""Makes a run's data, in its own process so that the harness stays small:
`python3 -m bench_peers.prepare RUN_DIR FEEDS ITEMS BASE_URL RULES TARGET`.

The harness starts every timed process, and what a starter holds can show
up in its children's ru_maxrss (see spawn.py), so it never holds the
articles itself.

Writes RUN_DIR/feeds/ (one document per feed), urls.txt, rules.txt (one
query per line, most-wanted first) and prepare.json (what the report says
about the data and the rules).
"""

import json
import os
import statistics
import sys

from . import feeds, rules, text


def main():
    run_dir, n_feeds, n_items, base, n_rules, target = sys.argv[1:7]
    n_feeds, n_items, n_rules, target = int(n_feeds), int(n_items), int(n_rules), float(target)
    articles, source = text.make_articles(n_feeds, n_items, os.environ.get("HERALD_CORPUS") or None)
    feed_dir = os.path.join(run_dir, "feeds")
    os.makedirs(feed_dir, exist_ok=True)
    urls, sizes = [], []
    for number, items in enumerate(articles):
        name = feeds.file_name(number)
        url = f"{base}/feeds/{name}"
        document = feeds.render(number, items, url)
        with open(os.path.join(feed_dir, name), "wb") as file:
            file.write(document)
        urls.append(url)
        sizes.append(len(document))
    with open(os.path.join(run_dir, "urls.txt"), "w") as file:
        file.write("\n".join(urls) + "\n")

    flat = [a for items in articles for a in items]
    report = {
        "source": source,
        "articles": len(flat),
        "body_bytes_median": statistics.median(
            len(" ".join(a.paragraphs).encode()) for a in flat),
        "feed_bytes_mean": sum(sizes) / len(sizes),
        "feed_bytes_total": sum(sizes),
    }
    if n_rules > 1:
        calibration = rules.Calibration(flat, n_rules, target)
        with open(os.path.join(run_dir, "rules.txt"), "w") as file:
            file.write("\n".join(calibration.queries) + "\n")
        report["rule_kinds"] = calibration.kinds
        report["hits"] = {}
        for count in sorted({1, 1000, n_rules}):
            if count <= n_rules:
                mean, low, median, high = calibration.hits_per_article(count)
                report["hits"][count] = {"mean": mean, "min": low, "median": median, "max": high}
    else:
        with open(os.path.join(run_dir, "rules.txt"), "w") as file:
            file.write(rules.FIRST_RULE + "\n")
    with open(os.path.join(run_dir, "prepare.json"), "w") as file:
        json.dump(report, file)


if __name__ == "__main__":
    main()
