-- Issue 14: the durable record that some worker verifies from memory (docs/design.md,
-- "Verifying from memory"). Writers publish invalidations and wait for acknowledgements only
-- once it exists; it is never removed, so a Redis that loses its data cannot make writers
-- forget that workers may hold tenant state.
CREATE TABLE verify_memory (
    id integer PRIMARY KEY CHECK (id = 1),
    declared_at timestamptz NOT NULL
);
