"""web/public/openapi.json (served at /openapi.json): the REST API as one OpenAPI 3.0 document, made from the same
contracts as the gRPC services and the gateway's routes.

The generator is grpc-gateway's `protoc-gen-swagger` (Debian's `golang-grpc-gateway` package, run
as a plugin of grpcio-tools' protoc): it reads the `google.api.http` rules and writes Swagger 2.0
per package. That build (grpc-gateway 1.6.4) predates several things its successor,
`protoc-gen-openapiv2`, does by default, and which the document needs to describe what Envoy's
transcoder really serves. `complete()` adds them from the descriptor set, each step named after
the openapiv2 behaviour it stands in for:

- property names in lowerCamelCase, as the transcoder prints them (`json_names_for_fields`);
- `{name=assets/*}` path variables expanded into `/v1/assets/{asset}` (`expand_slashed_path_patterns`);
- `google.api.HttpBody` bodies and streamed replies as raw bytes, not as a JSON HttpBody;
- query parameters of PATCH/POST methods whose body is one field (e.g. `update_mask`);
- OUTPUT_ONLY fields `readOnly`, REQUIRED fields `required` (`google.api.field_behavior`);
- well-known types as their JSON forms (Any with `@type`, FieldMask as a string, Struct, Value);
- every error as the `default` response, a JSON `google.rpc.Status`;
- then Swagger 2.0 becomes OpenAPI 3.0 (what openapi-typescript and the reference page read), and
  each operation gets its security from the contract's `(imgtag.api.v1.access)` rule.

The document is committed, so `make run` needs no Debian package; a contract test regenerates it
and fails when it and the protos disagree (`imgtag openapi` rewrites it)."""

from __future__ import annotations

import copy
import json
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.api import annotations_pb2, field_behavior_pb2, http_pb2
from google.protobuf import descriptor_pb2

from imgtag.api.v1 import access_pb2
from imgtag_dev.codegen import _run_protoc
from imgtag_dev.gateway import PUBLIC_SERVICES
from imgtag_dev.paths import DESCRIPTOR_SET, PROTOS_DIR, REPO_ROOT

OPENAPI_DOC = REPO_ROOT / "web" / "public" / "openapi.json"
GENERATOR = "protoc-gen-swagger"
GENERATOR_HINT = "apt-get install golang-grpc-gateway (Debian's grpc-gateway, which ships protoc-gen-swagger)"
JSON = "application/json"
BYTES = {"type": "string", "format": "binary"}
# Replaces the generator's proto-shaped renderings of well-known types with their JSON forms.
WELL_KNOWN = {
    "protobufAny": {
        "type": "object",
        "description": "Any message, with its type URL in `@type` (e.g. google.rpc.ErrorInfo).",
        "properties": {"@type": {"type": "string"}},
        "additionalProperties": {},
    },
    "protobufFieldMask": {"type": "string", "description": "Field paths, comma separated (lowerCamelCase)."},
    "protobufStruct": {"type": "object", "additionalProperties": {}},
    "protobufValue": {"nullable": True, "description": "Any JSON value."},
    "protobufListValue": {"type": "array", "items": {}},
}
STATUS_REF = "#/components/schemas/rpcStatus"
ERROR_RESPONSE = {
    "description": "An error: a google.rpc.Status, its machine-readable reason in a google.rpc.ErrorInfo detail.",
    "content": {JSON: {"schema": {"$ref": STATUS_REF}}},
}


class GeneratorMissing(RuntimeError):
    """protoc-gen-swagger is not installed."""


@dataclass(frozen=True)
class Method:
    service: str  # full name, e.g. imgtag.catalog.v1.CatalogService
    proto: descriptor_pb2.MethodDescriptorProto
    rule: http_pb2.HttpRule
    access: access_pb2.AccessRule


def generator_path() -> str:
    found = shutil.which(GENERATOR)
    if not found:
        raise GeneratorMissing(f"{GENERATOR} not found: {GENERATOR_HINT}")
    return found


def run_generator(out_dir: Path) -> list[dict[str, Any]]:
    """Swagger 2.0 documents, one per package with public services, straight from the plugin."""
    plugin = generator_path()
    # The 2018 plugin predates proto3 `optional`, and protoc refuses to hand it such files; it is
    # given copies without the keyword. Nothing it writes changes: a JSON field may always be
    # left out, and the schemas' presence rules come from the descriptor set below.
    protos = out_dir / "protos"
    for source in PROTOS_DIR.rglob("*.proto"):
        stripped = protos / source.relative_to(PROTOS_DIR)
        stripped.parent.mkdir(parents=True, exist_ok=True)
        stripped.write_text(re.sub(r"^(\s*)optional\s+", r"\1", source.read_text(), flags=re.M))
    docs = []
    for package_dir in sorted({p.parent for p in protos.rglob("*.proto")}):
        files = sorted(str(p.relative_to(protos)) for p in package_dir.glob("*.proto"))
        if not any("service " in (protos / f).read_text() for f in files):
            continue
        name = package_dir.parent.name
        _run_protoc(
            [
                f"--plugin=protoc-gen-swagger={plugin}",
                f"--swagger_out=allow_merge=true,merge_file_name={name}:{out_dir}",
                *files,
            ],
            protos_dir=protos,
        )
        docs.append(json.loads((out_dir / f"{name}.swagger.json").read_text()))
    return docs


# ---------------------------------------------------------------- the descriptor set


class Contracts:
    """What the descriptor set knows and the 2018 generator's output lacks."""

    def __init__(self, descriptor: Path = DESCRIPTOR_SET) -> None:
        fds = descriptor_pb2.FileDescriptorSet.FromString(descriptor.read_bytes())
        self.messages: dict[str, descriptor_pb2.DescriptorProto] = {}
        self.by_definition: dict[str, set[str]] = {}
        self.methods: dict[str, Method] = {}
        for file in fds.file:
            for message in file.message_type:
                self._index(file.package, message, [])
            for service in file.service:
                full = f"{file.package}.{service.name}"
                if full not in PUBLIC_SERVICES:
                    continue
                for method in service.method:
                    if not method.options.HasExtension(annotations_pb2.http):
                        continue
                    if method.name in self.methods:
                        raise ValueError(f"two public methods named {method.name}: operationIds must be unique")
                    self.methods[method.name] = Method(
                        full,
                        method,
                        method.options.Extensions[annotations_pb2.http],
                        method.options.Extensions[access_pb2.access],
                    )

    def _index(self, package: str, message: descriptor_pb2.DescriptorProto, parents: list[str]) -> None:
        full = ".".join([package, *parents, message.name])
        self.messages[full] = message
        # The generator's definition names: "v1Asset" for top-level messages, "AssetTag" style
        # (parents' names joined, no package) for nested ones.
        definition = "".join([*parents, message.name]) if parents else package.split(".")[-1] + message.name
        self.by_definition.setdefault(definition, set()).add(full)
        for nested in message.nested_type:
            if not nested.options.map_entry:
                self._index(package, nested, [*parents, message.name])

    def message_for(self, definition: str) -> descriptor_pb2.DescriptorProto | None:
        names = self.by_definition.get(definition, set())
        if len(names) > 1:
            raise ValueError(f"definition {definition} is ambiguous: {sorted(names)}")
        return self.messages[next(iter(names))] if names else None

    def input_of(self, method: Method) -> descriptor_pb2.DescriptorProto:
        return self.messages[method.proto.input_type.lstrip(".")]


def _behaviors(field: descriptor_pb2.FieldDescriptorProto) -> set[int]:
    return set(field.options.Extensions[field_behavior_pb2.field_behavior])


# ---------------------------------------------------------------- Swagger 2.0 fix-ups


def merge(docs: list[dict[str, Any]]) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    definitions: dict[str, Any] = {}
    for doc in docs:
        for path, ops in doc.get("paths", {}).items():
            paths.setdefault(path, {}).update(ops)
        for name, schema in doc.get("definitions", {}).items():
            if name in definitions and definitions[name] != schema:
                raise ValueError(f"definition {name} differs between packages")
            definitions[name] = schema
    return {"paths": dict(sorted(paths.items())), "definitions": definitions}


def fix_definitions(definitions: dict[str, Any], contracts: Contracts) -> dict[str, Any]:
    fixed: dict[str, Any] = {}
    for name, schema in definitions.items():
        if name == "apiHttpBody":
            continue
        if name in WELL_KNOWN:
            fixed[name] = WELL_KNOWN[name]
            continue
        schema = copy.deepcopy(schema)
        message = contracts.message_for(name)
        if message is not None and "properties" in schema:
            fields = {f.name: f for f in message.field}
            properties, required = {}, []
            for prop, value in schema["properties"].items():
                field = fields.get(prop)
                json_name = field.json_name if field is not None and field.json_name else prop
                behaviors = _behaviors(field) if field is not None else set()
                if field_behavior_pb2.OUTPUT_ONLY in behaviors:
                    value = {**value, "readOnly": True}
                if field_behavior_pb2.REQUIRED in behaviors:
                    required.append(json_name)
                properties[json_name] = value
            schema["properties"] = properties
            if required:
                schema["required"] = required
        fixed[name] = _clean(schema)
    return fixed


def _clean(schema: Any) -> Any:
    """Drops the generator's `format: boolean` (not a format) throughout."""
    if isinstance(schema, dict):
        out = {k: _clean(v) for k, v in schema.items()}
        if out.get("type") == "boolean":
            out.pop("format", None)
        return out
    if isinstance(schema, list):
        return [_clean(v) for v in schema]
    return schema


_VARIABLE = re.compile(r"\{([^}=]+)(?:=([^}]*))?\}")


def _singular(segment: str) -> str:
    if segment.endswith("ies"):
        return segment[:-3] + "y"
    return segment[:-1] if segment.endswith("s") else segment


def expand_path(template: str) -> tuple[str, dict[str, list[str]]]:
    """'/v1/{name=users/*/apiKeys/*}:revoke' -> ('/v1/users/{user}/apiKeys/{apiKey}:revoke',
    {'name': ['user', 'apiKey']}): a slashed variable becomes its literal segments and one path
    parameter per '*'; a plain variable stays as it is."""
    variables: dict[str, list[str]] = {}

    def expand(match: re.Match[str]) -> str:
        field, pattern = match.group(1), match.group(2)
        if not pattern or pattern == "*":
            variables[field] = [field]
            return "{" + field + "}"
        segments, names = pattern.split("/"), []
        for i, segment in enumerate(segments):
            if segment == "*":
                name = _singular(segments[i - 1]) if i else field
                names.append(name)
                segments[i] = "{" + name + "}"
            elif "*" in segment:
                raise ValueError(f"path pattern {pattern} is not supported")
        variables[field] = names
        return "/".join(segments)

    return _VARIABLE.sub(expand, template), variables


def fix_operation(path: str, verb: str, op: dict[str, Any], contracts: Contracts) -> tuple[str, dict[str, Any]]:
    method = contracts.methods[op["operationId"]]
    new_path, variables = expand_path(path)
    request = contracts.input_of(method)
    params = []
    for param in op.get("parameters", []):
        if param["in"] == "path":
            for name in variables[param["name"]]:
                params.append(
                    {
                        "name": name,
                        "in": "path",
                        "required": True,
                        "type": "string",
                        "description": f"Id in `{param['name']}`: {param.get('description', '')}".strip(),
                    }
                )
        elif param["in"] == "body" and param["schema"].get("$ref", "").endswith("/apiHttpBody"):
            params.append({"in": "body", "binary": True, "description": param.get("description", "")})
        else:
            params.append(param)
    # Fields neither in the path nor the body travel as query parameters (the generator leaves
    # them out when the body is one field).
    body_field = getattr(method.rule, verb.lower(), None) is not None and method.rule.body
    if body_field and body_field != "*":
        named = {p["name"] for p in params if p["in"] == "query"}
        bound = {v.split(".")[0] for v in variables} | {body_field}
        for field in request.field:
            if field.name in bound or field.name in named:
                continue
            params.append(_query_param(field, contracts))
    op = {**op, "parameters": params}
    responses = {}
    for code, response in op.get("responses", {}).items():
        schema = response.get("schema", {})
        if schema.get("$ref", "").endswith("/apiHttpBody"):
            response = {"description": "The image's bytes, with its Content-Type.", "binary": True}
        responses[code] = response
    op["responses"] = responses
    return new_path, op


def _query_param(field: descriptor_pb2.FieldDescriptorProto, contracts: Contracts) -> dict[str, Any]:
    types = descriptor_pb2.FieldDescriptorProto
    scalar = {
        types.TYPE_BOOL: {"type": "boolean"},
        types.TYPE_INT32: {"type": "integer", "format": "int32"},
        types.TYPE_STRING: {"type": "string"},
    }
    if field.type == types.TYPE_MESSAGE and field.type_name == ".google.protobuf.FieldMask":
        schema = {"type": "string"}
    elif field.type in scalar:
        schema = scalar[field.type]
    else:
        raise ValueError(f"query parameter {field.name} of type {field.type} is not supported")
    param = {"name": field.name, "in": "query", "required": False, **schema}
    if field.label == types.LABEL_REPEATED:
        param = {"name": field.name, "in": "query", "required": False, "type": "array", "items": schema}
        param["collectionFormat"] = "multi"
    if field.type_name == ".google.protobuf.FieldMask":
        param["description"] = "Fields to change, comma separated (e.g. `displayName,email`); empty: every field sent."
    return param


# ---------------------------------------------------------------- Swagger 2.0 -> OpenAPI 3.0


def _ref3(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: (v.replace("#/definitions/", "#/components/schemas/") if k == "$ref" else _ref3(v))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_ref3(v) for v in value]
    return value


def _param3(param: dict[str, Any]) -> dict[str, Any]:
    keys = ("type", "format", "enum", "items", "default", "pattern")
    schema = {k: param[k] for k in keys if k in param}
    if schema.get("type") == "boolean":
        schema.pop("format", None)
    out = {"name": param["name"], "in": param["in"], "required": bool(param.get("required")), "schema": schema}
    if param.get("description"):
        out["description"] = param["description"]
    if param.get("collectionFormat") == "multi":
        out.update(style="form", explode=True)
    return out


def _operation3(op: dict[str, Any], method: Method) -> dict[str, Any]:
    out: dict[str, Any] = {k: op[k] for k in ("summary", "description", "operationId", "tags") if k in op}
    params = [p for p in op["parameters"] if p["in"] != "body"]
    if params:
        out["parameters"] = [_param3(p) for p in params]
    body = next((p for p in op["parameters"] if p["in"] == "body"), None)
    if body is not None:
        if body.get("binary"):
            content = {"application/octet-stream": {"schema": BYTES}}
            description = "The raw bytes (any Content-Type; the server looks at the bytes)."
        else:
            content = {JSON: {"schema": body["schema"]}}
            description = body.get("description", "")
        out["requestBody"] = {
            "required": True,
            "content": content,
            **({"description": description} if description else {}),
        }
    responses: dict[str, Any] = {}
    for code, response in op["responses"].items():
        if response.get("binary"):
            responses[code] = {"description": response["description"], "content": {"image/*": {"schema": BYTES}}}
        else:
            schema = response.get("schema") or {}
            if schema == {"properties": {}} or not schema:
                schema = {"type": "object", "description": "google.protobuf.Empty"}
            responses[code] = {"description": response.get("description", "OK"), "content": {JSON: {"schema": schema}}}
    responses["default"] = ERROR_RESPONSE
    out["responses"] = responses
    audience = method.access.audience
    if audience == access_pb2.AccessRule.PUBLIC:
        out["security"] = []
    else:
        out["security"] = [{"bearerAuth": []}] + ([{"apiKey": []}] if method.access.api_key_scopes else [])
    who = {
        access_pb2.AccessRule.PUBLIC: "anyone",
        access_pb2.AccessRule.USER: "a signed-in user",
        access_pb2.AccessRule.ADMIN: "an admin",
    }
    scopes = ", ".join(access_pb2.Scope.Name(s).lower().replace("_", ".") for s in method.access.api_key_scopes)
    out["x-imgtag-access"] = {"who": who[audience], "apiKeyScopes": scopes.split(", ") if scopes else []}
    return _ref3(out)


def complete(docs: list[dict[str, Any]], contracts: Contracts) -> dict[str, Any]:
    """The generator's per-package Swagger 2.0 documents as one OpenAPI 3.0 document."""
    merged = merge(docs)
    definitions = fix_definitions(merged["definitions"], contracts)
    paths: dict[str, dict[str, Any]] = {}
    for path, ops in sorted(merged["paths"].items()):
        for verb, op in ops.items():
            new_path, fixed = fix_operation(path, verb, op, contracts)
            method = contracts.methods[op["operationId"]]
            paths.setdefault(new_path, {})[verb] = _operation3(fixed, method)
    missing = set(contracts.methods) - {op["operationId"] for ops in paths.values() for op in ops.values()}
    if missing:
        raise ValueError(f"the generator left out {sorted(missing)}")
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "ImgTag API",
            "version": "v1",
            "description": (
                "The REST API of ImgTag, served by the Envoy gateway, which transcodes it to the gRPC "
                "services. Generated from the protos (`google.api.http` rules) by grpc-gateway's "
                "protoc-gen-swagger and completed from the descriptor set (`imgtag openapi`). "
                "Sign in with `POST /v1/auth:login` and send `Authorization: Bearer <accessToken>`, "
                "or send an API key as `X-API-Key` where an operation accepts one. Fields with default "
                "values are always printed; 64-bit integers are strings."
            ),
        },
        "servers": [{"url": "/"}],
        "tags": [{"name": s.rsplit(".", 1)[1]} for s in PUBLIC_SERVICES],
        "paths": dict(sorted(paths.items())),
        "components": {
            "schemas": _ref3(dict(sorted(definitions.items()))),
            "securitySchemes": {
                "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            },
        },
    }


def render(descriptor: Path = DESCRIPTOR_SET) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        docs = run_generator(Path(tmp))
    return json.dumps(complete(docs, Contracts(descriptor)), indent=1, ensure_ascii=False) + "\n"


def write() -> Path:
    OPENAPI_DOC.parent.mkdir(parents=True, exist_ok=True)
    OPENAPI_DOC.write_text(render())
    return OPENAPI_DOC
