"""The harness: data, feed server, the tools one after another, the table.

The timed processes are started through spawn.py, which keeps their peak
RSS their own (see there); the data is made in another process
(prepare.py) all the same, and the floor left is measured and printed.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse

from . import sizes

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
SPAWN = os.path.join(HERE, "spawn.py")
SYSTEMS = ["herald-sqlite", "herald-postgres", "reader", "feedparser-loop",
           "rules-sqlite", "rules-postgres"]
LABELS = {
    "herald-sqlite": "herald poll, SQLite",
    "herald-postgres": "herald poll, PostgreSQL",
    "reader": "reader 3.x (update_feeds, 16 workers)",
    "feedparser-loop": "feedparser + sqlite3 loop (1 thread)",
}
RULE_COUNTS = (1, 1000, 10000)
TARGET_HITS = 200  # rules matched per article with the 10,000-rule set
MB = 1024  # ru_maxrss is in KiB


def parse_args():
    parser = argparse.ArgumentParser(
        prog="scripts/bench-peers",
        description="herald against reader and a feedparser loop, whole processes side by side.")
    parser.add_argument("--feeds", type=int, default=400, help="feeds (default 400)")
    parser.add_argument("--items", type=int, default=50, help="items per feed (default 50)")
    parser.add_argument("--repeat", type=int, default=1, help="repeat the whole sequence K times; medians")
    parser.add_argument("--only", default="",
                        help="comma-separated: herald, sqlite, postgres, reader, feedparser (or loop), rules, "
                             "or a full name: " + ", ".join(SYSTEMS))
    parser.add_argument("--keep", action="store_true", help="keep the run directory")
    parser.add_argument("--sizes", action="store_true",
                        help="after herald's polls, print bytes on disk per article, per table")
    parser.add_argument("--venv", default=os.path.join(REPO, "target", "bench-peers", "venv"),
                        help="the peers' virtualenv (default target/bench-peers/venv, reused)")
    parser.add_argument("--server-workers", type=int, default=1,
                        help="feed-server processes sharing the socket (default 1)")
    args = parser.parse_args()
    wanted = [token.strip() for token in args.only.split(",") if token.strip()]
    aliases = {"loop": "feedparser"}
    wanted = [aliases.get(token, token) for token in wanted]
    args.systems = [s for s in SYSTEMS
                    if not wanted or any(t == s or t in s.split("-") for t in wanted)]
    if not args.systems:
        parser.error(f"--only {args.only}: matches none of {', '.join(SYSTEMS)}")
    return args


class Run:
    """One measured process: wall time, peak RSS and what it printed."""

    def __init__(self, wall, rss_kib, code, cpu, out, err):
        self.wall, self.rss_kib, self.code, self.cpu = wall, rss_kib, code, cpu
        self.out, self.err = out, err

    def stdout(self):
        with open(self.out, errors="replace") as file:
            return file.read()

    def tail(self, lines=15, stdout=True):
        with open(self.err, errors="replace") as file:
            text = file.read().splitlines()
        if stdout:
            with open(self.out, errors="replace") as file:
                text += file.read().splitlines()
        return "\n".join("    | " + line for line in text[-lines:])


class Harness:
    def __init__(self, args):
        self.args = args
        self.children = []  # processes we started and must stop
        self.database = None  # (admin URL, name) of the PostgreSQL database we made
        self.run_dir = tempfile.mkdtemp(prefix="bench-peers-")
        self.notes = []

    # -- processes ---------------------------------------------------------

    def measure(self, argv, name, env=None, cwd=None):
        """Starts `argv` cold (through spawn.py, so that the figures are the
        process's own) and waits for it: wall time from spawn to exit, and
        the process's own peak RSS from wait4, not the cumulative
        RUSAGE_CHILDREN, which would mix all the runs."""
        out, err, result = (os.path.join(self.run_dir, f"{name}.{ext}") for ext in ("out", "err", "rusage"))
        with open(out, "wb") as stdout, open(err, "wb") as stderr:
            process = subprocess.Popen([sys.executable, "-S", "-I", "-B", SPAWN, result] + argv,
                                       stdout=stdout, stderr=stderr, env=env, cwd=cwd)
            self.children.append(process)
            process.wait()
            self.children.remove(process)
        with open(result) as file:
            wall, rss_kib, code, cpu = file.read().split()
        return Run(float(wall), int(rss_kib), int(code), float(cpu), out, err)

    def check_call(self, argv, what, **kwargs):
        result = subprocess.run(argv, capture_output=True, text=True, **kwargs)
        if result.returncode != 0:
            sys.exit(f"bench-peers: {what} failed ({result.returncode}):\n"
                     f"{result.stdout[-2000:]}{result.stderr[-2000:]}")
        return result.stdout

    def cleanup(self):
        for process in self.children:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    process.kill()
        self.children.clear()
        self.drop_database()
        if self.args.keep:
            print(f"\nrun directory kept: {self.run_dir}")
        else:
            shutil.rmtree(self.run_dir, ignore_errors=True)

    # -- setup -------------------------------------------------------------

    def herald_binary(self):
        if os.environ.get("HERALD_BIN"):
            return os.environ["HERALD_BIN"]
        print("building herald: cargo build --release", flush=True)
        subprocess.run(["cargo", "build", "--release", "--quiet"], cwd=REPO, check=True)
        target = os.environ.get("CARGO_TARGET_DIR") or os.path.join(REPO, "target")
        return os.path.join(target, "release", "herald")

    def venv_python(self):
        """The peers' interpreter, with feedparser 6 and reader 3 installed
        once and reused."""
        python = os.path.join(self.args.venv, "bin", "python")
        probe = [python, "-c", "import feedparser, reader, sgmllib; "
                 "print(feedparser.__version__, reader.__version__)"]
        if not os.path.exists(python) or subprocess.run(probe, capture_output=True).returncode != 0:
            print(f"making the peers' venv: {self.args.venv}", flush=True)
            self.check_call([sys.executable, "-m", "venv", self.args.venv], "python3 -m venv")
            self.check_call([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                             # reader's own copy of feedparser imports sgmllib,
                             # which feedparser 6.0.12+ no longer pulls in.
                             "feedparser>=6,<7", "reader>=3,<4", "sgmllib3k"],
                            "pip install feedparser reader")
        versions = self.check_call(probe, "importing feedparser and reader").split()
        return python, versions

    def postgres_server(self):
        for name in ("HERALD_BENCH_DATABASE_URL", "TEST_DATABASE_URL", "DATABASE_URL"):
            if os.environ.get(name):
                return os.environ[name]
        return None

    def fresh_database(self, server):
        """A new empty database herald_peers_<pid> on `server`; its URL."""
        name = f"herald_peers_{os.getpid()}"
        self.drop_database()
        self.database = (server, name)
        self.check_call(["psql", server, "-v", "ON_ERROR_STOP=1", "-qc",
                         f"DROP DATABASE IF EXISTS {name} WITH (FORCE)", "-c",
                         f"CREATE DATABASE {name}"], f"creating database {name}")
        parts = urllib.parse.urlsplit(server)
        return urllib.parse.urlunsplit(parts._replace(path="/" + name))

    def drop_database(self):
        if self.database:
            server, name = self.database
            subprocess.run(["psql", server, "-qc", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"],
                           capture_output=True)
            self.database = None

    def start_server(self, listener):
        """The feed server in its own process, on our listening socket."""
        process = subprocess.Popen(
            [sys.executable, "-B", os.path.join(HERE, "server.py"), os.path.join(self.run_dir, "feeds"),
             str(listener.fileno()), str(self.args.server_workers)],
            pass_fds=[listener.fileno()])
        self.children.append(process)
        return process

    # -- the tools ---------------------------------------------------------

    def herald(self, binary, database_url, rules, tag, repoll):
        """`herald migrate` (not timed), then `herald poll --json`, and a
        second poll for the re-poll; the runs and their per-feed reports."""
        directory = os.path.join(self.run_dir, tag)
        os.makedirs(directory, exist_ok=True)
        config = os.path.join(directory, "herald.toml")
        with open(config, "w") as file:
            file.write(herald_config(database_url, self.urls, rules))
        env = dict(os.environ, RUST_LOG="warn", NO_COLOR="1")
        env.pop("HERALD_DATABASE_URL", None)  # it would override database.url
        migrate = self.measure([binary, "--config", config, "migrate"], f"{tag}-migrate", env, directory)
        if migrate.code != 0:
            raise ToolFailed(f"{tag}: herald migrate exited {migrate.code}\n{migrate.tail()}")
        runs = []
        for phase in ("first", "re-poll")[: 2 if repoll else 1]:
            run = self.measure([binary, "--config", config, "poll", "--json"], f"{tag}-{phase}", env, directory)
            run.report = herald_report(run)
            if run.code not in (0, 1) or (run.code == 1 and not run.report["failed"]):
                raise ToolFailed(f"{tag} {phase}: herald poll exited {run.code}\n{run.tail()}")
            if run.code == 1:
                print(f" [{tag} {phase}: {run.report['failed']} feeds failed; its stderr ends:\n"
                      f"{run.tail(5, stdout=False)}]", end="", flush=True)
            runs.append(run)
        if self.args.sizes:
            if database_url.startswith("sqlite://"):
                rows, articles = sizes.sqlite_sizes(database_url[len("sqlite://"):])
            else:
                rows, articles = sizes.postgres_sizes(database_url)
            self.notes.append(sizes.table(f"bytes on disk, {tag}", rows, articles))
        return runs

    def peer(self, python, script, tag):
        """A Python peer: the same script twice on one database."""
        directory = os.path.join(self.run_dir, tag)
        os.makedirs(directory, exist_ok=True)
        db = os.path.join(directory, "peer.sqlite")
        runs = []
        for phase in ("first", "re-poll"):
            run = self.measure([python, "-B", os.path.join(HERE, script), db, self.urls_file],
                               f"{tag}-{phase}", None, directory)
            lines = [line for line in run.stdout().splitlines() if line.startswith("{")]
            if run.code != 0 or not lines:
                raise ToolFailed(f"{tag} {phase}: exited {run.code}\n{run.tail()}")
            run.report = json.loads(lines[-1])
            for key in ("failed", "not_modified", "updated"):
                run.report.setdefault(key, 0)
            runs.append(run)
        return runs


class ToolFailed(Exception):
    pass


def herald_config(database_url, urls, rules):
    # All feeds are on one host here, so per_host is raised to concurrency:
    # the run stands for one publisher per feed.
    lines = [
        "[database]", f"url = {json.dumps(database_url)}", "",
        "[fetch]", 'interval = "1h"', 'timeout = "30s"', "concurrency = 64", "per_host = 64", "",
        "[sinks.log]", 'type = "log"', "",
    ]
    for url in urls:
        lines += ["[[feeds]]", f"url = {json.dumps(url)}", ""]
    for number, query in enumerate(rules, 1):
        lines += [f"[rules.r{number:05d}]", f"query = {json.dumps(query)}", 'sinks = ["log"]', ""]
    return "\n".join(lines)


def failures(label, runs):
    """Failed feeds by reason: how many, and one example URL."""
    reasons = {}
    for run in runs:
        for error in run.report.get("errors", []):
            url, _, reason = error.partition(": ")
            reasons.setdefault(reason, []).append(url)
    return [f"{label}: {len(urls)} × {reason} (e.g. {urls[0]})" for reason, urls in reasons.items()]


def herald_report(run):
    """Totals of herald's per-feed JSON lines."""
    total = {"stored": 0, "failed": 0, "not_modified": 0, "alerts": 0, "reprints": 0, "merged": 0,
             "errors": []}
    for line in run.stdout().splitlines():
        if not line.startswith("{"):
            continue
        feed = json.loads(line)
        total["stored"] += feed.get("new", 0)
        total["alerts"] += feed.get("alerts", 0)
        total["reprints"] += feed.get("reprints", 0)
        total["merged"] += feed.get("merged", 0)
        if feed.get("status") == "error":
            total["failed"] += 1
            total["errors"].append(f"{feed.get('url')}: {feed.get('error')}")
        elif feed.get("status") == "not_modified":
            total["not_modified"] += 1
    return total


# ---------------------------------------------------------------------------
# Results


class Cell:
    """The repeated measurements of one row."""

    def __init__(self):
        self.first, self.repoll = [], []

    @staticmethod
    def median(runs, field):
        values = [getattr(r, field) if field in ("wall", "rss_kib") else r.report[field] for r in runs]
        return statistics.median(values) if values else None


def fmt(value, digits=2):
    if value is None:
        return "–"
    if digits == 0:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def main():
    args = parse_args()
    harness = Harness(args)

    def stop(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, stop)
    started = time.monotonic()
    try:
        run_all(harness, args)
    except KeyboardInterrupt:
        print("\nbench-peers: interrupted", file=sys.stderr)
        sys.exit(130)
    finally:
        harness.cleanup()
        print(f"\nwhole run: {time.monotonic() - started:.0f} s", file=sys.stderr)


def run_all(harness, args):
    systems = args.systems
    wants_herald = any(s.startswith(("herald", "rules")) for s in systems)
    wants_postgres = any(s.endswith("postgres") for s in systems)
    wants_rules = any(s.startswith("rules") for s in systems)
    binary = harness.herald_binary() if wants_herald else None
    python, versions = (harness.venv_python() if {"reader", "feedparser-loop"} & set(systems)
                        else (None, ["–", "–"]))
    postgres = harness.postgres_server() if wants_postgres else None
    if wants_postgres and not postgres:
        harness.notes.append("PostgreSQL rows skipped: set HERALD_BENCH_DATABASE_URL "
                             "(or TEST_DATABASE_URL / DATABASE_URL)")
        systems = [s for s in systems if not s.endswith("postgres")]
    if postgres and not shutil.which("psql"):
        harness.notes.append("PostgreSQL rows skipped: psql is not installed")
        systems, postgres = [s for s in systems if not s.endswith("postgres")], None

    # The socket first: the feed documents name their own URL.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1024)
    base = f"http://127.0.0.1:{listener.getsockname()[1]}"
    print(f"generating {args.feeds} feeds × {args.items} items …", flush=True)
    rules_wanted = max(RULE_COUNTS) if wants_rules else 1
    harness.check_call([sys.executable, "-B", "-m", "bench_peers.prepare", harness.run_dir,
                        str(args.feeds), str(args.items), base, str(rules_wanted), str(TARGET_HITS)],
                       "generating the feeds", cwd=os.path.dirname(HERE))
    with open(os.path.join(harness.run_dir, "prepare.json")) as file:
        data = json.load(file)
    harness.urls_file = os.path.join(harness.run_dir, "urls.txt")
    with open(harness.urls_file) as file:
        harness.urls = file.read().split()
    with open(os.path.join(harness.run_dir, "rules.txt")) as file:
        all_rules = [line for line in file.read().split("\n") if line]
    harness.start_server(listener)
    listener.close()  # the server has its copy
    check = json.loads(harness.check_call(
        [sys.executable, "-B", "-m", "bench_peers.loadcheck", harness.urls_file, "20"],
        "the feed-server check", cwd=os.path.dirname(HERE)))
    floor = harness.measure(["/bin/true"], "floor")
    expected = args.feeds * args.items

    print_setup(args, data, check, floor, binary, versions, postgres, all_rules, expected)

    cells = {}
    for repetition in range(args.repeat):
        if args.repeat > 1:
            print(f"repetition {repetition + 1} of {args.repeat}", flush=True)
        for system in systems:
            for count in (RULE_COUNTS if system.startswith("rules") else (None,)):
                key = (system, count)
                cell = cells.setdefault(key, Cell())
                tag = f"r{repetition + 1}-{system}" + (f"-{count}" if count else "")
                print(f"  {tag} …", end="", flush=True)
                try:
                    runs = run_one(harness, system, count, binary, python, postgres, all_rules, tag)
                except ToolFailed as failure:
                    print(" failed")
                    harness.notes.append(f"{tag}: {failure}")
                    continue
                cell.first.append(runs[0])
                cell.repoll.extend(runs[1:])
                print(" " + ", ".join(f"{r.wall:.2f} s (CPU {r.cpu:.2f} s)" for r in runs), flush=True)
    print_table(harness, cells, expected, all_rules, data)


def run_one(harness, system, count, binary, python, postgres, all_rules, tag):
    backend = system.split("-")[1] if system.startswith(("herald", "rules")) else None
    if backend:
        if backend == "postgres":
            url = harness.fresh_database(postgres)
        else:
            url = "sqlite://" + os.path.join(harness.run_dir, tag, "herald.db")
        # The side-by-side rows carry no rule (the peers match nothing); the
        # rules rows carry 1, 1,000 or 10,000.
        rules = all_rules[:count] if count else []
        try:
            return harness.herald(binary, url, rules, tag, repoll=count is None)
        finally:
            if backend == "postgres":
                harness.drop_database()
    script = "reader_poll.py" if system == "reader" else "feedparser_loop.py"
    return harness.peer(python, script, tag)


def print_setup(args, data, check, floor, binary, versions, postgres, rules, expected):
    mb = 1024 * 1024
    print()
    print(f"data: {args.feeds} feeds × {args.items} items = {expected:,} distinct articles, "
          f"RSS 2.0 / Atom 1.0 / JSON Feed 1.1 by feed number mod 3; {data['source']}; "
          f"body median {data['body_bytes_median']:,.0f} bytes, feed documents "
          f"{data['feed_bytes_mean'] / 1024:,.0f} KB on average, {data['feed_bytes_total'] / mb:,.1f} MB in all")
    print(f"feed server: 127.0.0.1, {args.server_workers} process(es), HTTP/1.1 keep-alive; "
          f"20 parallel clients fetched all {check['requests']} feeds in {check['seconds']:.2f} s "
          f"({check['requests'] / check['seconds']:,.0f} requests/s, "
          f"{check['bytes'] / mb / check['seconds']:,.0f} MB/s), and with their ETags in "
          f"{check['seconds_304']:.2f} s ({check['not_modified']} × 304)")
    print(f"herald: {binary}; config: concurrency = 64, per_host = 64 (every feed is on one host "
          f"here; per_host stands for {args.feeds} publishers), interval 1h, timeout 30s, RUST_LOG=warn; "
          "the side-by-side rows carry no rule (the peers match none), the rules rows 1 to 10,000")
    print(f"peers: feedparser {versions[0]}, reader {versions[1]}; "
          f"PostgreSQL: {redact(postgres) if postgres else 'none'}")
    print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}; RSS floor: a process "
          f"started by this harness shows at least {floor.rss_kib / MB:.1f} MB "
          f"(/bin/true measured the same way)")
    hits = data.get("hits")
    if hits:
        kinds = ", ".join(f"{n:,} {kind}" for kind, n in data["rule_kinds"].items())
        print(f"rules: r00001 = {rules[0]}; the others from the text's common words ({kinds}); "
              "rules matched per article (Python word-set check: mean, and min/median/max over "
              "200 articles): " + "; ".join(
                  f"{int(n):,} rule{'s' if int(n) > 1 else ''} {h['mean']:.1f} "
                  f"({h['min']}/{h['median']}/{h['max']})"
                  for n, h in sorted(hits.items(), key=lambda item: int(item[0]))))
    print(flush=True)


def redact(url):
    parts = urllib.parse.urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(":" + parts.password + "@", ":…@")
        return urllib.parse.urlunsplit(parts._replace(netloc=netloc))
    return url


def print_table(harness, cells, expected, rules, data):
    print()
    if any(len(c.first) > 1 for c in cells.values()):
        print(f"medians of {max(len(c.first) for c in cells.values())} repetitions")
    print("| system | first poll s | items/s | peak RSS MB | re-poll s | re-poll RSS MB | failed feeds |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    rates, repolls, flags = {}, {}, []
    for (system, count), cell in cells.items():
        if not cell.first:
            continue
        label = LABELS.get(system) or (f"herald poll, {'SQLite' if system.endswith('sqlite') else 'PostgreSQL'}, "
                                       f"{count:,} rule{'s' if count > 1 else ''}")
        wall = Cell.median(cell.first, "wall")
        stored = Cell.median(cell.first, "stored")
        rate = stored / wall
        rates[(system, count)] = rate
        flag = ""
        if stored < expected:
            flag = " ⚠"
            flags.append(f"⚠ {label}: stored {stored:,.0f} of {expected:,} items")
        failed = f"{Cell.median(cell.first, 'failed'):,.0f}"
        repoll_wall = Cell.median(cell.repoll, "wall")
        if cell.repoll:
            repolls[system] = repoll_wall
            failed += f" / {Cell.median(cell.repoll, 'failed'):,.0f}"
            not_modified = Cell.median(cell.repoll, "not_modified")
            if not_modified < len(harness.urls):
                flags.append(f"⚠ {label}: re-poll saw {not_modified:,.0f} of {len(harness.urls)} "
                             "feeds as not modified")
        rss = Cell.median(cell.first, "rss_kib") / MB
        repoll_rss = Cell.median(cell.repoll, "rss_kib")
        print(f"| {label} | {fmt(wall)} | {fmt(rate, 0)}{flag} | {fmt(rss, 1)} | {fmt(repoll_wall)} | "
              f"{fmt(repoll_rss / MB if repoll_rss else None, 1)} | {failed} |")
        flags.extend(failures(label, cell.first + cell.repoll))
        if count and count > 1:
            alerts = Cell.median(cell.first, "alerts")
            flags.append(f"{label}: herald recorded {alerts / max(stored, 1):.1f} rule hits per article")
        reprints = Cell.median(cell.first, "reprints") if system != "reader" and system != "feedparser-loop" else 0
        if reprints:
            flags.append(f"{label}: {reprints:,.0f} articles joined another's story (reprints)")
    print("\nfailed feeds: first poll / re-poll; MB = MiB; rules rows: first poll only")
    for line in flags + harness.notes:
        print("- " + line)

    print("\nratios (the result; the machine is shared and noisy):")
    peers = {s: rates[(s, None)] for s in ("reader", "feedparser-loop") if (s, None) in rates}
    if peers:
        fastest = max(peers, key=peers.get)
        for system in ("herald-sqlite", "herald-postgres"):
            if (system, None) in rates:
                print(f"- {LABELS[system]} first poll: {rates[(system, None)] / peers[fastest]:.1f}× "
                      f"the items/s of the faster peer ({LABELS[fastest]})")
    for peer in ("reader", "feedparser-loop"):
        for system in ("herald-sqlite", "herald-postgres"):
            if peer in repolls and system in repolls:
                print(f"- re-poll: {LABELS[peer]} takes {repolls[peer] / repolls[system]:.1f}× "
                      f"as long as {LABELS[system]}")
    for backend in ("sqlite", "postgres"):
        base = rates.get((f"rules-{backend}", 1))
        if base:
            shares = [f"{count:,} rules {rates[(f'rules-{backend}', count)] / base * 100:.0f} %"
                      for count in RULE_COUNTS[1:] if (f"rules-{backend}", count) in rates]
            print(f"- rules, {'SQLite' if backend == 'sqlite' else 'PostgreSQL'}: items/s as % of the "
                  f"1-rule rate: " + ", ".join(shares))
