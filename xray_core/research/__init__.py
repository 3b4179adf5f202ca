"""The research loop as pure functions: default backtests of every symbol (cached by data and code
version), symbol filtering with reasons, and the tables and files they are kept in."""
