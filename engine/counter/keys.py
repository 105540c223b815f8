"""Keys of the single stock counter (single_redis; the pipeline's detail keys build on them)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class StockKeys:
    """Keys of one stock counter: remaining stock and sold counter, one hash tag.

    ``namespace`` keeps runs apart on a shared server; it stays outside the tag,
    so placement does not depend on it.
    """

    namespace: str
    tag: str

    @property
    def stock(self) -> str:
        return f"{self.namespace}:stock:{{{self.tag}}}"

    @property
    def sold(self) -> str:
        return f"{self.namespace}:sold:{{{self.tag}}}"

    @property
    def outcomes(self) -> str:
        """Hash: request id -> the first reply to it (deduct_once: the idempotency keys)."""
        return f"{self.namespace}:req:{{{self.tag}}}"

    @property
    def deductions(self) -> str:
        """Hash: request id -> deductions applied for it (deduct_once's audit)."""
        return f"{self.namespace}:ded:{{{self.tag}}}"

    def all(self) -> tuple[str, str]:
        return (self.stock, self.sold)
