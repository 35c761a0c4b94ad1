"""goald.sql: numbered migrations `NNNN_name.sql`, shipped as package data.

This file only makes the folder an importable package so that `importlib.resources` can find
the migrations in a non-editable install.
"""
