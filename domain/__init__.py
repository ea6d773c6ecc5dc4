"""The write model: aggregates, their events and the use cases (the `Timeline` application).

Imports only the standard library and eventsourcing's domain and application parts;
never a web framework, a schema library or a database driver.
"""
