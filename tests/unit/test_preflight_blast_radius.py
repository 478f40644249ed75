"""The blast-radius check: never a fault that takes a region below quorum."""

import pytest

from chaosdemo.run.preflight import quorum_after_losing_one


@pytest.mark.parametrize(("replicas", "up"), [(3, 3), (3, 4), (5, 5), (5, 7)])
def test_a_store_can_go_when_every_region_keeps_its_quorum(replicas, up):
    assert quorum_after_losing_one(replicas, up) == ""


@pytest.mark.parametrize(("replicas", "up", "words"), [
    (1, 3, "losing the target's store leaves 0, below the quorum of 1"),
    (2, 3, "losing the target's store leaves 1, below the quorum of 2"),
    (3, 2, "only 2 TiKV stores are Up for 3 replicas"),
    (5, 4, "regions are already missing peers"),
])
def test_a_fault_that_could_take_a_region_below_quorum_is_refused_with_the_reason(replicas, up, words):
    assert words in quorum_after_losing_one(replicas, up)
