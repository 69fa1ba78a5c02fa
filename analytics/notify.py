"""Webhook notifications for alerts: Slack-compatible JSON, posted from a background thread.

``send`` only enqueues (a bounded queue; when it is full the notification is dropped and logged),
so neither ingest nor the analytics run ever waits on a slow or dead webhook. Each post has a
timeout and is retried with exponential backoff.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any

import httpx

logger = logging.getLogger(__name__)

_EMOJI = {
    "info": ":information_source:",
    "warning": ":warning:",
    "error": ":x:",
    "critical": ":rotating_light:",
}
_COLOR = {"info": "#439FE0", "warning": "#FFA500", "error": "#E01E5A", "critical": "#8B0000"}


def slack_payload(alert: dict[str, Any]) -> dict[str, Any]:
    """A Slack incoming-webhook message; the raw alert rides along under ``tracehouse_alert``."""
    state = str(alert["state"])
    severity = str(alert["severity"])
    prefix = (
        ":white_check_mark: RESOLVED"
        if state == "resolved"
        else f"{_EMOJI.get(severity, '')} {severity.upper()}"
    )
    fields = [
        {"title": "Rule", "value": alert["rule"], "short": True},
        {"title": "Subject", "value": alert["subject"], "short": True},
        {"title": "Project", "value": project if isinstance(project := alert.get("project"), str) else "(none)",
         "short": True},
        {"title": "Value", "value": f"{alert['value']:g}", "short": True},
        {"title": "Threshold", "value": f"{alert['threshold']:g}", "short": True},
    ]
    raw = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in alert.items()}
    return {
        "text": f"{prefix}: {alert['message']}",
        "attachments": [
            {"color": "#2EB67D" if state == "resolved" else _COLOR.get(severity), "fields": fields}
        ],
        "tracehouse_alert": raw,
    }


class WebhookNotifier:
    """Posts alert messages to every configured URL, on its own daemon thread."""

    def __init__(self, urls: list[str], *, timeout_s: float = 5.0, retries: int = 3, backoff_s: float = 0.5,
                 max_queued: int = 1000) -> None:  # fmt: skip
        self.urls = [u for u in urls if u]
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue(maxsize=max_queued)
        self._thread: threading.Thread | None = None
        self.delivered = 0
        self.failed = 0

    def start(self) -> None:
        if self.urls and self._thread is None:
            self._thread = threading.Thread(
                target=self._loop, name="tracehouse-webhooks", daemon=True
            )
            self._thread.start()

    def send(self, alert: dict[str, Any]) -> None:
        """Queue one notification; never blocks."""
        if not self.urls:
            return
        self.start()
        try:
            self._queue.put_nowait(slack_payload(alert))
        except queue.Full:
            logger.warning("webhook queue full; dropped notification for %s", alert.get("rule"))

    def stop(self, timeout_s: float = 10.0) -> None:
        """Deliver what is queued (up to ``timeout_s``), then end the thread."""
        if self._thread is None:
            return
        try:
            self._queue.put(None, timeout=timeout_s)
        except queue.Full:
            pass
        self._thread.join(timeout_s)
        self._thread = None

    def _loop(self) -> None:
        with httpx.Client(timeout=self.timeout_s) as client:
            while True:
                payload = self._queue.get()
                if payload is None:
                    return
                for url in self.urls:
                    self._post(client, url, payload)

    def _post(self, client: httpx.Client, url: str, payload: dict[str, Any]) -> None:
        for attempt in range(self.retries + 1):
            try:
                response = client.post(url, json=payload)
                if response.status_code < 400:
                    self.delivered += 1
                    return
                # 4xx other than 429 will not get better with retries
                if 400 <= response.status_code < 500 and response.status_code != 429:
                    break
                problem = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                problem = type(exc).__name__
            if attempt < self.retries:
                time.sleep(self.backoff_s * 2**attempt)
        else:
            logger.warning(
                "webhook %s failed after %d attempts (%s)", url, self.retries + 1, problem
            )
            self.failed += 1
            return
        logger.warning("webhook %s rejected the notification (HTTP %d)", url, response.status_code)
        self.failed += 1
