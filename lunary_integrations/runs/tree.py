"""A trace tree built from the flat rows of ``GET /v1/runs/{id}/related``."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from ..events import Run


@dataclass
class RunNode:
    run: Run
    children: list[RunNode] = field(default_factory=list)

    def walk(self) -> Iterator[RunNode]:
        """This node, then its descendants, depth first, children in creation order."""
        stack = [self]
        while stack:  # iterative: a deep agent trace must not hit the recursion limit
            node = stack.pop()
            yield node
            stack.extend(reversed(node.children))


@dataclass
class RunTree:
    """``root`` is the requested run; ``rows`` keeps the server's flat rows (creation order)."""

    root: RunNode
    rows: list[Run]

    @classmethod
    def from_rows(cls, rows: Sequence[Run], root_id: str) -> RunTree:
        nodes = {row.id: RunNode(row) for row in rows}
        root = nodes.get(root_id)
        if root is None:
            raise ValueError(f"run {root_id} is not among the related rows")
        for row in rows:
            if row.id == root_id:
                continue
            parent = nodes.get(row.parent_run_id or "")
            # A row whose parent is outside the reply still belongs under the root.
            (parent or root).children.append(nodes[row.id])
        return cls(root=root, rows=list(rows))

    def __iter__(self) -> Iterator[RunNode]:
        return self.root.walk()

    def __len__(self) -> int:
        return len(self.rows)

    def find(self, run_id: str) -> RunNode | None:
        return next((node for node in self if node.run.id == run_id), None)


__all__ = ["RunNode", "RunTree"]
