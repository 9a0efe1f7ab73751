-- depends: 0008.user-time-zone
-- The task model of round 3: a task's due (as the client said it: a date, and for a timed
-- due a wall time and its zone, with the instant it names), priority, labels, completed_at; and what the filters,
-- sorts and search read, kept by the writes.
-- Online: every column is nullable or has a constant default (no table rewrite, PostgreSQL 11+); the CHECKs are
-- added NOT VALID (no scan under the lock) and validated by 0010, which takes no lock that blocks writes. Only tasks
-- is locked (see 0004), with a short lock_timeout (taskapi.migrate retries).
SET LOCAL lock_timeout = '200ms';
ALTER TABLE tasks
    ADD COLUMN due_date date,
    ADD COLUMN due_time time(0),
    ADD COLUMN due_zone text,
    -- The instant of a timed due; NULL for an all-day one.
    ADD COLUMN due_at timestamptz,
    -- What sort=due and overdue order by: due_at, or for an all-day due the end of its date in the user's zone
    -- (kept when the user's zone changes).
    ADD COLUMN due_sort timestamptz,
    ADD COLUMN priority smallint NOT NULL DEFAULT 0,
    ADD COLUMN labels text[] NOT NULL DEFAULT '{}',
    -- The labels case-folded (Unicode, by the service): what the label filter compares.
    ADD COLUMN label_keys text[] NOT NULL DEFAULT '{}',
    ADD COLUMN completed_at timestamptz,
    -- Title and description case-folded by the service: what `q` compares (LIKE).
    ADD COLUMN search_title text,
    ADD COLUMN search_description text,
    -- Hashed keys, each scoped to the user: the 1- to 3-grams of the folded title and description, and the folded
    -- labels. One GIN index over the three finds the candidates of `q` and `label` among the user's tasks alone (no
    -- extension needed); the folded text and label_keys then decide. Each write keeps the keys of the fields it
    -- changes. NULL on rows from before this migration until the service fills them in.
    ADD COLUMN title_keys integer[],
    ADD COLUMN description_keys integer[],
    ADD COLUMN label_hashes integer[] NOT NULL DEFAULT '{}';
ALTER TABLE tasks ADD CONSTRAINT tasks_priority_range CHECK (priority BETWEEN 0 AND 4) NOT VALID;
ALTER TABLE tasks ADD CONSTRAINT tasks_due_shape CHECK (
    due_date IS NOT NULL AND (due_time IS NULL) = (due_zone IS NULL) AND (due_time IS NULL) = (due_at IS NULL)
    OR due_date IS NULL AND due_time IS NULL AND due_zone IS NULL AND due_at IS NULL
) NOT VALID;
ALTER TABLE tasks ADD CONSTRAINT tasks_labels_shape CHECK (
    cardinality(labels) <= 20 AND cardinality(label_keys) = cardinality(labels)
) NOT VALID;
ALTER TABLE tasks ADD CONSTRAINT tasks_completed_at_only_when_completed CHECK (
    is_completed OR completed_at IS NULL
) NOT VALID;

-- text_bytes (0007) counts the labels too: they are part of the task's JSON.
CREATE OR REPLACE FUNCTION tasks_text_bytes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.text_bytes := octet_length(to_json(NEW.title)::text) + coalesce(octet_length(to_json(NEW.description)::text), 4)
        + octet_length(to_json(NEW.labels)::text);
    RETURN NEW;
END
$$;
DROP TRIGGER tasks_text_bytes ON tasks;
CREATE TRIGGER tasks_text_bytes BEFORE INSERT OR UPDATE OF title, description, labels ON tasks
    FOR EACH ROW EXECUTE FUNCTION tasks_text_bytes();
