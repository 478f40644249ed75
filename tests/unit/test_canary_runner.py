"""The SQL canary's runner (run/canary.py) through aiomysql and the real MySQL protocol, against the local
tier's SIMULATED TiDB (proving/.../simulation/tidb_sql.py: the canary's statements over mysql-mimic, its
stores' states set by the test). What the runner does with what TiDB answers is real; the answers are the
simulation's."""

import asyncio

import pytest

from chaosdemo.api.errors import PreflightFailed
from chaosdemo.api.models import CanarySpec
from chaosdemo.clients.sql import SqlPool, SqlTarget
from chaosdemo.core.canary import TIMEOUT, Budget, impact
from chaosdemo.core.canary_plan import Plan, database_for, parse_regions
from chaosdemo.run.canary import Canary, pool_size
from chaosdemo_local.simulation.tidb_sql import SimulatedTiDB, TiDBModel

UID = "0a1b2c3d-4e5f-6789-abcd-ef0123456789"


class Stores:
    def __init__(self) -> None:
        self.state = {"1": "serving", "4": "serving", "5": "serving"}

    def __call__(self) -> dict[str, str]:
        return dict(self.state)


async def served(model: TiDBModel, **users: str):
    model.users.update(users)
    server = SimulatedTiDB(model)
    return server, await server.start()


def canary(port: int, *, rate: int = 40, timeout: float = 0.6, user: str = "root", password: str = "",
           owner: str = UID) -> Canary:
    spec = CanarySpec(enabled=True, rate_per_second=rate, accounts=30, statement_timeout_seconds=timeout)
    pool = SqlPool(SqlTarget("127.0.0.1", port, user, password), size=pool_size(spec), timeout=timeout)
    return Canary(pool, spec, Plan(database_for(UID), 30), owner, seed=7)


def test_the_layout_is_read_from_show_table_regions_as_tidb_gives_it() -> None:
    rows = [(9, "t_111_r_998", "t_112_r_10", 1, 4), (10, "t_112_r_10", "t_112_r_20", 2, 5),
            (11, "t_112_r_20", "t_113_", 3, 1)]
    layout = parse_regions(["REGION_ID", "START_KEY", "END_KEY", "LEADER_ID", "LEADER_STORE_ID"], rows)
    assert layout.starts == (0, 10, 20) and layout.leaders == ("4", "5", "1")
    assert layout.part_of(0) == 0 and layout.part_of(15) == 1 and layout.part_of(29) == 2
    assert layout.share_led_by("5", 30) == pytest.approx(1 / 3)
    with pytest.raises(ValueError):
        Plan("mysql", 30)
    assert database_for("AB-12") == "chaosdemo_canary_ab12"


async def test_a_paused_leader_costs_its_rows_until_the_election_and_the_bank_holds() -> None:
    stores = Stores()
    model = TiDBModel(stores, election_seconds=1.5)
    server, port = await served(model)
    c = canary(port)
    try:
        await c.prepare(stores=3)
        assert c.layout is not None and sorted(set(c.layout.leaders)) == ["1", "4", "5"]
        c.start(0.0)
        await asyncio.sleep(2.2)
        injected = c.now()
        stores.state["4"] = "stopped"
        led = c.layout.led_by("4")
        await asyncio.sleep(4.5)
        await c.stop()
        b = Budget(10, 0.5, None, 60)
        i = impact(c.tally, baseline=(0, int(injected)), injected=injected, now=c.now(), budget=b, window=1, led=led)
        assert i.baseline_throughput is not None and i.baseline_throughput >= 30
        assert set(i.failures) == {TIMEOUT}, "a stopped leader answers nothing: the canary gives up"
        assert i.affected[1] > 0 and i.others[1] == 0 and i.others[0] > 0, "only the paused store's rows failed"
        assert i.affected[0] > 0, "after the election its rows were served again by another store"
        assert i.bank_total_held is True
        assert "4" not in (await c.read_layout()).leaders, "the lead moved"
    finally:
        assert await c.drop()
        await server.close()
    assert model.databases == {}, "the canary dropped its own database"


def test_rows_kept_as_ranges_name_the_same_parts_after_tidb_splits_a_region() -> None:
    cols = ["REGION_ID", "START_KEY", "END_KEY", "LEADER_ID", "LEADER_STORE_ID"]
    before = parse_regions(cols, [(1, "t_112_", "t_112_r_10", 1, 4), (2, "t_112_r_10", "t_112_r_20", 2, 5),
                                  (3, "t_112_r_20", "t_113_", 3, 1)])
    kept = before.ranges_led_by("5", 30)
    assert kept == [(10, 20)] and before.parts_within(kept) == before.led_by("5") == [1]
    after = parse_regions(cols, [(1, "t_112_", "t_112_r_10", 1, 4), (2, "t_112_r_10", "t_112_r_15", 2, 1),
                                 (4, "t_112_r_15", "t_112_r_20", 4, 4), (3, "t_112_r_20", "t_113_", 3, 1)])
    assert after.parts_within(kept) == [1, 2], "both halves of the region store 5 led, whoever leads them now"
    assert after.led_by("5") == [], "read again, the store that was broken leads nothing"


async def test_a_canary_resumed_after_the_election_judges_the_rows_the_broken_store_led_at_the_injection() -> None:
    """The operator dies right after pausing store 4 and its successor resumes the canary once the election moved
    the lead: the rows are the ones recorded at the injection, not the ones store 4 leads now (none)."""
    stores = Stores()
    model = TiDBModel(stores, election_seconds=0.5)
    server, port = await served(model)
    first, second = canary(port), canary(port)
    try:
        await first.prepare(stores=3)
        await first.mark_injected("4")
        stores.state["4"] = "stopped"
        assert first.led and first.ranges, "store 4 led a part when it was paused"
        await first.pool.aclose()  # the operator died; its database stays for its successor
        deadline = asyncio.get_running_loop().time() + 10
        while "4" in (layout := await second.read_layout()).leaders:
            assert asyncio.get_running_loop().time() < deadline, "no election"
            await asyncio.sleep(0.1)
        assert layout.led_by("4") == [], "read now, store 4 leads nothing: its stalled rows would count as others'"
        await second.prepare(stores=3)
        assert second.resumed
        second.remember(first.ranges, first.share)
        assert second.led == first.led and second.share == first.share
        second.remember([(-5, 10**6)], None)
        assert second.ranges == ((0, 30),), "ranges read back from a status are bounded to the table"
    finally:
        assert await second.drop()
        await server.close()


async def test_a_database_the_canary_did_not_create_for_this_demo_is_refused_and_kept() -> None:
    model = TiDBModel(Stores())
    server, port = await served(model)
    try:
        first = canary(port, owner="someone-else")
        await first.prepare(stores=3)
        await first.pool.aclose()
        second = canary(port)
        with pytest.raises(PreflightFailed, match="exists and the canary did not create it") as e:
            await second.prepare(stores=3)
        assert e.value.reason == "CanaryRefused"
        await second.pool.aclose()
        assert database_for(UID) in model.databases, "never touched"
        again = canary(port, owner="someone-else")
        await again.prepare(stores=3)
        assert again.resumed, "its own database is taken back after a restart"
        await again.drop()
    finally:
        await server.close()


async def test_a_wrong_password_and_an_unreachable_tidb_are_refused_with_how_to_fix_them() -> None:
    model = TiDBModel(Stores())
    server, port = await served(model, canary="s3cret")
    try:
        wrong = canary(port, user="canary", password="nope")
        with pytest.raises(PreflightFailed, match=r"1045.*refused the canary's user and password") as e:
            await wrong.prepare(stores=3)
        assert e.value.reason == "CanaryUnavailable" and "spec.canary.enabled: false" in e.value.message
        right = canary(port, user="canary", password="s3cret")
        await right.prepare(stores=3)
        await right.drop()
    finally:
        await server.close()
    gone = canary(port)
    with pytest.raises(PreflightFailed, match="MySQL port"):
        await gone.prepare(stores=3)


async def test_a_deleted_demo_drops_only_the_database_its_canary_made() -> None:
    from types import SimpleNamespace

    from chaosdemo.api.settings import Settings
    from chaosdemo.run.felt import drop_left

    model = TiDBModel(Stores())
    server, port = await served(model)
    deps = SimpleNamespace(settings=Settings(tidb_address_template=f"127.0.0.1:{port}"),
                           sql=lambda target, size, timeout: SqlPool(target, size=size, timeout=timeout))
    spec = CanarySpec(enabled=True, accounts=30)
    try:
        other = canary(port, owner="someone-else")
        await other.prepare(stores=3)
        await other.pool.aclose()
        said = await drop_left(deps, spec, "basic", "tidb-cluster", UID)  # type: ignore[arg-type]
        assert said == "no SQL canary database left" and database_for(UID) in model.databases, "not ours: kept"
        model.databases.clear()
        left = canary(port)
        await left.prepare(stores=3)
        await left.pool.aclose()
        said = await drop_left(deps, spec, "basic", "tidb-cluster", UID)  # type: ignore[arg-type]
        assert said == "dropped the SQL canary's database" and model.databases == {}
    finally:
        await server.close()
    said = await drop_left(deps, spec, "basic", "tidb-cluster", UID)  # type: ignore[arg-type]
    assert said.startswith("the SQL canary's database could not be checked")


def test_a_slow_statements_part_is_told_as_its_rows_and_their_leader() -> None:
    from chaosdemo.run.felt import _rows_where

    c = canary(1)
    assert _rows_where(c) is None, "no layout read: no rows to name"
    c.layout = parse_regions(["REGION_ID", "START_KEY", "END_KEY", "LEADER_ID", "LEADER_STORE_ID"], [
        (2, "t_99_", "t_99_r_10", 1, "1"), (3, "t_99_r_10", "t_99_r_20", 2, "4"), (4, "t_99_r_20", "", 3, "5" * 99)])
    where = _rows_where(c)
    assert where is not None
    assert where(1) == "rows 10-19, led by store 4 when last read"
    assert where(2) == f"rows 20-29, led by store {'5' * 20} when last read", "TiDB's word, bounded"
    assert where(7) == "part 7 of the table"
