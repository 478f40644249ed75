import random
from dataclasses import replace

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


# --- issue 32: targets by role, from PD's live view

def leaders(*counts: int):
    return [replace(s, leader_count=n) for s, n in zip(SNAP.stores, counts, strict=True)]


def test_most_leaders_picks_the_store_pd_says_leads_most_and_records_what_pd_said():
    got = select_target(list(SNAP.pods), leaders(3, 9, 4), TargetSpec(role="most-leaders"), "basic", "tidb-cluster")
    assert (got.pod.name, got.store.id) == ("basic-tikv-1", "2")
    assert got.selection.startswith("role most-leaders: store 2 led 9 of the 16 region leaders in PD")
    assert "store 2: 9, store 3: 4, store 1: 3" in got.selection and "tied" not in got.selection


def test_most_leaders_among_equals_takes_the_first_by_name_and_says_it_was_a_tie():
    got = select_target(list(SNAP.pods), leaders(5, 5, 1), TargetSpec(role="most-leaders"), "basic", "tidb-cluster")
    assert got.pod.name == "basic-tikv-0" and "tied with basic-tikv-1, first by name" in got.selection


def test_most_leaders_for_node_kill_ranks_only_pods_on_nodes_that_may_be_killed():
    refused = {SNAP.pods[1].node: "it hosts PD member(s) basic-pd-0: ..."}
    got = select_target(list(SNAP.pods), leaders(3, 9, 4), TargetSpec(role="most-leaders"), "basic", "tidb-cluster",
                        refused_nodes=refused)
    assert got.pod.name == "basic-tikv-2" and "store 3 led 4 of the 7" in got.selection and "not on" in got.selection


def test_most_leaders_with_no_store_in_pd_is_refused():
    with pytest.raises(TargetError) as e:
        select_target(list(SNAP.pods), [], TargetSpec(role="most-leaders"), "basic", "tidb-cluster")
    assert e.value.reason == "TargetHasNoStore"
