"""The audit log: hash-chained, append-only; verify finds an edited, an inserted and a deleted row."""

from __future__ import annotations

import pytest

from mlops_desktop import audit
from mlops_desktop.errors import StoreError


def _fill(ws, n=5):
    for i in range(n):
        with ws.db.transaction() as conn:
            audit.append(conn, "test.changed", f"thing:{i % 2}", from_value=i, to_value=i + 1, reason=f"r{i}",
                         details={"i": i})


def test_events_chain_and_read_back_with_filters(ws):
    _fill(ws)
    events = audit.events(ws.db)
    assert [e.id for e in events] == [1, 2, 3, 4, 5] and events[0].prev_hash == audit.GENESIS
    assert all(b.prev_hash == a.hash for a, b in zip(events, events[1:], strict=False))
    assert [e.to_value for e in audit.events(ws.db, subject="thing:1")] == ["2", "4"]
    assert audit.events(ws.db, limit=2, newest_first=True)[0].id == 5
    assert events[0].actor == audit.current_actor() and events[2].details == {"i": 2}
    report = audit.verify(ws.db)
    assert report.ok and report.events == 5 and report.head == events[-1].hash


def test_append_only_for_ordinary_writers(ws):
    _fill(ws, 2)
    for sql in ("UPDATE audit_events SET reason = 'x' WHERE id = 1", "DELETE FROM audit_events WHERE id = 1"):
        with pytest.raises((StoreError, Exception), match="append-only"):
            with ws.db.transaction() as conn:
                conn.execute(sql)
    assert audit.verify(ws.db).ok


def _tamper(ws, sql, params=()):
    """What someone with the file could do: drop the triggers, change rows."""
    with ws.db.transaction() as conn:
        conn.execute("DROP TRIGGER audit_events_no_update")
        conn.execute("DROP TRIGGER audit_events_no_delete")
        conn.execute(sql, params)


def test_verify_finds_an_edited_row(ws):
    _fill(ws)
    _tamper(ws, "UPDATE audit_events SET reason = 'nothing to see' WHERE id = 3")
    report = audit.verify(ws.db)
    assert not report.ok and any("event 3" in p and "changed after it was written" in p for p in report.problems)


def test_verify_finds_a_deleted_row_and_a_deleted_last_row(ws):
    _fill(ws)
    _tamper(ws, "DELETE FROM audit_events WHERE id = 2")
    report = audit.verify(ws.db)
    assert any("event(s) 2 are missing" in p for p in report.problems)
    assert any("event 3: its link to the previous event is broken" in p for p in report.problems)
    with ws.db.transaction() as conn:
        conn.execute("DELETE FROM audit_events WHERE id = 5")
    assert any("5 are missing: the last event(s) were deleted" in p for p in audit.verify(ws.db).problems)


def test_verify_finds_an_inserted_row(ws):
    _fill(ws, 3)
    with ws.db.transaction() as conn:
        conn.execute("INSERT INTO audit_events(id, ts, actor, kind, subject, reason, details, prev_hash, hash) "
                     "VALUES (10, 0, 'mallory', 'x', 'y', '', '{}', 'forged', 'forged')")
    problems = audit.verify(ws.db).problems
    assert any("4-9 are missing" in p for p in problems) and any("event 10" in p for p in problems)


def test_append_needs_the_callers_transaction(ws):
    with pytest.raises(RuntimeError, match="inside the transaction"):
        audit.append(ws.db.connect(), "k", "s")


def test_verify_finds_an_edit_whose_own_hash_was_recomputed_and_a_deleted_first_row(ws):
    """A forger who re-hashes the row they changed still breaks the next event's link; the first event is covered
    too (its link is to GENESIS)."""
    from mlops_desktop.audit.log import event_hash

    _fill(ws)
    row = ws.db.query("SELECT id, ts, actor, kind, subject, from_value, to_value, reason, details, prev_hash "
                      "FROM audit_events WHERE id = 2")[0]
    forged = event_hash(row[0], row[1], "mallory", *row[3:10])
    _tamper(ws, "UPDATE audit_events SET actor = 'mallory', hash = ? WHERE id = 2", (forged,))
    problems = audit.verify(ws.db).problems
    assert not any("event 2 " in p and "changed" in p for p in problems)  # its own hash now matches ...
    assert any("event 3: its link to the previous event is broken" in p for p in problems)  # ... the chain does not
    with ws.db.transaction() as conn:
        conn.execute("DELETE FROM audit_events WHERE id = 1")
    problems = audit.verify(ws.db).problems
    assert any("event(s) 1 are missing" in p for p in problems)
    assert any("event 2: its link to the previous event is broken" in p for p in problems)
