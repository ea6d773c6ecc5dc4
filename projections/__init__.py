"""The read models: one module per read model (projection and view interface), one module
per database for the views. May import `domain`; never `service`.
"""
