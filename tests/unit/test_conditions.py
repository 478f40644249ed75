import pytest

from chaosdemo.api.conditions import CONDITION_TYPES, compute_phase, initial_conditions, set_condition

T0, T1 = "2026-11-24T10:00:00.000Z", "2026-11-24T10:00:05.000Z"


def conds(*changes):
    c = initial_conditions(T0, 1)
    for type_, status, reason in changes:
        c = set_condition(c, type_, status, reason, "", T1, 1)
    return c


def test_every_condition_starts_unknown_at_first_sight():
    c = initial_conditions(T0, 3)
    assert [x.type for x in c] == list(CONDITION_TYPES)
    assert {x.status for x in c} == {"Unknown"}
    assert {x.observed_generation for x in c} == {3}


@pytest.mark.parametrize(
    ("changes", "phase"),
    [
        ((), "Pending"),
        ((("PreflightPassed", "True", "ClusterHealthy"),), "Pending"),
        ((("FaultInjected", "Unknown", "Injecting"),), "Injecting"),
        ((("FaultInjected", "True", "Injected"),), "Detecting"),
        ((("FaultInjected", "True", "Injected"), ("FailureDetected", "True", "InvariantBroken"),
          ("Diagnosed", "Unknown", "Diagnosing")), "Diagnosing"),
        ((("FaultInjected", "True", "Injected"), ("FailureDetected", "True", "InvariantBroken"),
          ("Diagnosed", "True", "RulesDiagnosed")), "Recovering"),
        ((("FaultInjected", "True", "Injected"), ("FailureDetected", "True", "InvariantBroken"),
          ("Diagnosed", "False", "Disabled")), "Recovering"),
        ((("Succeeded", "True", "Succeeded"),), "Succeeded"),
        ((("Succeeded", "True", "DryRun"),), "Succeeded"),
        ((("Succeeded", "False", "Aborted"),), "Aborted"),
        ((("FaultInjected", "True", "Injected"), ("Succeeded", "False", "RecoveryTimeout")), "Failed"),
    ],
)
def test_phase_is_computed_from_the_conditions(changes, phase):
    assert compute_phase(conds(*changes)) == phase


def test_transition_time_moves_only_when_status_changes():
    c = set_condition(initial_conditions(T0, 1), "Recovered", "Unknown", "Waiting", "", T1, 1)
    recovered = next(x for x in c if x.type == "Recovered")
    assert recovered.last_transition_time == T0
    assert recovered.reason == "Waiting"
    c = set_condition(c, "Recovered", "True", "AllInvariantsHold", "", T1, 1)
    assert next(x for x in c if x.type == "Recovered").last_transition_time == T1
