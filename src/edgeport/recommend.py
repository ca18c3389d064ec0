"""The one recommender: which artifact to ship, and why (`edgeport quantize` and `edgeport build`).

An artifact is a candidate when it is ONNX, passed its accuracy budget, and was not measured
slower than fp32 by the quantizer. Among candidates the fastest wins: by the bench's p50 when a
bench report is given (`edgeport build`), else by the quantizer's own interleaved speed-up
(`edgeport quantize`). fp32 ONNX is the answer when no candidate is clearly faster; the reason
then says why each compressed artifact was passed over.
"""

from __future__ import annotations

from typing import Any

FP32 = "onnx-fp32"


def recommend(
    artifacts: dict[str, dict[str, Any]], bench: dict[str, Any] | None = None
) -> dict[str, Any]:
    """``{"artifact": name, "reason": text}`` for the artifact to ship.

    Args:
        artifacts: The manifest's artifact entries.
        bench: An ``edgeport bench`` report; its first configuration decides (p50 and the
            speed-up's CI95, which must clear 1×).
    """
    candidates, passed_over = _candidates(artifacts)
    if bench is not None:
        return _by_bench(candidates, passed_over, bench)
    best, best_speed = FP32, 1.0
    for name in candidates:
        speed = artifacts[name].get("speed", {}).get("speedup_vs_fp32")
        if speed and speed > best_speed:
            best, best_speed = name, speed
    if best == FP32:
        return _fp32(passed_over)
    return {
        "artifact": best,
        "reason": f"fastest within its accuracy budget: {best_speed:.2f}× "
        "fp32 ONNX Runtime at batch 1, interleaved timing",
    }


def _candidates(artifacts: dict[str, dict[str, Any]]) -> tuple[list[str], dict[str, str]]:
    candidates, passed_over = [], {}
    for name, entry in artifacts.items():
        if name == FP32 or entry.get("format") != "onnx":
            continue
        if not entry.get("passed"):
            passed_over[name] = "missed its accuracy budget"
        elif entry.get("speed", {}).get("slower_than_fp32"):
            passed_over[name] = "measured slower than fp32"
        else:
            candidates.append(name)
    return candidates, passed_over


def _fp32(passed_over: dict[str, str], why: str | None = None) -> dict[str, Any]:
    reason = why or "no compressed artifact is faster within its accuracy budget"
    if passed_over:
        reason += " (" + "; ".join(f"{n} {w}" for n, w in passed_over.items()) + ")"
    return {"artifact": FP32, "reason": reason}


def _by_bench(
    candidates: list[str], passed_over: dict[str, str], bench: dict[str, Any]
) -> dict[str, Any]:
    rows = bench["results"]
    if not rows:
        return {"artifact": FP32, "reason": "nothing was benchmarked"}
    first = (rows[0]["provider"], rows[0]["batch"], rows[0]["threads"])
    config = {r["variant"]: r for r in rows if (r["provider"], r["batch"], r["threads"]) == first}
    fp32 = config.get(FP32)
    timed = [n for n in candidates if n in config]
    if fp32 is None or not timed:
        return _fp32(passed_over)
    best = min(timed, key=lambda n: config[n]["stats"]["p50_ms"])
    if config[best]["stats"]["p50_ms"] >= fp32["stats"]["p50_ms"]:
        return _fp32({**passed_over, best: "was not faster in the bench"})
    gain = fp32["stats"]["p50_ms"] / config[best]["stats"]["p50_ms"]
    where = f"{first[0]}, batch {first[1]}, threads {first[2] or 'default'}"
    interval = config[best].get("speedup_intervals", {}).get(f"vs_{FP32}", {}).get("ci95")
    ci = f", CI95 {span(*interval)}×" if interval else ""
    if interval and interval[0] <= 1.0:
        return {
            "artifact": FP32,
            "reason": f"{best} measured {gain:.2f}× faster than fp32 ONNX ({where}{ci}), "
            "not clearly faster: the interval reaches 1×",
        }
    return {
        "artifact": best,
        "reason": f"fastest within its accuracy budget: p50 {gain:.2f}× "
        f"faster than fp32 ONNX ({where}{ci}; edgeport bench, interleaved)",
    }


def span(low: float, high: float) -> str:
    """``low–high`` with two decimals, or as many more (up to four) as it takes to tell them
    apart: thousands of calls of a small model give a speed-up interval like 1.4489–1.4531."""
    for digits in (2, 3, 4):
        ends = f"{low:.{digits}f}", f"{high:.{digits}f}"
        if ends[0] != ends[1]:
            break
    return "–".join(ends)
