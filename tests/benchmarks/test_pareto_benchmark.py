"""benchmarks/pareto.py: the quick mode end to end, the hypervolumes, the goals, the net-space encoding."""
import sys

import optuna
import pytest
from conftest import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import pareto  # noqa: E402
from pareto import Candidate, Run  # noqa: E402

from nasforge import load_task  # noqa: E402
from nasforge.config import build_config  # noqa: E402
from nasforge.spaces import make_space  # noqa: E402
from nasforge.spaces.net_space import NetSpace  # noqa: E402

OTHER = "<!-- BEGIN other -->\n## Someone else's table\n\n| a |\n|---|\n| 1 |\n<!-- END other -->\n"


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    """One ``--quick`` run (iris, seed 0, budget 6, every method) into a temporary RESULTS.md."""
    folder = tmp_path_factory.mktemp("pareto")
    results = folder / "RESULTS.md"
    results.write_text("# Benchmark results\n\n" + OTHER)
    saved = folder / "runs.json"
    runs, scores, verdicts = pareto.main(["--quick", "--save-runs", str(saved)], results=results)
    return runs, scores, verdicts, results.read_text(), saved, folder


def test_quick_mode_runs_every_method_with_a_positive_hypervolume(quick):
    runs, scores, verdicts, text, _, _ = quick
    assert sorted(r.key for r in runs) == sorted([*pareto.NASFORGE, *pareto.PEERS])
    for r in runs:
        assert (r.dataset, r.seed, r.budget) == ("iris", 0, 6), r.key
        assert len(r.candidates) + r.failed == 6, r.key
        assert r.seconds > 0 and all(0 < c.finished_s <= r.seconds for c in r.candidates), r.key
        s = scores["iris", r.key, 0]
        assert s.val > 0 and s.test > 0, r.key
        assert 0 <= s.timed <= s.val <= 1, r.key  # fewer candidates by the common wall time: never more area
        assert r.front and all(c in r.candidates for c in r.front)
    fastest = min(runs, key=lambda r: r.seconds)
    assert scores["iris", fastest.key, 0].timed == scores["iris", fastest.key, 0].val  # it had finished everything


def test_quick_mode_section_names_every_method_and_derives_its_ratios(quick):
    runs, scores, verdicts, text, _, _ = quick
    assert OTHER.strip() in text  # other sections untouched
    assert text.count("<!-- BEGIN pareto -->") == 1 and "<!-- END pareto -->" in text
    section = text.split("<!-- BEGIN pareto -->")[1]
    for name in pareto.NAMES.values():
        assert f"| iris | {name} |" in section, name
    (v,) = verdicts
    hv = {k: scores["iris", k, 0].val for k in pareto.NAMES}
    best_nf = max(pareto.NASFORGE, key=hv.get)
    best_peer = max(pareto.PEERS, key=hv.get)
    assert (v.best_nasforge, v.best_peer) == (best_nf, best_peer)
    assert v.ratio_val == pytest.approx(hv[best_nf] / hv[best_peer])
    assert v.ratio_test == pytest.approx(scores["iris", best_nf, 0].test / scores["iris", best_peer, 0].test)
    assert v.ceiling == pytest.approx(1 / hv[best_peer])
    assert v.hv_met == (v.ratio_val >= 1.05)
    row = next(line for line in section.splitlines() if line.startswith(f"| iris | {pareto.NAMES[best_nf]} | {pareto.NAMES[best_peer]} | "))
    assert f"| {v.ratio_val:.3f} | {v.ratio_test:.3f} | {v.ratio_timed:.3f} | {v.ceiling:.3f} |" in row
    assert ("| met:" if v.hv_met else "| **NOT met**:") in row
    assert f"({v.small_met}/1 seeds)" in row


def test_saved_runs_report_the_same_numbers_without_training(quick):
    runs, scores, verdicts, text, saved, folder = quick
    again = folder / "again.md"
    runs2, scores2, verdicts2 = pareto.main(["--from-runs", str(saved)], results=again)
    assert scores2 == scores and verdicts2 == verdicts
    section = block(again.read_text())
    assert section == block(text)  # the same section, word for word
    assert "--save-runs" not in section and "`.venv/bin/python benchmarks/pareto.py --quick`" in section


def block(text):
    return text.split("<!-- BEGIN pareto -->")[1].split("<!-- END pareto -->")[0]


def run(key, cands, seconds, seed=0):
    return Run(key, "toy", seed, len(cands), cands, seconds)


def test_hypervolume_uses_the_validation_front_and_its_test_accuracy():
    cands = [Candidate(0.9, 0.5, 100, 100, 1), Candidate(0.5, 0.6, 10, 10, 2),
             Candidate(0.4, 1.0, 50, 50, 3)]  # dominated on validation: its test accuracy must not count
    # C_ref 200: points (0.9, 0.5) and (0.5, 0.95): 0.9 * 0.5 + 0.5 * 0.45
    assert pareto.hv(cands, 200) == pytest.approx(0.45 + 0.225)
    # the same two members with test accuracy: (0.5, 0.5) and (0.6, 0.95): the first is now dominated
    assert pareto.hv(cands, 200, test=True) == pytest.approx(0.6 * 0.95)
    assert pareto.hv([Candidate(0.9, 0.9, 200, 200, 1)], 200) == 0.0  # at the reference cost: no area


def test_common_wall_time_and_reference_cost():
    slow = run("evolution", [Candidate(0.5, 0.5, 10, 10, 1.0), Candidate(0.9, 0.9, 10, 10, 9.0)], 10.0)
    fast = run("nsga2", [Candidate(0.6, 0.6, 100, 100, 2.0)], 4.0)
    assert pareto.reference_cost([slow, fast]) == pytest.approx(110)
    s = pareto.score([slow, fast])
    assert s["toy", "evolution", 0].val == pytest.approx(0.9 * (1 - 10 / 110))
    assert s["toy", "evolution", 0].timed == pytest.approx(0.5 * (1 - 10 / 110))  # by 4 s only the first was done
    assert s["toy", "nsga2", 0].timed == s["toy", "nsga2", 0].val


def test_small_model_goal_compares_with_the_best_peers_most_accurate_front_member():
    peer = [Candidate(0.95, 0.90, 1000, 1000, 1), Candidate(0.80, 0.99, 10, 10, 2)]  # chosen: the first (val)
    good = [Candidate(0.93, 0.896, 100, 100, 1)]  # 0.4 points below with 10 % of the parameters
    runs = [run("expert", good, 5), run("nsga2", peer, 5)]
    v = pareto.verdict("toy", runs, pareto.score(runs), rows_of=lambda dataset, seed: 100)
    assert (v.best_nasforge, v.best_peer, v.small_met, v.seeds) == ("expert", "nsga2", 1, 1) and v.small_ok
    too_big = [Candidate(0.93, 0.95, 101, 101, 1)]
    runs = [run("expert", too_big, 5), run("nsga2", peer, 5)]
    v = pareto.verdict("toy", runs, pareto.score(runs), rows_of=lambda dataset, seed: 100)
    assert v.small_met == 0 and "seed 0: none <= 100 params (peer 90.0 % at 1,000)" in v.why_small
    # the peer's own 10-parameter candidate (99 % on test) meets the bar: a miss of the search
    assert "In 0 of these 1 seeds no candidate that any method trained meets the bar" in v.why_small
    runs = [run("expert", too_big, 5), run("nsga2", peer[:1], 5)]
    assert "In 1 of these 1 seeds" in pareto.verdict("toy", runs, pareto.score(runs), lambda d, s: 100).why_small
    worse = [Candidate(0.93, 0.89, 50, 50, 1)]
    runs = [run("expert", worse, 5), run("nsga2", peer, 5)]
    v = pareto.verdict("toy", runs, pareto.score(runs), rows_of=lambda dataset, seed: 100)
    assert v.small_met == 0 and "best <= 100 params 89.0 % (1 more of 100 test rows wrong)" in v.why_small
    assert "One test row is 1.00 points here" in v.why_small  # coarser than the 0.5-point bar
    assert "One test row" not in pareto.verdict("toy", runs, pareto.score(runs), rows_of=lambda d, s: 400).why_small


def test_optuna_net_encoding_gives_valid_genomes_of_the_space():
    task = load_task("digits-images", seed=0)
    space = make_space(build_config({"data": {"dataset": "digits-images"}, "space": {"family": "net"}}).space, task)
    assert isinstance(space, NetSpace)
    kinds, convs, denses = set(), set(), set()

    def objective(trial):
        genome = pareto.suggest_net(trial, space)
        space.check(genome)  # raises InvalidGenome otherwise
        assert genome.count("conv") == trial.params["n_conv"] and genome.count("dense") == trial.params["n_dense"]
        kinds.update(layer.kind for layer in genome.layers)
        convs.add(genome.count("conv"))
        denses.add(genome.count("dense"))
        return 0.0

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0)).optimize(objective, n_trials=150)
    assert kinds == {"conv", "pool", "global_pool", "dense", "dropout"}
    assert convs == set(range(space.min_conv, space.max_conv + 1))
    assert denses == set(range(space.min_dense, space.max_dense + 1))


def test_setups_and_methods_per_dataset(tmp_path):
    assert pareto.setup("digits-images") == ("net", "latency") and pareto.setup("wdbc") == ("mlp", "params")
    assert "bilevel" not in pareto.methods("digits-images", tmp_path, 1)
    assert set(pareto.methods("wdbc", tmp_path, 1)) == {*pareto.NASFORGE, *pareto.PEERS}


def test_a_missed_hypervolume_goal_says_what_every_method_trained_could_reach_together():
    # C_ref = 1.1 * 1000; the peer's front (0.5 at cost 10) leaves room for 2x, so the verdict pools
    # every run's candidates per seed: random's accurate large model joins the small ones
    c = 1100
    peer_hv = 0.5 * (1 - 10 / c)
    for accurate, reach in ((0.52, False), (0.6, True)):
        big = [Candidate(accurate, 0.5, 500, 500, 1), Candidate(0.1, 0.1, 1000, 1000, 2)]
        runs = [run("expert", [Candidate(0.48, 0.5, 10, 10, 1)], 5), run("nsga2", [Candidate(0.5, 0.5, 10, 10, 1)], 5),
                run("random", big, 5)]
        v = pareto.verdict("toy", runs, pareto.score(runs), rows_of=lambda dataset, seed: 100)
        assert (v.best_nasforge, v.best_peer, v.hv_met) == ("expert", "nsga2", False)
        pooled = (accurate * (1 - 500 / c) + 0.5 * (500 - 10) / c) / peer_hv
        assert f"pooled per seed, reaches {pooled:.3f}×" in v.why_hv
        assert ("(within reach of these candidates)" in v.why_hv) is reach
