"""The generated CRDs: fresh, structural, and they accept the samples and refuse bad CRs.

Schema checks run with jsonschema, unknown fields are refused as with strict field
validation, and the `x-kubernetes-validations` CEL rules run in celpy. Each bad CR must
also be refused by the pydantic model the operator parses it with.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import celpy
import pydantic
import pytest
import yaml

from durable_operator import _models, crdgen
from operator_harness import CRDS, EXAMPLES, ROOT, crd_schema, load_crd, validate_cr

CHART = ROOT / "charts" / "durable-workflows"
PLURALS = ["durableworkflows", "durableexecutions", "durablesignals", "durableschedules"]
SPEC_MODELS = {
    "DurableWorkflow": _models.DurableWorkflowSpec,
    "DurableExecution": _models.DurableExecutionSpec,
    "DurableSignal": _models.DurableSignalSpec,
    "DurableSchedule": _models.DurableScheduleSpec,
}


def samples() -> list[tuple[str, dict[str, Any]]]:
    """Every durable.dev object in examples/k8s and in YAML blocks of the Markdown docs."""
    found: list[tuple[str, dict[str, Any]]] = []
    for path in sorted(EXAMPLES.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                found.append((path.name, doc))
    docs = [*ROOT.glob("*.md"), *ROOT.glob("docs/**/*.md"), *ROOT.glob("charts/**/*.md")]
    for md in sorted(docs):
        for block in re.findall(r"```ya?ml\n(.*?)```", md.read_text(), flags=re.S):
            if "durable.dev/" not in block:
                continue
            for doc in yaml.safe_load_all(block):
                if isinstance(doc, dict) and str(doc.get("apiVersion", "")).startswith("durable.dev/"):
                    found.append((md.name, doc))
    return found


def test_generated_files_are_current() -> None:
    expected = {CRDS / name: text for name, text in crdgen.documents().items()}
    expected.update({CHART / name: text for name, text in crdgen.chart_documents().items()})
    assert len(expected) == 2 * len(crdgen.all_crds())
    for path, text in expected.items():
        assert path.is_file(), f"{path} is missing: run `make crds`"
        assert path.read_text() == text, f"{path} is stale: run `make crds`"
    assert crdgen.main(["--check", str(CRDS), str(CHART)]) == 0
    # Nothing generated is left behind elsewhere (the chart's CRDs moved from crds/ to templates).
    assert not (CHART / "crds").exists()
    assert set((CHART / crdgen.CHART_TEMPLATES).glob("*.yaml")) == {p for p in expected if CHART in p.parents}


def test_both_kopf_peering_crds_are_generated() -> None:
    # Cluster-wide operators peer in a ClusterKopfPeering, namespaced ones (--namespace) in KopfPeerings.
    peerings = {
        doc["spec"]["names"]["kind"]: doc for doc in crdgen.all_crds() if doc["spec"]["group"] == "kopf.dev"
    }
    assert {kind: doc["spec"]["scope"] for kind, doc in peerings.items()} == {
        "ClusterKopfPeering": "Cluster",
        "KopfPeering": "Namespaced",
    }
    assert peerings["KopfPeering"]["metadata"]["name"] == "kopfpeerings.kopf.dev"
    assert peerings["KopfPeering"]["spec"]["versions"] == peerings["ClusterKopfPeering"]["spec"]["versions"]
    for name in ("clusterkopfpeerings.kopf.dev.yaml", "kopfpeerings.kopf.dev.yaml"):
        assert (CRDS / name).is_file() and (CHART / crdgen.CHART_TEMPLATES / name).is_file()


def test_check_mode_reports_a_stale_chart_template(tmp_path: Path) -> None:
    (tmp_path / "Chart.yaml").write_text("apiVersion: v2\nname: x\nversion: 0.1.0\n")
    assert crdgen.main([str(tmp_path)]) == 0
    victim = tmp_path / "templates" / "crds" / "durablesignals.durable.dev.yaml"
    assert "{{- if .Values.crds.enabled }}" in victim.read_text()
    victim.write_text(victim.read_text().replace("maxLength: 256", "maxLength: 257"))
    assert crdgen.main(["--check", str(tmp_path)]) == 1


def test_check_mode_reports_a_stale_file(tmp_path: Path) -> None:
    assert crdgen.main([str(tmp_path)]) == 0
    victim = tmp_path / "durablesignals.durable.dev.yaml"
    victim.write_text(victim.read_text().replace("maxLength: 256", "maxLength: 257"))
    assert crdgen.main(["--check", str(tmp_path)]) == 1


def _nodes(schema: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
    out = [(path, schema)]
    for name, sub in schema.get("properties", {}).items():
        out += _nodes(sub, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        out += _nodes(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        out += _nodes(schema["additionalProperties"], f"{path}{{}}")
    return out


@pytest.mark.parametrize("plural", PLURALS)
def test_schema_is_structural(plural: str) -> None:
    crd = load_crd(plural)
    version = crd["spec"]["versions"][0]
    assert crd["spec"]["scope"] == "Namespaced"
    assert crd["spec"]["group"] == "durable.dev"
    assert version["subresources"] == {"status": {}}
    preserved = []
    for path, node in _nodes(version["schema"]["openAPIV3Schema"]):
        assert (
            "$ref" not in node and "title" not in node and "additionalProperties" not in node
        ) or isinstance(node.get("additionalProperties"), dict), path
        if node.get("x-kubernetes-preserve-unknown-fields"):
            preserved.append(path)
        elif node.get("x-kubernetes-int-or-string"):
            assert [m["type"] for m in node["anyOf"]] == ["integer", "string"], path
        else:
            assert "type" in node, f"{plural}{path} has no type"
        if node.get("type") == "string" and path.startswith(".spec"):
            assert "maxLength" in node or "enum" in node, f"{plural}{path}: strings in spec are capped"
        if node.get("type") == "array":
            assert "maxItems" in node, f"{plural}{path}: arrays are capped"
    # Free-form only where the issue allows it: input, payload, and the (size-capped) result.
    assert {p.rsplit(".", 1)[-1] for p in preserved} <= {"input", "payload", "result"}, preserved


def test_cel_rules_compile() -> None:
    env = celpy.Environment()
    rules = 0
    for plural in PLURALS:
        for _path, node in _nodes(crd_schema(plural)):
            for check in node.get("x-kubernetes-validations", []):
                env.program(env.compile(check["rule"]))
                assert check["message"]
                rules += 1
    assert rules >= 8


def test_execution_printer_columns() -> None:
    cols = load_crd("durableexecutions")["spec"]["versions"][0]["additionalPrinterColumns"]
    shown = [(c["name"].upper(), c["jsonPath"]) for c in cols if not c.get("priority")]
    assert shown == [
        ("WORKFLOW", ".spec.workflowRef"),
        ("PHASE", ".status.phase"),
        ("STEP", ".status.currentStep"),
        ("AGE", ".metadata.creationTimestamp"),
    ]


def test_samples_exist_for_every_kind() -> None:
    kinds = {doc["kind"] for _, doc in samples()}
    assert kinds == set(SPEC_MODELS)


@pytest.mark.parametrize(("source", "doc"), samples(), ids=lambda v: v if isinstance(v, str) else v["kind"])
def test_sample_is_valid(source: str, doc: dict[str, Any]) -> None:
    assert validate_cr(doc) == [], source
    SPEC_MODELS[doc["kind"]].model_validate(doc["spec"])


def _schedule(**spec: Any) -> dict[str, Any]:
    base = {"workflowRef": "process-order", "cron": "*/5 * * * *"}
    base.update(spec)
    return {
        "apiVersion": "durable.dev/v1alpha1",
        "kind": "DurableSchedule",
        "metadata": {"name": "s"},
        "spec": {k: v for k, v in base.items() if v is not None},
    }


def _signal(**spec: Any) -> dict[str, Any]:
    base = {"executionRef": "order-1001", "signal": "orders.approved", "payload": {"ok": True}}
    base.update(spec)
    return {
        "apiVersion": "durable.dev/v1alpha1",
        "kind": "DurableSignal",
        "metadata": {"name": "g"},
        "spec": {k: v for k, v in base.items() if v is not None},
    }


def _execution(**spec: Any) -> dict[str, Any]:
    base = {"workflowRef": "process-order", "input": {"id": 1}}
    base.update(spec)
    return {
        "apiVersion": "durable.dev/v1alpha1",
        "kind": "DurableExecution",
        "metadata": {"name": "e"},
        "spec": {k: v for k, v in base.items() if v is not None},
    }


def _workflow(**spec: Any) -> dict[str, Any]:
    base = {"workflowId": "app.workflows.processOrder"}
    base.update(spec)
    return {
        "apiVersion": "durable.dev/v1alpha1",
        "kind": "DurableWorkflow",
        "metadata": {"name": "w"},
        "spec": base,
    }


BAD: list[tuple[str, dict[str, Any], str]] = [
    ("cron and interval", _schedule(interval="5m"), "exactly one of cron or interval"),
    ("neither cron nor interval", _schedule(cron=None), "exactly one of cron or interval"),
    ("cron of words", _schedule(cron="every monday"), "does not match"),
    ("cron with too few fields", _schedule(cron="* * *"), "does not match"),
    ("interval not a duration", _schedule(cron=None, interval="five minutes"), "does not match"),
    ("interval below a second", _schedule(cron=None, interval="500ms"), "interval must be at least 1s"),
    ("unknown concurrency policy", _schedule(concurrencyPolicy="Sometimes"), "is not one of"),
    ("negative history limit", _schedule(successfulExecutionsHistoryLimit=-1), "minimum"),
    ("unknown schedule field", _schedule(every="5m"), 'unknown field "every"'),
    ("signal to ref and id", _signal(executionId="abc"), "exactly one of executionRef or executionId"),
    ("signal to nobody", _signal(executionRef=None), "exactly one of executionRef or executionId"),
    ("signal without a name", _signal(signal=None), "'signal' is a required property"),
    (
        "oversized payload",
        _signal(payload={f"k{i}": i for i in range(_models.MAX_FREEFORM_PROPERTIES + 1)}),
        "too many properties",
    ),
    ("payload not an object", _signal(payload=[1, 2]), "is not of type 'object'"),
    ("unknown signal field", _signal(delay=5), 'unknown field "delay"'),
    ("execution without workflowRef", _execution(workflowRef=None), "'workflowRef' is a required property"),
    ("execution with bad ref name", _execution(workflowRef="Process_Order"), "does not match"),
    ("attach with input", _execution(executionId="abc"), "input cannot be given with executionId"),
    ("negative ttl", _execution(ttlSecondsAfterFinished=-1), "minimum"),
    ("unknown execution field", _execution(retries=3), 'unknown field "retries"'),
    ("unknown mirror policy", _workflow(mirror="some"), "is not one of"),
    ("worker without image", _workflow(worker={"module": "app.flows"}), "'image' is a required property"),
    (
        "worker module not a module",
        _workflow(worker={"image": "i", "module": "app/flows.py"}),
        "does not match",
    ),
    ("zero concurrency", _workflow(worker={"image": "i", "module": "m", "concurrency": 0}), "minimum"),
    (
        "env value and valueFrom",
        _workflow(
            worker={
                "image": "i",
                "module": "m",
                "env": [
                    {"name": "A", "value": "1", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}
                ],
            }
        ),
        "value and valueFrom are mutually exclusive",
    ),
    (
        "unknown nested field",
        _workflow(worker={"image": "i", "module": "m", "cpu": 2}),
        'unknown field "cpu"',
    ),
]


@pytest.mark.parametrize(("case", "doc", "reason"), BAD, ids=[b[0] for b in BAD])
def test_bad_cr_is_refused(case: str, doc: dict[str, Any], reason: str) -> None:
    errors = validate_cr(doc)
    assert errors, f"{case}: the schema accepted it"
    assert any(reason in e for e in errors), errors
    with pytest.raises(pydantic.ValidationError):
        SPEC_MODELS[doc["kind"]].model_validate(doc["spec"])


def test_payload_over_the_byte_cap_is_refused_by_the_model() -> None:
    big = {"blob": "x" * (_models.MAX_PAYLOAD_BYTES + 1)}
    assert validate_cr(_signal(payload=big)) == []  # one key: the schema cannot count bytes
    with pytest.raises(pydantic.ValidationError, match=r"payload is \d+ bytes; the limit is"):
        _models.DurableSignalSpec.model_validate(_signal(payload=big)["spec"])


def test_cron_that_matches_the_pattern_but_does_not_parse() -> None:
    doc = _schedule(cron="61 * * * *")
    assert validate_cr(doc) == []
    with pytest.raises(pydantic.ValidationError, match="not a valid cron expression"):
        _models.DurableScheduleSpec.model_validate(doc["spec"])


def test_unknown_time_zone_is_refused_by_the_model() -> None:
    with pytest.raises(pydantic.ValidationError, match="not a known IANA time zone"):
        _models.DurableScheduleSpec.model_validate(_schedule(timeZone="Mars/Olympus")["spec"])


def test_transition_rules() -> None:
    old = _execution()
    renamed = copy.deepcopy(old)
    renamed["spec"]["workflowRef"] = "another"
    assert any("is immutable" in e for e in validate_cr(renamed, old))
    new_input = copy.deepcopy(old)
    new_input["spec"]["input"] = {"id": 2}
    assert any("input is immutable" in e for e in validate_cr(new_input, old))
    ttl = copy.deepcopy(old)
    ttl["spec"]["ttlSecondsAfterFinished"] = 60
    ttl["spec"]["cancelOnDelete"] = False
    assert validate_cr(ttl, old) == []
    sig = _signal()
    changed = copy.deepcopy(sig)
    changed["spec"]["payload"] = {"ok": False}
    assert any("a signal is immutable" in e for e in validate_cr(changed, sig))


def test_status_round_trips_through_the_schema() -> None:
    status = _models.DurableExecutionStatus(
        execution_id="e1",
        phase=_models.Phase.FAILED,
        reason="WorkflowFailed",
        message="step charge failed: card declined",
        result={"any": ["json", 1]},
        error=_models.ExecutionError(type="StepFailedError", message="card declined"),
        conditions=[
            _models.Condition(
                type="Ready", status=_models.ConditionStatus.FALSE, reason="Failed", last_transition_time="x"
            )
        ],
    ).to_k8s()
    doc = _execution()
    doc["status"] = status
    assert validate_cr(doc) == []
