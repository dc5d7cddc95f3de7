"""The page's "How to call it" examples: each scoring request's JSON body for the example
record (laid out to read) and the curl line that sends it."""

from __future__ import annotations

import json
import shlex
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from serving.model_store import ServedModel


def _wrapped(items: list[str], indent: str, width: int = 84) -> str:
    """JSON members or elements, as many to a line as fit in `width`."""
    lines: list[str] = []
    for item in items:
        if lines and len(lines[-1]) + len(item) + 2 <= width:
            lines[-1] += f" {item},"
        else:
            lines.append(f"{indent}{item},")
    if lines:
        lines[-1] = lines[-1][:-1]
    return "\n".join(lines)


def _record_json(record: dict[str, Any], indent: str) -> str:
    members = [f"{json.dumps(k)}: {json.dumps(v)}" for k, v in record.items()]
    return "{\n" + _wrapped(members, indent + "  ") + f"\n{indent}}}"


def request_bodies(served: ServedModel, max_batch_records: int) -> list[tuple[str, str, str]]:
    """(title, route, JSON text) of each scoring request for the example record; the JSON
    is laid out to read (several members to a line) and loads to the request body."""
    example = served.example
    v2 = v2_request(served, example)["inputs"]
    tensors = ",\n".join(f"    {json.dumps(t)}" for t in v2)
    return [
        ("One record", "/predict", _record_json(example, "")),
        ("A batch", "/predict_batch",
         '{"records": [\n  ' + _record_json(example, "  ") + "\n]}"),
        ("Open Inference Protocol (V2)", f"/v2/models/{served.name}/infer",
         '{"inputs": [\n' + tensors + "\n]}"),
    ]


def curl(base: str, path: str, body: str, auth: bool) -> str:
    """A curl command line (shell-quoted body; lines continued with backslashes)."""
    lines = [f"curl -s -X POST {base}{path}", "-H 'Content-Type: application/json'"]
    if auth:
        lines.append('-H "Authorization: Bearer $API_KEY"')
    lines.append(f"-d {shlex.quote(body)}")
    return " \\\n  ".join(lines)


def v2_request(served: ServedModel, record: dict[str, Any]) -> dict[str, Any]:
    """The example record as an Open Inference Protocol request: one tensor per feature."""
    from serving.v2 import model_metadata  # pydantic only; imported here to keep this light

    inputs = model_metadata(served.spec, served.name, served.version)["inputs"]
    return {"inputs": [{"name": i["name"], "shape": [1], "datatype": i["datatype"],
                        "data": [record.get(i["name"])]} for i in inputs]}

