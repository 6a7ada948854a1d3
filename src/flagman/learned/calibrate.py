"""Thresholds that mean something: "send this share of traffic to the strong model".

A raw threshold on P(strong needed) depends on the router and the data it was
trained on; a share of traffic does not.  `threshold_for_share` turns the share
wanted on a sample of real prompts into the threshold to configure, as
RouteLLM's calibration does.  Model names like `router-mf-0.116` carry such a
threshold per request.
"""

from __future__ import annotations

import re

import numpy as np

_NAME = re.compile(r"^router-([a-z][a-z0-9_]*)-((?:0|1)?(?:\.\d+)?)$")


def threshold_for_share(scores: np.ndarray, strong_fraction: float) -> float:
    """The threshold t such that about `strong_fraction` of `scores` are >= t.

    The request is rounded to the nearest whole number of prompts; prompts with
    tied scores go together, so ties can push the share reached above that.
    """
    if not 0.0 <= strong_fraction <= 1.0:
        raise ValueError("strong fraction must be in [0, 1]")
    s = np.sort(np.asarray(scores, dtype=np.float64))[::-1]
    if len(s) == 0:
        raise ValueError("no prompts to calibrate on")
    k = int(round(strong_fraction * len(s)))
    if k <= 0:
        return float(np.nextafter(s[0], np.inf))  # above every score: nothing goes strong
    return float(s[k - 1])


def strong_share(scores: np.ndarray, threshold: float) -> float:
    """Share of prompts a threshold sends to the strong model."""
    return float(np.mean(np.asarray(scores) >= threshold))


def parse_router_model_name(name: str) -> tuple[str, float] | None:
    """`router-mf-0.116` → ("mf", 0.116); None if `name` is not of that form.

    The RouteLLM convention lets each client pick its own cost/quality trade-off
    by model name, without a config change.
    """
    m = _NAME.match(name.strip())
    if m is None or not m.group(2) or m.group(2) == ".":
        return None
    t = float(m.group(2))
    if not 0.0 <= t <= 1.0:
        return None
    return m.group(1), t
