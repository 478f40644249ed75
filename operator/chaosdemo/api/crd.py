"""Generate the ChaosDemo CustomResourceDefinition from the pydantic models.

``crds/chaosdemo.yaml`` (and the chart's copy) is this module's output; a test
regenerates it and fails on any difference, so the schema the API server
enforces and the models the operator reads cannot drift apart.
"""

from __future__ import annotations

import copy
from typing import Any

import yaml

from chaosdemo.api.models import API_GROUP, API_VERSION, KIND, PLURAL, ChaosDemoSpec, ChaosDemoStatus

__all__ = ["build_crd", "openapi_schema", "render_crd"]

# The spec is frozen from creation: the preflight and the target choice read it while the demo is
# Pending, so a change then (dryRun flipped to false) would act on what the operator never checked,
# and a change later would describe a demo other than the one whose timings are recorded. The rule
# reads only the spec: status is no authority (anyone who may patch it could write a phase).
_ROOT_RULES = [
    {
        "rule": "self.spec == oldSelf.spec",
        "message": "spec cannot change once the ChaosDemo exists; create a new ChaosDemo to run another fault",
    }
]

_DROP = {"title", "$defs"}


def _resolve(node: Any, defs: dict[str, Any], *, keep_defaults: bool) -> Any:
    """Turn pydantic's JSON schema into a structural OpenAPI v3 schema."""
    if isinstance(node, list):
        return [_resolve(n, defs, keep_defaults=keep_defaults) for n in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _resolve(merged, defs, keep_defaults=keep_defaults)
    if "anyOf" in node:
        # Optional[X] is X that may be absent; the operator never writes null.
        options = [o for o in node["anyOf"] if o.get("type") != "null"]
        if len(options) != 1:
            raise ValueError(f"unsupported union in schema: {node['anyOf']!r}")
        merged = {**options[0], **{k: v for k, v in node.items() if k != "anyOf"}}
        return _resolve(merged, defs, keep_defaults=keep_defaults)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP or (key == "additionalProperties" and not isinstance(value, dict)):
            continue
        if key == "additionalProperties":  # a map (dict[str, int]): without it, the API server prunes every key
            out[key] = _resolve(value, defs, keep_defaults=keep_defaults)
            continue
        if key == "default" and (value is None or not keep_defaults):
            continue
        if key == "properties":
            out[key] = {
                name: _resolve(prop, defs, keep_defaults=keep_defaults)
                for name, prop in value.items()
            }
        elif key in ("items",):
            out[key] = _resolve(value, defs, keep_defaults=keep_defaults)
        elif key == "const":  # a one-value Literal; the API server knows enum, not const
            out["enum"] = [copy.deepcopy(value)]
        else:
            out[key] = copy.deepcopy(value)
    if out.get("type") == "object" and "properties" in out and keep_defaults:
        required = set(out.get("required", []))
        for name, prop in out["properties"].items():
            # Nested objects default to {} so that their own defaults apply
            # when the user leaves the whole section out.
            if prop.get("type") == "object" and name not in required and "default" not in prop:
                prop["default"] = {}
    if "enum" in out and "type" not in out:
        out["type"] = "string"
    return out


def openapi_schema(model: type[Any], *, keep_defaults: bool) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.get("$defs", {})
    schema = _resolve(raw, defs, keep_defaults=keep_defaults)
    assert isinstance(schema, dict)
    return schema


def _printer_columns() -> list[dict[str, Any]]:
    def col(name: str, path: str, typ: str = "string", priority: int = 0, desc: str = "") -> dict[str, Any]:
        c: dict[str, Any] = {"name": name, "type": typ, "jsonPath": path, "description": desc}
        if priority:
            c["priority"] = priority
        return c

    return [
        col("Cluster", ".spec.cluster.name", desc="TidbCluster under test"),
        col("Action", ".spec.fault.action", desc="Fault injected"),
        col("Target", ".status.target.pod", desc="TiKV pod hit"),
        col("Phase", ".status.phase", desc="Where the demo is"),
        col("Detect(s)", ".status.detectionSeconds", "number", desc="Seconds to detect"),
        col("Recover(s)", ".status.recoverySeconds", "number", desc="Seconds to recover"),
        col("Unavailable(s)", ".status.impact.longestUnavailableSeconds", "number",
            desc="The longest stretch in which no canary statement succeeded"),
        col("Diagnosis", ".status.diagnosis.faultClass", desc="Diagnosed fault class"),
        col("Match", ".status.diagnosis.matchesInjectedFault", "boolean", 1,
            "Diagnosis agrees with the injected fault"),
        col("Engine", ".status.diagnosis.engine", priority=1, desc="claude or rules"),
        col("Detected-By", ".status.detectedBy", priority=1, desc="First invariant to break"),
        col("Message", ".status.message", priority=1, desc="What is happening now"),
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]


def _spec_schema() -> dict[str, Any]:
    spec_schema = openapi_schema(ChaosDemoSpec, keep_defaults=True)
    # A section's default carries its fields' defaults: the API server checks
    # a default against the CEL rules without applying the inner defaults.
    for name, info in ChaosDemoSpec.model_fields.items():
        if info.default_factory is not None:
            value = info.default_factory()  # type: ignore[call-arg]
            spec_schema["properties"][info.alias or name]["default"] = value.model_dump(
                by_alias=True, exclude_none=True, mode="json"
            )
    return spec_schema


def _status_schema() -> dict[str, Any]:
    schema = openapi_schema(ChaosDemoStatus, keep_defaults=False)
    schema["properties"]["violations"]["maxItems"] = 50
    schema["properties"]["kopf"] = {  # written by kopf itself (edge/handlers.py), never by the models
        "type": "object", "x-kubernetes-preserve-unknown-fields": True,
        "description": "kopf's handler progress and the last spec it handled, kept where only the operator may "
        "write (not in annotations, which anyone who may patch the demo can write).",
    }
    return schema


def build_crd() -> dict[str, Any]:
    spec_schema = _spec_schema()
    status_schema = _status_schema()
    root: dict[str, Any] = {
        "type": "object",
        "description": (
            "A ChaosDemo kills one TiKV store of a TidbCluster, detects the failure through PD "
            "and Kubernetes invariants, records a root-cause diagnosis, and measures how long "
            "detection and recovery took."
        ),
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec_schema,
            "status": status_schema,
        },
        "x-kubernetes-validations": _ROOT_RULES,
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{API_GROUP}"},
        "spec": {
            "group": API_GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": "chaosdemo",
                "shortNames": ["cdemo"],
                "categories": ["chaos"],
            },
            "versions": [
                {
                    "name": API_VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": _printer_columns(),
                    "schema": {"openAPIV3Schema": root},
                }
            ],
        },
    }


def render_crd() -> str:
    header = (
        "# Generated from operator/chaosdemo/api/models.py by `chaosdemo crd`; do not edit.\n"
        "# tests/unit/test_crd.py fails when this file and the models disagree.\n"
    )
    return header + yaml.safe_dump(build_crd(), sort_keys=False, width=100)
