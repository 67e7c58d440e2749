"""Hard caps on a page: at most N results per brand and per leaf category.

Caps combine with every method: the greedy pick takes the best candidate by the method's
objective among those within the caps. When no remaining candidate is within the caps (fewer
brands than the page, say) the page is filled with the best remaining candidate anyway and
its reason says the cap was exceeded: a page is never shorter than asked while candidates exist.
Products without a brand (or category) are never counted against that cap, nor are products
of a brand the query names (attributes.py): "dewalt tool cases" may fill a page with DeWalt.
With a page size, counting starts again on every page: a window ranked once and cut into pages
keeps the caps on each page.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from sidecar.diversify.attributes import CandidateAttributes


class PageCaps:
    """Counts brands and categories on the page as it fills and says who is over a cap."""

    def __init__(
        self,
        n: int,
        attributes: CandidateAttributes,
        max_per_brand: int | None,
        max_per_category: int | None,
        page_size: int | None = None,
    ) -> None:
        self._caps: list[tuple[str, npt.NDArray[np.int64], int]] = []
        if max_per_brand is not None:
            self._caps.append(("brand", attributes.diversity_brand_codes, max_per_brand))
        if max_per_category is not None:
            self._caps.append(("category", attributes.category_codes, max_per_category))
        # Page positions (0-based) already taken by each brand / category code.
        self._positions: dict[tuple[str, int], list[int]] = {}
        self._page_size = page_size
        self.allowed = np.ones(n, dtype=bool)

    def add(self, index: int, position: int) -> None:
        """Put candidate `index` on the page at `position` and close any cap it fills."""
        for name, codes, cap in self._caps:
            code = int(codes[index])
            if code < 0:
                continue
            taken = self._positions.setdefault((name, code), [])
            taken.append(position)
            if len(taken) >= cap:
                self.allowed &= codes != code
        if self._page_size is not None and (position + 1) % self._page_size == 0:
            self._positions.clear()  # the next position opens a new page
            self.allowed = np.ones_like(self.allowed)

    def _over(self, index: int) -> list[str]:
        reasons = []
        for name, codes, cap in self._caps:
            code = int(codes[index])
            taken = self._positions.get((name, code), [])
            if code >= 0 and len(taken) >= cap:
                shown = ", ".join(f"#{p + 1}" for p in taken[:5]) + (", ..." if len(taken) > 5 else "")
                reasons.append(f"same {name} as {shown} ({name} cap {cap})")
        return reasons

    def why_blocked(self, index: int) -> str:
        """Why candidate `index` may not go on the page now, e.g. "same brand as #1, #2 (brand cap 2)"."""
        return "; ".join(self._over(index))

    def why_relaxed(self, index: int) -> str:
        """Reason for a pick over a cap because no candidate within the caps remained."""
        return f"cap exceeded, no candidate within the caps left: {'; '.join(self._over(index))}"
