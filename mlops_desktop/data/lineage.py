"""Lineage graph of a dataset version: the versions it was made from, those made from it, and runs that read them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mlops_desktop.data import catalog

if TYPE_CHECKING:
    from mlops_desktop.workspace import Workspace


@dataclass
class LineageGraph:
    root: str
    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)  # ref -> {made_by, rows, mode, created}
    edges: list[tuple[str, str, str]] = field(default_factory=list)  # (parent, child, via)
    runs: list[dict[str, Any]] = field(default_factory=list)  # runs that read the root version

    def to_dict(self) -> dict[str, Any]:
        return {"root": self.root, "nodes": self.nodes,
                "edges": [{"parent": p, "child": c, "via": v} for p, c, v in self.edges], "runs": self.runs}

    def depth(self) -> dict[str, int]:
        """Column of each node for drawing: parents left of children (longest path from a source)."""
        parents: dict[str, list[str]] = {n: [] for n in self.nodes}
        for p, c, _ in self.edges:
            parents.setdefault(c, []).append(p)
        memo: dict[str, int] = {}

        def level(ref: str, seen: frozenset[str]) -> int:
            if ref in memo:
                return memo[ref]
            ps = [p for p in parents.get(ref, []) if p not in seen]
            memo[ref] = 0 if not ps else 1 + max(level(p, seen | {ref}) for p in ps)
            return memo[ref]

        return {n: level(n, frozenset()) for n in self.nodes}


def lineage(ws: Workspace, ref: str, *, max_nodes: int = 500) -> LineageGraph:
    """Walk upstream (parents) and downstream (children) from ``ref``; bounded by ``max_nodes``."""
    root = catalog.resolve(ws.db, ref)
    graph = LineageGraph(root=root.ref)

    def add(v: catalog.DatasetVersion) -> None:
        graph.nodes[v.ref] = {"made_by": v.producer_step or v.mode, "rows": v.row_count, "mode": v.mode,
                              "created": v.created_at, "rejected": v.rows_rejected}

    add(root)
    edges: set[tuple[str, str, str]] = set()
    todo_up, todo_down = [root], [root]
    seen_up, seen_down = {root.id}, {root.id}
    while todo_up and len(graph.nodes) < max_nodes:
        v = todo_up.pop()
        for parent_ref in v.parents:
            parent = catalog.resolve(ws.db, parent_ref)
            add(parent)
            edges.add((parent.ref, v.ref, v.producer_step or v.mode))
            if parent.id not in seen_up:
                seen_up.add(parent.id)
                todo_up.append(parent)
    while todo_down and len(graph.nodes) < max_nodes:
        v = todo_down.pop()
        for child_ref in catalog.children_of(ws.db, v.id):
            child = catalog.resolve(ws.db, child_ref)
            add(child)
            edges.add((v.ref, child.ref, child.producer_step or child.mode))
            if child.id not in seen_down:
                seen_down.add(child.id)
                todo_down.append(child)
    graph.edges = sorted(edges)
    graph.runs = [r for r in catalog.runs_that_read(ws.db, root.name) if r["version"] == str(root.version)]
    return graph
