"""The run search language: `params.lr < 0.01 and metrics.val_acc > 0.9 and status = finished`, compiled to SQL.

Grammar (case-insensitive keywords):
    expr    := term (OR term)*
    term    := factor (AND factor)*
    factor  := NOT factor | '(' expr ')' | compare
    compare := field op value | field [NOT] IN '(' value (',' value)* ')' | field IS [NOT] NULL
    field   := params.KEY | metrics.KEY[.last|.min|.max|.count] | tags.KEY | attribute
    op      := = | == | != | <> | < | <= | > | >= | LIKE | ILIKE | NOT LIKE
Keys with spaces or dots are quoted: params.`batch size`, metrics."val.loss".
Attributes: status, name, host, user, command, git_commit, run_id, parent, experiment, start_time, end_time, duration.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mlops_desktop.errors import UsageError

ATTRIBUTES = {
    "status": "r.status", "name": "r.name", "host": "r.host", "user": "r.user", "command": "r.command",
    "git_commit": "r.git_commit", "run_id": "r.uuid", "id": "r.uuid", "start_time": "r.start_time",
    "end_time": "r.end_time", "duration": "(coalesce(r.end_time, r.heartbeat, r.start_time) - r.start_time)",
    "notes": "r.notes", "run_name": "r.name", "user_id": "r.user",
    "parent": "(SELECT p.uuid FROM runs p WHERE p.id = r.parent_id)",
    "experiment": "(SELECT e.name FROM experiments e WHERE e.id = r.experiment_id)",
}
TIME_ATTRIBUTES = {"start_time", "end_time"}
# MLflow's spellings: `attributes.status`, and its system tags, which are fields of our runs
ATTRIBUTE_PREFIXES = ("attributes", "attribute", "attr", "run")
TAG_FIELDS = {"mlflow.runName": "name", "mlflow.user": "user", "mlflow.parentRunId": "parent",
              "mlflow.source.git.commit": "git_commit", "mlflow.note.content": "notes"}
METRIC_AGGREGATES = {"last": "last_value", "min": "min_value", "max": "max_value", "count": "count"}
OPS = {"=": "=", "==": "=", "!=": "!=", "<>": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">=",
       "like": "LIKE", "ilike": "LIKE", "not like": "NOT LIKE"}

_TOKEN = re.compile(r"""
    \s*(?:
      (?P<num>[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?(?![\w.]))
    | (?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
    | (?P<bq>`[^`]*`)
    | (?P<op><=|>=|!=|<>|==|=|<|>)
    | (?P<punct>[(),])
    | (?P<word>[A-Za-z_][\w\-]*(?:\.(?:[A-Za-z_0-9][\w\-]*|`[^`]*`|"[^"]*"))*)
    | (?P<dot>\.(?:`[^`]*`|"[^"]*"))
    )""", re.VERBOSE)


@dataclass
class Token:
    kind: str
    text: str
    pos: int


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise UsageError(f"bad filter at column {pos + 1}: unexpected {text[pos:pos + 12].strip()!r}",
                             hint="example: params.lr < 0.01 and metrics.val_acc > 0.9 and status = finished")
        kind = m.lastgroup or ""
        value = m.group(kind)
        start = m.start(kind)
        if kind == "dot" and tokens and tokens[-1].kind == "word":  # params."a b" written with a quoted segment
            tokens[-1].text += value
        else:
            tokens.append(Token(kind, value, start))
        pos = m.end()
    return tokens


def _unquote(s: str) -> str:
    if len(s) >= 2 and s[0] == s[-1] and s[0] in "'\"`":
        body = s[1:-1]
        return re.sub(r"\\(.)", r"\1", body) if s[0] != "`" else body
    return s


def _split_field(text: str) -> list[str]:
    parts = re.findall(r"`[^`]*`|\"[^\"]*\"|[^.]+", text)
    return [_unquote(p) for p in parts]


@dataclass
class Compiled:
    sql: str
    params: list[Any]


class _Parser:
    def __init__(self, text: str, ms_times: bool = False) -> None:
        self.text = text
        self.ms_times = ms_times  # numbers compared with start_time/end_time are ms (MLflow) instead of seconds
        self.tokens = tokenize(text)
        self.i = 0
        self.params: list[Any] = []

    def peek(self, offset: int = 0) -> Token | None:
        j = self.i + offset
        return self.tokens[j] if j < len(self.tokens) else None

    def keyword(self, word: str) -> bool:
        tok = self.peek()
        if tok is not None and tok.kind == "word" and tok.text.lower() == word:
            self.i += 1
            return True
        return False

    def expect_punct(self, p: str) -> None:
        tok = self.peek()
        if tok is None or tok.text != p:
            self.fail(tok, f"expected {p!r}")
        self.i += 1

    def fail(self, tok: Token | None, message: str) -> None:
        where = f"column {tok.pos + 1} ({tok.text!r})" if tok else "the end"
        raise UsageError(f"bad filter at {where}: {message}",
                         hint="example: params.lr < 0.01 and metrics.val_acc > 0.9 and status = finished")

    def parse(self) -> str:
        if not self.tokens:
            return "1"
        sql = self.expr()
        if self.peek() is not None:
            self.fail(self.peek(), "expected AND, OR or the end")
        return sql

    def expr(self) -> str:
        parts = [self.term()]
        while self.keyword("or"):
            parts.append(self.term())
        return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"

    def term(self) -> str:
        parts = [self.factor()]
        while self.keyword("and"):
            parts.append(self.factor())
        return parts[0] if len(parts) == 1 else "(" + " AND ".join(parts) + ")"

    def factor(self) -> str:
        if self.keyword("not"):
            return f"NOT ({self.factor()})"
        tok = self.peek()
        if tok is not None and tok.text == "(":
            self.i += 1
            inner = self.expr()
            self.expect_punct(")")
            return inner
        return self.compare()

    def value(self) -> Any:
        tok = self.peek()
        if tok is None:
            self.fail(tok, "expected a value")
        assert tok is not None
        self.i += 1
        if tok.kind == "num":
            text = tok.text
            return float(text) if any(c in text for c in ".eE") else int(text)
        if tok.kind == "str":
            return _unquote(tok.text)
        if tok.kind == "word" and tok.text.lower() not in ("and", "or", "not", "in", "is", "like"):
            return tok.text  # bare word, e.g. status = finished
        self.fail(tok, "expected a number or a quoted string")
        return None

    def compare(self) -> str:
        tok = self.peek()
        if tok is None or tok.kind != "word":
            self.fail(tok, "expected a field such as params.lr, metrics.loss, tags.team or status")
        assert tok is not None
        self.i += 1
        field = self.field(tok)
        # IS [NOT] NULL
        if self.keyword("is"):
            negate = self.keyword("not")
            if not self.keyword("null"):
                self.fail(self.peek(), "expected NULL")
            return field.null_sql(negate)
        negate_in = False
        nxt, after = self.peek(), self.peek(1)
        if nxt is not None and after is not None and nxt.text.lower() == "not" \
                and after.text.lower() in ("in", "like"):
            self.i += 1
            negate_in = True
        if self.keyword("in"):
            self.expect_punct("(")
            values = [self.value()]
            while (comma := self.peek()) is not None and comma.text == ",":
                self.i += 1
                values.append(self.value())
            self.expect_punct(")")
            return field.in_sql(values, negate_in, self.params)
        op_tok = self.peek()
        if op_tok is None:
            self.fail(op_tok, "expected an operator (=, !=, <, <=, >, >=, LIKE)")
        assert op_tok is not None
        if op_tok.kind == "op":
            op = OPS[op_tok.text]
        elif op_tok.text.lower() in ("like", "ilike"):
            op = "NOT LIKE" if negate_in else "LIKE"
        else:
            self.fail(op_tok, "expected an operator (=, !=, <, <=, >, >=, LIKE)")
        self.i += 1
        value = self.value()
        return field.compare_sql(op, value, self.params, op_tok)

    def field(self, tok: Token) -> _Field:
        parts = _split_field(tok.text)
        head = parts[0].lower()
        kind, key = _alias(parts)
        if kind == "attr":
            return _Field("attr", key, self)
        if head in ("params", "param", "p") and len(parts) >= 2:
            return _Field("param", ".".join(parts[1:]), self)
        if head in ("tags", "tag", "t") and len(parts) >= 2:
            return _Field("tag", ".".join(parts[1:]), self)
        if head in ("metrics", "metric", "m") and len(parts) >= 2:
            agg = "last"
            keys = parts[1:]
            if len(keys) >= 2 and keys[-1].lower() in METRIC_AGGREGATES and not tok.text.endswith(("`", '"')):
                agg = keys.pop().lower()
            return _Field("metric", ".".join(keys), self, agg)
        if len(parts) == 1 and head in ATTRIBUTES:
            return _Field("attr", head, self)
        self.fail(tok, "unknown field; use params.NAME, metrics.NAME, tags.NAME or one of: "
                  + ", ".join(sorted(ATTRIBUTES)))
        raise AssertionError


class _Field:
    def __init__(self, kind: str, key: str, parser: _Parser, agg: str = "last") -> None:
        self.kind, self.key, self.parser, self.agg = kind, key, parser, agg

    def _subquery(self, cond: str, params: list[Any], values: list[Any]) -> str:
        if self.kind == "param":
            params.append(self.key)
            params.extend(values)
            return f"r.id IN (SELECT run_id FROM params WHERE key = ? AND {cond})"
        if self.kind == "tag":
            params.append(self.key)
            params.extend(values)
            return f"r.id IN (SELECT run_id FROM tags WHERE key = ? AND {cond})"
        params.append(self.key)
        params.extend(values)
        return ("r.id IN (SELECT run_id FROM metric_series WHERE key_id = "
                f"(SELECT id FROM metric_keys WHERE name = ?) AND {cond})")

    def column(self, value: Any) -> str:
        if self.kind == "param":
            return "value_num" if isinstance(value, int | float) else "value"
        if self.kind == "tag":
            return "value"
        return METRIC_AGGREGATES[self.agg]

    def attr_value(self, value: Any, tok: Token | None) -> Any:
        if self.key in TIME_ATTRIBUTES and isinstance(value, int | float) and self.parser.ms_times:
            return value / 1000.0
        if self.key in TIME_ATTRIBUTES and isinstance(value, str):
            try:
                return datetime.fromisoformat(value).timestamp()
            except ValueError:
                self.parser.fail(tok, f"{self.key} needs a number (unix time) or an ISO date such as '2026-11-28'")
        if self.key == "status" and isinstance(value, str):
            from mlops_desktop.tracking.entities import RunStatus

            if value.lower() not in {s.value for s in RunStatus}:
                self.parser.fail(tok, f"status must be one of {', '.join(s.value for s in RunStatus)}")
            return value.lower()
        return value

    def compare_sql(self, op: str, value: Any, params: list[Any], tok: Token | None) -> str:
        if self.kind == "metric" and not isinstance(value, int | float):
            self.parser.fail(tok, f"metrics.{self.key} compares with numbers, got {value!r}")
        if self.kind == "attr":
            params.append(self.attr_value(value, tok))
            return f"{ATTRIBUTES[self.key]} {op} ?"
        return self._subquery(f"{self.column(value)} {op} ?", params, [value])

    def in_sql(self, values: list[Any], negate: bool, params: list[Any]) -> str:
        marks = ", ".join("?" for _ in values)
        if self.kind == "attr":
            params.extend(self.attr_value(v, None) for v in values)
            return f"{ATTRIBUTES[self.key]} {'NOT IN' if negate else 'IN'} ({marks})"
        col = self.column(values[0])
        sub = self._subquery(f"{col} IN ({marks})", params, values)
        return f"NOT ({sub})" if negate else sub

    def null_sql(self, negate: bool) -> str:
        if self.kind == "attr":
            return f"{ATTRIBUTES[self.key]} IS {'NOT ' if negate else ''}NULL"
        sub = self._subquery("1", self.parser.params, [])
        return sub if negate else f"NOT ({sub})"


def _alias(parts: list[str]) -> tuple[str, str]:
    """("attr", name) for `attributes.X` and for the MLflow system tags that are run fields; else ("", "")."""
    head = parts[0].lower()
    if head in ATTRIBUTE_PREFIXES and len(parts) == 2 and parts[1].lower() in ATTRIBUTES:
        return "attr", parts[1].lower()
    if head in ("tags", "tag") and len(parts) >= 2 and ".".join(parts[1:]) in TAG_FIELDS:
        return "attr", TAG_FIELDS[".".join(parts[1:])]
    return "", ""


def compile_filter(text: str | None, ms_times: bool = False) -> Compiled:
    """Compile a filter; with ``ms_times`` numbers compared with start_time/end_time are milliseconds (MLflow)."""
    parser = _Parser(text or "", ms_times)
    sql = parser.parse()
    return Compiled(sql, parser.params)


@dataclass(frozen=True)
class OrderKey:
    kind: str  # attr | param | metric | tag
    key: str
    agg: str
    descending: bool


def parse_order_by(items: list[str] | None) -> list[OrderKey]:
    keys: list[OrderKey] = []
    for item in items or []:
        text = item.strip()
        descending = False
        m = re.match(r"^(.*?)\s+(asc|desc)$", text, re.IGNORECASE)
        if m:
            text, descending = m.group(1), m.group(2).lower() == "desc"
        if text.startswith("-"):
            text, descending = text[1:], True
        parts = _split_field(text)
        head = parts[0].lower()
        kind, key = _alias(parts)
        if kind == "attr":
            keys.append(OrderKey("attr", key, "", descending))
        elif head in ("params", "param") and len(parts) >= 2:
            keys.append(OrderKey("param", ".".join(parts[1:]), "", descending))
        elif head in ("tags", "tag") and len(parts) >= 2:
            keys.append(OrderKey("tag", ".".join(parts[1:]), "", descending))
        elif head in ("metrics", "metric") and len(parts) >= 2:
            sub = parts[1:]
            agg = "last"
            if len(sub) >= 2 and sub[-1].lower() in METRIC_AGGREGATES:
                agg = sub.pop().lower()
            keys.append(OrderKey("metric", ".".join(sub), agg, descending))
        elif len(parts) == 1 and head in ATTRIBUTES:
            keys.append(OrderKey("attr", head, "", descending))
        else:
            raise UsageError(f"cannot order by {item!r}: use params.NAME, metrics.NAME, tags.NAME or one of: "
                             + ", ".join(sorted(ATTRIBUTES)))
    return keys
