"""X-Ray's pure domain: candle schema and quality, indicators, strategies, the backtest engine,
the exchange client and the MEXC emulator. Nothing here imports Dagster, MLflow or Redis."""

__version__ = "0.1.0"
