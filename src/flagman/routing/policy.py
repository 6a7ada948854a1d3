"""Compliance policy: sensitive requests stay on allowed deployments.

    - policy:
        detectors: [email, phone, card, iban, ssn, secret]   # default: all of them
        custom: [{name: codename, regex: "(?i)project falcon"}]
        require_tags: [on_prem]      # a match restricts candidates to these tags
        to: local-llama              # optional: also route there directly
        action: restrict             # or reject: refuse matching requests (403)

A match never widens the candidates: required tags accumulate, and every later
choice (rules, semantic, learned, fallbacks) is filtered by them in the try
plan, so matched values cannot reach a deployment without the tags; when none
exists the request is refused with 403 `policy_no_deployment`.  The decision
records only the kinds and counts of what matched, and the request log stores
the prompt with matched values replaced by `[REDACTED:kind]`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from flagman.errors import PermissionDeniedError
from flagman.routing import detectors as det
from flagman.routing.base import BuildContext, Step
from flagman.types import ChatRequest, Decision

KEYS = {"detectors", "custom", "require_tags", "to", "action"}


def _redactor(
    earlier: Callable[[str], str] | None, detectors: list[Callable[[str], list[det.Match]]]
) -> Callable[[str], str]:
    """Redact what `detectors` find, after what earlier policy steps redact."""

    def redact(text: str) -> str:
        text = earlier(text) if earlier is not None else text
        return det.redact(text, det.scan(text, detectors))

    return redact


class PolicyStep(Step):
    kind = "policy"

    def __init__(self, spec: Any, ctx: BuildContext) -> None:
        super().__init__(spec, ctx)
        if spec in (None, "compliance", "default"):
            spec = {}
        if not isinstance(spec, dict) or set(spec) - KEYS:
            raise ctx.error(f"policy takes a mapping with keys {sorted(KEYS)}")
        names = spec.get("detectors", list(det.BUILTIN))
        unknown = [n for n in names if n not in det.BUILTIN]
        if unknown:
            raise ctx.error(f"unknown detectors {unknown} (known: {list(det.BUILTIN)})",
                            ".detectors")
        self.detectors = [det.BUILTIN[n] for n in names]
        for i, c in enumerate(spec.get("custom") or []):
            if not isinstance(c, dict) or not {"name", "regex"} <= set(c):
                raise ctx.error("each custom detector needs name and regex", f".custom[{i}]")
            try:
                self.detectors.insert(0, det.custom(str(c["name"]), str(c["regex"])))
            except Exception as exc:
                raise ctx.error(f"invalid regex: {exc}", f".custom[{i}].regex") from None
        self.require_tags = [str(t) for t in spec.get("require_tags", ["on_prem"])]
        self.to = ctx.check_target(str(spec["to"]), ".to") if spec.get("to") else None
        self.action = spec.get("action", "restrict")
        if self.action not in ("restrict", "reject"):
            raise ctx.error("action is restrict or reject", ".action")

    async def decide(self, req: ChatRequest, decision: Decision) -> str | None:
        text = req.conversation_text
        matches = det.scan(text, self.detectors)
        if not matches:
            decision.trace("policy", "passed")
            return None
        kinds = dict(Counter(m.kind for m in matches))
        decision.redactions = sorted(set(decision.redactions) | set(kinds))
        decision.redact = _redactor(decision.redact, self.detectors)
        if self.action == "reject":
            decision.trace("policy", "rejected", found=kinds)
            raise PermissionDeniedError(
                f"request refused by policy: it contains {', '.join(sorted(kinds))}",
                code="policy_rejected",
            )
        tags = sorted(set(decision.required_tags or []) | set(self.require_tags))
        decision.required_tags = tags
        decision.trace("policy", "restricted", found=kinds, require_tags=tags,
                       **({"to": self.to} if self.to else {}))
        return self.to
