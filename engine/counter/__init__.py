"""Single Redis counter (``single_redis``): one stock key, atomic Lua check-and-decrement.

Keys (:mod:`.keys`), Lua scripts (``scripts/*.lua``) and their Python twins (:mod:`.twins`),
the strategy (:mod:`.strategy`).
"""
