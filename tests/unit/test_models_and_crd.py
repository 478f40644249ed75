"""The CRD is generated from the models; this keeps the committed files and the models in step."""

import re
from pathlib import Path

import yaml

from chaosdemo.api.crd import build_crd, render_crd
from chaosdemo.api.models import ChaosDemoSpec, FaultSpec

REPO = Path(__file__).resolve().parents[2]


def test_the_committed_crd_is_what_the_models_generate():
    assert (REPO / "crds" / "chaosdemo.yaml").read_text() == render_crd(), "run: chaosdemo crd > crds/chaosdemo.yaml"


def test_the_charts_crd_is_identical_to_the_top_level_crd():
    chart_crd = REPO / "charts" / "chaosdemo-operator" / "crds" / "chaosdemo.yaml"
    assert chart_crd.read_text() == (REPO / "crds" / "chaosdemo.yaml").read_text()


def test_names_are_the_contracts():
    spec = build_crd()["spec"]
    assert spec["group"] == "chaosdemo.dev" and spec["scope"] == "Namespaced"
    assert spec["names"] == {"kind": "ChaosDemo", "listKind": "ChaosDemoList", "plural": "chaosdemos",
                             "singular": "chaosdemo", "shortNames": ["cdemo"], "categories": ["chaos"]}
    version = spec["versions"][0]
    assert version["name"] == "v1alpha1" and version["subresources"] == {"status": {}}
    columns = [c["name"] for c in version["additionalPrinterColumns"] if not c.get("priority")]
    assert columns == ["Cluster", "Action", "Target", "Phase", "Detect(s)", "Recover(s)", "Unavailable(s)",
                       "Diagnosis", "Age"]


def _walk(schema, path="spec"):
    yield path, schema
    for name, prop in (schema.get("properties") or {}).items():
        yield from _walk(prop, f"{path}.{name}")
    if "items" in schema:
        yield from _walk(schema["items"], f"{path}[]")


def test_every_spec_and_status_field_has_a_description():
    root = build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]
    missing = [p for part in ("spec", "status") for p, s in _walk(root[part], part) if not s.get("description")
               and not p.endswith("[]")]
    assert missing == []


def test_the_schema_defaults_are_the_models_defaults():
    spec = build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    model = ChaosDemoSpec.model_validate({"cluster": {"name": "basic"}})
    assert spec["properties"]["timeouts"]["default"] == model.timeouts.model_dump(by_alias=True)
    assert spec["properties"]["fault"]["properties"]["action"]["default"] == model.fault.action
    assert spec["properties"]["fault"]["properties"]["action"]["enum"] == [
        "pod-delete", "pod-kill", "container-kill", "node-kill", "process-pause", "network-partition", "none"]


def test_a_spec_as_kubectl_returns_it_parses_into_the_model():
    sample = yaml.safe_load((REPO / "deploy" / "samples" / "chaosdemo.yaml").read_text())
    spec = ChaosDemoSpec.model_validate(sample["spec"])
    assert spec.cluster.name == "basic" and spec.fault.effective_grace_period() == 30


def test_pod_kill_always_uses_grace_period_zero():
    assert FaultSpec(action="pod-kill").effective_grace_period() == 0
    assert FaultSpec(action="pod-delete", grace_period_seconds=5).effective_grace_period() == 5


def test_the_readme_example_is_a_valid_spec() -> None:
    example = re.search(r"```yaml\n(.*?)```", (REPO / "README.md").read_text(), re.S)
    assert example, "README.md shows a ChaosDemo in a yaml block"
    doc = yaml.safe_load(example.group(1))
    assert doc["apiVersion"] == "chaosdemo.dev/v1alpha1" and doc["kind"] == "ChaosDemo"
    ChaosDemoSpec.model_validate(doc["spec"])


def test_a_map_in_the_status_keeps_its_keys_through_the_api_server() -> None:
    """A structural schema prunes the keys of an object that declares neither properties nor
    additionalProperties: impact.failures (code -> count) came back empty from the kind tier before this."""
    from chaosdemo.api.crd import build_crd

    status = build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["status"]
    failures = status["properties"]["impact"]["properties"]["failures"]
    assert failures["type"] == "object" and failures["additionalProperties"] == {"type": "integer"}


# The fields of apiextensions.k8s.io/v1 JSONSchemaProps (k8s.io/apiextensions-apiserver
# pkg/apis/apiextensions/v1/types_jsonschema.go); the API server's strict decoding refuses
# any other key, so a CRD holding one cannot even be applied.
_JSON_SCHEMA_PROPS = {
    "id", "$schema", "$ref", "description", "type", "format", "title", "default", "maximum",
    "exclusiveMaximum", "minimum", "exclusiveMinimum", "maxLength", "minLength", "pattern",
    "maxItems", "minItems", "uniqueItems", "multipleOf", "enum", "maxProperties", "minProperties",
    "required", "items", "allOf", "oneOf", "anyOf", "not", "properties", "additionalProperties",
    "patternProperties", "dependencies", "additionalItems", "definitions", "externalDocs",
    "example", "nullable",
}


def test_every_key_of_the_crd_schema_is_one_the_api_server_decodes() -> None:
    """pydantic writes `const` for a one-value Literal; the API server refused the whole CRD for it."""
    from chaosdemo.api.crd import build_crd

    def walk(node: object, path: str) -> list[str]:
        if not isinstance(node, dict):
            return []
        bad = [f"{path}.{k}" for k in node if k not in _JSON_SCHEMA_PROPS and not k.startswith("x-kubernetes-")]
        for key in ("properties", "patternProperties", "definitions"):
            for name, sub in (node.get(key) or {}).items():
                bad += walk(sub, f"{path}.{key}.{name}")
        for key in ("items", "additionalProperties", "not"):
            bad += walk(node.get(key), f"{path}.{key}")
        for key in ("allOf", "oneOf", "anyOf"):
            for i, sub in enumerate(node.get(key) or []):
                bad += walk(sub, f"{path}.{key}[{i}]")
        return bad

    schema = build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert walk(schema, "openAPIV3Schema") == []
    role = schema["properties"]["spec"]["properties"]["target"]["properties"]["role"]
    assert role["enum"] == ["most-leaders", "pd-leader"] and role["type"] == "string"
