"""Where a database URL becomes an event store: its recorders, the read models' views
and the API keys."""
