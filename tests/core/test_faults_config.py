"""The faults section and the --fault spec: one validation path, clear errors, docs that load."""

from __future__ import annotations

import math
import re
import tomllib
from pathlib import Path

import pytest

from engine.faults.config import KINDS, Fault, parse_fault_spec
from engine.fields import ScenarioError
from engine.scenario import Scenario

DOC = Path(__file__).resolve().parents[2] / "docs" / "faults.md"


def test_the_docs_toml_blocks_load_as_scenarios():
    blocks = re.findall(r"```toml\n(.*?)```", DOC.read_text(), re.S)
    assert blocks
    for block in blocks:
        scenario = Scenario.from_dict(tomllib.loads(block))
        assert scenario.faults


def test_the_docs_name_every_kind():
    text = DOC.read_text()
    for kind in KINDS:
        assert f"| `{kind}` |" in text


def test_spec_set_and_toml_give_the_same_fault():
    spec = parse_fault_spec("slow_node@0.2:node=1,factor=20,duration=0.3")
    from_spec = Scenario.from_dict({"faults": {"f": spec}}).faults["f"]
    from_set = Scenario().with_overrides(["faults.f.kind=slow_node", "faults.f.at=0.2", "faults.f.node=1",
                                          "faults.f.factor=20", "faults.f.duration=0.3"]).faults["f"]
    assert from_spec == from_set == Fault("slow_node", at=0.2, node=1, factor=20.0, duration=0.3)


def test_spec_defaults_and_inf():
    assert parse_fault_spec("redis_crash") == {"kind": "redis_crash"}
    assert parse_fault_spec("app_crash@1:instance=2,duration=inf")["duration"] == math.inf
    assert parse_fault_spec("redis_failover@0.1:force=true")["force"] is True


@pytest.mark.parametrize("spec, words", [
    ("nope@1", "kind must be one of"),
    ("redis_crash@x", "not a number"),
    ("redis_crash:foo=1", "expected key=value"),
    ("redis_crash:node", "expected key=value"),
    ("slow_node@1:node=0", "finite duration"),
    ("redis_crash:node=-1", "node must be in"),
    ("redis_crash@-1", "at must be >= 0"),
    ("slow_node@0:duration=1,factor=0.5", "factor must be >= 1"),
    ("redis_crash:node=1.5", "expected an integer"),
])
def test_bad_specs_are_one_line_errors(spec, words):
    with pytest.raises(ScenarioError) as err:
        parse_fault_spec(spec)
    assert words in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("overrides, words", [
    (["faults.c.node=9"], "has 8 Redis node(s)"),
    (["faults.c.kind=app_crash", "faults.c.instance=4"], "has 4 app instance(s)"),
    (["redis.wait_replicas=1"], "wait_replicas must be in 0..redis.replicas"),
    (["redis.replicas=6"], "replicas must be in 0..5"),
    (["faults.c.kind=mq_outage"], "finite duration"),
])
def test_scenario_refuses_faults_it_cannot_run(overrides, words):
    with pytest.raises(ScenarioError) as err:
        Scenario().with_overrides(overrides)
    assert words in str(err.value)


def test_no_faults_by_default():
    scenario = Scenario()
    assert scenario.faults == {} and scenario.redis.replicas == 0 and scenario.redis.wait_replicas == 0
