"""db_batched: hot-row group commit, in the style of AliSQL's inventory hint.

Each buyer sends the conditional update marked for group commit
(``deduct_hot``). The server queues such updates on the row and applies them in
groups of up to ``db.batch_size``: one lock hand-off and one log flush per
group instead of per buyer (AliSQL reports up to ~31,000 TPS on one row).
Each update keeps its own ``stock >= qty`` check, so a group never oversells.

MariaDB has no such hint: in real mode the same statement runs as a plain
conditional update (identical results, no grouping). The grouping is a
simulated server feature (``sim/servers/db.py``).
"""

from __future__ import annotations

from engine.lockdb.conditional import DbConditional


class DbBatched(DbConditional):
    name = "db_batched"
    summary = "MySQL with hot-row group commit (AliSQL inventory hint)"
    statement = "deduct_hot"
