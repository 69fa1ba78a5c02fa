"""Three realistic multi-agent workflows on the offline runtime, with scripted models.

Each call runs one workflow instance: it builds fresh agents whose ScriptedModels follow a
script drawn from ``rng`` (so tool errors, guardrail trips, slow and very expensive runs happen
at steady rates), then runs them through ``Runner`` — which traces everything via sdk_shim.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from pathlib import Path

from sdk_shim.demo import tools as t
from sdk_shim.runtime import (
    Agent,
    GuardrailFunctionOutput,
    Reply,
    Runner,
    ScriptedModel,
    SQLiteSession,
    input_guardrail,
)

# Mean simulated model latency at latency scale 1: a whole workflow takes a few seconds, so a
# new user sees finished traces quickly.
MODEL_LATENCY_S = 0.4

# Awaited before each trace starts; paces the demo (see traffic.Pacer).
Gate = Callable[[], Awaitable[None]]


def _model(
    name: str, script: list[Reply], rng: random.Random, latency: float, system_tokens: int = 900
) -> ScriptedModel:
    return ScriptedModel(
        name,
        script,
        seed=rng.getrandbits(32),
        latency_s=MODEL_LATENCY_S * latency,
        system_tokens=system_tokens,
    )


@input_guardrail(name="pii_guardrail")
def pii_guardrail(agent: Agent, data: object) -> GuardrailFunctionOutput:
    """Stops messages that contain a card number."""
    digits = "".join(c for c in str(data) if c.isdigit())
    return GuardrailFunctionOutput(
        {"card_number": len(digits) >= 13}, tripwire_triggered=len(digits) >= 13
    )


QUESTIONS_ORDER = [
    "Where is my order {oid}?",
    "My order {oid} hasn't arrived yet, can you check?",
    "I want a refund for order {oid}, the item arrived broken.",
    "Can you tell me when {oid} will be delivered?",
]
QUESTIONS_TECH = [
    "The app keeps logging me out.",
    "I can't download my invoices.",
    "Sync between my devices stopped working.",
    "The API returns 502 errors since this morning.",
]
TOPICS = [
    "agent observability",
    "prompt caching",
    "LLM cost control",
    "evaluating tool use",
    "multi-agent design",
]


async def customer_service(
    rng: random.Random, latency: float, gate: Gate, session_db: Path | str
) -> None:
    """Triage hands off to an order or a technical specialist; 1-3 turns share one session."""
    conversation = f"conv-{rng.getrandbits(40):010x}"
    session = SQLiteSession(conversation, session_db)
    channel = rng.choice(["web", "mobile", "email"])
    for turn in range(rng.choice([1, 1, 2, 3])):
        oid = f"A-{rng.randint(10000, 99999)}" + ("404" if rng.random() < 0.06 else "")
        roll = rng.random()
        specialist_model = rng.choice(["gpt-4.1", "gpt-4o"])
        if roll < 0.05:
            question, target, script = (
                f"My card is 4111 1111 1111 {rng.randint(1000, 9999)}, fix my bill",
                "orders",
                [],
            )
        elif roll < 0.6:
            question, target = rng.choice(QUESTIONS_ORDER).format(oid=oid), "orders"
            first = [("lookup_order", {"order_id": oid})]
            if rng.random() < 0.5:
                first.append(("track_shipment", {"order_id": oid}))  # parallel tool calls
            script = [Reply(tool_calls=first)]
            if "refund" in question:
                amount = round(rng.uniform(15, 900), 2)
                script.append(
                    Reply(tool_calls=[("issue_refund", {"order_id": oid, "amount_usd": amount})])
                )
            script.append(
                Reply(
                    text=f"I checked order {oid} for you; here is what I found and what happens next."
                )
            )
        else:
            question, target = rng.choice(QUESTIONS_TECH), "tech"
            service = rng.choice(["auth", "sync", "billing-api", "files"])
            script = [
                Reply(
                    tool_calls=[
                        ("search_kb", {"query": question[:40]}),
                        ("check_service_status", {"service": service}),
                    ]
                ),
                Reply(
                    text="Please try these steps; I have also checked the service status for you."
                ),
            ]
        orders = Agent(
            "order_specialist",
            "You resolve order questions. Use tools; be precise.",
            _model(specialist_model, script if target == "orders" else [], rng, latency),
            tools=[t.lookup_order, t.track_shipment, t.issue_refund],
        )
        tech = Agent(
            "tech_support",
            "You fix technical problems step by step.",
            _model("claude-sonnet-4", script if target == "tech" else [], rng, latency, 1600),
            tools=[t.search_kb, t.check_service_status],
        )
        triage = Agent(
            "triage",
            "Route the customer to the right specialist.",
            _model(
                "gpt-4.1-mini",
                [Reply(handoff=orders.name if target == "orders" else tech.name)],
                rng,
                latency,
            ),
            handoffs=[orders, tech],
            input_guardrails=[pii_guardrail],
        )
        await gate()
        await Runner.run(
            triage,
            question,
            session=session,
            workflow_name="customer-service",
            group_id=conversation,
            metadata={"channel": channel, "turn": turn + 1},
        )


async def content_pipeline(rng: random.Random, latency: float, gate: Gate) -> None:
    """Researcher → writer → editor → publisher; sometimes slow, sometimes very expensive."""
    topic = rng.choice(TOPICS)
    urls = [
        f"https://example.org/{topic.replace(' ', '-')}",
        "https://news.example.com/"
        + ("paywall/" if rng.random() < 0.1 else "")
        + topic.replace(" ", "-"),
    ]
    slow = rng.random() < 0.05
    expensive = rng.random() < 0.05
    channel = rng.choice(["blog", "blog", "newsletter"])
    title = f"{topic.title()} in practice #{rng.randint(1, 999)}"
    researcher = Agent(
        "researcher",
        "Research the topic with sources.",
        _model(
            "o3-mini",
            [
                Reply(
                    tool_calls=[("web_search", {"query": topic})],
                    latency_s=rng.uniform(4, 9) * latency if slow else 0,
                ),
                Reply(tool_calls=[("fetch_page", {"url": u}) for u in urls]),
                Reply(handoff="writer"),
            ],
            rng,
            latency,
        ),
        tools=[t.web_search, t.fetch_page],
    )
    writer = Agent(
        "writer",
        "Write the article from the research notes.",
        _model(
            "claude-sonnet-4",
            [
                Reply(tool_calls=[("outline", {"topic": topic, "sections": rng.randint(3, 6)})]),
                Reply(
                    handoff="editor",
                    output_tokens=rng.randint(9000, 16000) if expensive else rng.randint(900, 2200),
                ),
            ],
            rng,
            latency,
            system_tokens=rng.randint(60_000, 120_000) if expensive else 2400,
        ),
        tools=[t.outline],
    )
    editor = Agent(
        "editor",
        "Edit for clarity and house style.",
        _model(
            "gpt-4o",
            [
                Reply(tool_calls=[("check_style", {"text": title})]),
                Reply(handoff="publisher"),
            ],
            rng,
            latency,
            1800,
        ),
        tools=[t.check_style],
    )
    publisher = Agent(
        "publisher",
        "Publish the final article.",
        _model(
            "gpt-4.1-mini",
            [
                Reply(
                    tool_calls=[("publish_post", {"title": title, "body": "…", "channel": channel})]
                ),
                Reply(text=f"'{title}' is live on the {channel}."),
            ],
            rng,
            latency,
        ),
        tools=[t.publish_post],
    )
    researcher.handoffs, writer.handoffs, editor.handoffs = [writer], [editor], [publisher]
    await gate()
    await Runner.run(
        researcher,
        f"Write an article about {topic}.",
        workflow_name="content-pipeline",
        group_id=f"article-{rng.getrandbits(32):08x}",
        metadata={"topic": topic, "channel": channel, "expensive": expensive},
    )


async def order_workflow(rng: random.Random, latency: float, gate: Gate) -> None:
    """Validation → payment → inventory; declines, back-orders and a rate-limited model happen."""
    oid = f"O-{rng.randint(100000, 999999)}"
    amount = round(rng.uniform(12, 2400), 2)
    country = rng.choice(["US", "DE", "FR", "GB", "NL", "CA"] * 6 + ["XX"])
    card = "0002" if rng.random() < 0.08 else f"{rng.randint(1000, 9999)}"
    sku = ("BO-" if rng.random() < 0.07 else "SKU-") + str(rng.randint(100, 999))
    inventory = Agent(
        "inventory",
        "Reserve stock and confirm the order.",
        _model(
            "claude-3-5-haiku",
            [
                Reply(
                    tool_calls=[
                        (
                            "reserve_stock",
                            {"order_id": oid, "sku": sku, "quantity": rng.randint(1, 4)},
                        )
                    ]
                ),
                Reply(
                    text=f"Order {oid} confirmed."
                    if not sku.startswith("BO-")
                    else f"Order {oid} is back-ordered."
                ),
            ],
            rng,
            latency,
        ),
        tools=[t.reserve_stock],
    )
    pay_script = [
        Reply(
            tool_calls=[
                ("fraud_check", {"order_id": oid, "amount_usd": amount}),
                ("charge_card", {"order_id": oid, "amount_usd": amount, "card_last4": card}),
            ]
        )
    ]
    if rng.random() < 0.02:
        pay_script = [Reply(error="429 Too Many Requests: rate limit reached for gpt-4.1")]
    pay_script.append(
        Reply(text="Payment declined.") if card == "0002" else Reply(handoff="inventory")
    )
    payment = Agent(
        "payment",
        "Take payment safely.",
        _model("gpt-4.1", pay_script, rng, latency),
        tools=[t.fraud_check, t.charge_card],
        handoffs=[inventory],
    )
    validator = Agent(
        "validation",
        "Validate the order.",
        _model(
            "claude-3-5-haiku",
            [
                Reply(
                    tool_calls=[
                        (
                            "validate_order",
                            {"order_id": oid, "items": rng.randint(1, 5), "country": country},
                        )
                    ]
                ),
                Reply(text=f"Cannot ship to {country}.")
                if country == "XX"
                else Reply(handoff="payment"),
            ],
            rng,
            latency,
        ),
        tools=[t.validate_order],
        handoffs=[payment],
    )
    await gate()
    await Runner.run(
        validator,
        f"Process order {oid} for ${amount:.2f}",
        workflow_name="order-workflow",
        group_id=f"customer-{rng.randint(1, 400):04d}",
        metadata={"order_id": oid, "amount_usd": amount},
    )
