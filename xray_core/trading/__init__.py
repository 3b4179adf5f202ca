"""Pure trading domain shared by the runtime and its tests: orders, fills and their lineage (sizing
and risk limits are in `xray_core.risk`)."""
