"""X-Ray's pure domain: candle schema and quality, indicators, strategies, the backtest engine,
the exchange client, ingestion, analysis and research. Nothing here imports Dagster, MLflow or Redis,
nor the simulated world (xray_sim: the MEXC emulator and the other test and demo equipment)."""

__version__ = "0.1.0"
