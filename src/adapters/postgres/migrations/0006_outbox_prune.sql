-- Sent outbox rows are pruned after a retention (the relay deletes them in small batches):
-- this index finds the oldest sent rows without scanning the ones still kept.
CREATE INDEX outbox_sent_idx ON outbox (sent_at) WHERE sent_at IS NOT NULL;
