"""Key layout of sharded stock: one hash tag per partition, one for the pool.

Partition ``k`` of ``sku42`` lives under the tag ``{sku42:pk}`` (plus a suffix
when placement is balanced, see :func:`balanced_tags`), so each partition
script touches one slot, as Redis Cluster demands; the pool lives under
``{sku42:pool}``, usually on another node. The namespace stays outside the tag,
so placement does not depend on it.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.slots import SlotMap


@dataclass(frozen=True, slots=True)
class PartitionKeys:
    """Keys of one partition (see :mod:`engine.sharded.twins`)."""

    namespace: str
    tag: str

    def _key(self, kind: str, suffix: str = "") -> str:
        return f"{self.namespace}:{kind}:{{{self.tag}}}{suffix}"

    @property
    def a(self) -> str:
        return self._key("stock", ":a")

    @property
    def b(self) -> str:
        return self._key("stock", ":b")

    def sub(self, index: int) -> str:
        """Sub-domain ``index`` (0 = A, 1 = B)."""
        return self.b if index else self.a

    @property
    def sold(self) -> str:
        return self._key("sold")

    @property
    def received(self) -> str:
        return self._key("received")

    @property
    def returned(self) -> str:
        return self._key("returned")

    @property
    def meta(self) -> str:
        return self._key("meta")

    @property
    def applied(self) -> str:
        return self._key("applied")

    @property
    def outbox(self) -> str:
        """Returns to the pool this partition has recorded and recovery has not settled yet."""
        return self._key("outbox")

    # The KEYS of each script, in its order.
    def init_keys(self) -> tuple[str, ...]:
        return (self.a, self.b, self.sold, self.received, self.returned, self.meta)

    def deduct_keys(self) -> tuple[str, ...]:
        return (self.a, self.b, self.sold, self.meta)

    def inject_keys(self, sub: int) -> tuple[str, ...]:
        return (self.sub(sub), self.received, self.returned, self.meta, self.applied, self.outbox)

    def retire_keys(self) -> tuple[str, ...]:
        return (self.a, self.b, self.returned, self.meta, self.outbox)

    def transfer_keys(self) -> tuple[str, ...]:
        return (self.received, self.returned, self.outbox)

    def settle_keys(self) -> tuple[str, ...]:
        return (self.returned, self.outbox)

    def status_keys(self) -> tuple[str, ...]:
        return (self.a, self.b, self.meta, self.sold)

    def all(self) -> tuple[str, ...]:
        return (*self.init_keys(), self.applied, self.outbox)


@dataclass(frozen=True, slots=True)
class PoolKeys:
    """Keys of the pre-allocation pool (one tag), with per-partition counters."""

    namespace: str
    tag: str

    @property
    def stock(self) -> str:
        return f"{self.namespace}:pool:{{{self.tag}}}"

    @property
    def tickets(self) -> str:
        return f"{self.namespace}:tickets:{{{self.tag}}}"

    def issued(self, partition: int) -> str:
        """Units granted to ``partition`` so far."""
        return f"{self.namespace}:issued:{{{self.tag}}}:p{partition}"

    def back(self, partition: int) -> str:
        """Units credited back from ``partition`` so far."""
        return f"{self.namespace}:back:{{{self.tag}}}:p{partition}"

    def outbox(self, partition: int) -> str:
        """Grants to ``partition`` recorded by pool_take and not settled by recovery yet."""
        return f"{self.namespace}:outbox:{{{self.tag}}}:p{partition}"

    def take_keys(self, partition: int) -> tuple[str, ...]:
        return (self.stock, self.issued(partition), self.tickets, self.outbox(partition))

    def return_keys(self, partition: int) -> tuple[str, ...]:
        return (self.stock, self.back(partition), self.tickets)

    def transfer_keys(self, partition: int) -> tuple[str, ...]:
        return (self.issued(partition), self.back(partition), self.outbox(partition))

    def settle_keys(self, partition: int) -> tuple[str, ...]:
        return (self.issued(partition), self.outbox(partition))

    def all(self, partitions: int) -> tuple[str, ...]:
        per = [key for p in range(partitions) for key in (self.issued(p), self.back(p), self.outbox(p))]
        return (self.stock, self.tickets, *per)


def hash_tags(sku: str, partitions: int) -> list[str]:
    """``sku:p0 .. sku:p{n-1}``: wherever CRC16 puts them (placement ``hash``)."""
    return [f"{sku}:p{k}" for k in range(partitions)]


def balanced_tags(sku: str, partitions: int, slots: SlotMap) -> list[str]:
    """Tags that put partition ``k`` on node ``k mod nodes``, as an operator would pick them.

    Partition ``k`` gets the first tag ``sku:pk`` or ``sku:pk.j`` (j = 1, 2, ...) whose
    slot the target node owns; with even slot ranges a few tries suffice.
    """
    tags = []
    for k in range(partitions):
        target = k % slots.nodes
        tag, j = f"{sku}:p{k}", 0
        while slots.node_of(f"{{{tag}}}") != target:
            j += 1
            tag = f"{sku}:p{k}.{j}"
        tags.append(tag)
    return tags


def pool_tag(sku: str) -> str:
    return f"{sku}:pool"
