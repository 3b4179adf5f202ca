"""Market data: the universe, candles with their checks, the quality verdict, and their automation."""
