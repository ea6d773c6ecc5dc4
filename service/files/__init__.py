"""The file formats: backfill lines, backups, replays and exports."""
