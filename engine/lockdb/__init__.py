"""Lock-based DB strategies (``db_pessimistic``, ``db_optimistic``, ``db_conditional``, ``db_batched``).

Config section (:mod:`.config`), the stock table and its statements (:mod:`.statements`), the
optional Redis read cache (:mod:`.cache`, ``scripts/cache_*.lua``), the shared request loop
(:mod:`.base`) and one module per strategy.
"""
