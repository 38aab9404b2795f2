-- The W3C trace context (`traceparent` header) of the change that wrote each outbox row, so
-- the relay's publish continues that change's trace (docs/operations.md, "Tracing"). NULL
-- when the change was not traced. Adding a nullable column without a default rewrites nothing.
ALTER TABLE outbox ADD COLUMN traceparent text;
