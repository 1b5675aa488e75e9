-- Indexed search. `article_search` holds, per article, the distinct words the
-- rule matcher sees in its title, summary and content as a tsvector (built
-- with array_to_tsvector: no parser, no stemming, no stop words), each word
-- written as the hex of its UTF-8 bytes so that any word is a valid lexeme and
-- a word's hex is a prefix of another's exactly when the word is (`iran*`
-- stays a prefix query). A GIN index answers which articles hold which words;
-- phrases, NEAR and fields are checked by the matcher on the candidates.
--
-- The index is written after the articles, not in ingest's transaction:
-- `search_backlog` lists the articles written or changed since they were last
-- indexed, filled by the triggers below; `herald run` indexes it in the
-- background (several instances share the work: SKIP LOCKED), and a search
-- reads the articles still in it as candidates, so a search is complete
-- whether or not the index has caught up.
CREATE TABLE article_search (
    article_id BIGINT PRIMARY KEY REFERENCES articles (id) ON DELETE CASCADE,
    words      tsvector NOT NULL
);
CREATE INDEX article_search_words ON article_search USING gin (words);

CREATE TABLE search_backlog (
    article_id BIGINT PRIMARY KEY REFERENCES articles (id) ON DELETE CASCADE,
    -- Too many distinct words to index: stays a candidate of every search.
    oversized  BOOLEAN NOT NULL DEFAULT false
);

INSERT INTO search_backlog (article_id) SELECT id FROM articles;

CREATE FUNCTION herald_articles_added() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO search_backlog (article_id) SELECT id FROM added
        ON CONFLICT (article_id) DO NOTHING;
    RETURN NULL;
END
$$;

CREATE FUNCTION herald_article_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO search_backlog (article_id) VALUES (NEW.id)
        ON CONFLICT (article_id) DO UPDATE SET oversized = false;
    RETURN NULL;
END
$$;

CREATE TRIGGER articles_search_added AFTER INSERT ON articles
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION herald_articles_added();
CREATE TRIGGER articles_search_changed AFTER UPDATE OF title, summary_text, content_text
    ON articles FOR EACH ROW
    WHEN (OLD.title IS DISTINCT FROM NEW.title
          OR OLD.summary_text IS DISTINCT FROM NEW.summary_text
          OR OLD.content_text IS DISTINCT FROM NEW.content_text)
    EXECUTE FUNCTION herald_article_changed();
