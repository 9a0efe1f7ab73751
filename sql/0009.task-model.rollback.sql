SET LOCAL lock_timeout = '200ms';
DROP TRIGGER tasks_text_bytes ON tasks;
CREATE OR REPLACE FUNCTION tasks_text_bytes() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.text_bytes := octet_length(to_json(NEW.title)::text) + coalesce(octet_length(to_json(NEW.description)::text), 4);
    RETURN NEW;
END
$$;
CREATE TRIGGER tasks_text_bytes BEFORE INSERT OR UPDATE OF title, description ON tasks
    FOR EACH ROW EXECUTE FUNCTION tasks_text_bytes();
ALTER TABLE tasks DROP CONSTRAINT tasks_completed_at_only_when_completed;
ALTER TABLE tasks DROP CONSTRAINT tasks_labels_shape;
ALTER TABLE tasks DROP CONSTRAINT tasks_due_shape;
ALTER TABLE tasks DROP CONSTRAINT tasks_priority_range;
ALTER TABLE tasks
    DROP COLUMN label_hashes,
    DROP COLUMN description_keys,
    DROP COLUMN title_keys,
    DROP COLUMN search_description,
    DROP COLUMN search_title,
    DROP COLUMN completed_at,
    DROP COLUMN label_keys,
    DROP COLUMN labels,
    DROP COLUMN priority,
    DROP COLUMN due_sort,
    DROP COLUMN due_at,
    DROP COLUMN due_zone,
    DROP COLUMN due_time,
    DROP COLUMN due_date;
