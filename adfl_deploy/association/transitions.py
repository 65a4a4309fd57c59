"""Camera transitions learned online: how long people take to walk from one camera to another.

Every confident cross-camera link (a person last seen in camera A, re-identified in camera B
with a distance well under the match threshold) adds a sample ``gap = first seen in B - last
seen in A``. Once a camera pair has ``min_samples`` of them, its window is ``[min - margin,
max + margin]``: a candidate faster than that is physically implausible and is rejected, and a
candidate inside it gets the benefit of the doubt (a looser appearance threshold). A known
topology (``AssociationConfig.transitions``) overrides what was learned for its pairs.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field


@dataclass
class TransitionModel:
    margin: float = 2.0
    min_samples: int = 3
    #: samples kept per pair (the oldest are forgotten, so a changed layout is relearned)
    keep: int = 200
    samples: dict[tuple[str, str], list[float]] = field(default_factory=lambda: defaultdict(list))

    def observe(self, first: str, second: str, gap: float) -> None:
        kept = self.samples[(first, second)]
        kept.append(gap)
        del kept[: max(0, len(kept) - self.keep)]

    def window(self, first: str, second: str) -> tuple[float, float] | None:
        """The learned (min, max) seconds from ``first`` to ``second``, or None while fewer
        than ``min_samples`` transits were seen."""
        kept = self.samples.get((first, second), [])
        if len(kept) < self.min_samples:
            return None
        return max(0.0, min(kept) - self.margin), max(kept) + self.margin

    def as_dict(self) -> dict[str, list[float]]:
        """pair -> [min, max, count] for summaries."""
        return {f"{a}->{b}": [min(v), max(v), len(v)] for (a, b), v in self.samples.items() if v}
