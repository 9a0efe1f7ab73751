"""Housekeeping's cadence: purges ride on every EVERY-th request of a worker, the search backfill on at most one
request a second (README "Migrations": 20 rows a second a worker), whatever the load."""

from taskapi import housekeeping


def test_the_search_backfill_runs_at_most_once_a_second_a_worker(monkeypatch):
    clock = [1000.0]
    monkeypatch.setattr(housekeeping.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(housekeeping, "_last", dict.fromkeys(housekeeping.SECONDS, float("-inf")))
    ran = []

    def purge(conn, batch):
        ran.append((clock[0], batch))
        return 0

    for step in range(250):  # 250 requests over 2.49 s
        clock[0] = 1000.0 + step * 0.01
        housekeeping.sweep(None, "search", purge)
    assert ran == [(1000.0, 20), (1001.0, 20), (1002.0, 20)]


def test_purges_run_on_every_fiftieth_request(monkeypatch):
    monkeypatch.setitem(housekeeping._counters, "tombstones", iter(range(10**6)))
    ran = []
    for _ in range(120):
        housekeeping.sweep(None, "tombstones", lambda conn, batch: ran.append(batch) or 0)
    assert ran == [500, 500, 500]  # the 1st, 51st and 101st
