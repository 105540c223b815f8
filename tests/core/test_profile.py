"""Calibration profiles: written, read back, applied as scenario overrides (before --set)."""

import json
import tomllib

import pytest

from engine.fields import Dist
from engine.profile import Profile, dumps, known_key, load_profile
from engine.scenario import Scenario, ScenarioError
from sim import profiles
from sim.bench.sweep import sweep_from_dict
from sim.cli import main

VALUES = {
    "network.redis": 2.5e-05,
    "redis.command": 1.5e-06,
    "redis.batch": 9.0e-06,
    "redis.pipeline": 6.5,
    "redis.service.default": {"kind": "lognormal", "mean": 4.4e-06, "cv": 0.3},
    "redis.service.deduct_detail": {"kind": "lognormal", "mean": 7.0e-06, "cv": 0.3},
    "redis.per_item.detail_collect": 1.8e-06,
    "db.commit": {"kind": "lognormal", "mean": 5.0e-04, "cv": 0.3},
    "db.begin": 2.0e-05,
    "network.db": 4.6e-05,
}


def profile_data(scenario=VALUES, measured=None):
    return {
        "profile": {"name": "unit", "date": "2026-12-01T00:00:00Z", "command": "flashsim calibrate --quick"},
        "machine": {"hostname": "h", "cpu": "AMD EPYC \"x\"", "cores": 2},
        "versions": {"python": "3.11", "redis": "7.0.15"},
        "scenario": dict(scenario),
        "measured": dict(measured or {}),
        "raw": {"redis": {"fixed": {"command": 1.5e-06, "runs": [{"depth": 1, "rps": 1.0e4}]}}},
    }


def write(tmp_path, data, name="unit.toml"):
    path = tmp_path / name
    path.write_text(dumps(data), encoding="utf-8")
    return path


def test_round_trip_gives_the_scenario_exactly_those_values(tmp_path):
    path = write(tmp_path, profile_data())
    assert tomllib.loads(path.read_text())["raw"]["redis"]["fixed"]["runs"][0]["rps"] == 1.0e4  # nested tables
    profile = load_profile(path)
    assert profile.name == "unit" and profile.scenario == VALUES
    scenario, skipped = profile.apply(Scenario())
    assert skipped == []
    assert scenario.network.redis == Dist("deterministic", 2.5e-05)
    assert scenario.redis.command == Dist("deterministic", 1.5e-06)
    assert scenario.redis.batch == Dist("deterministic", 9.0e-06)
    assert scenario.redis.pipeline == 6.5
    assert scenario.redis.service["default"] == Dist("lognormal", 4.4e-06, 0.3)
    assert scenario.redis.service["deduct_detail"] == Dist("lognormal", 7.0e-06, 0.3)
    assert scenario.redis.per_item == {"detail_collect": 1.8e-06}
    assert scenario.db.commit == Dist("lognormal", 5.0e-04, 0.3)
    assert scenario.db.begin == Dist("deterministic", 2.0e-05)
    assert scenario.network.db == Dist("deterministic", 4.6e-05)
    # everything else keeps its default
    untouched = Scenario()
    assert scenario.sale == untouched.sale and scenario.workload == untouched.workload
    assert scenario.db.service == untouched.db.service and scenario.redis.nodes == untouched.redis.nodes


def test_nested_tables_mean_the_same_as_dotted_keys():
    nested = Profile.from_dict({"scenario": {"redis": {"command": 1e-6, "service": {"deduct": {"kind": "lognormal",
                                                                                               "mean": 5e-6,
                                                                                               "cv": 0.3}}}}})
    assert nested.scenario == {"redis.command": 1e-6, "redis.service.deduct": {"kind": "lognormal", "mean": 5e-6,
                                                                                "cv": 0.3}}


def test_unknown_keys_are_skipped_and_named(tmp_path):
    data = profile_data(measured={"app.cpu_request": 1e-5, "redis.command": 2e-6})
    data["scenario"]["nonsense.key"] = 3
    profile = load_profile(write(tmp_path, data))
    scenario, skipped = profile.apply(Scenario())
    assert skipped == [key for key in ("nonsense.key", "app.cpu_request") if not known_key(key)]
    assert "nonsense.key" in skipped
    assert scenario.redis.command == Dist("deterministic", 2e-6)  # [measured] applies after [scenario]


def test_bad_values_are_one_line_errors_naming_the_key(tmp_path):
    path = write(tmp_path, profile_data({"redis.pipeline": 0.5}))
    with pytest.raises(ScenarioError, match=r"profile unit .*redis\.pipeline.*must be >= 1") as err:
        load_profile(path).apply(Scenario())
    assert "\n" not in str(err.value)
    path = write(tmp_path, profile_data({"network.redis": "fast"}))
    with pytest.raises(ScenarioError, match="network.redis"):
        load_profile(path).apply(Scenario())
    broken = tmp_path / "broken.toml"
    broken.write_text("[scenario\n")
    with pytest.raises(ScenarioError, match="malformed TOML"):
        load_profile(broken)
    with pytest.raises(ScenarioError, match=r"\[scenario\] must be a table"):
        Profile.from_dict({"scenario": 3})


def test_names_are_looked_up_in_order_and_missing_ones_listed(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    write(first, profile_data({"redis.command": 1e-6}), "m.toml")
    write(second, profile_data({"redis.command": 2e-6}), "m.toml")
    write(second, profile_data(), "other.toml")
    assert load_profile("m", (first, second)).scenario == {"redis.command": 1e-6}
    with pytest.raises(ScenarioError, match="unknown profile 'nope'; known: m, other"):
        load_profile("nope", (first, second))
    with pytest.raises(ScenarioError, match="profile file not found"):
        load_profile(tmp_path / "missing.toml")


def test_known_keys():
    assert known_key("redis.command") and known_key("redis.service.anything") and known_key("db.service.x")
    assert known_key("network.redis") and known_key("redis.per_item.detail_collect")
    assert not known_key("redis.nonsense") and not known_key("network.redis.mean") and not known_key("nope")


def test_cli_applies_the_profile_before_set(tmp_path, capsys):
    data = profile_data(measured={"zz.unknown": 1})
    path = write(tmp_path, data)
    args = ["run", "--set", "workload.buyers=200", "--set", "workload.window=0.01", "--set", "sale.stock=50",
            "--out", str(tmp_path / "out")]
    assert main([*args, "--profile", str(path), "--set", "redis.pipeline=2"]) == 0
    scenario = json.loads((tmp_path / "out" / "config.json").read_text())["scenario"]
    assert scenario["redis"]["pipeline"] == 2  # --set wins over the profile
    assert scenario["redis"]["command"]["mean"] == 1.5e-06
    assert "skipped keys this flashsim does not know: zz.unknown" in capsys.readouterr().err


def test_cli_bad_profile_is_one_line(tmp_path, capsys):
    assert main(["run", "--profile", "no-such-profile"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("flashsim: error: unknown profile 'no-such-profile'") and "\n" not in err


def test_sweep_profile_sits_under_the_sweep_settings(tmp_path):
    profile = load_profile(write(tmp_path, profile_data()))
    sweep = sweep_from_dict({"sweep": {"name": "p", "set": ["redis.pipeline=3"]}, "grid": {"sale.stock": [10]}},
                            tmp_path, profile=profile)
    assert sweep.base.redis.pipeline == 3
    assert sweep.base.redis.command == Dist("deterministic", 1.5e-06)


@pytest.mark.parametrize("name", profiles.shipped())
def test_shipped_profiles_load_and_apply(name):
    profile = profiles.find(name)
    data = profile.data
    for table in ("profile", "machine", "versions", "raw"):
        assert data.get(table), f"{name}: [{table}] missing"
    assert {"hostname", "cpu", "cores"} <= set(data["machine"]) and "redis" in data["versions"]
    assert all(known_key(key) for key in profile.scenario), "a [scenario] key this flashsim does not know"
    scenario, _ = profile.apply(Scenario())
    assert scenario.redis.command.mean == profile.scenario["redis.command"]
    assert scenario.redis.service["deduct"].mean == profile.scenario["redis.service.deduct"]["mean"]


def test_a_profile_is_shipped():
    assert "local-2core" in profiles.shipped()


def test_validate_applies_a_profile_to_every_point(tmp_path, capsys):
    from sim.cli.validate import profile_transform

    assert profile_transform(None) is None
    transform = profile_transform(str(write(tmp_path, profile_data(measured={"zz.unknown": 1}))))
    assert transform(Scenario()).redis.command == Dist("deterministic", 1.5e-06)
    assert transform(Scenario().with_overrides(["sale.stock=7"])).sale.stock == 7
    assert "zz.unknown" in capsys.readouterr().err


def test_repeated_calibrations_take_each_values_median():
    from engine.real.calibrate import median_values

    runs = [{"app.cpu_op": 1e-5, "db.commit_path": "group_commit", "db.commit": {"kind": "lognormal", "mean": 3e-4, "cv": 0.3},
             "app.wake": {"after": 1e-4, "base": 0.0, "per_idle": 0.05, "cap": 2e-4}},
            {"app.cpu_op": 9e-5, "db.commit_path": "group_commit", "db.commit": {"kind": "lognormal", "mean": 9e-4, "cv": 0.3},
             "app.wake": {"after": 1e-4, "base": 1e-5, "per_idle": 0.06, "cap": 1e-4}},
            {"app.cpu_op": 2e-5, "db.commit_path": "binlog_sync", "db.commit": {"kind": "lognormal", "mean": 4e-4, "cv": 0.3},
             "app.wake": {"after": 1e-4, "base": 2e-5, "per_idle": 0.04, "cap": 3e-4}}]
    got = median_values(runs)
    assert got["app.cpu_op"] == 2e-5 and got["db.commit_path"] == "group_commit"  # one noisy run does not decide
    assert got["db.commit"] == {"kind": "lognormal", "mean": 4e-4, "cv": 0.3}
    assert got["app.wake"] == {"after": 1e-4, "base": 1e-5, "per_idle": 0.05, "cap": 2e-4}
