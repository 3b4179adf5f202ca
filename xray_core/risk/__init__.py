"""Risk, in one package.

* Sizing: per-profile sizing adapted to the market (`profiles`: volatility targeting, capped Kelly, a
  drawdown brake), what it adapts to (`states`: a symbol's measured market state), and each user's
  entry size capped by their max position (`sizing.entry_notional`).
* Limits (`limits`): one small rule per file returning a block mask over arrays of users, registered
  in `limits/registry.py` and evaluated together by `limits.book.RiskBook`; that package's docstring
  says how to add one.
"""
