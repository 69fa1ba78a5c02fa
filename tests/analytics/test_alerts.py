"""Alerts: firing/resolved episodes, deduplicated, one webhook notification per firing alert."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from analytics.notify import WebhookNotifier
from analytics.runner import AnalyticsRunner
from bench.synth import Synth, generate
from collector.store import Store
from tests.analytics.webhook import Receiver

NOW = datetime(2026, 2, 2, 12, 0)
# 30 minutes of traffic up to NOW; slow traces sprinkled in; the last 10 minutes are an error burst
# on one service (bursts start half-way through each 40-minute cycle).
TRAFFIC = Synth(traces=1500, start=NOW - timedelta(minutes=30), minutes=30, p_latency=0.02, p_cost=0, p_loop=0,
                burst_every_minutes=40, burst_minutes=10, salt=7)  # fmt: skip


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def test_one_notification_per_firing_alert(analytics_store: Store, make_runner: Callable[..., AnalyticsRunner],
                                          receiver: Receiver) -> None:  # fmt: skip
    generate(analytics_store.write_connection, TRAFFIC)
    runner = make_runner(alert_webhooks=receiver.url)
    first = runner.run_now(now=NOW)
    runner.notifier.stop()  # delivers what is queued
    cur = analytics_store.cursor()
    firing = cur.execute(
        "SELECT rule, subject FROM alerts WHERE state = 'firing' ORDER BY ALL"
    ).fetchall()
    rules = {rule for rule, _ in firing}
    assert {"EXECUTION_ERROR", "SLOW_EXECUTION", "ERROR_RATE_SPIKE"} <= rules
    assert ("ERROR_RATE_SPIKE", "coder") in firing and first.alerts_fired == len(firing)
    got = sorted(
        (b["tracehouse_alert"]["rule"], b["tracehouse_alert"]["subject"]) for b in receiver.bodies
    )
    assert got == firing  # exactly one each
    spike = next(b for b in receiver.bodies if b["tracehouse_alert"]["rule"] == "ERROR_RATE_SPIKE")
    assert spike["text"].startswith(
        ":rotating_light: CRITICAL: ERROR_RATE_SPIKE for coder: error rate"
    )
    assert spike["attachments"][0]["fields"][0] == {
        "title": "Rule",
        "value": "ERROR_RATE_SPIKE",
        "short": True,
    }

    # The same data again: the open alerts are refreshed, not repeated, and nobody is notified again.
    again = runner.run_now(now=NOW)
    runner.notifier.stop()
    assert again.alerts_fired == 0 and len(receiver.bodies) == len(firing)

    # A minute later the windows have moved (a slow trace that ended after NOW now counts): whatever
    # fires, every alert row has had exactly one notification.
    runner.run_now(now=NOW + timedelta(minutes=1))
    runner.notifier.stop()
    ids = sorted(b["tracehouse_alert"]["alert_id"] for b in receiver.bodies)
    assert ids == sorted(r[0] for r in cur.execute("SELECT alert_id FROM alerts").fetchall())
    assert len(set(ids)) == len(ids)

    # An hour later nothing is breached: every alert resolves (quietly: notify_resolved is off).
    later = runner.run_now(now=NOW + timedelta(hours=1))
    runner.notifier.stop()
    assert later.alerts_resolved == len(ids) and len(receiver.bodies) == len(ids)
    states = cur.execute(
        "SELECT state, count(*), count(resolved_at) FROM alerts GROUP BY state"
    ).fetchall()
    assert states == [("resolved", len(ids), len(ids))]


def test_resolved_notifications_when_asked(tmp_path: Path, analytics_store: Store,
                                           make_runner: Callable[..., AnalyticsRunner], receiver: Receiver) -> None:  # fmt: skip
    rules = tmp_path / "rules.toml"
    rules.write_text(
        "[notify]\nnotify_resolved = true\n"
        "[[alert]]\nname = 'HIGH_COST'\nenabled = false\n"
        "[[alert]]\nname = 'SLOW_EXECUTION'\nenabled = false\n"
        "[[alert]]\nname = 'EXECUTION_ERROR'\nenabled = false\n"
    )
    generate(analytics_store.write_connection, TRAFFIC)
    runner = make_runner(alert_webhooks=receiver.url, rules_file=str(rules))
    runner.run_now(now=NOW)
    runner.run_now(now=NOW + timedelta(hours=1))
    runner.notifier.stop()
    texts = [b["text"] for b in receiver.bodies]
    assert len(texts) == 2 and "CRITICAL: ERROR_RATE_SPIKE for coder" in texts[0]
    assert texts[1].startswith(":white_check_mark: RESOLVED: ERROR_RATE_SPIKE for coder")


def test_webhook_failures_are_retried_and_never_block_the_sender() -> None:
    gate = threading.Event()
    flaky = Receiver(statuses=[500, 503], gate=gate)
    try:
        notifier = WebhookNotifier([flaky.url], timeout_s=5, retries=3, backoff_s=0.01)
        alert = {"rule": "R", "subject": "s", "state": "firing", "severity": "error", "value": 1.0,
                 "threshold": 1.0, "message": "R for s", "fired_at": NOW}  # fmt: skip
        notifier.send(alert)  # returns while the receiver is still holding the first request
        assert flaky.bodies == []
        gate.set()
        notifier.stop()
        assert len(flaky.bodies) == 1 and notifier.delivered == 1 and notifier.failed == 0
        assert flaky.bodies[0]["tracehouse_alert"]["fired_at"] == NOW.isoformat()
    finally:
        gate.set()
        flaky.close()


def test_a_dead_webhook_gives_up_after_its_retries() -> None:
    notifier = WebhookNotifier(
        ["http://127.0.0.1:9/hook"], timeout_s=0.5, retries=1, backoff_s=0.01
    )
    notifier.send({"rule": "R", "subject": "s", "state": "firing", "severity": "info", "value": 1.0,
                   "threshold": 1.0, "message": "m"})  # fmt: skip
    notifier.stop()
    assert (notifier.delivered, notifier.failed) == (0, 1)
