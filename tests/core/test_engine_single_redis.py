"""The single-Redis strategy as an op sequence, driven by hand: no SimPy, no Redis."""

import numpy as np
import pytest

from engine.counter import twins as stock
from engine.counter.strategy import SingleRedis
from engine.model import Outcome, Request
from engine.ops import Eval
from engine.scenario import Scenario
from engine.testing import drive


def make(stock_units=10, **sale):
    # the plain deduct path; the detail-writing variant is tested in tests/pipeline
    scenario = Scenario().with_overrides([f"sale.stock={stock_units}", "pipeline.enabled=false",
                                          *[f"sale.{k}={v}" for k, v in sale.items()]])
    return SingleRedis(scenario, np.random.default_rng(0), namespace="t")




def test_setup_creates_counters_once():
    s = make(10)
    ops, _ = drive(s.setup(), [1])
    assert ops == [Eval("init_stock", ("t:stock:{sku42}", "t:sold:{sku42}"), (10,))]
    with pytest.raises(RuntimeError, match="already exist"):
        drive(make(10).setup(), [0])


def test_deduct_is_one_atomic_script():
    s = make(10)
    ops, outcome = drive(s.deduct(Request(0, 2, 0.0)), [8])
    assert ops == [Eval("deduct", ("t:stock:{sku42}", "t:sold:{sku42}"), (2,))]
    assert outcome is Outcome.OK


@pytest.mark.parametrize(("reply", "outcome"), [(stock.SOLD_OUT, Outcome.SOLD_OUT), (stock.BAD_QTY, Outcome.ERROR),
                                                (stock.NO_STOCK_KEY, Outcome.ERROR)])
def test_deduct_replies(reply, outcome):
    assert drive(make().deduct(Request(0, 1, 0.0)), [reply])[1] is outcome


def test_soldout_flag_refuses_locally_after_last_unit():
    s = make(1)
    assert drive(s.deduct(Request(0, 1, 0.0)), [0])[1] is Outcome.OK
    ops, outcome = drive(s.deduct(Request(1, 1, 0.0)), [])
    assert ops == [] and outcome is Outcome.SOLD_OUT


def test_soldout_flag_not_set_by_a_large_refusal():
    s = make(5)
    drive(s.deduct(Request(0, 3, 0.0)), [stock.SOLD_OUT])  # 3 refused: one unit may remain
    ops, _ = drive(s.deduct(Request(1, 1, 0.0)), [0])
    assert len(ops) == 1


def test_soldout_flag_can_be_switched_off():
    s = make(1, soldout_flag="false")
    drive(s.deduct(Request(0, 1, 0.0)), [0])
    ops, outcome = drive(s.deduct(Request(1, 1, 0.0)), [stock.SOLD_OUT])
    assert len(ops) == 1 and outcome is Outcome.SOLD_OUT


def test_twin_semantics():
    store = {}
    keys = ("s", "d")
    assert stock.init_stock(store, keys, (3,)) == 1
    assert stock.init_stock(store, keys, (9,)) == 0 and store["s"] == 3
    assert stock.deduct(store, keys, (2,)) == 1
    assert stock.deduct(store, keys, (2,)) == stock.SOLD_OUT
    assert stock.deduct(store, keys, (0,)) == stock.BAD_QTY
    assert stock.deduct(store, ("missing", "d"), (1,)) == stock.NO_STOCK_KEY
    assert store == {"s": 1, "d": 2}


def test_inventory_and_violations():
    s = make(10)
    inv = s.inventory({"t:stock:{sku42}": 4, "t:sold:{sku42}": 6}.get)
    assert inv.sold == 6 and inv.remaining == 4 and inv.violations() == []
    bad = s.inventory({"t:stock:{sku42}": -1, "t:sold:{sku42}": 11}.get)
    text = " | ".join(bad.violations())
    assert "oversell" in text and "negative" in text
