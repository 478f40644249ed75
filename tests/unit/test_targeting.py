import random

import pytest

from chaosdemo.api.errors import TargetError
from chaosdemo.api.models import TargetSpec
from chaosdemo.core.targeting import select_target

from .helpers import healthy

SNAP = healthy()


def choose(**spec):
    return select_target(list(SNAP.pods), list(SNAP.stores), TargetSpec(**spec), "basic", "tidb-cluster")


def test_a_named_pod_is_chosen_and_mapped_to_its_store_by_address():
    choice = choose(pod="basic-tikv-1")
    assert choice.pod.name == "basic-tikv-1"
    assert choice.store.id == "2"
    assert choice.selection == "named in spec.target.pod"


def test_a_seed_makes_the_random_choice_reproducible():
    picks = {choose(seed=42).pod.name for _ in range(5)}
    assert len(picks) == 1
    assert picks == {select_target(list(reversed(SNAP.pods)), list(SNAP.stores), TargetSpec(seed=42),
                                   "basic", "tidb-cluster").pod.name}


def test_different_seeds_reach_every_pod():
    assert {choose(seed=s).pod.name for s in range(30)} == {p.name for p in SNAP.pods}


def test_random_choice_without_seed_uses_the_given_generator():
    rng = random.Random(7)
    assert select_target(list(SNAP.pods), list(SNAP.stores), TargetSpec(), "basic", "tidb-cluster", rng).pod.name


def test_a_pod_that_is_not_tikv_of_this_cluster_is_refused_with_the_valid_names():
    with pytest.raises(TargetError) as e:
        choose(pod="basic-pd-0")
    assert e.value.reason == "TargetNotTiKV"
    assert "basic-tikv-0, basic-tikv-1, basic-tikv-2" in e.value.message


def test_a_pod_without_a_store_in_pd_is_refused():
    with pytest.raises(TargetError) as e:
        select_target(list(SNAP.pods), list(SNAP.stores[:2]), TargetSpec(pod="basic-tikv-2"), "basic", "tidb-cluster")
    assert e.value.reason == "TargetHasNoStore"


def test_no_tikv_pods_is_refused():
    with pytest.raises(TargetError):
        select_target([], [], TargetSpec(), "basic", "tidb-cluster")
