"""The write model: aggregates, their events, rules and the use cases (`Timeline`, `Unit`).

Imports only the standard library and eventsourcing's domain and application parts;
never a web framework, a schema library, a database driver or the store's plumbing.
"""
