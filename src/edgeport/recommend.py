"""The one recommender: which artifact to ship, and why (`edgeport quantize` and `edgeport build`).

An artifact is a candidate when it is ONNX and passed its accuracy budget. Each candidate's speed
is one kind of evidence whichever command measured it: its p50 against fp32 ONNX Runtime, timed
in turn with fp32 by the one timing engine (`edgeport.timing`) at batch 1 with a default
`Session`, and the CI95 of that speed-up. `edgeport build` takes it from its bench (the first
configuration), `edgeport quantize` from its own speed check (the artifact's ``speed`` record).
The same rule then decides: the fastest candidate wins when its speed-up's CI95 clears 1×;
otherwise fp32 ONNX is the answer, and the reason says why each compressed artifact was passed
over.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

FP32 = "onnx-fp32"
BENCH = "edgeport bench, interleaved"
OWN = "quantize's speed check, interleaved"


@dataclass(frozen=True)
class Evidence:
    """How much faster than fp32 ONNX one candidate measured.

    Attributes:
        speedup: Median fp32 latency over the candidate's (> 1: faster).
        ci95: The speed-up's CI95, when the measurement gave one.
        where: Provider, batch and threads it was timed at.
        source: Which measurement (the bench, or quantize's speed check).
    """

    speedup: float
    ci95: tuple[float, float] | None
    where: str
    source: str


def recommend(
    artifacts: dict[str, dict[str, Any]], bench: dict[str, Any] | None = None
) -> dict[str, Any]:
    """``{"artifact": name, "reason": text}`` for the artifact to ship.

    Args:
        artifacts: The manifest's artifact entries.
        bench: An ``edgeport bench`` report; its first configuration gives the evidence.
            Without it, each candidate's own ``speed`` record does (quantize's speed check).
    """
    candidates, passed_over = _candidates(artifacts)
    if bench is None:
        evidence = {n: e for n in candidates if (e := recorded(artifacts[n])) is not None}
    elif not bench["results"]:
        return {"artifact": FP32, "reason": "nothing was benchmarked"}
    else:
        evidence = benched(bench, candidates)
    for name in candidates:
        if name not in evidence:
            passed_over[name] = "was not timed against fp32"
    return decide(evidence, passed_over)


def decide(evidence: dict[str, Evidence], passed_over: dict[str, str]) -> dict[str, Any]:
    """The rule: the fastest candidate, when its speed-up's CI95 clears 1×; else fp32."""
    if not evidence:
        return _fp32(passed_over)
    best = max(evidence, key=lambda n: evidence[n].speedup)
    e = evidence[best]
    ci = f", CI95 {span(*e.ci95)}×" if e.ci95 else ""
    if e.speedup <= 1.0:
        slower = f"was not faster than fp32 ({e.speedup:.2f}×, {e.where}{ci}; {e.source})"
        return _fp32({**passed_over, best: slower})
    if e.ci95 is not None and e.ci95[0] <= 1.0:
        return {
            "artifact": FP32,
            "reason": f"{best} measured {e.speedup:.2f}× faster than fp32 ONNX ({e.where}{ci}), "
            "not clearly faster: the interval reaches 1×",
        }
    return {
        "artifact": best,
        "reason": f"fastest within its accuracy budget: p50 {e.speedup:.2f}× "
        f"faster than fp32 ONNX ({e.where}{ci}; {e.source})",
    }


def recorded(entry: dict[str, Any]) -> Evidence | None:
    """The evidence in an artifact's own ``speed`` record (quantize's speed check), if any."""
    speed = entry.get("speed") or {}
    if speed.get("speedup_vs_fp32") is None:
        return None
    ci = speed.get("speedup_ci95")
    where = (
        f"{speed.get('provider', 'cpu')}, batch {speed.get('batch', 1)}, "
        f"threads {speed.get('threads') or 'default'}"
    )
    return Evidence(float(speed["speedup_vs_fp32"]), tuple(ci) if ci else None, where, OWN)


def benched(bench: dict[str, Any], candidates: list[str]) -> dict[str, Evidence]:
    """The evidence in a bench report's first configuration (provider, batch, threads)."""
    rows = bench["results"]
    first = (rows[0]["provider"], rows[0]["batch"], rows[0]["threads"])
    config = {r["variant"]: r for r in rows if (r["provider"], r["batch"], r["threads"]) == first}
    fp32 = config.get(FP32)
    if fp32 is None:
        return {}
    where = f"{first[0]}, batch {first[1]}, threads {first[2] or 'default'}"
    evidence = {}
    for name in candidates:
        if name in config:
            row = config[name]
            ci = row.get("speedup_intervals", {}).get(f"vs_{FP32}", {}).get("ci95")
            speedup = fp32["stats"]["p50_ms"] / row["stats"]["p50_ms"]
            evidence[name] = Evidence(speedup, tuple(ci) if ci else None, where, BENCH)
    return evidence


def _candidates(artifacts: dict[str, dict[str, Any]]) -> tuple[list[str], dict[str, str]]:
    candidates, passed_over = [], {}
    for name, entry in artifacts.items():
        if name == FP32 or entry.get("format") != "onnx":
            continue
        if entry.get("passed"):
            candidates.append(name)
        else:
            passed_over[name] = "missed its accuracy budget"
    return candidates, passed_over


def _fp32(passed_over: dict[str, str]) -> dict[str, Any]:
    reason = "no compressed artifact is faster within its accuracy budget"
    if passed_over:
        reason += " (" + "; ".join(f"{n} {w}" for n, w in passed_over.items()) + ")"
    return {"artifact": FP32, "reason": reason}


def span(low: float, high: float) -> str:
    """``low–high`` with two decimals, or as many more (up to four) as it takes to tell them
    apart: thousands of calls of a small model give a speed-up interval like 1.4489–1.4531."""
    for digits in (2, 3, 4):
        ends = f"{low:.{digits}f}", f"{high:.{digits}f}"
        if ends[0] != ends[1]:
            break
    return "–".join(ends)
