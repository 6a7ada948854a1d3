"""Anthropic Messages API ↔ OpenAI Chat Completions, both directions.

Inbound (an Anthropic client talking to flagman): `anthropic_request_to_openai`,
`openai_response_to_anthropic`, `OpenAIStreamToAnthropic`, `anthropic_error_body`,
`sse_event`.  Outbound (the Anthropic provider): `openai_request_to_anthropic`,
`anthropic_response_to_openai`, `AnthropicStreamToOpenAI`.  The code is split
over three modules to keep each small; this one is the import point.
"""

from __future__ import annotations

from flagman.formats.anthropic_outbound import openai_request_to_anthropic
from flagman.formats.anthropic_request import anthropic_request_to_openai
from flagman.formats.anthropic_response import (
    FINISH_TO_STOP,
    STOP_TO_FINISH,
    anthropic_error_body,
    anthropic_response_to_openai,
    openai_response_to_anthropic,
)
from flagman.formats.anthropic_stream import (
    AnthropicStreamToOpenAI,
    OpenAIStreamToAnthropic,
    sse_event,
)

__all__ = [
    "FINISH_TO_STOP",
    "STOP_TO_FINISH",
    "AnthropicStreamToOpenAI",
    "OpenAIStreamToAnthropic",
    "anthropic_error_body",
    "anthropic_request_to_openai",
    "anthropic_response_to_openai",
    "openai_request_to_anthropic",
    "openai_response_to_anthropic",
    "sse_event",
]
