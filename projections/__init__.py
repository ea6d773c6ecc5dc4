"""The read side: one projection (timeline.py), one view interface with named queries
(view.py), its SQL for PostgreSQL and SQLite (sqlview.py and one module per database),
and the workers that run it (workers.py). May import `domain`; never `service`.
"""
