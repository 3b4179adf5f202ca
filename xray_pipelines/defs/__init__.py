"""Every Dagster definition of the code location, discovered by `dg.load_from_defs_folder`.

A new asset, check, job, schedule or sensor is one new module here (in the folder of its domain);
`definitions.py` adds only the resources. Assets name their group (`xray_pipelines.groups`), and
each group's job launches whatever the group holds."""
