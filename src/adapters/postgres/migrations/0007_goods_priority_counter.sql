-- Creates draw their priority from this sequence instead of computing max(priority) + 1 under
-- an exclusive lock, so they no longer wait for each other's commit. nextval never blocks and
-- is never rolled back: a create that rolls back leaves its number unused (a gap). A
-- reprioritize, which runs alone (it holds the priority lock exclusively, creates hold it
-- shared), raises the sequence to the new highest priority before it commits. See docs/api.md,
-- "Concurrent writes". Owned by the column, so TRUNCATE ... RESTART IDENTITY restarts it.
CREATE SEQUENCE goods_priority_seq AS integer OWNED BY goods.priority;

SELECT setval('goods_priority_seq', max(priority)) FROM goods HAVING max(priority) IS NOT NULL;
