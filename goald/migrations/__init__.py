"""Migrations: parsing, validating and applying sql/NNNN_name.sql files."""
