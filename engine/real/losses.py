"""What a faulted real run lost, read back from the servers: ``acknowledged_units``, ``lost_acknowledged``, ...

The simulator's version lives in ``engine.faults.losses`` (same names, same
meaning); this is the real driver's, kept a small function so the two can be
unified. In real mode there is one difficulty the simulator does not have: a
request whose connection broke after its command was sent (:class:`LostReply`,
an ``error``) or whose client gave up (``timeout``) may or may not have been
deducted. Its units are *in doubt*: they may sit in the servers' sold count
without having been acknowledged. So ``lost_acknowledged`` is a lower bound,
exact when nothing is in doubt, and ``lost_acknowledged_max`` the upper one:

- ``acknowledged_units`` = Σ qty of the requests answered ``ok``;
- ``in_doubt_units`` = Σ qty of the requests that ended ``error`` or ``timeout``;
- ``lost_acknowledged`` = max(0, acknowledged − sold), ``sold`` being the deductions
  the servers hold at the end (``Inventory.sold``: the Redis sold counters; for a
  failover the rolled-back deductions are gone from them, stock and sold alike);
- ``lost_acknowledged_max`` = min(acknowledged, max(0, acknowledged − sold + min(in_doubt, sold))):
  as if every in-doubt unit had been deducted and kept;
- ``oversold_promised`` = max(0, acknowledged − initial): units promised beyond the stock.

[:mod:`engine.real.links` documents when a command counts as possibly run.]
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from engine.model import Inventory, Outcome


def loss_figures(initial: int, sold: int, acknowledged: int, in_doubt: int) -> dict[str, int]:
    """The loss figures from what the buyers were told and what the servers hold."""
    return {
        "acknowledged_units": acknowledged,
        "lost_acknowledged": max(0, acknowledged - sold),
        "lost_acknowledged_max": min(acknowledged, max(0, acknowledged - sold + min(in_doubt, sold))),
        "in_doubt_units": in_doubt,
        "oversold_promised": max(0, acknowledged - initial),
    }


def real_loss_figures(requests: pd.DataFrame, inventory: Inventory) -> dict[str, int]:
    """:func:`loss_figures` of a real run: its requests table and the inventory read back after it."""
    codes = requests["outcome"].cat.codes.to_numpy()  # the Outcome values (engine.result.requests_frame)
    qty = requests["qty"].to_numpy()
    acknowledged = int(qty[codes == Outcome.OK].sum())
    in_doubt = int(qty[np.isin(codes, (Outcome.ERROR, Outcome.TIMEOUT))].sum())
    return loss_figures(inventory.initial, inventory.sold, acknowledged, in_doubt)
