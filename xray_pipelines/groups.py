"""Asset groups: every asset belongs to one, and each group is launched by one job (`defs/jobs.py`).

A group is a unit of work that runs together: a new asset joins a group and is launched with it,
without any list to edit. Partitioned assets (candles, features) have groups of their own, since a
job runs one partitioning at a time."""

from typing import ClassVar


class Group:
    """The group names, as plain strings: Dagster serialises group names into the snapshots a code
    server sends to the webserver and the daemon, and refuses an Enum there (even a StrEnum)."""

    UNIVERSE = "universe"  # markets: the tradable universe and the symbol partitions
    CANDLES = "candles"  # per symbol: bars and their checks
    QUALITY = "quality"  # the verdict per symbol that gates everything downstream
    FEATURES = "features"  # per symbol: indicator columns
    RESEARCH = "research"  # backtests, filtering, correlation, news, parameters, risk sizing
    LEARNING = "learning"  # training data, models, the promotion gate, the published bundle
    ALL: ClassVar[tuple[str, ...]] = (UNIVERSE, CANDLES, QUALITY, FEATURES, RESEARCH, LEARNING)
