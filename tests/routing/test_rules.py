"""Each rule operator and combination, missing fields, and config errors naming the path."""

from __future__ import annotations

import pytest

from flagman.config import parse_config
from flagman.errors import ConfigError
from flagman.routing.base import BuildContext
from flagman.routing.rules import RulesStep, compile_cond
from flagman.types import ChatRequest, Decision

CFG = parse_config({"models": [{"name": "a"}, {"name": "b"}]})


def ctx() -> BuildContext:
    return BuildContext(CFG, "routers[0].steps[0].rules", known_models={"a", "b"})


def req(text: str = "hello", **body) -> ChatRequest:  # type: ignore[no-untyped-def]
    headers = body.pop("headers", {})
    key_info = body.pop("key_info", {})
    return ChatRequest({"model": "auto", "messages": [{"role": "user", "content": text}], **body},
                       headers=headers, key_info=key_info)


def match(cond, r: ChatRequest) -> bool:  # type: ignore[no-untyped-def]
    return compile_cond(cond, "when", ctx())(r)


@pytest.mark.parametrize(
    ("cond", "request_", "expected"),
    [
        ({"metadata.tier": {"$eq": "free"}}, req(metadata={"tier": "free"}), True),
        ({"metadata.tier": {"$eq": "free"}}, req(metadata={"tier": "pro"}), False),
        ({"metadata.tier": "free"}, req(metadata={"tier": "free"}), True),  # bare value = $eq
        ({"metadata.tier": {"$ne": "free"}}, req(metadata={"tier": "pro"}), True),
        ({"metadata.tier": {"$ne": "free"}}, req(metadata={"tier": "free"}), False),
        ({"user": {"$in": ["u1", "u2"]}}, req(user="u2"), True),
        ({"user": {"$in": ["u1", "u2"]}}, req(user="u3"), False),
        ({"user": {"$nin": ["u1"]}}, req(user="u3"), True),
        ({"user": {"$nin": ["u1"]}}, req(user="u1"), False),
        ({"messages": {"$regex": "(?i)\\btraceback\\b"}}, req("Here is my TRACEBACK"), True),
        ({"messages": {"$regex": "(?i)\\btraceback\\b"}}, req("tracebacks"), False),
        ({"last_user_message": {"$contains": ["python", "rust"]}}, req("I love Rust"), True),
        ({"last_user_message": {"$contains": ["python", "rust"]}}, req("I love Go"), False),
        ({"prompt_tokens": {"$gt": 10}}, req("x" * 100), True),
        ({"prompt_tokens": {"$gt": 10}}, req("x"), False),
        ({"prompt_tokens": {"$gte": 5, "$lt": 8}}, req("x" * 8), True),
        ({"prompt_tokens": {"$lte": 4}}, req("x" * 80), False),
        ({"metadata.tier": {"$exists": True}}, req(metadata={"tier": "x"}), True),
        ({"metadata.tier": {"$exists": False}}, req(), True),
        ({"has_tools": True}, req(tools=[{"type": "function"}]), True),
        ({"has_tools": True}, req(), False),
        ({"headers.x-team": "ml"}, req(headers={"x-team": "ml"}), True),
        ({"key.tier": "gold"}, req(key_info={"tier": "gold"}), True),
        ({"body.temperature": {"$lt": 0.5}}, req(temperature=0.2), True),
        ({"$and": [{"user": "u1"}, {"metadata.tier": "free"}]},
         req(user="u1", metadata={"tier": "free"}), True),
        ({"$and": [{"user": "u1"}, {"metadata.tier": "free"}]}, req(user="u1"), False),
        ({"$or": [{"user": "u1"}, {"metadata.tier": "free"}]}, req(user="u9"), False),
        ({"$or": [{"user": "u1"}, {"metadata.tier": "free"}]}, req(metadata={"tier": "free"}), True),
        ({"$not": {"user": "u1"}}, req(user="u2"), True),
        ({"$not": {"user": "u1"}}, req(user="u1"), False),
        ({"user": "u1", "stream": True}, req(user="u1", stream=True), True),  # implicit $and
        ({"user": "u1", "stream": True}, req(user="u1"), False),
    ],
)
def test_operators(cond, request_, expected) -> None:  # type: ignore[no-untyped-def]
    assert match(cond, request_) is expected


@pytest.mark.parametrize("op", ["$eq", "$in", "$regex", "$gt", "$gte", "$lt", "$lte", "$contains"])
def test_missing_field_never_matches_or_raises(op) -> None:  # type: ignore[no-untyped-def]
    arg = {"$in": ["x"], "$regex": "x", "$contains": "x"}.get(op, 1)
    assert match({"metadata.absent.deeper": {op: arg}}, req()) is False
    assert match({"metadata.absent": {"$ne": 1}}, req()) is True


def test_images_detected() -> None:
    r = ChatRequest({"model": "m", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "what is this"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAA"}}]}]})
    assert match({"has_images": True}, r) and match({"messages": {"$contains": "what"}}, r)


async def test_step_decides_first_matching_rule_and_explains() -> None:
    step = RulesStep([{"name": "free", "when": {"metadata.tier": "free"}, "to": "a"},
                      {"when": {"messages": {"$contains": "code"}}, "to": "b"}], ctx())
    d = Decision("auto")
    assert await step.decide(req("code", metadata={"tier": "free"}), d) == "a"
    assert d.steps[-1].detail == {"matched": "free", "to": "a"}
    d = Decision("auto")
    assert await step.decide(req("code"), d) == "b"
    assert await step.decide(req("other"), d) is None and d.steps[-1].outcome == "passed"


@pytest.mark.parametrize(
    ("spec", "where"),
    [
        ([{"when": {"user": "x"}, "to": "nope"}], "rules[0].to: unknown model 'nope'"),
        ([{"when": {"user": {"$regex": "("}}, "to": "a"}], "rules[0].when.user.$regex: invalid regex"),
        ([{"when": {"user": {"$foo": 1}}, "to": "a"}], "rules[0].when.user.$foo: unknown operator"),
        ([{"when": {"nosuch": 1}, "to": "a"}], "rules[0].when.nosuch: unknown field"),
        ([{"when": {"prompt_tokens": {"$gt": "x"}}, "to": "a"}], "$gt takes a number"),
        ([{"when": {"$or": []}, "to": "a"}], "$or takes a non-empty list"),
        ([{"to": "a", "extra": 1}], "each rule is a mapping"),
    ],
)
def test_bad_rules_name_their_path(spec, where) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError) as info:
        RulesStep(spec, ctx())
    assert where in str(info.value)
