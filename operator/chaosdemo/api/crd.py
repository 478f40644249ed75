"""Generate the ChaosDemo and ChaosDemoSuite CustomResourceDefinitions from the pydantic models.

``crds/chaosdemo.yaml`` (and the chart's copy) is this module's output; a test
regenerates it and fails on any difference, so the schema the API server
enforces and the models the operator reads cannot drift apart.
"""

from __future__ import annotations

import copy
from typing import Any

import yaml

from chaosdemo.api.models import API_GROUP, API_VERSION, KIND, PLURAL, ChaosDemoSpec, ChaosDemoStatus
from chaosdemo.api.suite import (
    MAX_NAME,
    SUITE_KIND,
    SUITE_PLURAL,
    ChaosDemoSuiteSpec,
    ChaosDemoSuiteStatus,
    SuiteStep,
)

__all__ = ["build_crd", "build_suite_crd", "openapi_schema", "render_crd"]

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


def _section_defaults(schema: dict[str, Any], model: type[Any]) -> None:
    """A section's default carries its fields' defaults: the API server checks
    a default against the CEL rules without applying the inner defaults."""
    for name, info in model.model_fields.items():
        if info.default_factory is not None and hasattr(value := info.default_factory(), "model_dump"):
            schema["properties"][info.alias or name]["default"] = value.model_dump(
                by_alias=True, exclude_none=True, mode="json"
            )


def _spec_schema(model: type[Any] = ChaosDemoSpec) -> dict[str, Any]:
    spec_schema = openapi_schema(model, keep_defaults=True)
    _section_defaults(spec_schema, model)
    if model is ChaosDemoSuiteSpec:  # each step is a demo's spec: its sections default as a demo's do
        _section_defaults(spec_schema["properties"]["steps"]["items"], SuiteStep)
    return spec_schema


def _status_schema(model: type[Any] = ChaosDemoStatus) -> dict[str, Any]:
    schema = openapi_schema(model, keep_defaults=False)
    if "violations" in schema["properties"]:
        schema["properties"]["violations"]["maxItems"] = 50
    schema["properties"]["kopf"] = {  # written by kopf itself (edge/handlers.py), never by the models
        "type": "object", "x-kubernetes-preserve-unknown-fields": True,
        "description": "kopf's handler progress and the last spec it handled, kept where only the operator may "
        "write (not in annotations, which anyone who may patch the demo can write).",
    }
    return schema


def _crd(kind: str, plural: str, short: str, description: str, spec: dict[str, Any], status: dict[str, Any],
         rules: list[dict[str, str]], columns: list[dict[str, Any]]) -> dict[str, Any]:
    root: dict[str, Any] = {
        "type": "object",
        "description": description,
        "required": ["spec"],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec,
            "status": status,
        },
        "x-kubernetes-validations": rules,
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{API_GROUP}"},
        "spec": {
            "group": API_GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "shortNames": [short],
                "categories": ["chaos"],
            },
            "versions": [
                {
                    "name": API_VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": columns,
                    "schema": {"openAPIV3Schema": root},
                }
            ],
        },
    }


def build_crd() -> dict[str, Any]:
    return _crd(KIND, PLURAL, "cdemo", "A ChaosDemo kills one TiKV store of a TidbCluster, detects the failure "
                "through PD and Kubernetes invariants, records a root-cause diagnosis, and measures how long "
                "detection and recovery took.", _spec_schema(), _status_schema(), _ROOT_RULES, _printer_columns())


# A suite's spec is frozen as a demo's is (its steps were checked against its creator at admission), and its
# name is bounded so that its demos' names (<suite>-r<run>-<step>) fit a label value.
_SUITE_RULES = [
    {"rule": "self.spec == oldSelf.spec",
     "message": "spec cannot change once the ChaosDemoSuite exists; create a new suite"},
    {"rule": f"self.metadata.name.size() <= {MAX_NAME}",
     "message": f"a ChaosDemoSuite's name is at most {MAX_NAME} characters (its demos are <suite>-r<run>-<step>)"},
]


def _suite_columns() -> list[dict[str, Any]]:
    def col(name: str, path: str, typ: str = "string", desc: str = "") -> dict[str, Any]:
        return {"name": name, "type": typ, "jsonPath": path, "description": desc}

    return [
        col("Cluster", ".spec.cluster.name", desc="TidbCluster under test"),
        col("Phase", ".status.phase", desc="Running, Waiting for its schedule, or the verdict"),
        col("Run", ".status.run", "integer", "The current or last run"),
        col("Passed", ".status.totals.passed", "integer", "Steps that succeeded in that run"),
        col("Failed", ".status.totals.failed", "integer", "Steps that failed or were aborted"),
        col("False-Alarms", ".status.totals.falseAlarms", "integer", "Controls on which something was detected"),
        col("Next", ".status.nextRunAt", desc="When the schedule starts the next run"),
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ]


def build_suite_crd() -> dict[str, Any]:
    return _crd(SUITE_KIND, SUITE_PLURAL, "cdsuite", "A ChaosDemoSuite runs ChaosDemos in order on one "
                "TidbCluster, no-fault controls among them, once or on a cron schedule, and gives each run a "
                "verdict.", _spec_schema(ChaosDemoSuiteSpec), _status_schema(ChaosDemoSuiteStatus), _SUITE_RULES,
                _suite_columns())


def render_crd() -> str:
    header = (
        "# Generated from operator/chaosdemo/api/models.py and suite.py by `chaosdemo crd`; do not edit.\n"
        "# tests/unit/test_models_and_crd.py fails when this file and the models disagree.\n"
    )
    return header + yaml.safe_dump_all([build_crd(), build_suite_crd()], sort_keys=False, width=100)
