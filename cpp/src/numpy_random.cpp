// numpy's SeedSequence, PCG64 (XSL-RR 128/64), bounded integers, shuffle and ziggurat normal,
// written from their published definitions (O'Neill's PCG paper, numpy's documentation of
// SeedSequence, Lemire 2019, Marsaglia and Tsang 2000). tests/test_stats_parity.py holds the
// draws to numpy's.
#include "numpy_random.hpp"

#include <array>
#include <cmath>

namespace edgeport {
namespace {

using u128 = uint128_t;

constexpr u128 kMultiplier = (u128(2549297995355413924ULL) << 64) | 4865540595714422341ULL;

// SeedSequence(seed).generate_state(8, uint32): the pool of four words mixed from the seed's
// 32-bit words, then hashed out.
std::array<uint32_t, 8> seed_words(uint64_t seed) {
    std::vector<uint32_t> entropy;
    for (uint64_t n = seed; n > 0; n >>= 32) entropy.push_back(static_cast<uint32_t>(n));
    if (entropy.empty()) entropy.push_back(0);
    uint32_t hash = 0x43b0d7e5;
    auto hashmix = [&hash](uint32_t value) {
        value ^= hash;
        hash *= 0x931e8875;
        value *= hash;
        return value ^ (value >> 16);
    };
    auto mix = [](uint32_t x, uint32_t y) {
        uint32_t r = 0xca01f9dd * x - 0x4973f715 * y;
        return r ^ (r >> 16);
    };
    std::array<uint32_t, 4> pool{};
    for (size_t i = 0; i < pool.size(); ++i) pool[i] = hashmix(i < entropy.size() ? entropy[i] : 0);
    for (size_t src = 0; src < pool.size(); ++src)
        for (size_t dst = 0; dst < pool.size(); ++dst)
            if (src != dst) pool[dst] = mix(pool[dst], hashmix(pool[src]));
    for (size_t src = pool.size(); src < entropy.size(); ++src)
        for (auto& word : pool) word = mix(word, hashmix(entropy[src]));
    std::array<uint32_t, 8> out{};
    uint32_t out_hash = 0x8b51f9dd;
    for (size_t i = 0; i < out.size(); ++i) {
        uint32_t value = pool[i % pool.size()] ^ out_hash;
        out_hash *= 0x58f38ded;
        value *= out_hash;
        out[i] = value ^ (value >> 16);
    }
    return out;
}

// The ziggurat's 256 layers for the standard normal (right edge r, layer area v), computed as
// Marsaglia and Tsang lay them out; numpy's tables agree to a few units in the last place.
struct Ziggurat {
    static constexpr double r = 3.6541528853610087963519472518;
    std::array<uint64_t, 256> k{};
    std::array<double, 256> w{}, f{};
    Ziggurat() {
        const double m = 4503599627370496.0;  // 2**52
        const double v = r * std::exp(-0.5 * r * r) + std::sqrt(3.14159265358979323846 / 2) * std::erfc(r / std::sqrt(2.0));
        const double q = v / std::exp(-0.5 * r * r);
        double dn = r, tn = r;
        k[0] = static_cast<uint64_t>(dn / q * m);
        k[1] = 0;
        w[0] = q / m;
        w[255] = dn / m;
        f[0] = 1.0;
        f[255] = std::exp(-0.5 * dn * dn);
        for (int i = 254; i >= 1; --i) {
            dn = std::sqrt(-2 * std::log(v / dn + std::exp(-0.5 * dn * dn)));
            k[i + 1] = static_cast<uint64_t>(dn / tn * m);
            tn = dn;
            f[i] = std::exp(-0.5 * dn * dn);
            w[i] = dn / m;
        }
    }
};

const Ziggurat& ziggurat() {
    static const Ziggurat z;
    return z;
}

}  // namespace

NumpyRandom::NumpyRandom(uint64_t seed) {
    std::array<uint32_t, 8> w = seed_words(seed);
    uint64_t s[4];
    for (int i = 0; i < 4; ++i) s[i] = uint64_t(w[2 * i]) | (uint64_t(w[2 * i + 1]) << 32);
    const u128 initstate = (u128(s[0]) << 64) | s[1], initseq = (u128(s[2]) << 64) | s[3];
    inc_ = (initseq << 1) | 1;
    state_ = 0;
    state_ = state_ * kMultiplier + inc_;
    state_ += initstate;
    state_ = state_ * kMultiplier + inc_;
}

uint64_t NumpyRandom::next_uint64() {
    state_ = state_ * kMultiplier + inc_;
    const uint64_t x = static_cast<uint64_t>(state_ >> 64) ^ static_cast<uint64_t>(state_);
    const unsigned rot = static_cast<unsigned>(state_ >> 122);
    return (x >> rot) | (x << ((64 - rot) & 63));
}

uint32_t NumpyRandom::next_uint32() {
    if (has_uint32_) {
        has_uint32_ = false;
        return uint32_;
    }
    const uint64_t next = next_uint64();
    has_uint32_ = true;
    uint32_ = static_cast<uint32_t>(next >> 32);
    return static_cast<uint32_t>(next);
}

double NumpyRandom::next_double() {
    return static_cast<double>(next_uint64() >> 11) * (1.0 / 9007199254740992.0);
}

int64_t NumpyRandom::integers(int64_t high) {
    const uint32_t range = static_cast<uint32_t>(high - 1);  // draws in [0, range]
    if (range == 0) return 0;
    if (range == UINT32_MAX) return next_uint32();
    const uint32_t excl = range + 1;
    uint64_t m = uint64_t(next_uint32()) * excl;
    uint32_t leftover = static_cast<uint32_t>(m);
    if (leftover < excl) {
        const uint32_t threshold = (UINT32_MAX - range) % excl;
        while (leftover < threshold) {
            m = uint64_t(next_uint32()) * excl;
            leftover = static_cast<uint32_t>(m);
        }
    }
    return static_cast<int64_t>(m >> 32);
}

uint64_t NumpyRandom::interval(uint64_t max) {
    if (max == 0) return 0;
    uint64_t mask = max;
    for (int shift = 1; shift <= 32; shift *= 2) mask |= mask >> shift;
    uint64_t value;
    if (max <= UINT32_MAX) {
        while ((value = (next_uint32() & mask)) > max) {
        }
    } else {
        while ((value = (next_uint64() & mask)) > max) {
        }
    }
    return value;
}

std::vector<double> NumpyRandom::permutation(std::vector<double> values) {
    for (size_t i = values.size(); i-- > 1;) std::swap(values[i], values[interval(i)]);
    return values;
}

double NumpyRandom::standard_normal() {
    const Ziggurat& z = ziggurat();
    for (;;) {
        uint64_t r = next_uint64();
        const int idx = static_cast<int>(r & 0xff);
        r >>= 8;
        const bool negative = r & 0x1;
        const uint64_t rabs = (r >> 1) & 0x000fffffffffffffULL;
        double x = static_cast<double>(rabs) * z.w[idx];
        if (negative) x = -x;
        if (rabs < z.k[idx]) return x;
        if (idx == 0) {
            for (;;) {
                const double xx = -(1 / Ziggurat::r) * std::log1p(-next_double());
                const double yy = -std::log1p(-next_double());
                if (yy + yy > xx * xx)
                    return ((rabs >> 8) & 0x1) ? -(Ziggurat::r + xx) : Ziggurat::r + xx;
            }
        }
        if ((z.f[idx - 1] - z.f[idx]) * next_double() + z.f[idx] < std::exp(-0.5 * x * x)) return x;
    }
}

}  // namespace edgeport
