-- Users and their tasks. The task key leads with user_id: every task statement is keyed by its user,
-- and it is what lets the table be distributed by user_id (Citus) later.
CREATE TABLE users (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tasks (
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    user_id uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title varchar(255) NOT NULL,
    description text,
    is_completed boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, id),
    CONSTRAINT tasks_title_not_blank CHECK (char_length(btrim(title)) > 0),
    CONSTRAINT tasks_description_length CHECK (char_length(description) <= 10000),
    CONSTRAINT tasks_updated_after_created CHECK (updated_at >= created_at)
);

-- Serves the list query: one user's tasks, newest first, with a stable tie-break.
CREATE INDEX tasks_user_created_idx ON tasks (user_id, created_at DESC, id DESC);
