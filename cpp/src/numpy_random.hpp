// The draws of numpy's default generator (`numpy.random.default_rng(seed)`: SeedSequence →
// PCG64), reproduced so that C++ statistics that resample agree with the Python side's exactly.
// Only what edgeport.timing draws: integers in [0, n), shuffles, standard normals.
// Not thread-safe: one generator per thread.
#pragma once

#include <cstdint>
#include <vector>

namespace edgeport {

__extension__ typedef unsigned __int128 uint128_t;

class NumpyRandom {
public:
    explicit NumpyRandom(uint64_t seed);  // numpy.random.default_rng(seed), seed ≥ 0

    uint64_t next_uint64();  // bit_generator.random_raw()
    uint32_t next_uint32();  // the low half of a 64-bit draw, then its high half
    double next_double();    // [0, 1), 53 bits

    // rng.integers(0, high) (int64, high ≤ 2**32): Lemire's bounded draw on 32-bit draws.
    int64_t integers(int64_t high);
    // rng.permutation(values) (a 1-d array): Fisher–Yates from the last element down.
    std::vector<double> permutation(std::vector<double> values);
    // rng.normal(0, 1): numpy's 256-layer ziggurat.
    double standard_normal();

private:
    uint64_t interval(uint64_t max);  // uniform in [0, max], masked rejection
    uint128_t state_ = 0, inc_ = 0;
    bool has_uint32_ = false;
    uint32_t uint32_ = 0;
};

}  // namespace edgeport
