"""Rejected rows summarised by rule and column ("fare < min 0: 2 rows"), not by each reason text with its value in it.

A reject's reason is the '; '-joined list of the rules its row broke, each worded by the contract checks
(``contract.plan_checks``), the duplicate-key check and the empty-row check of the writer. This module reads those
words back into (column, rule) pairs, so a thousand rows whose fares are each a different negative number make one
line, not a thousand. A row that broke two rules counts once under each; ``rows`` says how many rows there are.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

# What follows "COLUMN: " in a column rule's words: (pattern, rule label). "value" is the row's value, "arg" part of
# the rule (a type, a bound, a regex).
_COLUMN_RULES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^'(?P<value>.*)' is not a valid (?P<arg>\S+)$", re.S), "not a valid {arg}"),
    (re.compile(r"^(?P<value>.*) is below the minimum (?P<arg>.+)$", re.S), "< min {arg}"),
    (re.compile(r"^(?P<value>.*) is above the maximum (?P<arg>.+)$", re.S), "> max {arg}"),
    (re.compile(r"^'(?P<value>.*)' is not one of the allowed values$", re.S), "not an allowed value"),
    (re.compile(r"^'(?P<value>.*)' does not match (?P<arg>/.*/)$", re.S), "does not match {arg}"),
    (re.compile(r"^missing value \(column is not nullable\)$"), "missing (not nullable)"),
]
# Rules over the whole row.
_ROW_RULES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^row check failed: (?P<arg>.+)$", re.S), "row check {arg}"),
    (re.compile(r"^duplicate value of unique key (?P<arg>.+)$", re.S), "duplicate {arg}"),
    (re.compile(r"^empty row: every field is empty$"), "empty row"),
]


def _match(rules: list[tuple[re.Pattern[str], str]], text: str) -> tuple[str, str] | None:
    for pattern, label in rules:
        match = pattern.match(text)
        if match is not None:
            groups = match.groupdict()
            return label.format(arg=groups.get("arg") or ""), groups.get("value") or ""
    return None


@dataclass(frozen=True)
class RuleCount:
    """One line of the summary: ``column`` ('' for a rule over the whole row), the rule, how many rows broke it,
    and one value that broke it (as the source had it) for the user to recognise."""

    column: str
    rule: str
    rows: int
    example: str = ""

    @property
    def label(self) -> str:
        return f"{self.column} {self.rule}" if self.column else self.rule


@dataclass
class RejectSummary:
    rows: int = 0                                   # rejected rows
    rules: list[RuleCount] = field(default_factory=list)   # most frequent first

    def to_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "rules": [{"column": r.column, "rule": r.rule, "rows": r.rows,
                                              "example": r.example} for r in self.rules]}


def parse_part(part: str, columns: frozenset[str] = frozenset()) -> tuple[str, str, str] | None:
    """One rule's words -> (column, rule, value), or None when they are not words the checks write. Known
    ``columns`` settle where a column name that itself holds ': ' ends."""
    row_rule = _match(_ROW_RULES, part)
    if row_rule is not None:
        return "", row_rule[0], row_rule[1]
    starts = sorted((c for c in columns if part.startswith(f"{c}: ")), key=len, reverse=True)
    cuts = [len(c) for c in starts] + [m.start() for m in re.finditer(": ", part)]
    for cut in cuts:
        rule = _match(_COLUMN_RULES, part[cut + 2:])
        if rule is not None:
            return part[:cut], rule[0], rule[1]
    return None


def split_reason(reason: str, columns: frozenset[str] = frozenset()) -> list[tuple[str, str, str]]:
    """A reject's whole reason -> one (column, rule, value) per rule it names.

    The parts are joined by '; ', which a value may hold too ("note: 'a; b' is not ..."): a piece that does not read
    as a rule on its own is put back together with the pieces after it until it does.
    """
    pieces = reason.split("; ")
    out: list[tuple[str, str, str]] = []
    i = 0
    while i < len(pieces):
        parsed = None
        for j in range(i + 1, len(pieces) + 1):
            parsed = parse_part("; ".join(pieces[i:j]), columns)
            if parsed is not None:
                i = j
                break
        if parsed is None:  # words we do not know (a newer writer): keep them whole, as their own rule
            out.append(("", "; ".join(pieces[i:]), ""))
            break
        out.append(parsed)
    return out


def summarise(reason_counts: list[tuple[str | None, int]], limit: int = 100,
              columns: frozenset[str] = frozenset()) -> RejectSummary:
    """(reason, rows with that exact reason) pairs -> counts per (column, rule), most frequent first."""
    counts: dict[tuple[str, str], int] = {}
    examples: dict[tuple[str, str], str] = {}
    total = 0
    for reason, n in reason_counts:
        total += n
        for column, rule, value in split_reason(reason or "no reason recorded", columns):
            key = (column, rule)
            counts[key] = counts.get(key, 0) + n
            examples.setdefault(key, value)
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return RejectSummary(rows=total, rules=[RuleCount(c, r, n, examples[(c, r)]) for (c, r), n in ordered[:limit]])


def summarise_frame(frame: Any, reason_column: str = "_reason", limit: int = 100,
                    columns: frozenset[str] = frozenset()) -> RejectSummary:
    """The summary of a (lazy) polars frame of rejects: one group-by over the exact reasons, then the words."""
    import polars as pl

    lazy = frame.lazy() if isinstance(frame, pl.DataFrame) else frame
    pairs = lazy.group_by(reason_column).len().collect().rows()
    return summarise([(r, int(n)) for r, n in pairs], limit, columns)
