"""Market analysis on stored data: pure functions and result types, no orchestration.

Each module stands alone (`correlation`: how symbols move together, who clusters with whom, betas and
lead-lag to a benchmark). Import from the modules themselves; this package re-exports nothing so that
importing one analysis never pulls in the dependencies of another.
"""
