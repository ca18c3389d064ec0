// stats_json FILE.json: the C++ latency statistics of the blocks in FILE, printed as JSON, for
// tests/test_stats_parity.py to hold against edgeport.benchmarks.harness.
//   {"batch": 4, "seed": 0, "blocks": [[ms, ...], ...]}      → call_stats: one stats object
//   {"batch": 4, "variants": [[[ms, ...], ...], ...]}        → block_stats: a list of them
#include <cstdio>
#include <fstream>
#include <iostream>

#include <nlohmann/json.hpp>

#include "stats.hpp"

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: stats_json FILE.json\n");
        return 2;
    }
    try {
        std::ifstream in(argv[1]);
        const nlohmann::json given = nlohmann::json::parse(in);
        const int64_t batch = given.at("batch").get<int64_t>();
        nlohmann::json out;
        if (given.contains("variants")) {
            out = nlohmann::json::array();
            const auto variants = given.at("variants").get<std::vector<edgeport::Blocks>>();
            const std::vector<int64_t> batches(variants.size(), batch);
            for (const auto& s : edgeport::block_stats(variants, batches))
                out.push_back(edgeport::stats_json(s));
        } else {
            const auto blocks = given.at("blocks").get<edgeport::Blocks>();
            out = edgeport::stats_json(
                edgeport::call_stats(blocks, batch, given.value("seed", uint64_t{0})));
        }
        std::cout << out.dump() << "\n";
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 2;
    }
}
