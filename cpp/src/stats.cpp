// Latency statistics as edgeport.timing defines them; see stats.hpp. Sums are
// numpy's pairwise sums and medians and percentiles numpy's, so that results agree to the bit
// where the arithmetic allows.
#include "stats.hpp"

#include <algorithm>
#include <cmath>

namespace edgeport {
namespace {

const char* const kCuts[][2] = {{"2", "halves"}, {"4", "quarters"}, {"8", "eighths"}};

// numpy's pairwise summation (what ndarray.sum does for float64).
double pairwise_sum(const double* a, size_t n) {
    if (n < 8) {
        double sum = -0.0;
        for (size_t i = 0; i < n; ++i) sum += a[i];
        return sum;
    }
    if (n <= 128) {
        double r[8];
        std::copy(a, a + 8, r);
        size_t i = 8;
        for (; i < n - n % 8; i += 8)
            for (size_t j = 0; j < 8; ++j) r[j] += a[i + j];
        double sum = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; ++i) sum += a[i];
        return sum;
    }
    size_t half = n / 2;
    half -= half % 8;
    return pairwise_sum(a, half) + pairwise_sum(a + half, n - half);
}

double mean_of(const std::vector<double>& v) { return pairwise_sum(v.data(), v.size()) / double(v.size()); }

double variance_of(const std::vector<double>& v) {  // numpy.var (population)
    const double mean = mean_of(v);
    std::vector<double> squares(v.size());
    for (size_t i = 0; i < v.size(); ++i) squares[i] = (v[i] - mean) * (v[i] - mean);
    return mean_of(squares);
}

std::vector<double> concatenated(const Blocks& blocks, const std::vector<size_t>& index) {
    std::vector<double> out;
    for (size_t i : index) out.insert(out.end(), blocks[i].begin(), blocks[i].end());
    return out;
}

std::vector<size_t> range(size_t begin, size_t end) {
    std::vector<size_t> out;
    for (size_t i = begin; i < end; ++i) out.push_back(i);
    return out;
}

// timing.moving_block_picks + resampled_medians: 1000 circular moving-block resamples of the
// n blocks (runs of round(∛n) blocks), the median of the calls of each.
std::vector<double> resampled_medians(const Blocks& blocks, NumpyRandom& rng) {
    const size_t n = blocks.size(), draws = 1000;
    const size_t run = std::max<size_t>(1, size_t(std::nearbyint(std::pow(double(n), 1.0 / 3.0))));
    const size_t runs = (n + run - 1) / run;
    std::vector<int64_t> starts(draws * runs);
    for (auto& start : starts) start = rng.integers(int64_t(n));
    std::vector<double> boots;
    for (size_t draw = 0; draw < draws; ++draw) {
        std::vector<size_t> picks;
        for (size_t r = 0; r < runs; ++r)
            for (size_t k = 0; k < run && picks.size() < n; ++k)
                picks.push_back((size_t(starts[draw * runs + r]) + k) % n);
        boots.push_back(median(concatenated(blocks, picks)));
    }
    return boots;
}

// timing.drift_evidence of the median.
std::vector<DriftEvidence> drift_evidence(const Blocks& blocks, double point,
                                          const std::vector<double>& boots) {
    std::vector<DriftEvidence> evidence;
    const size_t n = blocks.size();
    for (const auto& [count, cut] : kCuts) {
        const size_t parts = std::stoul(count);
        if (n < 4 * parts || point == 0) break;
        std::vector<double> values;  // numpy.array_split: the first n % parts parts one longer
        for (size_t p = 0, begin = 0; p < parts; ++p) {
            const size_t size = n / parts + (p < n % parts ? 1 : 0);
            values.push_back(median(concatenated(blocks, range(begin, begin + size))));
            begin += size;
        }
        std::vector<double> squares;
        for (size_t i = 1; i < values.size(); ++i)
            squares.push_back((values[i] - values[i - 1]) * (values[i] - values[i - 1]));
        const double allan = mean_of(squares) / 2;
        evidence.push_back({cut, allan / (point * point),
                            double(parts) * variance_of(boots) / (point * point)});
    }
    return evidence;
}

}  // namespace

double percentile(std::vector<double> v, double q) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    const double virtual_index = double(v.size() - 1) * (q / 100);
    double below = std::floor(virtual_index);
    size_t lo = size_t(below), hi = lo + 1;
    if (virtual_index >= double(v.size() - 1)) lo = hi = v.size() - 1;
    if (virtual_index < 0) lo = hi = 0;
    const double t = virtual_index - below, a = v[lo], b = v[hi], diff = b - a;
    return t >= 0.5 ? b - diff * (1 - t) : a + diff * t;  // numpy's _lerp
}

double median(std::vector<double> v) {
    if (v.empty()) return 0;
    const size_t mid = v.size() / 2;
    std::nth_element(v.begin(), v.begin() + long(mid), v.end());
    const double upper = v[mid];
    if (v.size() % 2) return upper;
    return (*std::max_element(v.begin(), v.begin() + long(mid)) + upper) / 2;
}

Bootstrap::Bootstrap(const Blocks& blocks_ms, uint64_t seed) : blocks_(blocks_ms), rng_(seed) {
    for (const auto& b : blocks_) ms_.insert(ms_.end(), b.begin(), b.end());
    if (ms_.empty()) return;
    if (blocks_.size() < 2) {  // rng.choice(ms, size=(1000, calls)): calls resampled one by one
        for (int draw = 0; draw < 1000; ++draw) {
            std::vector<double> sample(ms_.size());
            for (double& x : sample) x = ms_[size_t(rng_.integers(int64_t(ms_.size())))];
            boots_.push_back(median(std::move(sample)));
        }
        return;
    }
    boots_ = resampled_medians(blocks_, rng_);
    evidence_ = drift_evidence(blocks_, median(ms_), boots_);
}

CallStats Bootstrap::stats(int64_t batch, double slow) {
    CallStats s;
    s.calls = ms_.size();
    if (ms_.empty()) return s;
    s.mean = mean_of(ms_);
    s.p50 = median(ms_);
    s.p90 = percentile(ms_, 90);
    s.p99 = percentile(ms_, 99);
    s.std = std::sqrt(variance_of(ms_));
    s.min = *std::min_element(ms_.begin(), ms_.end());
    s.max = *std::max_element(ms_.begin(), ms_.end());
    s.cv = s.mean != 0 ? s.std / s.mean : 0;
    s.throughput = s.mean != 0 ? double(batch) / (s.mean / 1e3) : 0;
    // timing.intervals: the rerun interval is the median plus the 2.5–97.5% range of the
    // difference of two independent replicates, each shifted by the slow drift.
    s.ci95_low = percentile(boots_, 2.5);
    s.ci95_high = percentile(boots_, 97.5);
    std::vector<double> shuffled = rng_.permutation(boots_), differences(boots_.size());
    const double scale = std::pow(2 * (slow * (s.p50 * s.p50)), 0.5);
    for (size_t i = 0; i < boots_.size(); ++i)
        differences[i] = boots_[i] - shuffled[i] + (scale > 0 ? 0.0 + scale * rng_.standard_normal() : 0.0);
    s.rerun95_low = s.p50 + percentile(differences, 2.5);
    s.rerun95_high = s.p50 + percentile(differences, 97.5);
    s.slow_drift_pct = 100 * std::pow(slow, 0.5);
    s.evidence = evidence_;
    if (blocks_.size() >= 4) {
        const size_t half = blocks_.size() / 2;
        const double first = median(concatenated(blocks_, range(0, half)));
        const double second = median(concatenated(blocks_, range(half, blocks_.size())));
        s.drift_pct = s.p50 != 0 ? 100 * (second - first) / s.p50 : 0.0;
        s.drift_outside_ci = std::fabs(second - first) > s.ci95_high - s.ci95_low;
    }
    return s;
}

double slow_drift(const std::vector<std::vector<DriftEvidence>>& evidence) {
    double best = 0;
    for (const auto& [count, cut] : kCuts) {
        double allan = 0, noise = 0;
        size_t pieces = 0;
        for (const auto& of_one : evidence)
            for (const auto& e : of_one)
                if (e.cut == cut) allan += e.allan, noise += e.noise, ++pieces;
        if (pieces) best = std::max(best, allan / double(pieces) - noise / double(pieces));
    }
    return best;
}

CallStats call_stats(const Blocks& blocks_ms, int64_t batch, uint64_t seed) {
    Bootstrap boot(blocks_ms, seed);
    return boot.stats(batch, slow_drift({boot.evidence()}));
}

std::vector<CallStats> block_stats(const std::vector<Blocks>& variants,
                                   const std::vector<int64_t>& batches) {
    std::vector<Bootstrap> boots;
    std::vector<std::vector<DriftEvidence>> evidence;
    for (const Blocks& blocks : variants) {
        boots.emplace_back(blocks, 0);
        evidence.push_back(boots.back().evidence());
    }
    const double slow = slow_drift(evidence);
    std::vector<CallStats> out;
    for (size_t i = 0; i < boots.size(); ++i) out.push_back(boots[i].stats(batches.at(i), slow));
    return out;
}

nlohmann::json stats_json(const CallStats& s) {
    nlohmann::json allan = nlohmann::json::object(), noise = nlohmann::json::object();
    for (const auto& e : s.evidence) {
        allan[e.cut] = 100 * std::pow(e.allan, 0.5);
        noise[e.cut] = 100 * std::pow(e.noise, 0.5);
    }
    return {{"p50_ms", s.p50}, {"p90_ms", s.p90}, {"p99_ms", s.p99}, {"mean_ms", s.mean},
            {"std_ms", s.std}, {"min_ms", s.min}, {"max_ms", s.max}, {"cv", s.cv},
            {"throughput_per_s", s.throughput},
            {"median_ci95_ms", {s.ci95_low, s.ci95_high}},
            {"median_rerun95_ms", {s.rerun95_low, s.rerun95_high}},
            {"slow_drift_pct", s.slow_drift_pct}, {"allan_pct", allan}, {"allan_noise_pct", noise},
            {"calls", s.calls},
            {"drift_pct", s.drift_pct ? nlohmann::json(*s.drift_pct) : nlohmann::json(nullptr)},
            {"drift_outside_ci", s.drift_outside_ci}};
}

}  // namespace edgeport
