-- Issue 14: see migrations/postgres/0006_verify_memory.sql. Embedded mode has no Redis and
-- never verifies from memory; the table keeps both schemas alike.
CREATE TABLE verify_memory (
    id integer PRIMARY KEY CHECK (id = 1),
    declared_at text NOT NULL
);
