-- A table for the store crate's tests: proves that connect() ran the migrations.
CREATE TABLE widgets (
    widget_id BIGINT PRIMARY KEY,
    name TEXT NOT NULL
);
