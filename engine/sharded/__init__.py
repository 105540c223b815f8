"""Sharded stock (``sharded``): partitions of two sub-domains over many Redis nodes, a scheduler
registry and injection from a pre-allocation pool.

Config section (:mod:`.config`), key layout (:mod:`.keys`), the app-side registry (:mod:`.registry`),
Lua scripts (``scripts/*.lua``) and their twins (:mod:`.twins`), the strategy (:mod:`.strategy`).
"""
