"""What a page must never print: pictographs. They need an emoji (or symbol) font that servers and
many Linux desktops do not have, and Chromium then draws an empty box in their place."""

from __future__ import annotations

# Emoji and symbol blocks inside the Basic Multilingual Plane; everything above it (U+1F300..U+1FAFF
# and the rest of the emoji) counts too. Arrows (→ ←), box drawing (└) and typography (· – …) are
# in every text font and stay allowed.
PICTOGRAPH_BLOCKS = (
    (0x2139, 0x2139),  # ℹ
    (0x2300, 0x23FF),  # Miscellaneous Technical: ⌚ ⏰ ⏳
    (0x25A0, 0x25FF),  # Geometric Shapes: ● ▲ ◆ (status dots)
    (0x2600, 0x27BF),  # Miscellaneous Symbols and Dingbats: ⚠ ✓ ✕ ❌
    (0x2B00, 0x2BFF),  # Miscellaneous Symbols and Arrows: ⭐ ⬤
    (0x200D, 0x200D),  # zero-width joiner of emoji sequences
    (0xFE00, 0xFE0F),  # variation selectors (emoji presentation)
)


def pictographs(text: str) -> set[str]:
    """The characters of ``text`` that need an emoji or symbol font."""
    return {c for c in text if ord(c) > 0xFFFF or any(lo <= ord(c) <= hi for lo, hi in PICTOGRAPH_BLOCKS)}
