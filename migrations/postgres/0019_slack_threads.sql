-- A `slack_app` sink posts a story once to its channel; Slack's `ts` of that
-- message is kept here so that later alerts on the story, and the outlets
-- that carry it later ("also reported by …"), are replies in its thread.
-- `outlets` lists (JSON) the outlet URLs the thread has named so far;
-- `checked_at` is when an instance last looked for new ones (and claims the
-- look, so that two instances never post the same note).
CREATE TABLE slack_threads (
    sink        TEXT NOT NULL,
    story_id    BIGINT NOT NULL,
    channel     TEXT NOT NULL,
    ts          TEXT NOT NULL,
    outlets     TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    checked_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (sink, story_id)
);
CREATE INDEX slack_threads_recent ON slack_threads (created_at);
