"""What became of each item of a batch: a result, a :class:`Failure`, or cancelled.

``asyncio.gather(*calls)`` (and so PocketFlow's parallel node) has two ways to handle an
item that raises, and neither keeps every item safe:

- by default the first exception comes out of ``gather`` and the other results are thrown
  away, while the other calls *keep running* with nobody waiting for them;
- with ``return_exceptions=True`` every call runs to the end and the exceptions come back
  in the result list, mixed with the answers: you must check each value's type, and an
  exception does not say which item or how many attempts it belonged to.

Here a failed item becomes a :class:`Failure` (the item, its last error, how many attempts
it had), and :class:`Outcomes` records what became of every item while the batch runs, so
finished results stay reachable even when the run is cancelled half-way. The batch engine
fills them in; :func:`~pocket_parallel.collect.gather_outcomes` does the same for plain asyncio code.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from . import _format
from .redaction import redact, safe_repr, safe_str

Status = Literal["pending", "ok", "failed", "cancelled"]
_STATUSES: tuple[str, ...] = ("ok", "failed", "cancelled", "pending")


class DeadlineExceeded(TimeoutError):
    """The batch's deadline passed before this item finished: it was stopped, or never started."""

    def __init__(self, detail: str = "") -> None:
        super().__init__("the batch deadline passed before this item finished" + (f" ({detail})" if detail else ""))


@dataclass(frozen=True, repr=False)
class Failure:
    """An item whose every attempt failed: kept, never dropped.

    ``item`` is what was being processed, ``error`` the exception of its last attempt and
    ``attempts`` how many attempts it had. Its ``str`` and ``repr`` mask anything that looks
    like a credential in the error (:func:`~pocket_parallel.redaction.redact`), and show the
    item even when the item's own ``repr`` raises.
    """

    item: Any
    error: BaseException
    attempts: int

    def __str__(self) -> str:
        tries = "attempt" if self.attempts == 1 else "attempts"
        error = redact(safe_str(self.error))
        return f"{safe_repr(self.item)} failed after {self.attempts} {tries}: {type(self.error).__name__}: {error}"

    def __repr__(self) -> str:
        item = _format.clip(safe_repr(self.item), 60)
        return f"<Failure {item} after {_format.plural(self.attempts, 'attempt')}: {type(self.error).__name__}>"


class Outcomes:
    """What became of each item of one batch run, filled in live as items finish.

    Each item is ``"pending"`` until it ends ``"ok"`` (with its result), ``"failed"`` (with
    a :class:`Failure`) or ``"cancelled"`` (the run was stopped before it finished). After
    an interrupted run, :attr:`succeeded` still holds every result that was finished. With a
    journal, :attr:`not_saved` lists the items whose outcome the journal could not write.
    """

    def __init__(self, items: Iterable[Any]) -> None:
        self.items: list[Any] = list(items)
        self._status: list[Status] = ["pending"] * len(self.items)
        self._values: list[Any] = [None] * len(self.items)
        self._unsaved: set[int] = set()

    def __len__(self) -> int:
        return len(self.items)

    def status(self, index: int) -> Status:
        """The status of the item at ``index`` (its position in the batch)."""
        return self._status[index]

    @property
    def succeeded(self) -> list[tuple[Any, Any]]:
        """``(item, result)`` for every item that finished successfully, in input order."""
        return [(item, value) for item, status, value in self._each() if status == "ok"]

    @property
    def results(self) -> list[Any]:
        """The results of the items that finished successfully, in input order."""
        return [value for _, status, value in self._each() if status == "ok"]

    @property
    def failures(self) -> list[Failure]:
        """A :class:`Failure` for every item that failed, in input order."""
        return [value for _, status, value in self._each() if status == "failed"]

    @property
    def cancelled(self) -> list[Any]:
        """The items stopped before they finished, in input order."""
        return [item for item, status, _ in self._each() if status == "cancelled"]

    @property
    def pending(self) -> list[Any]:
        """The items not finished yet (empty once the run has ended, however it ended)."""
        return [item for item, status, _ in self._each() if status == "pending"]

    @property
    def not_saved(self) -> list[Any]:
        """The items that ended while their outcome could not be written to the journal (a full disk, say), in input order.

        Their results and failures are here as usual; a re-run with the journal sends them again.
        """
        return [self.items[index] for index in sorted(self._unsaved)]

    def counts(self) -> dict[str, int]:
        """How many items are ok, failed, cancelled and pending."""
        return {status: self._status.count(status) for status in _STATUSES}  # type: ignore[arg-type]

    def ordered(self) -> list[Any]:
        """One value per item in input order: its result, or its :class:`Failure`."""
        if "pending" in self._status or "cancelled" in self._status:
            raise RuntimeError(f"not every item has finished: {self.summary()}")
        return list(self._values)

    def summary(self) -> str:
        """One line: how many of the items ended which way."""
        counts = self.counts()
        parts = [f"{counts[s]} {s}" for s in _STATUSES if counts[s] or s in ("ok", "failed")]
        if self._unsaved:
            parts.append(f"{len(self._unsaved)} not saved in the journal")
        return f"{len(self)} items: " + ", ".join(parts)

    def __repr__(self) -> str:
        return f"<Outcomes {self.summary()}>"

    def _repr_markdown_(self) -> str:
        """What became of the items, as a small table in a notebook."""
        counts = self.counts()
        rows = [(status, str(counts[status])) for status in _STATUSES if counts[status] or status in ("ok", "failed")]
        return _format.markdown_record(f"Outcomes of {_format.plural(len(self), 'item')}", rows)

    def _each(self) -> Iterable[tuple[Any, Status, Any]]:
        return zip(self.items, self._status, self._values)

    def _not_saved(self, index: int) -> None:
        """Note that the item at ``index`` ended but the journal could not write its outcome."""
        self._unsaved.add(index)

    def _record(self, index: int, status: Status, value: Any = None) -> None:
        """Settle a pending item (the batch engine's job; an item settles once)."""
        if self._status[index] == "pending":
            self._status[index], self._values[index] = status, value
