"""Pure trading domain shared by the runtime and its tests: orders, fills, sizing and risk limits."""
