"""The demo's tools: plausible fake back-ends whose failures depend only on their arguments.

The workflows pick arguments at random, so tool errors happen at steady, known rates.
"""

from __future__ import annotations

import hashlib
import time

from sdk_shim.runtime import function_tool


def _n(text: str, mod: int) -> int:
    return int(hashlib.sha1(text.encode()).hexdigest()[:8], 16) % mod


class UpstreamError(RuntimeError):
    """A back-end the tool depends on failed."""


@function_tool
def lookup_order(order_id: str) -> dict:
    """Look up an order.

    Args:
        order_id: Order number, e.g. "A-10234".
    """
    if order_id.endswith("404"):
        raise KeyError(f"order {order_id} not found")
    statuses = ["processing", "shipped", "out for delivery", "delivered"]
    return {
        "order_id": order_id,
        "status": statuses[_n(order_id, 4)],
        "total_usd": 20 + _n(order_id, 480),
    }


@function_tool
def track_shipment(order_id: str) -> dict:
    """Carrier tracking for an order."""
    return {"carrier": ["UPS", "DHL", "FedEx"][_n(order_id, 3)], "eta_days": 1 + _n(order_id, 5)}


@function_tool
def issue_refund(order_id: str, amount_usd: float, reason: str = "customer request") -> str:
    """Refund (part of) an order.

    Args:
        order_id: Order number.
        amount_usd: Amount to refund in USD.
        reason: Why the refund is issued.
    """
    if amount_usd > 500:
        raise PermissionError(f"refunds over $500 need a supervisor (asked ${amount_usd:.2f})")
    return f"refund of ${amount_usd:.2f} issued for {order_id}"


@function_tool
def search_kb(query: str, top_k: int = 3) -> list:
    """Search the help-center knowledge base."""
    return [
        f"KB-{100 + _n(query + str(i), 900)}: {query.title()} troubleshooting step {i + 1}"
        for i in range(top_k)
    ]


@function_tool
async def check_service_status(service: str) -> dict:
    """Live status of one of our services."""
    if service == "billing-api":
        raise TimeoutError("status page did not answer within 5 s")
    return {"service": service, "status": "operational", "latency_ms": 40 + _n(service, 200)}


@function_tool
async def web_search(query: str) -> list:
    """Search the web; returns titles and URLs."""
    return [
        {
            "title": f"{query.title()}: a {kind}",
            "url": f"https://example.org/{_n(query + kind, 10_000)}",
        }
        for kind in ("guide", "report", "case study")
    ]


@function_tool
def fetch_page(url: str) -> str:
    """Fetch a page and return its main text."""
    if "paywall" in url:
        raise UpstreamError(f"403 from {url}: subscription required")
    return f"Text of {url}: " + "Agents need observability. " * 20


@function_tool
def outline(topic: str, sections: int = 4) -> list:
    """Propose an article outline."""
    return [f"{i + 1}. {topic.title()} — part {i + 1}" for i in range(sections)]


@function_tool
def check_style(text: str) -> dict:
    """House-style checks: reading level, passive voice, banned words."""
    return {"reading_level": 8 + _n(text, 5), "passive_voice": _n(text, 12), "banned_words": []}


@function_tool
def publish_post(title: str, body: str, channel: str = "blog") -> str:
    """Publish to the CMS."""
    if channel == "newsletter" and _n(title, 5) == 0:
        raise UpstreamError("CMS unavailable (503)")
    return f"published '{title}' to {channel} as post {_n(title, 90_000) + 10_000}"


@function_tool
def validate_order(order_id: str, items: int, country: str) -> dict:
    """Check an order's items, address and limits."""
    if country not in {"US", "DE", "FR", "GB", "NL", "CA"}:
        raise ValueError(f"cannot ship to {country}")
    return {"order_id": order_id, "valid": True, "items": items}


@function_tool
async def fraud_check(order_id: str, amount_usd: float) -> dict:
    """Score the payment's fraud risk."""
    return {
        "order_id": order_id,
        "risk": round((_n(order_id, 100) / 100) * min(1.0, amount_usd / 2000), 3),
    }


@function_tool
def charge_card(order_id: str, amount_usd: float, card_last4: str) -> str:
    """Charge the customer's card."""
    if card_last4 == "0002":
        raise UpstreamError("card declined by issuer (insufficient funds)")
    return f"charged ${amount_usd:.2f} to card ending {card_last4} (txn {order_id}-{_n(card_last4, 9999)})"


@function_tool
def reserve_stock(order_id: str, sku: str, quantity: int) -> dict:
    """Reserve stock in the warehouse."""
    time.sleep(0.01 * quantity)  # warehouse API round trip
    if sku.startswith("BO-"):
        raise LookupError(f"{sku} is back-ordered")
    return {
        "order_id": order_id,
        "sku": sku,
        "reserved": quantity,
        "warehouse": ["AMS", "BER", "NYC"][_n(sku, 3)],
    }
