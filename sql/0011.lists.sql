-- depends: 0010.task-model-indexes
-- Lists: a user's named lists, in manual order. A list's position is a key compared as bytes (COLLATE "C"; see
-- taskapi/positions.py); change_seq is the user's change counter at the list's last write, as for tasks, so the
-- change feed carries lists too. list_count (on the user's row, kept under its lock) is LISTS_PER_USER_MAX's count.
-- Online: lists is new; users is the one busy table locked (see 0004), for a constant default (no rewrite).
SET LOCAL lock_timeout = '200ms';
ALTER TABLE users ADD COLUMN list_count integer NOT NULL DEFAULT 0;
CREATE TABLE lists (
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    name text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 255),
    position text COLLATE "C" NOT NULL,
    version bigint NOT NULL DEFAULT 1,
    change_seq bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, id)
);
CREATE INDEX lists_user_position_idx ON lists (user_id, position, id);
CREATE INDEX lists_user_change_idx ON lists (user_id, change_seq);
