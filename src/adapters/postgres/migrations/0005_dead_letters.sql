-- Dead letters the broker refused even as a bounded envelope: kept here, never dropped.
-- One row per dead letter key (its message's source), so a retried batch keeps it once.
CREATE TABLE dead_letters (
    key      text PRIMARY KEY,
    topic    text NOT NULL,
    reason   text NOT NULL,
    envelope bytea NOT NULL,
    kept_at  timestamptz NOT NULL DEFAULT now()
);
