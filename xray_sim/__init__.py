"""X-Ray's simulated world: the test and demo equipment that stands in for the outside world.

`exchange` is a loopback MEXC spot v3 emulator that stock ccxt trades against, `news` a loopback
fake news feed (RSS, Atom, JSON drops), `telegram` a loopback fake of the Telegram Bot API, and
`loadtest` drives the trading runtime with many paper users against the emulator.

The equipment may import the product (xray_core, xray_runtime) to drive or mirror it; the product
never imports the equipment (an import-linter contract in pyproject.toml), so nothing simulated can
reach a production process.
"""
