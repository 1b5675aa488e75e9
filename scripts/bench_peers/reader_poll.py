"""One poll with the `reader` library, run by the venv's python as its own
process: `reader_poll.py DB URLS_FILE`. Run twice on one DB for a re-poll.

Prints one JSON line: entries stored, feeds updated, not modified, failed.
"""

import json
import sys
from collections import Counter

from reader import make_reader


def main():
    db, urls_file = sys.argv[1], sys.argv[2]
    with open(urls_file) as file:
        urls = file.read().split()
    reader = make_reader(db)
    for url in urls:
        reader.add_feed(url, exist_ok=True)
    outcome, errors = Counter(), []
    # update_feeds(workers=16), with the results kept to count failures.
    # scheduled=False: the re-poll comes minutes after the first, and reader
    # would otherwise skip every feed as not due for an hour.
    for result in reader.update_feeds_iter(workers=16, scheduled=False):
        if result.error is not None:
            outcome["failed"] += 1
            errors.append(f"{result.url}: {result.error!r}")
        elif result.not_modified:
            outcome["not_modified"] += 1
        else:
            outcome["updated"] += 1
    stored = reader.get_entry_counts().total
    reader.close()
    print(json.dumps({"stored": stored, **outcome, "errors": errors}))


if __name__ == "__main__":
    main()
