"""Risk: per-profile position sizing adapted to the market (volatility targeting, capped Kelly)."""
