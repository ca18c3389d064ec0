from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from conftest import run_cli
from edgeport.errors import EdgeportError
from edgeport.pipeline import load_config, options_from_config
from edgeport.recommend import recommend


def test_config_unknown_key_is_named(tmp_path: Path) -> None:
    (tmp_path / "edgeport.toml").write_text('[build]\nmodel = "x"\ncalibration = "c.npz"\n')
    with pytest.raises(
        EdgeportError,
        match=r"unknown key 'calibration' in \[build\]. "
        r"Available: model, inputs, dynamic, weights, calib, eval",
    ):
        load_config(tmp_path / "edgeport.toml")
    (tmp_path / "edgeport.toml").write_text("[quantise]\nmode = 'static'\n")
    with pytest.raises(EdgeportError, match=r"unknown section \[quantise\]"):
        load_config(tmp_path / "edgeport.toml")


def test_config_sections_become_options(tmp_path: Path) -> None:
    (tmp_path / "edgeport.toml").write_text(
        '[build]\nmodel = "edgeport.demo:small_cnn"\ninputs = ["image:batch=1x1x16x16"]\n'
        "max_drop = 1.0\n[export]\nopset = 17\n[bench]\nbatches = [1, 8]\nduration = 0.5\n"
    )
    options = options_from_config(load_config(tmp_path / "edgeport.toml"))
    assert options.inputs == ("image:batch=1x1x16x16",)
    assert options.max_drop == 1.0
    assert options.export.opset == 17
    assert options.bench.batches == (1, 8)
    assert options.bench.duration == 0.5


def test_prune_ratio_is_checked(tmp_path: Path) -> None:
    result = run_cli(
        "build", "edgeport.demo:small_cnn", "--input", "image:1x1x16x16",
        "--out", str(tmp_path / "b"), "--prune", "1.5",
    )  # fmt: skip
    assert result.returncode == 2
    assert "error: pruning ratio 1.5 is out of range (--ratio, --prune)" in result.stderr


@pytest.mark.slow
def test_build_from_config_with_cli_override(tmp_path: Path) -> None:
    (tmp_path / "edgeport.toml").write_text(
        '[build]\nmodel = "edgeport.demo:small_cnn"\ninputs = ["image:batch=1x1x16x16"]\n'
        'out = "from-config"\n[bench]\nduration = 0.3\nbatches = [1, 4]\n'
    )
    result = run_cli(
        "build",
        "--config",
        str(tmp_path / "edgeport.toml"),
        "--out",
        str(tmp_path / "b"),
        "--batch",
        "2",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert not (tmp_path / "from-config").exists()  # --out overrides the config
    assert {r["batch"] for r in summary["report"]["results"]} == {2}  # --batch too
    # No calibration data for a conv-heavy model: fp32 only, and the build says why.
    assert summary["notes"][0].startswith("int8 not added: --mode auto: this model is conv-heavy")
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert manifest["recommended"]["artifact"] == "onnx-fp32"
    assert set(manifest["benchmarks"]["p50_ms"]) >= {"onnx-fp32@cpu/b2/t0", "eager-fp32@cpu/b2/t0"}
    for name in ("report.json", "report.md", "report.html"):
        assert (tmp_path / "b" / name).is_file()


@pytest.mark.slow
def test_demo_builds_the_digits_cnn(tmp_path: Path) -> None:
    result = run_cli("demo", "--out", str(tmp_path / "demo"))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for text in (
        "eager-fp32",
        "onnx-fp32",
        "onnx-int8-static",
        "vs eager",
        "accuracy",
        "recommended:",
        "report.html",
    ):
        assert text in out
    report = json.loads((tmp_path / "demo" / "report.json").read_text())
    evaluation = report["accuracy"]["onnx-int8-static"]
    assert evaluation["samples"] == 450
    assert evaluation["accuracy_fp32"] > 0.95
    assert evaluation["drop_pp"] <= 1.0
    assert {r["batch"] for r in report["results"]} == {1, 32}
    assert (tmp_path / "demo-data" / "eval.npz").is_file()


@pytest.mark.slow
def test_build_with_prune(tmp_path: Path) -> None:
    """--prune prunes (no recovery on random data, said in a note), then quantizes the pruned
    model; the eager baseline stays the unpruned model."""
    out = tmp_path / "b"
    result = run_cli(
        "build", "tests/catalog.py:cnn", "--input", "input:batch=1x1x16x16", "--calib", "random",
        "--prune", "0.5", "--out", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "note: pruned without recovery: pass real --calib data to distill" in result.stdout
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["pruning"]["params_ratio"] < 0.6
    assert "onnx-int8-static" in manifest["artifacts"]
    rows = {r["variant"]: r for r in json.loads((out / "report.json").read_text())["results"]}
    assert rows["eager-fp32"]["size_bytes"] > 2 * rows["onnx-fp32"]["size_bytes"]


def test_recommendation_needs_a_speedup_clear_of_its_interval() -> None:
    def bench(int8_p50: float, ci: list[float]) -> dict[str, object]:
        row = {"provider": "cpu", "batch": 1, "threads": 0, "speedup_intervals": {}}
        return {
            "results": [
                {**row, "variant": "onnx-fp32", "stats": {"p50_ms": 18.0}},
                {
                    **row,
                    "variant": "onnx-int8-static",
                    "stats": {"p50_ms": int8_p50},
                    "speedup_intervals": {"vs_onnx-fp32": {"ci95": ci}},
                },
            ]
        }

    artifacts = {
        "onnx-fp32": {"format": "onnx", "passed": True},
        "onnx-int8-static": {"format": "onnx", "passed": True},
    }
    clear = recommend(artifacts, bench(6.0, [2.9, 3.1]))
    assert clear["artifact"] == "onnx-int8-static"
    assert (
        "p50 3.00× faster than fp32 ONNX (cpu, batch 1, threads default, CI95 2.90–3.10×"
        in (clear["reason"])
    )
    narrow = recommend(artifacts, bench(12.4, [1.4489, 1.4531]))
    assert (
        "p50 1.45× faster than fp32 ONNX (cpu, batch 1, threads default, CI95 1.449–1.453×"
        in (narrow["reason"])
    )
    marginal = recommend(artifacts, bench(17.0, [0.97, 1.12]))
    assert marginal == {
        "artifact": "onnx-fp32",
        "reason": "onnx-int8-static measured 1.06× faster than fp32 ONNX (cpu, batch 1, "
        "threads default, CI95 0.97–1.12×), not clearly faster: the interval reaches 1×",
    }


def _evidence_pair(
    p50: dict[str, float], ci: dict[str, list[float]]
) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """The same measurement twice: as quantize records it in each artifact's ``speed``, and as
    the first configuration of a bench report."""
    artifacts: dict[str, dict[str, Any]] = {"onnx-fp32": {"format": "onnx", "passed": True}}
    rows = [{"variant": "onnx-fp32", "stats": {"p50_ms": p50["onnx-fp32"]}}]
    for name, ms in p50.items():
        if name == "onnx-fp32":
            continue
        artifacts[name] = {
            "format": "onnx",
            "passed": True,
            "speed": {
                "provider": "cpu",
                "batch": 1,
                "threads": 0,
                "speedup_vs_fp32": p50["onnx-fp32"] / ms,
                "speedup_ci95": ci[name],
            },
        }
        rows.append(
            {
                "variant": name,
                "stats": {"p50_ms": ms},
                "speedup_intervals": {"vs_onnx-fp32": {"ci95": ci[name]}},
            }
        )
    where = {"provider": "cpu", "batch": 1, "threads": 0}
    return artifacts, {"results": [{**where, **r} for r in rows]}


@pytest.mark.parametrize(
    ("p50", "ci", "expected"),
    [
        # pruned resnet18 as the issue measured it: int8 1.81× faster, clear of 1×
        ({"onnx-fp32": 9.05, "onnx-int8-static": 5.0}, {"onnx-int8-static": [1.7, 1.9]},
         "onnx-int8-static"),
        # faster, but the interval reaches 1×
        ({"onnx-fp32": 9.0, "onnx-int8-static": 8.5}, {"onnx-int8-static": [0.98, 1.12]},
         "onnx-fp32"),
        # slower
        ({"onnx-fp32": 9.0, "onnx-int8-dynamic": 11.0}, {"onnx-int8-dynamic": [0.7, 0.9]},
         "onnx-fp32"),
        # two candidates: the faster one wins
        ({"onnx-fp32": 9.0, "onnx-int8-dynamic": 6.0, "onnx-int8-static": 4.5},
         {"onnx-int8-dynamic": [1.4, 1.6], "onnx-int8-static": [1.9, 2.1]}, "onnx-int8-static"),
    ],
)  # fmt: skip
def test_quantize_and_build_decide_alike_on_the_same_numbers(
    p50: dict[str, float], ci: dict[str, list[float]], expected: str
) -> None:
    """One rule, whichever command measured: quantize's own record and a bench with the same
    numbers give the same artifact, and reasons that differ only in where the numbers came
    from."""
    artifacts, bench = _evidence_pair(p50, ci)
    own, benched = recommend(artifacts), recommend(artifacts, bench)
    assert own["artifact"] == benched["artifact"] == expected
    assert own["reason"].replace("quantize's speed check", "edgeport bench") == benched["reason"]


def test_a_candidate_that_missed_its_budget_or_was_not_timed_is_passed_over() -> None:
    artifacts, bench = _evidence_pair(
        {"onnx-fp32": 9.0, "onnx-int8-static": 4.0}, {"onnx-int8-static": [2.1, 2.4]}
    )
    artifacts["onnx-int8-static"]["passed"] = False
    artifacts["onnx-int8-dynamic"] = {"format": "onnx", "passed": True}
    for decision in (recommend(artifacts), recommend(artifacts, bench)):
        assert decision == {
            "artifact": "onnx-fp32",
            "reason": "no compressed artifact is faster within its accuracy budget "
            "(onnx-int8-static missed its accuracy budget; onnx-int8-dynamic was not timed "
            "against fp32)",
        }
