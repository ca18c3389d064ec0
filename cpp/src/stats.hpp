// Latency statistics of per-call times, with the definitions of edgeport.timing
// (call_stats, block_stats, slow_drift, intervals): the same numbers for the same blocks, the
// bootstrap included (numpy's generator, seeded the same). tests/test_stats_parity.py holds the
// two languages to the same answers. Milliseconds in; nothing here is thread-safe to share.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "numpy_random.hpp"

namespace edgeport {

// Time-ordered blocks of per-call times (ms) of one variant.
using Blocks = std::vector<std::vector<double>>;

// How much the run's parts (halves, quarters, eighths) differ, against how much sampling noise
// would make them differ: Allan variance and noise, both relative (a fraction²).
struct DriftEvidence {
    std::string cut;
    double allan, noise;
};

struct CallStats {
    double p50 = 0, p90 = 0, p99 = 0, mean = 0, std = 0, min = 0, max = 0, cv = 0, throughput = 0;
    double ci95_low = 0, ci95_high = 0;      // CI95 of the median (moving-block bootstrap)
    double rerun95_low = 0, rerun95_high = 0;  // where a rerun's median should land
    double slow_drift_pct = 0;                 // the drift that widens the rerun interval
    std::vector<DriftEvidence> evidence;
    std::optional<double> drift_pct;  // second half's median against the first's (≥ 4 blocks)
    bool drift_outside_ci = false;
    size_t calls = 0;
};

double percentile(std::vector<double> values, double q);  // numpy's default (linear)
double median(std::vector<double> values);                // numpy.median

// What call_stats computes before it knows the slow drift (timing._Bootstrap): block_stats
// pools the drift over variants in between. stats() draws the rerun interval from the same
// generator: call it once.
class Bootstrap {
public:
    Bootstrap(const Blocks& blocks_ms, uint64_t seed);
    const std::vector<DriftEvidence>& evidence() const { return evidence_; }
    CallStats stats(int64_t batch, double slow);

private:
    Blocks blocks_;
    std::vector<double> ms_, boots_;
    std::vector<DriftEvidence> evidence_;
    NumpyRandom rng_;
};

// The slow drift's relative variance (0 if none shows) from the evidence of one statistic or
// of several timed together (pooled), as timing.slow_drift.
double slow_drift(const std::vector<std::vector<DriftEvidence>>& evidence);

// timing.call_stats(samples, batch, blocks, seed): per-call statistics of one variant.
CallStats call_stats(const Blocks& blocks_ms, int64_t batch, uint64_t seed = 0);
// timing.block_stats: variants timed in turn, the slow drift pooled over them (seed 0 each);
// batches[i] is variant i's samples per call.
std::vector<CallStats> block_stats(const std::vector<Blocks>& variants,
                                   const std::vector<int64_t>& batches);

// The statistics under the keys of the Python report's "stats".
nlohmann::json stats_json(const CallStats& stats);

}  // namespace edgeport
