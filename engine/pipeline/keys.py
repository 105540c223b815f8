"""Where a partition's detail records live: next to its stock counter, one hash tag."""

from __future__ import annotations

from dataclasses import dataclass

from engine.counter.keys import StockKeys


@dataclass(frozen=True, slots=True)
class DetailKeys:
    """The detail-record keys of one partition (one stock counter).

    ``tag`` is the partition's hash tag (``sku42`` for single_redis); it is
    also the partition id the DB knows, and detail ids are ``<tag>:<record id>``: the
    record's seq, or ``<epoch>.<seq>`` after a rollback (``deduct_detail.lua``).
    """

    namespace: str
    tag: str

    @classmethod
    def beside(cls, counter: StockKeys) -> DetailKeys:
        return cls(counter.namespace, counter.tag)

    @property
    def details(self) -> str:
        return f"{self.namespace}:detail:{{{self.tag}}}"

    @property
    def pending(self) -> str:
        return f"{self.namespace}:dpending:{{{self.tag}}}"

    @property
    def batches(self) -> str:
        return f"{self.namespace}:dbatches:{{{self.tag}}}"

    @property
    def meta(self) -> str:
        return f"{self.namespace}:dmeta:{{{self.tag}}}"

    def all(self) -> tuple[str, ...]:
        return (self.details, self.pending, self.batches, self.meta)

    def detail_id(self, record_id: int | str) -> str:
        return f"{self.tag}:{record_id}"
