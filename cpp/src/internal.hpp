// Internals of libedgeport shared by the library, edgeport-run, the tests and the fuzz target.
// Nothing here is exported from the shared library (only ep_* symbols are).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "edgeport/edgeport.h"

namespace edgeport {

namespace fs = std::filesystem;

// The one exception type inside the library; the C API turns it into a status + message.
class Error : public std::runtime_error {
public:
    Error(ep_status status, const std::string& message)
        : std::runtime_error(message), status_(status) {}
    ep_status status() const noexcept { return status_; }

private:
    ep_status status_;
};

// ---- sha256 -------------------------------------------------------------------------------
std::string sha256_hex(const void* data, size_t size);
std::string sha256_file(const fs::path& path);  // throws Error(NOT_FOUND) if unreadable

// ---- .npy ---------------------------------------------------------------------------------
struct Array {
    ep_dtype dtype = EP_DTYPE_UNDEFINED;
    std::vector<int64_t> shape;
    std::vector<unsigned char> data;  // C order, little-endian
    size_t elements() const;
};

// Parses a .npy image (format versions 1-3, C order, little-endian or byte dtypes). Throws
// Error(CORRUPT) with the reason on anything malformed; never reads out of bounds.
Array parse_npy(const unsigned char* bytes, size_t size, const std::string& what);
Array read_npy(const fs::path& path);
void write_npy(const fs::path& path, const Array& array);
std::string npy_descr(ep_dtype dtype);  // "<f4", ... ; throws for unsupported dtypes

// ---- ONNX files: external-data locations -----------------------------------------------------
// Every external_data "location" in an ONNX ModelProto (initializers, sparse initializers,
// tensor attributes, subgraphs, functions), read from the protobuf wire format. Throws
// Error(CORRUPT) if the bytes are not a well-formed message.
std::vector<std::string> external_data_locations(const unsigned char* bytes, size_t size);

// ---- bundle manifest ------------------------------------------------------------------------
struct Tolerance {
    std::optional<double> rtol;
    double atol = 0.0;
    std::optional<double> min_cosine;
    std::optional<double> min_top1;
};

struct FileRecord {
    std::string path;
    std::string sha256;
};

struct Artifact {
    std::string name;
    std::string path;
    std::string sha256;
    std::string format;     // onnx | torchscript
    std::string precision;  // fp32 | int8
    int64_t size_bytes = 0;
    Tolerance tolerance;
    std::vector<std::string> golden_sets;
    std::vector<FileRecord> external_data;
};

struct GoldenSet {
    std::string name;
    std::map<std::string, std::string> inputs;   // input name -> relative .npy path
    std::map<std::string, std::string> outputs;  // output name -> relative .npy path
    std::optional<int64_t> batch;                // run in chunks of this many samples
};

struct Manifest {
    std::string schema;
    std::map<std::string, Artifact> artifacts;
    std::vector<std::string> artifact_order;
    std::vector<GoldenSet> golden_sets;
    std::string recommended;
};

constexpr const char* kSchema = "edgeport.bundle/1";

// Parses manifest.json text; throws Error(CORRUPT) naming the missing or mistyped key.
Manifest parse_manifest(std::string_view text);

// A manifest path made absolute under root, after checking it stays inside: relative, no "..",
// and (following symlinks) still under root. Throws Error(INTEGRITY) otherwise.
fs::path inside(const fs::path& root, const std::string& relative, const std::string& what);

struct Bundle {
    fs::path root;
    Manifest manifest;
    static Bundle load(const fs::path& dir);  // throws NOT_FOUND / CORRUPT
    const Artifact& artifact(const std::string& name) const;  // throws NOT_FOUND
    // The default artifact: the recommended one if it is ONNX, else onnx-fp32.
    std::string default_onnx() const;
    // Checks that the artifact's and its external data's paths stay inside the bundle and,
    // with ``hashes``, their sha256 (the model's from ``model_bytes``, the bytes that will be
    // loaded). Throws Error(INTEGRITY).
    void check_artifact(const Artifact& artifact, const std::vector<unsigned char>& model_bytes,
                        bool hashes) const;
};

// ---- parity -------------------------------------------------------------------------------
struct OutputCheck {
    std::string output;
    double max_abs_err = 0;
    double cosine = 1;
    std::optional<double> top1;
    std::vector<std::string> failures;
};

std::vector<double> as_doubles(const Array& array);  // throws UNSUPPORTED for odd dtypes
OutputCheck check_output(const std::string& name, const Array& got, const Array& reference,
                         const Tolerance& tolerance);

// ---- statistics ---------------------------------------------------------------------------
// Same definitions as edgeport.benchmarks.harness.call_stats (milliseconds in, JSON-ready out):
// percentiles by linear interpolation (numpy's default), CI95 of the median by a circular
// moving-block bootstrap over the time-ordered blocks (1000 draws).
struct CallStats {
    double p50, p90, p99, mean, std, min, max, cv, throughput;
    double ci95_low, ci95_high;
    size_t calls;
};
double percentile(std::vector<double> values, double q);
CallStats call_stats(const std::vector<std::vector<double>>& blocks_ms, int64_t batch,
                     uint64_t seed = 0);

}  // namespace edgeport
