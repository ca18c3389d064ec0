// libFuzzer target for the code that takes untrusted bytes. The first byte picks:
//   0  the .npy parser
//   1  the manifest parser
//   2  the ONNX external-data scan
//   3  verify's batching: up to three .npy images (each after a 2-byte little-endian length),
//      after a byte giving the set's batch (0: none), planned, cut into runs and joined again
//      (the joined arrays must equal the inputs), then compared as verify compares outputs
//   4  the manifest-to-run path short of ONNX Runtime: parse_manifest, then per artifact the
//      effective tolerance, the golden set selection, the path rule and golden file reading
//      (hash, parse, batching) against a fixed directory (kFiles below)
// Errors must be edgeport::Error; anything else (a crash, a sanitizer report, another exception,
// a failed round trip) is a finding.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <string_view>

#include "internal.hpp"

namespace {

using namespace edgeport;

// The .npy bytes of a float32 array of zeros with this shape text, as
// cpp/tests/make_fixtures.py writes them too (its fuzz seeds carry their sha256).
std::string zeros_npy(const std::string& shape, size_t elements) {
    std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape + ", }";
    while ((10 + header.size() + 1) % 64) header += ' ';
    header += '\n';
    std::string out = std::string("\x93NUMPY\x01\x00", 8);
    out += char(header.size() & 0xff);
    out += char(header.size() >> 8);
    return out + header + std::string(elements * 4, '\0');
}

// A bundle directory for case 4: golden files, and a symlink that leaves it.
const fs::path& fuzz_root() {
    static const fs::path root = [] {
        fs::path dir = fs::temp_directory_path() / ("edgeport_fuzz_root_" + std::to_string(getpid()));
        fs::remove_all(dir);
        fs::create_directories(dir / "golden");
        const std::pair<const char*, std::string> files[] = {
            {"golden/x.npy", zeros_npy("(2, 4)", 8)},
            {"golden/scale.npy", zeros_npy("(2, 1)", 2)},
            {"golden/y.npy", zeros_npy("(2, 3)", 6)},
            {"golden/short.npy", zeros_npy("(3, 1)", 3)},
            {"golden/scalar.npy", zeros_npy("()", 1)},
        };
        for (const auto& [name, bytes] : files) std::ofstream(dir / name, std::ios::binary) << bytes;
        fs::create_symlink("/", dir / "out");
        std::atexit([] { fs::remove_all(fuzz_root()); });
        return dir;
    }();
    return root;
}

void batching(const unsigned char* data, size_t size) {
    if (size < 1) return;
    GoldenSet set{"fuzz", {}, {}, std::nullopt, {}};
    if (data[0] != 0) set.batch = data[0];
    std::map<std::string, Array> inputs;
    size_t at = 1;
    for (const char* name : {"a", "b", "c"}) {
        if (size - at < 2) break;
        size_t length = size_t(data[at]) | size_t(data[at + 1]) << 8;
        at += 2;
        if (length > size - at) length = size - at;
        inputs[name] = parse_npy(data + at, length, name);
        at += length;
    }
    BatchPlan plan = plan_batches(set, inputs);
    if (plan.runs > 64) return;  // bounded work per input; the plan itself is what is fuzzed
    std::map<std::string, Array> joined;
    for (size_t run = 0; run < plan.runs; ++run)
        for (auto& [name, part] : batch_inputs(plan, inputs, run)) {
            if (plan.batched) append_batch_output(plan, name, joined[name], part);
            else joined[name] = part;
        }
    for (const auto& [name, array] : inputs)
        if (joined[name].shape != array.shape || joined[name].data != array.data) std::abort();
    // verify's comparison of outputs with the golden ones: each array against the next.
    const Tolerance tolerance{1e-3, 1e-5, 0.99, 0.95};
    const Array* previous = nullptr;
    for (const auto& [name, array] : inputs) {
        check_output(name, array, array, tolerance);
        if (previous) check_output(name, array, *previous, tolerance);
        previous = &array;
    }
    // Joining runs of another shape, or a 0-d output, must be refused, never read past an end.
    BatchPlan batched = plan;
    batched.batched = true;
    Array into;
    for (const auto& [name, array] : inputs) {
        try {
            append_batch_output(batched, name, into, array);
        } catch (const Error&) {
        }
    }
}

void manifest_to_run(std::string_view text) {
    Bundle bundle{fuzz_root(), parse_manifest(text)};
    (void)bundle.default_onnx();
    ToleranceOverride given;
    given.rtol = 0.5;
    given.min_top1 = 0.0;
    for (const std::string& name : bundle.manifest.artifact_order) {
        const Artifact& artifact = bundle.artifact(name);
        Tolerance t = effective_tolerance(artifact), loose = effective_tolerance(artifact, given);
        if (t.rtol && artifact.tolerance.rtol && *t.rtol > *artifact.tolerance.rtol) std::abort();
        if (!loose.rtol || *loose.rtol != 0.5) std::abort();
        try {
            bundle.check_artifact(artifact, {}, /*hashes=*/false);
        } catch (const Error&) {
        }
        try {
            for (const GoldenSet* set : golden_sets_of(bundle.manifest, artifact))
                for (const auto* files : {&set->inputs, &set->outputs})
                    for (const auto& [tensor, relative] : *files) {
                        try {
                            bundle.read_golden(*set, relative);
                        } catch (const Error&) {
                        }
                    }
        } catch (const Error&) {
        }
        try {
            default_inputs(bundle, artifact);
        } catch (const Error&) {
        }
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 1) return 0;
    const unsigned char* body = data + 1;
    size_t n = size - 1;
    std::string_view text(reinterpret_cast<const char*>(body), n);
    try {
        switch (data[0] % 5) {
            case 0: edgeport::parse_npy(body, n, "fuzz"); break;
            case 1: edgeport::parse_manifest(text); break;
            case 2: edgeport::external_data_locations(body, n); break;
            case 3: batching(body, n); break;
            case 4: manifest_to_run(text); break;
        }
    } catch (const edgeport::Error&) {
    }
    return 0;
}
