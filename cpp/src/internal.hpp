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
#include "stats.hpp"

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
// Pass criteria of one output; an unset criterion is not checked (atol counts as 0 when rtol is
// set and atol is not).
struct Tolerance {
    std::optional<double> rtol;
    std::optional<double> atol;
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
    std::string precision;  // fp32 | int8 (checked by parse_manifest)
    int64_t size_bytes = 0;
    Tolerance tolerance;    // as the manifest records it: verify tightens it (effective_tolerance)
    std::optional<std::vector<std::string>> golden_sets;  // absent: every golden set
    std::vector<FileRecord> external_data;
};

struct GoldenSet {
    std::string name;
    std::map<std::string, std::string> inputs;   // input name -> relative .npy path
    std::map<std::string, std::string> outputs;  // output name -> relative .npy path
    std::optional<int64_t> batch;                // run in chunks of this many samples
    std::map<std::string, std::string> sha256;   // relative path -> hex sha256 of every file
    std::map<std::string, int64_t> sizes;        // symbolic dim -> size the set was made at
};

// One dim of a model input or output as the manifest records it: a size, a symbolic name
// ("batch"), or unknown (JSON null: neither).
struct TensorDim {
    std::optional<int64_t> size;  // in [0, kMaxDim]
    std::string symbol;           // non-empty for a symbolic dim
};

// A model input or output: name, dtype (float16 ... uint64, bool: numpy's names) and shape.
struct TensorSpec {
    std::string name;
    std::string dtype;
    std::vector<TensorDim> dims;
};

struct Manifest {
    std::string schema;
    std::optional<std::string> source;  // model.source, when the manifest records it
    std::vector<TensorSpec> inputs;     // in call order; never empty
    std::vector<TensorSpec> outputs;    // never empty
    std::map<std::string, int64_t> input_examples;  // symbolic dim -> example size
    std::map<std::string, Artifact> artifacts;
    std::vector<std::string> artifact_order;
    std::vector<GoldenSet> golden_sets;
    std::string recommended;
};

constexpr const char* kSchema = "edgeport.bundle/1";
// What a manifest may ask a reader to allocate (as edgeport.manifest): one dim, and one example
// input in elements.
constexpr int64_t kMaxDim = int64_t(1) << 24;
constexpr int64_t kMaxExampleElements = int64_t(1) << 28;

// Parses manifest.json text; throws Error(CORRUPT) naming the missing, mistyped or out-of-range
// field. inputs, outputs, input_examples, golden sets' sizes and model.source are checked as
// edgeport.manifest.parse_manifest checks them (same limits, same field names).
Manifest parse_manifest(std::string_view text);

// A manifest path made absolute under root, after checking it stays inside: relative, no "..",
// and (following symlinks) still under root. Throws Error(INTEGRITY) otherwise.
fs::path inside(const fs::path& root, const std::string& relative, const std::string& what);

// ---- signatures ----------------------------------------------------------------------------
// An Ed25519 public key read from a PEM SubjectPublicKeyInfo file ("-----BEGIN PUBLIC KEY-----",
// what `openssl pkey -pubout` writes). ``file`` is kept for messages.
struct PublicKey {
    std::string file;
    std::vector<unsigned char> raw;  // the 32-byte key
    // Throws Error(INVALID_ARGUMENT) if the file is unreadable or not an Ed25519 public key.
    static PublicKey read_pem(const std::string& file);
};

// Whether ``signature`` is a valid Ed25519 signature of ``message`` under ``key``.
bool ed25519_verify(const PublicKey& key, std::string_view message,
                    const std::vector<unsigned char>& signature);

struct Bundle {
    fs::path root;
    Manifest manifest;
    // Reads manifest.json once; with ``key``, checks manifest.json.sig (the Ed25519 signature
    // of those exact bytes) before parsing them. Throws NOT_FOUND / CORRUPT / INTEGRITY.
    static Bundle load(const fs::path& dir, const PublicKey* key = nullptr);
    const Artifact& artifact(const std::string& name) const;  // throws NOT_FOUND
    // The default artifact: the recommended one if it is ONNX, else onnx-fp32.
    std::string default_onnx() const;
    // Checks that the artifact's and its external data's paths stay inside the bundle and,
    // with ``hashes``, their sha256 (the model's from ``model_bytes``, the bytes that will be
    // loaded). Throws Error(INTEGRITY).
    void check_artifact(const Artifact& artifact, const std::vector<unsigned char>& model_bytes,
                        bool hashes) const;
    // A golden file of ``set``: the path rule, then its sha256 from the set (a file the set
    // does not hash is refused), checked on the bytes that are then parsed. Throws
    // Error(INTEGRITY) for the path or the hash, NOT_FOUND, CORRUPT.
    Array read_golden(const GoldenSet& set, const std::string& relative) const;
    std::map<std::string, Array> read_golden(const GoldenSet& set,
                                             const std::map<std::string, std::string>& files) const;
};

// ---- verify's rules (no ONNX Runtime) ---------------------------------------------------------
// Tolerance profiles by precision: fp32 {rtol 1e-3, atol 1e-5}, int8 {min_cosine 0.99,
// min_top1 0.95}.
Tolerance profile_tolerance(const std::string& precision);

// Criteria given on the command line: each replaces the effective value (it may be looser).
struct ToleranceOverride {
    std::optional<double> rtol, atol, min_cosine, min_top1;
};

// The tolerance verify checks an artifact with: per criterion, the tighter of its precision's
// profile and the manifest (rtol, atol: the smaller; min_cosine, min_top1: the larger; a
// criterion only one of them sets is taken from it), so a manifest never loosens a check; then
// each criterion in ``given`` replaces the result.
Tolerance effective_tolerance(const Artifact& artifact, const ToleranceOverride& given = {});

// The golden sets an artifact is checked on: every set of the manifest when the artifact has no
// "golden_sets", else the sets it names. Throws Error(PARITY) when it names a set the manifest
// does not have, or when the list is empty (verify cannot vouch for the artifact).
std::vector<const GoldenSet*> golden_sets_of(const Manifest& manifest, const Artifact& artifact);

// How verify feeds a golden set to the model: whole in one run, or (a set with ``batch``) in runs
// of ``batch`` samples along axis 0, whose outputs are concatenated again.
struct BatchPlan {
    std::string set;
    bool batched = false;
    int64_t samples = 0;  // along axis 0 (batched sets)
    int64_t step = 0;
    size_t runs = 1;
};

// Checks a set's inputs before any slicing: in a batched set every input has rank >= 1 and all
// agree on their first dim (the message lists every input's count, in name order). Throws
// Error(CORRUPT).
BatchPlan plan_batches(const GoldenSet& set, const std::map<std::string, Array>& inputs);
// The inputs of run ``index`` (< plan.runs).
std::map<std::string, Array> batch_inputs(const BatchPlan& plan,
                                          const std::map<std::string, Array>& inputs, size_t index);
// Appends one run's output to the set's result, when a set runs in more than one batch:
// refuses a 0-d output and a dtype or per-sample shape that changes between runs. Throws
// Error(CORRUPT).
void append_batch_output(const BatchPlan& plan, const std::string& output, Array& into,
                         const Array& more);

// The inputs one run takes by default: the first golden set the artifact is checked on (its
// first batch, for a batched set), read with read_golden.
std::map<std::string, Array> default_inputs(const Bundle& bundle, const Artifact& artifact);

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

// ---- verify (runs ONNX Runtime: in libedgeport, not in edgeport_core) -------------------------
struct VerifyOptions {
    std::string provider = "cpu";
    int threads = 0;
    bool allow_fallback = false;
    std::string public_key_file;  // checked again when the artifact's session opens
    ToleranceOverride tolerance;
};

struct SetCheck {
    std::string set;
    OutputCheck check;
};

struct Verdict {
    std::string artifact;
    Tolerance tolerance;          // the effective one
    std::vector<SetCheck> checks;  // per golden set and output
    size_t failed() const;
};

// Runs one artifact of ``bundle`` on its golden sets and checks every output with its effective
// tolerance. Parity failures are in the verdict; everything that keeps the check from being made
// throws Error: no golden set (PARITY), a path or hash (INTEGRITY), a malformed golden set
// (CORRUPT), the session (its own status).
Verdict verify_artifact(const Bundle& bundle, const std::string& artifact,
                        const VerifyOptions& options);

}  // namespace edgeport
