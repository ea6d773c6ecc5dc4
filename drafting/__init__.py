"""Drafts from an article: the statements it reports, found by rules over its sentences.

Pure functions from text (and the actors and topics the caller knows) to draft lines of
the backfill format. Imports the standard library and `domain` (for its limits) only.
"""
