"""Rule-based routing: conditions on request fields, compiled once to closures.

    - rules:
        - name: free-tier                       # optional, shown in the decision
          when: {metadata.tier: {$eq: free}}
          to: small-model
        - when: {$or: [{messages: {$regex: "(?i)\\btraceback\\b"}},
                       {last_user_message: {$contains: [python, debug]}}]}
          to: code-model

Fields: `model`, `user`, `stream`, `metadata.<key>`, `headers.<name>`,
`key.<field>` (tier, team … of the API key), `messages` (whole conversation
text), `last_user_message`, `system` (system prompt text), `prompt_tokens`
(estimate), `has_tools`, `has_images`, `message_count`, and `body.<path>`
for any other request field.

Operators: `$eq $ne $in $nin $regex $gt $gte $lt $lte $exists`, plus
`$contains` (case-insensitive keywords, any of a list); `$and $or $not` combine
conditions; several keys in one mapping all have to hold; a bare value means
`$eq`.  A missing field matches only `$exists: false`, `$ne` and `$nin` (the
MongoDB convention); it never raises.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from flagman.routing.base import BuildContext, Step
from flagman.types import ChatRequest, Decision, _content_text

Pred = Callable[[ChatRequest], bool]
Getter = Callable[[ChatRequest], Any]
MISSING = object()


def _dig(value: Any, path: list[str]) -> Any:
    for part in path:
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return MISSING
    return value


def _system_text(req: ChatRequest) -> str:
    return "\n".join(_content_text(m.get("content")) for m in req.messages
                     if isinstance(m, dict) and m.get("role") in ("system", "developer"))


SIMPLE: dict[str, Getter] = {
    "model": lambda r: r.model,
    "user": lambda r: r.body.get("user", MISSING),
    "stream": lambda r: r.stream,
    "messages": lambda r: r.conversation_text,
    "last_user_message": lambda r: r.last_user_text,
    "system": _system_text,
    "prompt_tokens": lambda r: r.estimated_prompt_tokens,
    "has_tools": lambda r: r.has_tools,
    "has_images": lambda r: r.has_images,
    "message_count": lambda r: len(r.messages),
}


def getter(field: str) -> Getter | None:
    if field in SIMPLE:
        return SIMPLE[field]
    head, _, rest = field.partition(".")
    if not rest:
        return None
    path = rest.split(".")
    if head == "metadata":
        return lambda r: _dig(r.body.get("metadata"), path)
    if head == "body":
        return lambda r: _dig(r.body, path)
    if head == "key":
        return lambda r: _dig(r.key_info, path)
    if head == "headers":
        name = rest.lower()
        return lambda r: r.headers.get(name, MISSING)
    return None


def _cmp(op: str, arg: Any) -> Callable[[Any], bool]:
    def num(f: Callable[[float, float], bool]) -> Callable[[Any], bool]:
        def test(v: Any) -> bool:
            try:
                return v is not MISSING and f(float(v), float(arg))
            except (TypeError, ValueError):
                return False
        return test

    table: dict[str, Callable[[Any], bool]] = {
        "$gt": num(lambda a, b: a > b), "$gte": num(lambda a, b: a >= b),
        "$lt": num(lambda a, b: a < b), "$lte": num(lambda a, b: a <= b),
    }
    return table[op]


def compile_op(op: str, arg: Any, where: str, ctx: BuildContext) -> Callable[[Any], bool]:
    if op == "$eq":
        return lambda v: v is not MISSING and v == arg
    if op == "$ne":
        return lambda v: v is MISSING or v != arg
    if op in ("$in", "$nin"):
        if not isinstance(arg, list):
            raise ctx.error(f"{op} takes a list", where)
        options = list(arg)
        if op == "$in":
            return lambda v: v is not MISSING and v in options
        return lambda v: v is MISSING or v not in options
    if op == "$regex":
        try:
            rx = re.compile(str(arg))
        except re.error as exc:
            raise ctx.error(f"invalid regex: {exc}", where) from None
        return lambda v: isinstance(v, str) and rx.search(v) is not None
    if op == "$contains":
        words = [str(w).lower() for w in (arg if isinstance(arg, list) else [arg])]
        return lambda v: isinstance(v, str) and any(w in v.lower() for w in words)
    if op in ("$gt", "$gte", "$lt", "$lte"):
        if isinstance(arg, bool) or not isinstance(arg, int | float):
            raise ctx.error(f"{op} takes a number", where)
        return _cmp(op, arg)
    if op == "$exists":
        want = bool(arg)
        return lambda v: (v is not MISSING) == want
    raise ctx.error(f"unknown operator {op!r}", where)


def compile_cond(cond: Any, where: str, ctx: BuildContext) -> Pred:
    if not isinstance(cond, dict) or not cond:
        raise ctx.error("a condition is a non-empty mapping", where)
    preds = [compile_key(k, v, f"{where}.{k}", ctx) for k, v in cond.items()]
    if len(preds) == 1:
        return preds[0]
    return lambda r: all(p(r) for p in preds)


def compile_key(key: str, value: Any, where: str, ctx: BuildContext) -> Pred:
    if key in ("$and", "$or"):
        if not isinstance(value, list) or not value:
            raise ctx.error(f"{key} takes a non-empty list of conditions", where)
        subs = [compile_cond(c, f"{where}[{i}]", ctx) for i, c in enumerate(value)]
        if key == "$and":
            return lambda r: all(p(r) for p in subs)
        return lambda r: any(p(r) for p in subs)
    if key == "$not":
        sub = compile_cond(value, where, ctx)
        return lambda r: not sub(r)
    get = getter(key)
    if get is None:
        raise ctx.error(f"unknown field {key!r} (see the rules documentation)", where)
    if isinstance(value, dict) and value and all(str(k).startswith("$") for k in value):
        tests = [compile_op(op, arg, f"{where}.{op}", ctx) for op, arg in value.items()]
    else:
        tests = [compile_op("$eq", value, where, ctx)]
    if len(tests) == 1:
        t = tests[0]
        return lambda r: t(get(r))
    return lambda r: all(t(get(r)) for t in tests)


class RulesStep(Step):
    kind = "rules"

    def __init__(self, spec: Any, ctx: BuildContext) -> None:
        super().__init__(spec, ctx)
        if not isinstance(spec, list) or not spec:
            raise ctx.error("rules is a non-empty list of {when, to} entries")
        self.rules: list[tuple[str, Pred, str]] = []
        for i, rule in enumerate(spec):
            where = f"[{i}]"
            if not isinstance(rule, dict) or set(rule) - {"name", "when", "to"} or "to" not in rule:
                raise ctx.error("each rule is a mapping with `when`, `to` and an optional `name`",
                                where)
            target = ctx.check_target(str(rule["to"]), f"{where}.to")
            pred = compile_cond(rule.get("when"), f"{where}.when", ctx)
            self.rules.append((str(rule.get("name") or f"rule[{i}]"), pred, target))

    async def decide(self, req: ChatRequest, decision: Decision) -> str | None:
        for name, pred, target in self.rules:
            if pred(req):
                decision.trace("rules", "matched", matched=name, to=target)
                return target
        decision.trace("rules", "passed", checked=len(self.rules))
        return None
