"""Matches: the minute engine (minute.py); the schema, ingest and match actors arrive with issue 9."""
