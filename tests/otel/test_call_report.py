"""The plugin knows no transport: a span is what the transport reported on the call.

A third-party full transport, named nothing the plugin knows, reports a span
name, attributes and headers on the call; its spans get them, the
``error.type`` rule follows the attributes, and GenAI content capture follows
``gen_ai.operation.name``. The HTTP transport's own spans are in test_http.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan

from pynector import Call, Pynector
from pynector.errors import HTTPStatusError
from pynector.transport.protocol import CallTransport

from .conftest import Telemetry


def attributes(span: ReadableSpan) -> dict[str, object]:
    return dict(span.attributes or {})


class Reporting(CallTransport[dict[str, Any], dict[str, Any]]):
    """A full transport that reports what a real one would, in whichever conventions."""

    transport_type = "acme"

    def __init__(self, report: dict[str, Any], fail_status: int | None = None) -> None:
        self.report = report
        self.fail_status = fail_status

    async def connect(self) -> None:
        pass

    async def disconnect(self) -> None:
        pass

    async def handle_request(self, call: Call[dict[str, Any]]) -> dict[str, Any]:
        call.span_name = self.report.get("span_name")
        call.attributes.update(self.report.get("attributes", {}))
        call.request_headers = self.report.get("request_headers")
        call.response_headers = self.report.get("response_headers")
        if self.fail_status is not None:
            raise HTTPStatusError("refused", status_code=self.fail_status)
        return {"choices": [{"message": {"role": "assistant", "content": "hi"}}]}


@pytest.mark.anyio
async def test_a_span_takes_the_name_attributes_and_allowed_headers_the_call_reports(
    otel: Telemetry,
) -> None:
    otel.plugin.configure(request_headers=["x-a"], response_headers=["x-b"])
    transport = Reporting(
        {
            "span_name": "FETCH thing",
            "attributes": {"acme.thing": "widget", "server.port": 7},
            "request_headers": {"X-A": "1", "Authorization": "Bearer s3cret-1"},
            "response_headers": {"X-B": "2", "X-C": "3"},
        }
    )
    async with Pynector(transport=transport) as client:
        await client.request({"q": 1})
    (span,) = otel.spans()
    assert span.name == "FETCH thing"
    assert attributes(span) == {
        "pynector.transport": "acme",
        "pynector.attempt": 1,
        "acme.thing": "widget",
        "server.port": 7,
        "http.request.header.x-a": ("1",),
        "http.response.header.x-b": ("2",),
    }
    assert "s3cret-1" not in otel.everything()


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("reported", "expected"),
    [
        ({"http.request.method": "GET"}, "503"),
        ({}, "pynector.errors.HTTPStatusError"),
    ],
    ids=["http-attributes", "no-http-attributes"],
)
async def test_error_type_is_the_status_code_only_for_a_call_with_http_attributes(
    otel: Telemetry, reported: dict[str, Any], expected: str
) -> None:
    transport = Reporting({"attributes": reported}, fail_status=503)
    async with Pynector(transport=transport) as client:
        with pytest.raises(HTTPStatusError):
            await client.request_with_retry({"q": 1}, max_retries=0)
    attempt, retry = otel.spans()
    assert attributes(attempt)["error.type"] == expected
    assert attributes(retry)["error.type"] == expected  # the retry span follows its attempts


@pytest.mark.anyio
@pytest.mark.parametrize("genai", [True, False], ids=["genai-call", "other-call"])
async def test_message_content_is_captured_only_for_a_call_with_genai_attributes(
    otel: Telemetry, genai: bool
) -> None:
    otel.plugin.configure(capture_message_content=True)
    reported = {"gen_ai.operation.name": "chat"} if genai else {"acme.thing": "widget"}
    async with Pynector(transport=Reporting({"attributes": reported})) as client:
        await client.request({"messages": [{"role": "user", "content": "hello"}]})
    (span,) = otel.spans()
    found = attributes(span)
    if genai:
        assert json.loads(str(found["gen_ai.input.messages"])) == [
            {"role": "user", "parts": [{"type": "text", "content": "hello"}]}
        ]
        assert json.loads(str(found["gen_ai.output.messages"]))[0]["parts"] == [
            {"type": "text", "content": "hi"}
        ]
    else:
        assert "gen_ai.input.messages" not in found
        assert "gen_ai.output.messages" not in found
