"""Talking to exchanges.

* `protocol`: `VenueClient`, what the runtime's order path depends on, and the `VenueError`s it raises.
* `reports`: the typed frozen reports a venue answers with (orders, fills, balances, markets).
* `venues`: one frozen `VenueTraits` per exchange (`venues/mexc.py`), looked up by `traits_for`.
* `ccxt_venue` / `ccxt_parse`: the ccxt adapter, the one place that reads ccxt's dicts and errors.
* `client`: building ccxt clients from settings, retries and pagination for market data.
"""
