-- depends: 0006.idempotency-keys-by-scope-and-age
-- The bytes a task's title and description take in its JSON (escapes included), kept by every write: a page or a
-- change-feed answer is cut at its byte bound before any JSON is made. NULL on rows written before this migration
-- (no backfill: no rewrite of a live table); readers then fall back to the stored length.
-- Online: each migration of round 3 takes ACCESS EXCLUSIVE on one busy table only (the app's statements lock
-- users, tasks and idempotency_keys in different orders, so a migration holding two could deadlock with them);
-- constant defaults add no table rewrite; a short lock_timeout gives up (taskapi.migrate retries) rather than
-- queue every request behind a migration that waits for a long transaction.
SET LOCAL lock_timeout = '200ms';
ALTER TABLE tasks ADD COLUMN text_bytes integer;
CREATE FUNCTION tasks_text_bytes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.text_bytes := octet_length(to_json(NEW.title)::text) + coalesce(octet_length(to_json(NEW.description)::text), 4);
    RETURN NEW;
END
$$;
CREATE TRIGGER tasks_text_bytes BEFORE INSERT OR UPDATE OF title, description ON tasks
    FOR EACH ROW EXECUTE FUNCTION tasks_text_bytes();
