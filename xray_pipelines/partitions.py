"""Partitions: one per tradable symbol, kept in sync with the `markets` asset."""

import dagster as dg

SYMBOLS = "symbols"
symbol_partitions = dg.DynamicPartitionsDefinition(name=SYMBOLS)
