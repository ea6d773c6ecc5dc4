"""The adapters, in four rooms that point one way — `cli` → `http` → `files` → `store`:

- `cli.py`: the `timeline` command;
- `http/`: the API (Litestar, msgspec): app, handlers, schemas, errors, OpenAPI, the page;
- `files/`: the file formats: backfill lines, backups, replays and exports;
- `store/`: where a database URL becomes an event store, its recorders, group commit,
  the read models' views and the API keys.

`settings.py` and `process.py` serve every room. May import `projections` and `domain`;
nothing imports `service`.
"""
