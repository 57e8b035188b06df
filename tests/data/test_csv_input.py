"""Bad or unusual CSV files: a loaded task or one line naming the file and the reason, never a
traceback (nasforge.data.csv, issue #21's list)."""
from __future__ import annotations

import pytest
from conftest import cli

from nasforge import NasforgeError, load_task


def write(path, lines, encoding="utf-8"):
    path.write_text("\n".join(lines) + "\n", encoding=encoding)
    return path


def rows(n, line):
    return [line(i) for i in range(n)]


@pytest.mark.parametrize("name, lines, needle", [
    ("empty", [], "is not a readable CSV file"),
    ("target-only", ["y", "1", "2", "1"], "no feature columns left besides the target"),
    ("lone non-ASCII header", ["été"], "target column 'y' is not in"),
    ("infinity", ["y,a"] + rows(30, lambda i: f"{i % 2},{'inf' if i == 5 else i}"), "column 'a' holds inf (data row 6)"),
    ("near the float limit", ["y,a"] + rows(30, lambda i: f"{i % 2},{'1e307' if i == 7 else i}"), "holds 1e+307"),
    ("split too small for its classes", ["y,a"] + rows(9000, lambda i: f"c{i % 3000},{i}"), "cannot be split"),
])
def test_refused_files_say_why_in_one_line(tmp_path, name, lines, needle):
    path = write(tmp_path / "data.csv", lines)
    with pytest.raises(NasforgeError, match=needle.replace("(", r"\(").replace(")", r"\)").replace("+", r"\+")):
        load_task(csv=path, target="y")
    r = cli("search", "--csv", path, "--target", "y", "--out", tmp_path / "run")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert not (tmp_path / "run").exists()  # nothing written for a refused input


def test_a_byte_order_mark_is_not_part_of_the_first_column_name(tmp_path):
    path = write(tmp_path / "bom.csv", ["y,a,b"] + rows(30, lambda i: f"{i % 2},{i * 0.5},{i}"), encoding="utf-8-sig")
    assert path.read_bytes()[:3] == b"\xef\xbb\xbf"
    task = load_task(csv=path, target="y")
    assert task.feature_names == ["a", "b"] and task.n_classes == 2


def test_decimal_commas_in_a_semicolon_file_are_numbers(tmp_path):
    path = write(tmp_path / "semi.csv", ["y;dose;site"] + rows(30, lambda i: f"{i % 2};{i},5;{'ab'[i % 2]}"))
    task = load_task(csv=path, target="y")
    assert task.feature_names == ["dose", "site_a", "site_b"]  # dose is one numeric column, not 30 categories


def test_tab_separated_and_a_nul_in_a_header_load(tmp_path):
    tab = write(tmp_path / "tab.csv", ["y\ta"] + rows(30, lambda i: f"{i % 2}\t{i}"))
    assert load_task(csv=tab, target="y").feature_names == ["a"]
    nul = write(tmp_path / "nul.csv", ["y,a\x00b"] + rows(30, lambda i: f"{i % 2},{i}"))
    assert load_task(csv=nul, target="y").feature_names == ["ab"]


@pytest.mark.parametrize("weights, needle", [("", "--weights needs NAME=VALUE pairs"),
                                             ("accuracy=0,fps=0", "the weights are all 0")])
def test_empty_or_all_zero_weights_are_refused(tmp_path, weights, needle):
    r = cli("search", "--dataset", "iris", "--weights", weights, "--out", tmp_path / "run")
    assert r.returncode == 2 and needle in r.stderr and r.stderr.count("\n") == 1


def test_an_empty_column_is_named_and_one_empty_in_training_rows_is_zeros(tmp_path):
    empty = write(tmp_path / "empty.csv", ["y,a,b"] + rows(30, lambda i: f"{i % 2},{i},"))
    with pytest.raises(NasforgeError, match="column 'b' has no values; leave it out with --drop 'b'"):
        load_task(csv=empty, target="y")
    # one value in 30 rows: depending on the split the training rows may hold none (found by benchmarks/fuzz.py)
    sparse = write(tmp_path / "sparse.csv", ["y,a"] + rows(30, lambda i: f"{i % 2},{'7' if i == 0 else ''}"))
    for seed in range(6):
        task = load_task(csv=sparse, target="y", seed=seed)
        assert task.input_shape == (1,) and bool(task.X_train.isfinite().all())
