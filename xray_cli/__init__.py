"""The `xray` command line: a thin dispatcher into xray_core, xray_pipelines and xray_runtime.

Every command imports its implementation lazily so that `xray --help` stays fast."""
