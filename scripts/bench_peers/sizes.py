"""Bytes on disk per stored article, per table: the table itself (with
PostgreSQL's TOAST) and its indexes, read from the database herald has just
filled. SQLite through its `dbstat` table (Python's sqlite3, read-only);
PostgreSQL through `pg_table_size` and `pg_indexes_size` (psql)."""
import sqlite3
import subprocess


def sqlite_sizes(path):
    """[(table, table bytes, index bytes)], and the article count."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        owner = dict(con.execute(
            "SELECT name, tbl_name FROM sqlite_master WHERE type IN ('table', 'index')"))
        tables = {}
        for name, size in con.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name"):
            table = owner.get(name, name)
            data, index = tables.get(table, (0, 0))
            if table == name:
                data += size
            else:
                index += size
            tables[table] = (data, index)
        articles = con.execute("SELECT count(*) FROM articles").fetchone()[0]
    finally:
        con.close()
    return [(t, d, i) for t, (d, i) in sorted(tables.items())], articles


def postgres_sizes(url):
    query = ("SELECT c.relname, pg_table_size(c.oid), pg_indexes_size(c.oid) "
             "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
             "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') ORDER BY 1")
    subprocess.run(["psql", url, "-qc", "VACUUM ANALYZE"], capture_output=True, check=True)
    out = subprocess.run(["psql", url, "-At", "-F", "\t", "-c", query],
                         capture_output=True, text=True, check=True).stdout
    rows = [line.split("\t") for line in out.splitlines() if line]
    articles = int(subprocess.run(["psql", url, "-At", "-c", "SELECT count(*) FROM articles"],
                                  capture_output=True, text=True, check=True).stdout)
    return [(t, int(d), int(i)) for t, d, i in rows], articles


def table(label, rows, articles):
    """A markdown table of bytes per article, largest first."""
    per = max(articles, 1)
    lines = [f"{label}: {articles:,} articles",
             "| table | table B/article | indexes B/article |",
             "| --- | --- | --- |"]
    total_d = total_i = 0
    for name, data, index in sorted(rows, key=lambda r: -(r[1] + r[2])):
        total_d += data
        total_i += index
        if data + index >= per:  # leave out tables of under a byte per article
            lines.append(f"| `{name}` | {data / per:,.0f} | {index / per:,.0f} |")
    lines.append(f"| **all** | **{total_d / per:,.0f}** | **{total_i / per:,.0f}** |")
    lines.append(f"total: {(total_d + total_i) / per:,.0f} bytes per article")
    return "\n".join(lines)
