"""The adapters: settings and stores, the HTTP API (Litestar, msgspec) and the command line.

May import `projections` and `domain`; nothing imports `service`.
"""
