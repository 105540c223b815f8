import dataclasses
import math

import pytest

from engine.scenario import Dist, Qty, Scenario, ScenarioError, load_scenario, reference_rows


def test_default_is_the_documented_flash_sale():
    s = Scenario()
    assert s.sale.stock == 10_000 and s.workload.buyers == 500_000 and s.workload.window == 2.0
    assert s.strategy == "single_redis"


def test_dict_round_trip():
    s = Scenario().with_overrides(["sale.stock=77", "workload.qty={low=1, high=3}"])
    assert Scenario.from_dict(s.to_dict()) == s


def test_toml_file(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('name = "t"\n[sale]\nstock = 5\n[workload]\nkind = "poisson"\nrate = 10\n'
                    '[redis.service]\ndeduct = {kind = "exponential", mean = 0.001}\n')
    s = load_scenario(path)
    assert s.name == "t" and s.sale.stock == 5 and s.workload.kind == "poisson" and s.workload.rate == 10.0
    assert s.redis.service_of("deduct") == Dist("exponential", 0.001)
    assert s.redis.service_of("init_stock") == Scenario().redis.service["default"]


def test_scalar_shorthands():
    s = Scenario().with_overrides(["network.redis=0.0002", "workload.qty=2", "workload.timeout=inf"])
    assert s.network.redis == Dist("deterministic", 0.0002)
    assert s.workload.qty == Qty(2, 2)
    assert math.isinf(s.workload.timeout)


def test_replace_makes_variations_without_mutation():
    base = Scenario()
    variant = dataclasses.replace(base, sale=dataclasses.replace(base.sale, stock=1))
    assert base.sale.stock == 10_000 and variant.sale.stock == 1
    with pytest.raises(dataclasses.FrozenInstanceError):
        base.sale.stock = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["sale.stok=1"], "unknown key 'sale.stok': valid keys under sale: sku, stock, soldout_flag"),
        (["nope=1"], "unknown key 'nope'"),
        (["sale.stock=-1"], "stock must be >= 0"),
        (["workload.rate=0"], "workload.rate must be > 0"),
        (["workload.kind=storm"], "workload.kind must be one of burst, poisson, closed"),
        (["redis.service.deduct.kind=gamma"], "kind must be one of deterministic, exponential, lognormal"),
        (["sale.stock=lots"], "sale.stock: expected an integer"),
        (["sale.stock.deep=1"], "sale.stock is not a table"),
        (["stock"], "--set expects dotted.key=value"),
        (["workload.qty={low=3, high=1}"], "qty high 1 < low 3"),
        (["redis.nodes=0"], "redis.nodes must be in 1..1024"),
        # absurd sizes (issue #12 item 7): refused before they exhaust memory or never end
        (["workload.buyers=1e99"], "workload.buyers: 1e+99 is out of range (integers are at most 2**53"),
        (["sale.stock=9007199254740993"], "sale.stock: 9.01e+15 is out of range"),
        (["workload.buyers=100000001"], "workload.buyers must be <= 100,000,000 (got 100000001)"),
        (["workload.users=1e7"], "workload.users must be <= 1,000,000"),
        (["db.threads=1000000"], "db.threads must be <= 100,000"),
        (["pipeline.consumers=5000"], "pipeline.consumers must be <= 4,096"),
        (["workload.kind='poisson'", "workload.rate=1e9"], "workload.rate x workload.duration must be <= 100,000,000"),
        (["report.timeline_interval=1e-9"], "report.timeline_interval = 1e-09 s takes 2e+09 samples"),
        (["workload.qty=1e99"], "workload.qty: 1e+99 is out of range"),
        (["workload.qty=1.5"], "workload.qty: expected an integer, got 1.5"),
        (["redis.service.default=1e99"], "redis.service.default: mean must be <= 60 s (got 1e+99)"),
        (["network.redis={kind='exponential', mean=61}"], "network.redis: mean must be <= 60 s"),
        (["app.cpu_wakeup=1e8"], "app.cpu_wakeup must be <= 60 s"),
        (["redis.per_item.detail_collect=2e18"], "redis.per_item.detail_collect must be <= 60 s"),
        (["faults.x={kind='redis_crash', rate=1e99, duration=0.001}"], "faults.x.rate must be <= 1000 faults per second"),
    ],
)
def test_bad_input_is_one_clear_line(overrides, message):
    with pytest.raises(ScenarioError) as err:
        Scenario().with_overrides(overrides)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_sizes_at_the_bounds_are_accepted():
    scenario = Scenario().with_overrides(["workload.buyers=1e8", "sale.stock=9007199254740992", "workload.qty=3.0",
                                          "redis.service.default=60", "workload.users=1000000"])
    assert scenario.workload.buyers == 100_000_000 and isinstance(scenario.workload.buyers, int)
    assert scenario.sale.stock == 2**53 and scenario.workload.qty.low == 3
    assert scenario.redis.service_of("deduct").mean == 60.0


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ScenarioError, match="scenario file not found"):
        load_scenario(tmp_path / "absent.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("stock = [")
    with pytest.raises(ScenarioError, match="malformed TOML"):
        load_scenario(bad)


def test_every_leaf_is_documented():
    rows = reference_rows()
    assert len(rows) >= 15
    undocumented = [key for key, _default, text in rows if not text]
    assert undocumented == []
