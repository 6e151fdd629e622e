"""The AWS Batch wire protocol, read from botocore's own service model.

Routes, required members, member types, enums and output members all come from
``botocore``'s ``batch`` model, so the emulator cannot drift from the API that the
installed SDK speaks: a request the SDK would build is routed by the model's
``http.requestUri``, checked member by member against the model's input shape, and
the answer is cut down to the members the model's output shape declares.

Pure: no sockets, no threads. ``ApiError`` carries the HTTP status and the
``__type`` AWS puts in a rest-json error body.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import unquote

log = logging.getLogger("batchkit.sim")


class ApiError(Exception):
    """An error answer: HTTP ``status`` with body ``{"__type": code, "message": message}``."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def client_error(message: str) -> ApiError:
    """AWS Batch answers every bad request with HTTP 400 ``ClientException``."""
    return ApiError("ClientException", message, 400)


@dataclass(frozen=True, slots=True)
class Route:
    operation: str
    method: str
    regex: re.Pattern[str]
    path_params: tuple[str, ...]  # input member names bound from {label}s in the URI


_TYPE_NAMES = {
    "string": "str",
    "integer": "int",
    "long": "int",
    "boolean": "bool",
    "double": "float",
    "float": "float",
    "list": "list",
    "map": "dict",
    "structure": "dict",
    "timestamp": "int",
    "blob": "str",
}


class ServiceModel:
    """botocore's ``batch`` model, indexed for routing and validation."""

    def __init__(self) -> None:
        self.model = profileless_session().get_service_model("batch")
        self._memo: dict[str, _Node] = {}
        self._outputs: dict[str, _Node] = {}
        self.routes: list[Route] = []
        for name in self.model.operation_names:
            op = self.model.operation_model(name)
            uri = op.http["requestUri"].split("?", 1)[0]
            params: list[str] = []
            pattern = ""
            for part in re.split(r"(\{[^}]+\})", uri):
                if part.startswith("{") and part.endswith("}"):
                    label = part[1:-1].rstrip("+")
                    params.append(label)
                    pattern += r"([^?]+)" if part.endswith("+}") else r"([^/?]+)"
                else:
                    pattern += re.escape(part)
            self.routes.append(
                Route(name, op.http["method"], re.compile("^" + pattern + "/?$"), tuple(params))
            )
        # Fixed paths first so /v1/tags/{resourceArn} never shadows a literal route.
        self.routes.sort(key=lambda r: len(r.path_params))

    def route(self, method: str, path: str) -> tuple[str, dict[str, str]] | None:
        """The operation a request is for and the members bound from its path."""
        bare = path.split("?", 1)[0]
        for r in self.routes:
            if r.method != method:
                continue
            m = r.regex.match(bare)
            if m:
                return r.operation, {k: unquote(v) for k, v in zip(r.path_params, m.groups(), strict=True)}
        return None

    def operation_exists(self, name: str) -> bool:
        return name in self.model.operation_names

    def validate_input(self, operation: str, params: Any) -> None:
        """Raise ClientException for a member the model would not accept."""
        shape = self.model.operation_model(operation).input_shape
        if shape is None:
            return
        if not isinstance(params, dict):
            raise client_error("Request body must be a JSON object")
        _validate(shape, params, "")

    def shape_output(self, operation: str, body: dict[str, Any]) -> dict[str, Any]:
        """Drop members the model's output shape does not declare (and log them: drift)."""
        node = self._outputs.get(operation)
        if node is None:
            shape = self.model.operation_model(operation).output_shape
            if shape is None:
                return {}
            node = _compile(shape, self._memo)
            assert node is not None
            self._outputs[operation] = node
        out = _apply(node, body, operation)
        return out if isinstance(out, dict) else {}


def _label(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


#: Smithy's "integer" is a 32-bit signed number, "long" a 64-bit one; AWS refuses a value
#: outside that range before the operation sees it.
_INT_RANGE = {"integer": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}


def _check_bounds(shape: Any, value: Any, where: str) -> None:
    """The model's ``min``/``max``: a length for strings, a count for lists and maps, a value for numbers."""
    meta = shape.metadata
    # A map's minimum is not checked: SDKs send an empty ``tags: {}`` (botocore's own validator
    # checks no map length either), and refusing it would break callers AWS may tolerate.
    lo, hi = (None if shape.type_name == "map" else meta.get("min")), meta.get("max")
    if lo is None and hi is None:
        return
    measure = value if shape.type_name in ("integer", "long", "double", "float") else len(value)
    what = "value" if measure is value else "length"
    if lo is not None and measure < lo:
        raise client_error(
            f"1 validation error detected: Value at '{where}' failed to satisfy constraint: Member must have {what} "
            f"greater than or equal to {lo}"
        )
    if hi is not None and measure > hi:
        raise client_error(
            f"1 validation error detected: Value at '{where}' failed to satisfy constraint: Member must have {what} "
            f"less than or equal to {hi}"
        )


def _validate(shape: Any, value: Any, path: str) -> None:
    t = shape.type_name
    where = path or "input"
    if not isinstance(value, bool):
        _check_shape(shape, value, where)
    if t == "structure":
        if not isinstance(value, dict):
            raise client_error(f"Invalid type for parameter {where}: expected a structure")
        for req in shape.required_members:
            if value.get(req) is None:
                raise client_error(f"Missing required parameter {_label(path, req)}")
        for key, v in value.items():
            member = shape.members.get(key)
            if member is None or v is None:
                continue  # like the service: unknown members are ignored
            _validate(member, v, _label(path, key))
    elif t == "list":
        if not isinstance(value, list):
            raise client_error(f"Invalid type for parameter {where}: expected a list")
        for i, item in enumerate(value):
            _validate(shape.member, item, f"{where}[{i}]")
    elif t == "map":
        if not isinstance(value, dict):
            raise client_error(f"Invalid type for parameter {where}: expected a map")
        for k, v in value.items():
            _validate(shape.key, k, f"{where} (key: {k[:40]})")
            _validate(shape.value, v, f"{where}.{k[:40]}")
    elif t == "string":
        if not isinstance(value, str):
            raise client_error(
                f"Invalid type for parameter {where}, value: {value!r}, type: {type(value).__name__}, valid types: str"
            )
        enum = shape.enum
        if enum and value not in enum:
            raise client_error(
                f"1 validation error detected: Value '{value}' at '{where}' failed to satisfy constraint: "
                f"Member must satisfy enum value set: [{', '.join(enum)}]"
            )
    elif t in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            raise client_error(
                f"Invalid type for parameter {where}, value: {value!r}, type: {type(value).__name__}, valid types: int"
            )
        lo, hi = _INT_RANGE[t]
        if not lo <= value <= hi:
            raise client_error(f"Invalid value for parameter {where}: {value} does not fit a {t} (32/64-bit)")
    elif t == "boolean":
        if not isinstance(value, bool):
            raise client_error(
                f"Invalid type for parameter {where}, value: {value!r}, type: {type(value).__name__}, valid types: bool"
            )
    elif t in ("double", "float"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise client_error(
                f"Invalid type for parameter {where}, value: {value!r}, type: {type(value).__name__}, valid types: float"
            )
        if not math.isfinite(value):
            raise client_error(f"Invalid value for parameter {where}: {value!r} is not a finite number")


def _check_shape(shape: Any, value: Any, where: str) -> None:
    t = shape.type_name
    kinds: dict[str, type | tuple[type, ...]] = {
        "string": str, "list": list, "map": dict, "integer": int, "long": int, "double": (int, float), "float": (int, float),
    }
    if t in kinds and isinstance(value, kinds[t]):
        _check_bounds(shape, value, where)


# A compiled output shape: ["s", {member: node | None}] | ["l", node | None] | ["m", node | None];
# None stands for a scalar. Plain lists and dicts walk ~10x faster than botocore's Shape objects,
# which keeps a DescribeJobs of 100 jobs at a few ms (shapes may be recursive: built via a memo).
_Node = list[Any]


def _compile(shape: Any, memo: dict[str, _Node]) -> _Node | None:
    t = shape.type_name
    if t not in ("structure", "list", "map"):
        return None
    key = f"{t}:{shape.name}"
    if key in memo:
        return memo[key]
    node: _Node = [t[0], None]
    memo[key] = node
    if t == "structure":
        node[1] = {name: _compile(m, memo) for name, m in shape.members.items()}
    elif t == "list":
        node[1] = _compile(shape.member, memo)
    else:
        node[1] = _compile(shape.value, memo)
    return node


def _apply(node: _Node, value: Any, operation: str) -> Any:
    kind, inner = node
    if kind == "s":
        if not isinstance(value, dict):
            return value
        out: dict[str, Any] = {}
        for k, v in value.items():
            if k not in inner:
                _warn_drift(operation, k)
                continue
            if v is None:
                continue
            sub = inner[k]
            out[k] = v if sub is None else _apply(sub, v, operation)
        return out
    if inner is None:
        return value
    if kind == "l" and isinstance(value, list):
        return [_apply(inner, v, operation) for v in value]
    if kind == "m" and isinstance(value, dict):
        return {k: _apply(inner, v, operation) for k, v in value.items()}
    return value


@lru_cache(maxsize=256)
def _warn_drift(operation: str, key: str) -> None:
    # Cached so a drifted member is logged once, not once per job.
    log.warning("%s answer member %r is not in botocore's model: dropped", operation, key)


@lru_cache(maxsize=1)
def service_model() -> ServiceModel:
    """The model, loaded once (botocore parses a large JSON file)."""
    return ServiceModel()


@lru_cache(maxsize=1)
def boto_session() -> Any:
    """One boto3 session for every emulator client: it caches the parsed service models,
    so a client costs milliseconds instead of re-reading botocore's JSON."""
    import boto3

    return boto3.session.Session(botocore_session=profileless_session())


def profileless_session() -> Any:
    """A botocore session that reads no profile from the environment.

    An ``AWS_PROFILE`` naming a profile this machine lacks makes botocore raise
    ProfileNotFound on first use; a local emulator with dummy credentials needs none.
    """
    import botocore.session

    return botocore.session.Session(session_vars={"profile": (None, None, None, None)})
