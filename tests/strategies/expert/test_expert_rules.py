"""LEMONADE's expert system: every rule, Algorithm 2, and the rule designer on net and mlp."""
import json
import math

import numpy as np
import pytest
import torch
from conftest import REPO

from nasforge.errors import NasforgeError
from nasforge.spaces import MLPGenome, MLPSpace, NB201Space, NetGenome, NetSpace
from nasforge.strategies.expert import ExpertSettings, Thresholds, fire_rules, instructions, resolve, resolve_conflicts
from nasforge.strategies.expert import rules as rules_module
from nasforge.strategies.expert.compliance import check_compliance, followed
from nasforge.strategies.expert.designer import RuleDesigner

torch.set_num_threads(1)
DOCS = REPO / "docs" / "lemonade_rules.md"
GOOD = {"train_acc": 0.999, "val_acc": 0.995, "fps": 1e6, "train_energy_kwh": 1e-6, "infer_energy_kwh": 1e-9}


def weights(metrics, n_classes=None, **thresholds):
    return dict(instructions({**GOOD, **metrics}, Thresholds(**thresholds), n_classes))


def fired(metrics, n_classes=None, **thresholds):
    return [f.rule for f in fire_rules({**GOOD, **metrics}, Thresholds(**thresholds), n_classes)]


# --- Table 2 ---
def test_thresholds_default_to_the_paper_values():
    t = Thresholds()
    assert (t.PT_Acc, t.PV_Acc, t.TT_Acc, t.TV_Acc) == (0, 1, 0.99, 0.99)
    assert (t.PF, t.TF, t.PT_E, t.TT_E, t.PV_E, t.TV_E) == (0, 14000, 0, 1e-3, 0, 1e-5)
    assert (t.OT, t.UT) == (0.10, 0.05)
    with pytest.raises(ValueError):
        Thresholds(PV_ACC=1)  # a typo is an error, not a silently ignored key
    with pytest.raises(ValueError):
        Thresholds(TT_Acc=1.5)


def test_nothing_fires_when_every_target_is_met():
    assert fired({}) == [] and weights({}) == {}


# --- each rule ---
def test_r1_training_accuracy_below_threshold_is_the_papers_rule():
    w = weights({"train_acc": 0.98, "val_acc": 0.995}, PT_Acc=0.7)
    assert fired({"train_acc": 0.98, "val_acc": 0.995}) == ["R1"]
    assert w == {"ACL": 0.7, "ASC": 0.7, "ADL": 0.7, "AMK": 0.7}
    assert fired({"train_acc": 0.99, "val_acc": 0.995}) == []  # strictly below


def test_r2_validation_accuracy_below_threshold():
    assert fired({"train_acc": 0.999, "val_acc": 0.97}) == ["R2"]
    assert weights({"val_acc": 0.97}, PV_Acc=0.6) == {"ACL": 0.6, "ASC": 0.6, "ADL": 0.6, "AMK": 0.6}


def test_r3_overfitting_outranks_the_generic_additions():
    m = {"train_acc": 0.98, "val_acc": 0.80}
    assert "R3" in fired(m)
    w = weights(m)
    for code in ("AD", "AR", "RDL", "RN"):
        assert w[code] == pytest.approx(1 + 0.18)
    assert w["ADL"] == 1.0  # from R2, weaker than RDL
    kept = dict(resolve_conflicts(instructions(m)))
    assert "RDL" in kept and "ADL" not in kept
    assert "R3" not in fired({"train_acc": 0.95, "val_acc": 0.86})  # gap 0.09 <= OT


def test_r3_uses_the_larger_accuracy_priority():
    w = weights({"train_acc": 0.98, "val_acc": 0.80}, PT_Acc=2.0, PV_Acc=0.5)
    assert w["RDL"] == pytest.approx(2.0 * 1.18)


def test_r4_underfitting_low_and_close():
    m = {"train_acc": 0.90, "val_acc": 0.87}  # both low, gap 0.03 <= UT
    assert "R4" in fired(m) and "R5" not in fired(m)
    w = weights(m)
    for code in ("AMN", "AMK", "ACL", "RD", "RR"):
        assert w[code] == pytest.approx(1 + 0.09)
    assert w["ADL"] == 1.0 and "AMN" in w
    assert "R4" in fired({"train_acc": 0.9, "val_acc": 0.85})  # exactly UT apart (float-safe)
    assert "R4" not in fired({"train_acc": 0.90, "val_acc": 0.82})  # gap 0.08: neither under- nor overfitting


def test_r4_and_r5_training_accuracy_near_chance():
    m = {"train_acc": 0.12, "val_acc": 0.02}  # 10 classes: chance 0.1, + UT = 0.15; gap 0.1 not > OT
    assert fired(m, n_classes=10) == ["R1", "R2", "R4", "R5"]
    w = weights(m, n_classes=10)
    assert w["AWI"] == 1.0 and w["AMN"] == pytest.approx(1 + 0.87)
    assert "R5" not in fired({"train_acc": 0.3, "val_acc": 0.28}, n_classes=10)
    assert "R5" in fired({"train_acc": 0.52, "val_acc": 0.5}, n_classes=2)  # chance 0.5 + UT


def test_r6_fps_below_threshold_with_its_priority():
    assert fired({"fps": 5000.0}) == ["R6"]
    assert weights({"fps": 5000.0}, PF=0.4) == {"RCL": 0.4, "RSC": 0.4, "RK": 0.4, "RN": 0.4}
    assert fired({"fps": math.inf}) == [] and fired({"fps": 14000.0}) == []


def test_r7_training_and_inference_energy():
    assert fired({"train_energy_kwh": 2e-3}) == ["R7"]
    assert weights({"train_energy_kwh": 2e-3}, PT_E=0.3) == {"RCL": 0.3, "RK": 0.3, "RN": 0.3}
    assert weights({"infer_energy_kwh": 5e-5}, PV_E=0.2) == {"RCL": 0.2, "RK": 0.2, "RN": 0.2}
    both = weights({"train_energy_kwh": 2e-3, "infer_energy_kwh": 5e-5}, PT_E=0.3, PV_E=0.2)
    assert both["RCL"] == 0.3  # the largest reason, not the sum


def test_missing_or_nan_metrics_fire_nothing():
    assert fire_rules({}, Thresholds()) == []
    assert fire_rules({"train_acc": float("nan"), "val_acc": None, "fps": "fast"}, Thresholds()) == []


def test_zero_priorities_are_listed_and_then_dropped():
    w = weights({"fps": 10.0})  # PF = 0 by default
    assert set(w) == {"RCL", "RSC", "RK", "RN"} and set(w.values()) == {0.0}
    res = resolve(instructions({**GOOD, "fps": 10.0}, Thresholds()))
    assert res.kept == [] and sorted(res.dropped) == ["RCL", "RK", "RN", "RSC"]


# --- Algorithm 2 ---
def test_conflict_resolution_the_papers_example():
    res = resolve({"ADL": 0.5, "RDL": 0.4})
    assert res.kept == [("ADL", 0.5)] and res.zeroed == ["RDL"]
    assert res.weights() == {"ADL": 0.5, "RDL": 0.0}
    assert resolve_conflicts([("RDL", 0.4), ("ADL", 0.5)]) == [("ADL", 0.5)]


def test_conflict_resolution_keeps_non_conflicting_and_sorts():
    kept = resolve_conflicts({"ACL": 0.9, "RCL": 0.8, "AMK": 0.3, "RK": 0.6, "AWI": 0.1, "AD": 0.0, "RR": -1})
    assert kept == [("ACL", 0.9), ("RK", 0.6), ("AWI", 0.1)]


def test_conflict_ties_follow_table_3_order():
    assert resolve_conflicts({"RDL": 1.0, "ADL": 1.0}) == [("ADL", 1.0)]
    assert resolve_conflicts({"RN": 1.0, "AMN": 1.0}) == [("AMN", 1.0)]


def test_conflict_pairs_are_symmetric_and_unknown_codes_refused():
    for code, (_, partner) in rules_module.INSTRUCTIONS.items():
        if partner:
            assert rules_module.conflict_of(partner) == code
    with pytest.raises(ValueError):
        resolve({"XYZ": 1.0})


# --- the rule designer ---
def net_space(**kw):
    return NetSpace((1, 8, 8), 10, **kw)


def rich_net():
    """A net on which every instruction has something to do."""
    return NetGenome.model_validate({
        "layers": [{"kind": "conv", "channels": 16}, {"kind": "conv", "channels": 16}, {"kind": "pool"},
                   {"kind": "conv", "channels": 32}, {"kind": "global_pool"}, {"kind": "dense", "units": 64},
                   {"kind": "dropout", "rate": 0.2}, {"kind": "dense", "units": 32}],
        "skips": [{"from": 0, "to": 1}], "regularization": 1e-4,
    })  # fmt: skip


@pytest.mark.parametrize("code", list(rules_module.INSTRUCTIONS))
def test_rule_designer_applies_every_instruction_to_a_net(code):
    space = net_space(max_dense=3)
    g = rich_net()
    assert space.is_valid(g)
    design = RuleDesigner(space).design(g, [code], np.random.default_rng(0))
    assert design.applied == [code] and design.skipped == []
    assert space.is_valid(design.genome)
    assert followed(g, design.genome, code) is True


def mlp_space():
    return MLPSpace(64, 10, max_layers=4, dropouts=(0.0, 0.1, 0.2, 0.3))


@pytest.mark.parametrize("code", list(rules_module.INSTRUCTIONS))
def test_rule_designer_applies_or_skips_every_instruction_on_an_mlp(code):
    space = mlp_space()
    g = MLPGenome.model_validate({"layers": [{"units": 32}, {"units": 64}], "dropout": 0.1})
    design = RuleDesigner(space).design(g, [code], np.random.default_rng(0))
    if space.applicable(code):
        assert design.applied == [code] and space.is_valid(design.genome)
        assert followed(g, design.genome, code) is True
    else:
        assert design.genome == g and design.applied == []
        assert design.skipped == [{"code": code, "reason": "not applicable to the mlp family"}]
        assert followed(g, design.genome, code) is None


def test_rule_designer_applies_in_order_and_records_what_cannot_apply():
    space = net_space(max_conv=3, max_dense=3)
    g = rich_net()  # already 3 convs: ACL cannot apply
    design = RuleDesigner(space).design(g, ["ACL", "ADL", "AMK", "RSC"], np.random.default_rng(1))
    assert design.applied == ["ADL", "AMK", "RSC"]
    assert design.skipped == [{"code": "ACL", "reason": "no edit of this kind stays inside the search space"}]
    assert check_compliance(g, design.genome, design.applied)["ignored"] == []


def test_rule_designer_respects_the_parameter_budget():
    g_params = rich_net().n_params((1, 8, 8), 10)
    space = net_space(max_params=g_params)
    design = RuleDesigner(space).design(rich_net(), ["AMN", "AMK", "ADL"], np.random.default_rng(0))
    assert design.applied == [] and len(design.skipped) == 3
    assert design.genome.n_params((1, 8, 8), 10) <= g_params


def test_rule_designer_is_deterministic_under_its_rng():
    space = net_space()
    a = RuleDesigner(space).design(rich_net(), ["ACL", "ASC", "AMK"], np.random.default_rng(5)).genome
    b = RuleDesigner(space).design(rich_net(), ["ACL", "ASC", "AMK"], np.random.default_rng(5)).genome
    assert a == b


@pytest.mark.parametrize("space", [net_space(), NetSpace((20,), 3), mlp_space(), MLPSpace(4, 3, min_layers=0, max_layers=2)])
def test_small_initial_genome_is_valid_and_builds(space):
    g = RuleDesigner(space).initial(np.random.default_rng(0), "small")
    assert space.is_valid(g)
    shape = space.input_shape if isinstance(space, NetSpace) else (space.input_dim,)
    assert g.build(shape, space.n_classes)(torch.zeros(2, *shape)).shape == (2, space.n_classes)


def test_families_the_rules_cannot_edit_are_refused():
    with pytest.raises(NasforgeError, match="net' and 'mlp"):
        RuleDesigner(NB201Space())


# --- settings and docs ---
def test_settings_validate_and_round_trip():
    s = ExpertSettings(designer="llm", llm_url="http://localhost:11434/v1/", llm_model="gemma3:270m")
    assert s.llm_url == "http://localhost:11434/v1"
    assert ExpertSettings.model_validate(json.loads(s.model_dump_json())) == s
    for bad in ({"designer": "llm"}, {"designer": "llm", "llm_url": "file:///etc/passwd", "llm_model": "x"},
                {"thresholds": {"PF": -1}}, {"api_key": "sk-x"}, {"start_from": "random"},
                {"llm_key_env": "NOT A NAME"}):  # fmt: skip
        with pytest.raises(ValueError):
            ExpertSettings.model_validate(bad)


def table_rows(text):
    return {line.strip() for line in text.splitlines() if line.strip().startswith("| R")}


def test_rule_and_compliance_tables_are_the_same_in_the_code_and_the_docs():
    from nasforge.strategies.expert import compliance

    code_rows = table_rows(rules_module.__doc__)
    assert len(code_rows) == 8
    assert code_rows <= table_rows(DOCS.read_text())
    rows = {line for line in compliance.__doc__.splitlines() if line.startswith("| A") or line.startswith("| R")}
    assert len(rows) == 8 and rows <= set(DOCS.read_text().splitlines())


def test_compliance_checks_separate_adding_layers_from_widening_them():
    base = NetGenome.model_validate({"layers": [{"kind": "conv", "channels": 16}, {"kind": "dropout", "rate": 0.3},
                                                {"kind": "dense", "units": 32}]})  # fmt: skip
    deeper = NetGenome.model_validate({"layers": [{"kind": "conv", "channels": 16}, {"kind": "conv", "channels": 16},
                                                  {"kind": "dropout", "rate": 0.1}, {"kind": "dense", "units": 32}]})  # fmt: skip
    verdict = check_compliance(base, deeper, ["ACL", "AMK", "RD", "AD", "ADL", "AWI"])
    assert verdict == {"followed": ["ACL", "RD"], "ignored": ["AMK", "AD", "ADL", "AWI"], "not_applicable": []}
    mlp = MLPGenome.model_validate({"layers": [{"units": 32}], "dropout": 0.2})
    assert check_compliance(mlp, mlp, ["ACL", "AR"]) == {"followed": [], "ignored": ["AR"], "not_applicable": ["ACL"]}
    assert followed(base, mlp, "ADL") is None  # another family: nothing to compare
