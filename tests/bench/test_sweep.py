"""Sweep definitions: loading, validation, point x replication expansion, seeds."""

from pathlib import Path

import pytest

from engine.scenario import Scenario, ScenarioError
from sim.bench import expand, load_sweep, run_seed, sweep_from_dict
from sim.bench.sweep import point_scenario, toml_value

SWEEPS = Path(__file__).resolve().parents[2] / "experiments" / "sweeps"


def small(**head):
    return {"sweep": {"name": "t", "seed": 5, "replications": 2, **head},
            "base": {"sale": {"stock": 300}, "workload": {"kind": "poisson", "duration": 0.05}},
            "grid": {"workload.rate": [5000, 20000], "redis.nodes": [1, 2]}}


def test_expansion_is_grid_times_points_times_strategies_times_replications():
    data = small(strategies=["single_redis", "db_conditional"])
    data["points"] = [{"sale.stock": 100}, {"sale": {"stock": 200}}]
    sweep = sweep_from_dict(data)
    assert len(sweep.points) == 2 * 2 * 2
    specs = expand(sweep)
    assert len(specs) == 8 * 2 * 2
    assert len({s.key for s in specs}) == len(specs)
    first = specs[0]
    assert dict(first.params) == {"sale.stock": 100, "workload.rate": 5000, "redis.nodes": 1}
    assert first.scenario.sale.stock == 100 and first.scenario.workload.rate == 5000.0
    assert first.scenario.workload.duration == 0.05  # the base still applies
    assert [s.replication for s in specs[:2]] == [0, 1]
    assert {s.strategy for s in specs} == {"single_redis", "db_conditional"}


def test_seeds_depend_on_sweep_seed_point_and_replication_only():
    sweep = sweep_from_dict(small(strategies=["single_redis", "db_conditional"]))
    specs = expand(sweep)
    by_point = {}
    for spec in specs:
        by_point.setdefault((spec.params, spec.replication), set()).add(spec.seed)
    # common random numbers: every strategy at a point and replication gets the same seed
    assert all(len(seeds) == 1 for seeds in by_point.values())
    # and different points / replications get different seeds
    assert len({next(iter(s)) for s in by_point.values()}) == len(by_point)
    # stable: recomputing, reordering or growing the sweep never changes an existing seed
    again = expand(sweep_from_dict(small(strategies=["db_conditional", "single_redis"])))
    assert {(s.params, s.replication): s.seed for s in again} == {(s.params, s.replication): s.seed for s in specs}
    grown = small()
    grown["grid"]["workload.rate"] = [1000, 5000, 20000]
    seeds = {(s.params, s.replication): s.seed for s in expand(sweep_from_dict(grown))}
    for spec in specs:
        assert seeds[(spec.params, spec.replication)] == spec.seed
    assert run_seed(6, specs[0].params, 0) != run_seed(5, specs[0].params, 0)
    assert min(s.seed for s in specs) >= 0 and max(s.seed for s in specs) < 2**63


def test_extra_replications_keep_the_first_ones():
    sweep = sweep_from_dict(small())
    base = expand(sweep)
    pid = base[0].point_id
    more = expand(sweep, {pid: 5})
    assert len(more) == len(base) + 3
    assert [s.key for s in more if s.point_id == pid][:2] == [s.key for s in base if s.point_id == pid]


@pytest.mark.parametrize("change, message", [
    ({"grid": {"workload.rat": [1]}}, "unknown key 'workload.rat'"),
    ({"sweep": {"name": "t", "strategies": ["nope"]}}, "unknown strategy 'nope'"),
    ({"sweep": {"name": "t", "replications": 0}}, "sweep.replications must be >= 1"),
    ({"sweep": {"name": "t", "record": ["video"]}}, "unknown table 'video'"),
    ({"sweep": {"name": "t", "speed": 3}}, "unknown key(s) under sweep: speed"),
    ({"grid": {"workload.rate": []}}, "grid.workload.rate must be a non-empty list"),
    ({"grid": {"strategy": ["single_redis"]}}, "vary strategies with sweep.strategies"),
    ({"grid": {"sale.stock": [-1]}}, "stock must be >= 0"),
    ({"extra": {}}, "unknown table(s) extra"),
    ({"sweep": {"name": "t", "adaptive": {"metric": "goodput", "half_width": 0}}}, "half_width must be > 0"),
])
def test_bad_sweeps_say_what_is_wrong_in_one_line(change, message):
    data = small()
    data.update(change)
    with pytest.raises(ScenarioError) as err:
        sweep_from_dict(data)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_dotted_keys_may_be_written_unquoted(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('[sweep]\nname = "x"\n[grid]\nworkload.rate = [1000, 2000]\n'
                    '[[points]]\nredis.nodes = 2\nnetwork.redis = {kind = "exponential", mean = 0.0002}\n')
    sweep = load_sweep(path)
    assert [dict(p) for p in sweep.points] == [
        {"redis.nodes": 2, "network.redis": {"kind": "exponential", "mean": 0.0002}, "workload.rate": rate}
        for rate in (1000, 2000)]
    assert expand(sweep)[0].scenario.network.redis.kind == "exponential"


def test_loading_a_file_names_it_in_errors(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[sweep]\nname = "x"\n[grid]\n"sale.stok" = [1]\n')
    with pytest.raises(ScenarioError, match=r"bad\.toml: unknown key 'sale\.stok'"):
        load_sweep(bad)
    with pytest.raises(ScenarioError, match="sweep file not found"):
        load_sweep(tmp_path / "missing.toml")


def test_base_scenario_file_relative_to_the_sweep(tmp_path):
    (tmp_path / "scenario.toml").write_text("[sale]\nstock = 1234\n")
    (tmp_path / "s.toml").write_text('[sweep]\nname = "x"\nscenario = "scenario.toml"\nset = ["redis.nodes=3"]\n'
                                     '[base.workload]\nbuyers = 10\n')
    sweep = load_sweep(tmp_path / "s.toml")
    assert (sweep.base.sale.stock, sweep.base.redis.nodes, sweep.base.workload.buyers) == (1234, 3, 10)
    assert sweep.points == ((),)


def test_values_round_trip_through_overrides():
    base = Scenario()
    for key, value in [("workload.timeout", float("inf")), ("sale.sku", 'a"b'), ("sale.soldout_flag", False),
                       ("network.redis", {"kind": "exponential", "mean": 0.0002}), ("workload.qty", 3)]:
        scenario = point_scenario(base, ((key, value),))
        section, name = key.split(".")
        got = getattr(getattr(scenario, section), name)
        if isinstance(value, dict):
            assert (got.kind, got.mean) == (value["kind"], value["mean"])
        elif key == "workload.qty":
            assert (got.low, got.high) == (3, 3)
        else:
            assert got == value, toml_value(value)


def test_fingerprint_ignores_grid_and_replications_but_not_the_base():
    a = sweep_from_dict(small())
    grown = small(replications=5)
    grown["grid"]["redis.nodes"] = [1, 2, 4]
    assert sweep_from_dict(grown).fingerprint == a.fingerprint
    other = small()
    other["base"]["sale"]["stock"] = 301
    assert sweep_from_dict(other).fingerprint != a.fingerprint


@pytest.mark.parametrize("path", sorted(SWEEPS.glob("*.toml")), ids=lambda p: p.name)
def test_example_sweeps_load(path):
    sweep = load_sweep(path)
    assert len(expand(sweep)) >= 1


def test_a_sweep_may_be_a_python_file(tmp_path):
    sweep = load_sweep(SWEEPS / "sharded_nodes.py")
    assert [dict(p)["redis.nodes"] for p in sweep.points] == [1, 2, 4, 8, 16]
    assert sweep.base.pipeline.enabled is False and sweep.source.endswith("sharded_nodes.py")
    bad = tmp_path / "bad.py"
    bad.write_text("SWEEP = 3\n")
    with pytest.raises(ScenarioError, match="define SWEEP"):
        load_sweep(bad)
    broken = tmp_path / "broken.py"
    broken.write_text("SWEEP = {'sweep': {'name': 'x'}, 'grid': {'sale.stok': [1]}}\n")
    with pytest.raises(ScenarioError, match=r"broken\.py: unknown key 'sale\.stok'"):
        load_sweep(broken)
    failing = tmp_path / "failing.py"
    failing.write_text("1 / 0\n")
    with pytest.raises(ScenarioError, match="ZeroDivisionError"):
        load_sweep(failing)
