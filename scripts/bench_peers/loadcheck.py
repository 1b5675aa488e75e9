"""Is the feed server fast enough? `python3 -m bench_peers.loadcheck URLS CLIENTS`
fetches every feed with CLIENTS keep-alive connections in parallel (about
what one tool asks of it), then again with each ETag, and prints one JSON
line: seconds, bytes and requests of each pass, and how many got a 304.
"""

import http.client
import json
import sys
import threading
import time
import urllib.parse


def fetch_all(urls, clients, etags):
    """Each client's share of `urls` over one connection; the ETags seen."""
    seen, totals, lock = {}, {"bytes": 0, "304": 0, "200": 0, "other": 0}, threading.Lock()

    def client(share):
        parts = urllib.parse.urlsplit(share[0]) if share else None
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30) if parts else None
        for url in share:
            path = urllib.parse.urlsplit(url).path
            headers = {"If-None-Match": etags[url]} if url in etags else {}
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
            body = response.read()
            with lock:
                totals["bytes"] += len(body)
                key = str(response.status) if response.status in (200, 304) else "other"
                totals[key] += 1
                seen[url] = response.getheader("ETag")
        if connection:
            connection.close()

    threads = [threading.Thread(target=client, args=(urls[i::clients],)) for i in range(clients)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.monotonic() - started, totals, seen


def main():
    with open(sys.argv[1]) as file:
        urls = file.read().split()
    clients = int(sys.argv[2])
    fetch_all(urls[:clients], clients, {})  # connections and caches warm
    seconds, full, etags = fetch_all(urls, clients, {})
    seconds_304, conditional, _ = fetch_all(urls, clients, etags)
    print(json.dumps({"requests": len(urls), "seconds": seconds, "bytes": full["bytes"],
                      "ok": full["200"], "seconds_304": seconds_304,
                      "not_modified": conditional["304"]}))


if __name__ == "__main__":
    main()
