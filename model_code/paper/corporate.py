"""Corporate actions derived from the bars: the raw close against the adjusted close.

A bar carries ``close`` (raw) and ``adj_close`` (split- and dividend-adjusted back from the
vendor's latest date). Their ratio ``f = adj_close / close`` is the vendor's cumulative
adjustment factor; it only changes across an ex-date. From one bar of a ticker to its next,
``g = f_T / f_prev``:

* ``g`` near 1 (``|g - 1| <= NOISE``): nothing (``adj_close`` is rounded, which moves ``g`` by
  about 1e-8);
* a **split** when ``g >= SPLIT_MIN`` or ``g <= 1 / SPLIT_MIN`` and the raw close moved by about
  ``1 / g`` (the adjusted return ``close_T / close_prev * g`` within ``SPLIT_RETURN`` of 1): the
  ratio is ``g`` rounded to the nearest ``p / q`` with ``p, q <= 10`` when that is within
  ``SPLIT_ROUNDING`` (2-for-1 is 2.0, 1-for-10 is 0.1), else ``g`` itself; holders get ``ratio``
  shares per share;
* otherwise a **cash distribution** when ``g > 1``: by the vendors' (CRSP / Yahoo) convention
  ``f_prev = f_T * (1 - D / close_prev)``, so ``D = close_prev * (1 - 1 / g)`` per share held at
  the previous close. This is approximate: the vendor's own dividend record is not in the bars,
  ``adj_close`` is rounded (D is good to about 1e-8 of the price), and a spin-off or special
  distribution shows up the same way and is credited as cash at its adjusted value;
* ``g < 1`` without a split (a vendor correction) is ignored.

Nothing can be derived where ``adj_close`` is missing (close-only series keep it NULL) or where
the vendor's ``close`` is itself split-adjusted (Yahoo's is: its splits then never show as a jump
in the factor, and the quantities need no adjustment because the history was restated).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

NOISE = 1e-6
SPLIT_MIN = 1.25
SPLIT_RETURN = 0.5
SPLIT_ROUNDING = 0.02
SPLIT = "split"
DIVIDEND = "dividend"


@dataclass(frozen=True)
class CorporateAction:
    """One ticker's action on an ex-date: ``ratio`` new shares per share (splits, else 1) and
    ``amount`` currency per share held at the previous close (distributions, else 0)."""

    kind: str
    ratio: float = 1.0
    amount: float = 0.0


def split_ratio(g: float) -> float:
    """``g`` snapped to the nearest ``p / q`` (``p, q <= 10``) within :data:`SPLIT_ROUNDING`."""
    nice = Fraction(g).limit_denominator(10)
    if nice.numerator <= 10 and nice > 0 and abs(float(nice) / g - 1.0) <= SPLIT_ROUNDING:
        return float(nice)
    return g


def derive_action(
    prev_close: float, prev_adj: float | None, close: float, adj: float | None
) -> CorporateAction | None:
    """The action between a ticker's previous bar and this one (None: none, or not derivable)."""
    values = (prev_close, prev_adj, close, adj)
    if any(v is None or not math.isfinite(v) or v <= 0 for v in values):
        return None
    g = (adj / close) / (prev_adj / prev_close)  # type: ignore[operator]
    if abs(g - 1.0) <= NOISE:
        return None
    adjusted_return = close / prev_close * g
    if (g >= SPLIT_MIN or g <= 1.0 / SPLIT_MIN) and abs(adjusted_return - 1.0) <= SPLIT_RETURN:
        return CorporateAction(SPLIT, ratio=split_ratio(g))
    if g > 1.0:
        return CorporateAction(DIVIDEND, amount=prev_close * (1.0 - 1.0 / g))
    return None
