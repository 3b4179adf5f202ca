"""A loopback MEXC spot v3 emulator that stock ccxt talks to over HTTP.

`market` and `replay` produce prices (synthetic or recorded), `clock` says what time it is on the
emulated exchange, and the server modules answer MEXC's REST API in MEXC's exact JSON shapes.

Entry points (`server`): `build_app(config)`, `serve(config, ready)`, `start_emulator(config)` /
`RunningEmulator` (a background thread for synchronous callers and tests) and `run_forever(config)`
(the CLI). The exchange itself: `accounts` (balances), `order_rules` and `matching` (orders and
fills), `book` (order book and public trades), `auth` (signatures), `ratelimit` (weights), `faults`
(fault injection), `shapes` (MEXC JSON), `routes_public` / `routes_private` / `dispatch` (the HTTP
side) and `admin` (the emulator's own /_emulator/ API for tests and reconciliation).
"""
