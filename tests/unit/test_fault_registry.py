"""Each fault owns its action: the registry, and what each fault says about itself."""

from typing import get_args

import pytest

from chaosdemo.api.errors import FaultUnavailable
from chaosdemo.api.models import FaultAction, FaultSpec
from chaosdemo.run.faults import FAULTS, fault_for


def make(action: str, **spec: object):
    return fault_for(FaultSpec.model_construct(action=action, **spec), kube=None, docker=None)  # type: ignore[arg-type]


def test_every_action_of_the_api_has_a_fault_and_no_fault_lacks_an_action():
    assert set(FAULTS) == set(get_args(FaultAction))


def test_an_action_no_fault_implements_is_refused_with_the_known_ones():
    with pytest.raises(FaultUnavailable) as e:
        make("disk-fill")
    assert e.value.reason == "UnknownAction"
    assert "pod-delete, pod-kill, container-kill, node-kill" in e.value.message


@pytest.mark.parametrize(("action", "expected", "node_level", "watches", "restore"), [
    ("pod-delete", "pod-failure", False, False, None),
    ("pod-kill", "pod-failure", False, False, None),
    ("container-kill", "container-crash", False, True, None),
    ("node-kill", "node-failure", True, True, 30.0),
    ("process-pause", "process-hang", False, True, 30.0),
    ("network-partition", "network-partition", False, True, 30.0),
])
def test_each_fault_says_what_a_diagnosis_should_call_it_and_what_must_be_watched_and_undone(
        action, expected, node_level, watches, restore):
    f = make(action)
    assert (f.action, f.expected_class, f.node_level, f.watches_node_container, f.undo_after) == (
        action, expected, node_level, watches, restore)


def test_pod_kill_is_pod_delete_with_no_grace_and_node_kill_keeps_its_down_time():
    assert make("pod-kill").grace == 0
    assert make("pod-delete", grace_period_seconds=7).grace == 7
    assert make("node-kill", node_down_seconds=45).undo_after == 45.0


def test_the_gray_faults_are_held_for_their_duration_and_a_partition_keeps_its_scope():
    assert make("process-pause", duration_seconds=12).undo_after == 12.0
    assert make("network-partition").scope == "pd"
    assert make("network-partition", partition_scope="pd-and-peers", duration_seconds=9).scope == "pd-and-peers"
