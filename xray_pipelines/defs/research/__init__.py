"""Research: features, backtests, filtering, correlation, news, optimised parameters, risk sizing."""
