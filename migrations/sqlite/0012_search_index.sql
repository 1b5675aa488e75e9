-- Indexed search. `article_search` holds, per article, the distinct words the
-- rule matcher sees in its title, summary and content, each written as the hex
-- of its UTF-8 bytes: FTS5's tokenizer then reads every word back exactly as
-- herald normalised it, and a word's hex is a prefix of another's exactly when
-- the word is, so `iran*` stays a prefix query. Contentless (the text is in
-- `articles`), positions not kept (`detail=none`): a query only asks which
-- articles hold which words; phrases, NEAR and fields are checked by the
-- matcher on the candidates.
--
-- The index is written after the articles, not in ingest's transaction:
-- `search_backlog` lists the articles written or changed since they were last
-- indexed, filled by the triggers below; `herald run` indexes it in the
-- background, and a search reads the articles still in it as candidates, so a
-- search is complete whether or not the index has caught up.
CREATE VIRTUAL TABLE article_search USING fts5 (
    words,
    content = '',
    contentless_delete = 1,
    detail = none,
    tokenize = 'ascii'
);

CREATE TABLE search_backlog (
    article_id INTEGER PRIMARY KEY,
    -- Too many distinct words to index: stays a candidate of every search.
    oversized  INTEGER NOT NULL DEFAULT 0
);

INSERT INTO search_backlog (article_id) SELECT id FROM articles;

CREATE TRIGGER articles_search_added AFTER INSERT ON articles BEGIN
    INSERT OR IGNORE INTO search_backlog (article_id) VALUES (new.id);
END;

CREATE TRIGGER articles_search_changed
    AFTER UPDATE OF title, summary_text, content_text ON articles
    WHEN old.title IS NOT new.title
        OR old.summary_text IS NOT new.summary_text
        OR old.content_text IS NOT new.content_text
BEGIN
    INSERT INTO search_backlog (article_id) VALUES (new.id)
        ON CONFLICT (article_id) DO UPDATE SET oversized = 0;
END;

CREATE TRIGGER articles_search_removed AFTER DELETE ON articles BEGIN
    DELETE FROM article_search WHERE rowid = old.id;
    DELETE FROM search_backlog WHERE article_id = old.id;
END;
