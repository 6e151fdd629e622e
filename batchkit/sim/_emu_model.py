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
        import botocore.session

        self.model = botocore.session.get_session().get_service_model("batch")
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
        shape = self.model.operation_model(operation).output_shape
        if shape is None:
            return {}
        out = _shape(shape, body, operation)
        return out if isinstance(out, dict) else {}


def _label(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _validate(shape: Any, value: Any, path: str) -> None:
    t = shape.type_name
    where = path or "input"
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
            _validate(shape.value, v, f"{where}.{k}")
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
    elif t == "boolean":
        if not isinstance(value, bool):
            raise client_error(
                f"Invalid type for parameter {where}, value: {value!r}, type: {type(value).__name__}, valid types: bool"
            )
    elif t in ("double", "float") and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise client_error(
            f"Invalid type for parameter {where}, value: {value!r}, type: {type(value).__name__}, valid types: float"
        )


def _shape(shape: Any, value: Any, where: str) -> Any:
    t = shape.type_name
    if t == "structure":
        if not isinstance(value, dict):
            return value
        out: dict[str, Any] = {}
        members = shape.members
        for k, v in value.items():
            m = members.get(k)
            if m is None:
                _warn_drift(where, k)
                continue
            if v is None:
                continue
            out[k] = _shape(m, v, f"{where}.{k}")
        return out
    if t == "list" and isinstance(value, list):
        inner = shape.member
        if inner.type_name in ("structure", "list", "map"):
            return [_shape(inner, v, where) for v in value]
        return value
    if t == "map" and isinstance(value, dict):
        inner = shape.value
        if inner.type_name in ("structure", "list", "map"):
            return {k: _shape(inner, v, where) for k, v in value.items()}
        return value
    return value


@lru_cache(maxsize=256)
def _warn_drift(where: str, key: str) -> None:
    # Cached so a drifted member is logged once, not once per job.
    log.warning("emulator answer member %s.%s is not in botocore's model: dropped", where, key)


@lru_cache(maxsize=1)
def service_model() -> ServiceModel:
    """The model, loaded once (botocore parses a large JSON file)."""
    return ServiceModel()
