"""The feed server: `python3 server.py DIR FD [WORKERS]` serves every file in
DIR at /feeds/NAME from memory, on the listening socket it inherits as file
descriptor FD, in WORKERS processes (default 1) that share the socket.

It runs in its own process so that its CPU is never charged to the tool
being timed. Every 200 carries a strong ETag and a Last-Modified, and a
matching If-None-Match (or, without one, If-Modified-Since) gets a 304, so
a re-poll costs every tool one request and no parse per feed.
"""

import hashlib
import os
import signal
import socket
import sys
import time
from email.utils import formatdate, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CONTENT_TYPES = {
    ".rss": b"application/rss+xml; charset=utf-8",
    ".atom": b"application/atom+xml; charset=utf-8",
    ".json": b"application/feed+json; charset=utf-8",
}


class Feed:
    def __init__(self, name, body, modified):
        self.etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
        self.modified = modified
        self.last_modified = formatdate(modified, usegmt=True)
        validators = (f"ETag: {self.etag}\r\nLast-Modified: {self.last_modified}\r\n"
                      "Cache-Control: max-age=60\r\n").encode()
        content_type = CONTENT_TYPES.get(os.path.splitext(name)[1], b"application/octet-stream")
        # Pre-rendered so that a request costs one write of ready bytes.
        self.ok = (b"HTTP/1.1 200 OK\r\nContent-Type: " + content_type + b"\r\n"
                   + f"Content-Length: {len(body)}\r\n".encode() + validators + b"\r\n" + body)
        self.not_modified = b"HTTP/1.1 304 Not Modified\r\n" + validators + b"\r\n"

    def unchanged_for(self, headers):
        tags = headers.get("If-None-Match")
        if tags is not None:
            # Weak comparison, as RFC 9110 asks for If-None-Match.
            wanted = {tag.strip().removeprefix("W/") for tag in tags.split(",")}
            return "*" in wanted or self.etag in wanted
        since = headers.get("If-Modified-Since")
        if since:
            try:
                return parsedate_to_datetime(since).timestamp() >= self.modified
            except (TypeError, ValueError):
                return False
        return False


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: one connection per client worker
    disable_nagle_algorithm = True
    feeds = {}

    def do_GET(self):
        feed = self.feeds.get(self.path.removeprefix("/feeds/"))
        if feed is None:
            self.wfile.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
        elif feed.unchanged_for(self.headers):
            self.wfile.write(feed.not_modified)
        else:
            self.wfile.write(feed.ok)

    def log_message(self, format, *args):
        pass  # thousands of lines of access log would only cost time


class Server(ThreadingHTTPServer):
    daemon_threads = True
    # The default backlog of 5 drops connection attempts when 64 clients
    # connect at once, and a dropped SYN is retried only after a second.
    request_queue_size = 1024


def main():
    directory, fd = sys.argv[1], int(sys.argv[2])
    workers = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    # In the past, as a Last-Modified must be; a client echoing it matches.
    modified = int(time.time()) - 60
    for name in os.listdir(directory):
        with open(os.path.join(directory, name), "rb") as file:
            Handler.feeds[name] = Feed(name, file.read(), modified)
    server = Server(("127.0.0.1", 0), Handler, bind_and_activate=False)
    server.socket = socket.socket(fileno=fd)
    children = []
    for _ in range(workers - 1):
        pid = os.fork()
        if pid == 0:
            children = []
            break
        children.append(pid)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        server.serve_forever(poll_interval=0.5)
    except KeyboardInterrupt:
        pass
    finally:
        for pid in children:
            os.kill(pid, signal.SIGTERM)


if __name__ == "__main__":
    main()
