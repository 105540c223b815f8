"""Faults: what can go wrong during a sale (the ``faults`` scenario section, the ``--fault`` spec)."""
