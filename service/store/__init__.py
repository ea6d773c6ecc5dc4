"""Where a database URL becomes an event store: its recorders (and their bulk reads), the
store's timeline with group commit, the read models' views and the API keys."""
