-- depends: 0015.subtask-index
-- The end of a user's top-level tasks in no list (the group most tasks are created in): an upper bound of their
-- positions, or NULL when not known (every row until a create that reads the group sets it). A create there is then
-- one statement: the user's row it updates anyway gives the next key (queries.tasks.APPEND_TASK).
-- Online: a nullable column without a default (no rewrite); users is the one table locked (see 0004).
SET LOCAL lock_timeout = '200ms';
ALTER TABLE users ADD COLUMN task_tail text COLLATE "C";

-- The key after `key` with the next integer part (taskapi.positions.between(key, None), whose fraction it drops);
-- NULL past the largest integer part ("z" and 26 digits), where the caller reads the group instead.
CREATE FUNCTION position_after(key text) RETURNS text LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    digits constant text := '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
    head constant text := left(key, 1);
    -- a..z: 1 to 26 digits follow (0 and up); Z..A: 1 to 26 (the negative integers, Z nearest 0)
    width constant integer := CASE WHEN head >= 'a' THEN ascii(head) - ascii('a') + 1 ELSE ascii('Z') - ascii(head) + 1 END;
    integer_part constant text := substr(key, 2, width);
    digit integer;
BEGIN
    FOR i IN REVERSE width..1 LOOP
        digit := strpos(digits, substr(integer_part, i, 1)) - 1;
        IF digit < 61 THEN  -- no carry past this digit
            RETURN head || left(integer_part, i - 1) || substr(digits, digit + 2, 1) || repeat('0', width - i);
        END IF;
    END LOOP;
    -- Every digit was the largest: the next integer has one digit more (positive) or one fewer (negative).
    RETURN CASE
        WHEN head = 'z' THEN NULL
        WHEN head >= 'a' THEN chr(ascii(head) + 1) || repeat('0', width + 1)
        WHEN head = 'Z' THEN 'a0'
        ELSE chr(ascii(head) + 1) || repeat('0', width - 1)
    END;
END
$$;
