"""Deployment tiers: the device classes a bundle is built for, and the budgets each one sets.

Shared by training (a preset names its tier), export (the bundle records the tier its int8 file
fits) and the runtime (`har-runtime bench` checks the latency budget on the machine it runs on).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional


@dataclass(frozen=True)
class Tier:
    """A device class: the most int8 bytes it holds and, where the runtime can measure it, the
    longest median latency per window (batch 1, one thread on one core, `har-runtime bench`)."""

    name: str
    description: str
    max_int8_bytes: int
    #: None: not measurable on the dev machine (a microcontroller runs other code).
    max_window_ms: Optional[float]

    def size_problem(self, int8_bytes: int) -> Optional[str]:
        """Why an int8 file of `int8_bytes` does not fit, or None when it does."""
        if int8_bytes <= self.max_int8_bytes:
            return None
        return (f"int8 file {int8_bytes:,} bytes is over the {self.name} tier's "
                f"{self.max_int8_bytes // 1024} KiB budget")

    def latency_problem(self, p50_ms: float) -> Optional[str]:
        """Why a median latency of `p50_ms` per window misses the budget, or None."""
        if self.max_window_ms is None or p50_ms <= self.max_window_ms:
            return None
        return (f"p50 {p50_ms:.3f} ms per window is over the {self.name} tier's "
                f"{self.max_window_ms:g} ms budget")


TIERS: Dict[str, Tier] = {t.name: t for t in (
    Tier("mcu", "microcontroller: int8 file <= 32 KiB of flash", 32 * 1024, None),
    Tier("pi", "Raspberry Pi / phone class: int8 file <= 256 KiB, <= 2 ms per window on one "
         "core", 256 * 1024, 2.0),
)}


def get_tier(name: Optional[str]) -> Optional[Tier]:
    """The tier called `name` (None for None); ValueError for an unknown name."""
    if name is None:
        return None
    if name not in TIERS:
        raise ValueError(f"unknown tier {name!r}; choose from {sorted(TIERS)}")
    return TIERS[name]
