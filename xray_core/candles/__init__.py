"""Candles: the schema every component agrees on, quality checks, and the DuckDB store."""
