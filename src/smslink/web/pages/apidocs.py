"""The API's documentation at /docs, server-rendered from the service's own OpenAPI
document (no script from elsewhere: the Content-Security-Policy would refuse Swagger UI's
anyway): every path under /api with its methods, summaries, parameters, request and
response schemas, and the schemas themselves, with a link to /openapi.json.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from smslink.web.i18n import _, number
from smslink.web.pages.common import viewer
from smslink.web.templating import render

router = APIRouter(include_in_schema=False)

_REF = "#/components/schemas/"
_METHODS = ("get", "post", "put", "patch", "delete")


@dataclass(frozen=True)
class Kind:
    """A schema's type in words, with the named schema it refers to (for a link)."""

    text: str
    ref: str | None = None


@dataclass(frozen=True)
class Parameter:
    name: str
    where: str
    required: bool
    kind: Kind
    description: str
    constraints: str


@dataclass(frozen=True)
class Answer:
    status: str
    description: str
    kind: Kind | None


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    summary: str
    description: str
    anchor: str
    parameters: list[Parameter]
    body: Kind | None
    body_required: bool
    answers: list[Answer]


@dataclass(frozen=True)
class Property:
    name: str
    kind: Kind
    required: bool
    description: str
    constraints: str
    write_only: bool


@dataclass(frozen=True)
class Schema:
    name: str
    description: str
    properties: list[Property]
    enum: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Group:
    tag: str
    operations: list[Operation]


@router.get("/docs")
def docs_page(request: Request) -> Response:
    spec = request.app.openapi()
    groups = _groups(spec)
    return render(
        request,
        "docs.html",
        viewer(request),
        spec=spec,
        groups=groups,
        schemas=_schemas(spec),
        count=sum(len(g.operations) for g in groups),
        base=str(request.base_url).rstrip("/"),
        segments=segments,
    )


def segments(text: str) -> list[tuple[str, bool]]:
    """A description in pieces, each with whether it is `code` (CommonMark's backticks):
    the template shows those as code, everything else as text (escaped either way)."""
    return [(piece, index % 2 == 1) for index, piece in enumerate(text.split("`")) if piece]


def _groups(spec: dict[str, Any]) -> list[Group]:
    """The operations under /api by tag, in the order the service declares them."""
    groups: dict[str, list[Operation]] = {}
    for path, item in spec.get("paths", {}).items():
        if not (path == "/api" or path.startswith("/api/")):
            continue
        for method in _METHODS:
            op = item.get(method)
            if op is None:
                continue
            tag = (op.get("tags") or [_("other")])[0]
            groups.setdefault(tag, []).append(_operation(method, path, op, item))
    return [Group(tag, ops) for tag, ops in groups.items()]


def _operation(method: str, path: str, op: dict[str, Any], item: dict[str, Any]) -> Operation:
    parameters = [
        Parameter(
            name=str(p.get("name", "")),
            where=str(p.get("in", "")),
            required=bool(p.get("required")),
            kind=_kind(p.get("schema", {})),
            description=str(p.get("description") or p.get("schema", {}).get("description", "")),
            constraints=_constraints(p.get("schema", {})),
        )
        for p in [*item.get("parameters", []), *op.get("parameters", [])]
    ]
    body = op.get("requestBody")
    body_kind = None
    if body:
        content = body.get("content", {})
        media: dict[str, Any] = content.get("application/json") or next(iter(content.values()), {})
        body_kind = _kind(media.get("schema", {}))
    answers = []
    for status, answer in op.get("responses", {}).items():
        shapes = answer.get("content", {})
        shape = shapes.get("application/json") or next(iter(shapes.values()), None)
        kind = _kind(shape["schema"]) if shape and shape.get("schema") else None
        answers.append(Answer(str(status), str(answer.get("description", "")), kind))
    answers.sort(key=lambda a: a.status)
    return Operation(
        method=method.upper(),
        path=path,
        summary=str(op.get("summary", "")),
        description=str(op.get("description", "")),
        anchor="-".join([method, *(part.strip("{}") for part in path.split("/") if part)]),
        parameters=parameters,
        body=body_kind,
        body_required=bool(body and body.get("required")),
        answers=answers,
    )


def _schemas(spec: dict[str, Any]) -> list[Schema]:
    """The named schemas the API operations use, directly or through each other."""
    named: dict[str, Any] = spec.get("components", {}).get("schemas", {})
    used: set[str] = set()
    pending = [
        ref
        for path, item in spec.get("paths", {}).items()
        if path.startswith("/api")
        for ref in _refs(item)
    ]
    while pending:
        name = pending.pop()
        if name in used or name not in named:
            continue
        used.add(name)
        pending.extend(_refs(named[name]))
    shown = []
    for name in sorted(used, key=str.casefold):
        schema = named[name]
        required = set(schema.get("required", []))
        shown.append(
            Schema(
                name=name,
                description=str(schema.get("description", "")),
                properties=[
                    Property(
                        name=prop,
                        kind=_kind(sub),
                        required=prop in required,
                        description=str(sub.get("description", "")),
                        constraints=_constraints(sub),
                        write_only=bool(sub.get("writeOnly")),
                    )
                    for prop, sub in schema.get("properties", {}).items()
                ],
                enum=[str(v) for v in schema.get("enum", [])],
            )
        )
    return shown


def _refs(node: Any) -> list[str]:
    """Every named schema `node` refers to, at any depth."""
    if isinstance(node, dict):
        found = []
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(_REF):
            found.append(ref[len(_REF) :])
        for value in node.values():
            found.extend(_refs(value))
        return found
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []


def _kind(schema: dict[str, Any]) -> Kind:
    """A schema's type in a few words: `string`, `integer`, `array of TokenOut`,
    `ConnectionOut or null`; with the named schema it refers to, if one."""
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith(_REF):
        name = ref[len(_REF) :]
        return Kind(name, name)
    for combined in ("anyOf", "oneOf", "allOf"):
        if combined in schema:
            parts = [_kind(s) for s in schema[combined]]
            refs = [p.ref for p in parts if p.ref]
            return Kind(" | ".join(p.text for p in parts), refs[0] if refs else None)
    kind = schema.get("type")
    if kind == "array":
        inner = _kind(schema.get("items", {}))
        return Kind(_("array of %(kind)s", kind=inner.text), inner.ref)
    if "enum" in schema:
        return Kind(" | ".join(repr(v) for v in schema["enum"]))
    if kind == "object" and "additionalProperties" in schema:
        return Kind(_("object"))
    text = str(kind) if kind else _("any")
    if schema.get("format"):
        text += f" ({schema['format']})"
    return Kind(text)


def _constraints(schema: dict[str, Any]) -> str:
    """Limits and defaults, e.g. `1 to 200 characters; default 30`."""
    parts = []
    for source in [schema, *schema.get("anyOf", [])]:
        low, high = source.get("minLength"), source.get("maxLength")
        if low is not None and high is not None:
            parts.append(_("%(low)s to %(high)s characters", low=low, high=high))
        elif high is not None:
            parts.append(_("up to %(high)s characters", high=high))
        elif low is not None:
            parts.append(_("at least %(low)s characters", low=low))
        low, high = _number(source.get("minimum")), _number(source.get("maximum"))
        if low is not None and high is not None:
            parts.append(_("%(low)s to %(high)s", low=low, high=high))
        elif low is not None:
            parts.append(_("at least %(low)s", low=low))
        elif high is not None:
            parts.append(_("at most %(high)s", high=high))
    if "default" in schema and schema["default"] is not None:
        parts.append(_("default %(value)s", value=schema["default"]))
    return "; ".join(parts)


def _number(value: object) -> str | None:
    """A limit as the page's language writes numbers (2,147,483,647)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return number(value)
    return None
