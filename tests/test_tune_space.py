"""The search space and which chosen values sit on its edges (issue #21: report bounds that bind)."""

import math

from aofl.tune_space import on_bounds, search_space


def test_search_space_lists_the_ranges_each_rule_samples():
    old, wide = search_space("full", "fold_best"), search_space("full", "curve")
    assert old["lr"] == ("float", 3e-4, 5e-3, True) and wide["lr"] == ("float", 1e-4, 5e-3, True)
    assert old["width"] == ("categorical", (64, 128)) and wide["width"] == ("categorical", (64, 128, 256))
    assert "lambda_aac" in old and "lambda_aac" not in search_space("baseline")


def test_values_on_an_edge_are_named_with_their_bound():
    # lr 3.4e-4 is 4.9% of the log range above its 3e-4 floor; tau 0.465 is 3.2% below its 0.5 ceiling
    params = {"lr": 3.436e-4, "width": 128, "tau": 0.4648, "dropout": 0.3, "lr_schedule": "constant"}
    assert math.isclose(math.log(3.436e-4 / 3e-4) / math.log(5e-3 / 3e-4), 0.048, abs_tol=1e-3)
    found = {b["name"]: b["bound"] for b in on_bounds(params, "full", "fold_best", [35, 38, 28, 29], 40)}
    assert found == {"lr": "floor", "width": "ceiling", "tau": "ceiling", "epochs": "ceiling"}
    # the same values in the curve rule's wider space: lr and width are inside it now
    found = {b["name"] for b in on_bounds(params, "full", "curve", 32, 60)}
    assert found == {"tau"}


def test_a_setting_inside_every_range_has_no_bounds():
    params = {"lr": 1e-3, "weight_decay": 1e-3, "dropout": 0.3, "width": 128, "class_weights": True}
    assert on_bounds(params, "baseline", "curve", [20, 25], 60) == []
    assert [b["name"] for b in on_bounds({"width": 64}, "baseline", "curve")] == ["width"]
