"""A loopback MEXC spot v3 emulator that stock ccxt talks to over HTTP.

`market` and `replay` produce prices (synthetic or recorded), `clock` says what time it is on the
emulated exchange, and the server modules answer MEXC's REST API in MEXC's exact JSON shapes.
"""
