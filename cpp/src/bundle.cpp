// The bundle contract (docs/design.md §3) from C++: manifest.json, sha256 checks, the path rule.
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "internal.hpp"

namespace edgeport {
namespace {

using nlohmann::json;

[[noreturn]] void bad_manifest(const std::string& why) {
    throw Error(EP_ERR_CORRUPT, "manifest.json is not a valid edgeport manifest: " + why);
}

const json& field(const json& object, const char* key, const std::string& where) {
    if (!object.is_object()) bad_manifest(where + " is not an object");
    auto it = object.find(key);
    if (it == object.end()) bad_manifest(where + " has no '" + key + "'");
    return *it;
}

std::string string_field(const json& object, const char* key, const std::string& where) {
    const json& value = field(object, key, where);
    if (!value.is_string()) bad_manifest(where + "." + key + " is not a string");
    return value.get<std::string>();
}

std::optional<double> number_or_none(const json& object, const char* key, const std::string& where) {
    auto it = object.find(key);
    if (it == object.end() || it->is_null()) return std::nullopt;
    if (!it->is_number()) bad_manifest(where + "." + key + " is not a number");
    return it->get<double>();
}

// A count (size, batch) that fits an int64; casting an out-of-range double is undefined.
int64_t count_field(double value, const std::string& where) {
    if (!(value >= 0 && value < 9.0e18)) bad_manifest(where + " is not a usable count");
    return static_cast<int64_t>(value);
}

std::map<std::string, std::string> string_map(const json& value, const std::string& where) {
    if (!value.is_object()) bad_manifest(where + " is not an object");
    std::map<std::string, std::string> out;
    for (auto it = value.begin(); it != value.end(); ++it) {
        if (!it.value().is_string()) bad_manifest(where + "." + it.key() + " is not a string");
        out[it.key()] = it.value().get<std::string>();
    }
    return out;
}

// An artifact's precision: "fp32" or "int8" (it picks the tolerance profile verify checks with).
std::string precision_field(const json& entry, const std::string& where) {
    auto it = entry.find("precision");
    if (it == entry.end())
        bad_manifest(where + ".precision is missing; expected 'fp32' or 'int8'");
    if (!it->is_string() || (*it != "fp32" && *it != "int8"))
        bad_manifest(where + ".precision is " + it->dump() + "; expected 'fp32' or 'int8'");
    return it->get<std::string>();
}

// ---- the fields edgeport.manifest checks, with its field names and problems ------------------

const char* const kDtypes[] = {"float16", "float32", "float64", "int8",   "int16",  "int32",
                               "int64",   "uint8",   "uint16",  "uint32", "uint64", "bool"};

// A JSON value's kind, as edgeport.manifest names it.
std::string kind(const json& value) {
    if (value.is_object()) return "object";
    if (value.is_array()) return "list";
    if (value.is_string()) return "string";
    if (value.is_boolean()) return "boolean";
    if (value.is_number()) return "number";
    return "null";
}

// A value in a message: its JSON text, cut to 60 bytes (at a UTF-8 character boundary).
std::string show(const json& value) {
    std::string text = value.dump(-1, ' ', false, json::error_handler_t::replace);
    if (text.size() <= 60) return text;
    size_t cut = 57;
    while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
    return text.substr(0, cut) + "...";
}

// 268435456 -> "268,435,456".
std::string with_commas(uint64_t n) {
    std::string digits = std::to_string(n), out;
    for (size_t i = 0; i < digits.size(); ++i) {
        if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
        out += digits[i];
    }
    return out;
}

const json& required(const json& object, const char* key, const std::string& field) {
    auto it = object.find(key);
    if (it == object.end()) bad_manifest(field + " is missing");
    return *it;
}

const json& list_field(const json& object, const char* key, const std::string& field) {
    const json& value = required(object, key, field);
    if (!value.is_array()) bad_manifest(field + " is a JSON " + kind(value) + ", not a list");
    return value;
}

// An object the manifest may leave out (or set to null): nullptr then.
const json* optional_object(const json& object, const char* key, const std::string& field) {
    auto it = object.find(key);
    if (it == object.end() || it->is_null()) return nullptr;
    if (!it->is_object()) bad_manifest(field + " is a JSON " + kind(*it) + ", not an object");
    return &*it;
}

std::string nonempty_string(const json& value, const std::string& field) {
    if (!value.is_string() || value.get_ref<const std::string&>().empty())
        bad_manifest(field + " is " + show(value) + ", not a non-empty string");
    return value.get<std::string>();
}

// An integer in [low, high]: a JSON integer (not a boolean, not a number with a fraction or an
// exponent, as Python's json reads them).
int64_t integer_in(const json& value, const std::string& field, int64_t low, int64_t high) {
    bool ok = false;
    int64_t n = 0;
    if (value.is_number_unsigned()) {
        uint64_t u = value.get<uint64_t>();
        ok = u <= uint64_t(high) && int64_t(u) >= low;
        n = ok ? int64_t(u) : 0;
    } else if (value.is_number_integer()) {
        n = value.get<int64_t>();
        ok = low <= n && n <= high;
    }
    if (!ok)
        bad_manifest(field + " is " + show(value) + "; expected an integer in [" +
                     std::to_string(low) + ", " + with_commas(uint64_t(high)) + "]");
    return n;
}

// An input (with ``examples``: its example may not exceed kMaxExampleElements) or an output.
TensorSpec tensor_spec(const json& data, const std::string& where,
                       const std::map<std::string, int64_t>* examples) {
    if (!data.is_object()) bad_manifest(where + " is a JSON " + kind(data) + ", not an object");
    TensorSpec spec;
    spec.name = nonempty_string(required(data, "name", where + ".name"), where + ".name");
    const json& dtype = required(data, "dtype", where + ".dtype");
    for (const char* known : kDtypes)
        if (dtype.is_string() && dtype.get_ref<const std::string&>() == known) spec.dtype = known;
    if (spec.dtype.empty()) {
        std::string allowed;
        for (const char* known : kDtypes)
            allowed += (allowed.empty() ? "'" : ", '") + std::string(known) + "'";
        bad_manifest(where + ".dtype is " + show(dtype) + "; expected one of (" + allowed + ")");
    }
    const json& shape = list_field(data, "shape", where + ".shape");
    for (size_t i = 0; i < shape.size(); ++i) {
        const json& dim = shape[i];
        TensorDim d;
        if (dim.is_string() && !dim.get_ref<const std::string&>().empty())
            d.symbol = dim.get<std::string>();
        else if (!dim.is_null())
            d.size = integer_in(dim, where + ".shape[" + std::to_string(i) + "]", 0, kMaxDim);
        spec.dims.push_back(std::move(d));
    }
    if (examples != nullptr) {
        // Elements of the example input: a symbolic dim at its example size (1 without one),
        // unknown dims left out. Any 0 makes it empty; else the product, saturating at 2^64-1.
        bool empty = false, saturated = false;
        uint64_t elements = 1;
        for (const TensorDim& d : spec.dims) {
            if (!d.size && d.symbol.empty()) continue;
            uint64_t size = 1;
            if (d.size) {
                size = uint64_t(*d.size);
            } else if (auto it = examples->find(d.symbol); it != examples->end()) {
                size = uint64_t(it->second);
            }
            if (size == 0) empty = true;
            else if (elements > UINT64_MAX / size) saturated = true;
            else elements *= size;
        }
        if (!empty && (saturated || elements > uint64_t(kMaxExampleElements)))
            bad_manifest("input_examples make input '" + spec.name + "' " +
                         (saturated ? "more than " + with_commas(UINT64_MAX) : with_commas(elements)) +
                         " elements, over the " + with_commas(uint64_t(kMaxExampleElements)) +
                         " edgeport allocates for an example");
    }
    return spec;
}

}  // namespace

Manifest parse_manifest(std::string_view text) {
    json doc;
    try {
        doc = json::parse(text.begin(), text.end());
    } catch (const json::parse_error& e) {
        // e.byte: where parsing stopped (bare Infinity/NaN, as older Python writers produced,
        // are not JSON either).
        bad_manifest("the file is not JSON (parse error at byte " + std::to_string(e.byte) + ")");
    } catch (const json::exception& e) {
        // e.g. a number too large for a double (found by the fuzzer: out_of_range.406).
        bad_manifest(std::string("the file is not usable JSON: ") + e.what());
    }
    Manifest m;
    m.schema = string_field(doc, "schema", "the manifest");
    if (m.schema != kSchema)
        throw Error(EP_ERR_UNSUPPORTED, "manifest.json has schema '" + m.schema +
                                            "'; this libedgeport reads '" + kSchema + "'");
    const json& artifacts = field(doc, "artifacts", "the manifest");
    if (!artifacts.is_object()) bad_manifest("artifacts is not an object");
    for (auto it = artifacts.begin(); it != artifacts.end(); ++it) {
        std::string where = "artifacts." + it.key();
        const json& entry = it.value();
        Artifact a;
        a.name = it.key();
        a.path = string_field(entry, "path", where);
        a.sha256 = string_field(entry, "sha256", where);
        a.format = string_field(entry, "format", where);
        a.precision = precision_field(entry, where);
        if (auto size = number_or_none(entry, "size_bytes", where))
            a.size_bytes = count_field(*size, where + ".size_bytes");
        if (entry.contains("tolerance")) {
            const json& t = entry["tolerance"];
            if (!t.is_object()) bad_manifest(where + ".tolerance is not an object");
            a.tolerance.rtol = number_or_none(t, "rtol", where + ".tolerance");
            a.tolerance.atol = number_or_none(t, "atol", where + ".tolerance");
            a.tolerance.min_cosine = number_or_none(t, "min_cosine", where + ".tolerance");
            a.tolerance.min_top1 = number_or_none(t, "min_top1", where + ".tolerance");
        }
        if (entry.contains("golden_sets")) {
            const json& sets = entry["golden_sets"];
            if (!sets.is_array()) bad_manifest(where + ".golden_sets is not a list");
            a.golden_sets.emplace();
            for (const json& s : sets) {
                if (!s.is_string()) bad_manifest(where + ".golden_sets has a non-string entry");
                a.golden_sets->push_back(s.get<std::string>());
            }
        }
        if (entry.contains("external_data")) {
            const json& records = entry["external_data"];
            if (!records.is_array()) bad_manifest(where + ".external_data is not a list");
            for (const json& r : records)
                a.external_data.push_back({string_field(r, "path", where + ".external_data[]"),
                                           string_field(r, "sha256", where + ".external_data[]")});
        }
        m.artifact_order.push_back(a.name);
        m.artifacts.emplace(a.name, std::move(a));
    }
    // The model's inputs and outputs, and the sizes an example input is made at.
    if (const json* examples = optional_object(doc, "input_examples", "input_examples"))
        for (auto it = examples->begin(); it != examples->end(); ++it)
            m.input_examples[it.key()] =
                integer_in(it.value(), "input_examples." + it.key(), 1, kMaxDim);
    const json& inputs = list_field(doc, "inputs", "inputs");
    for (size_t i = 0; i < inputs.size(); ++i)
        m.inputs.push_back(
            tensor_spec(inputs[i], "inputs[" + std::to_string(i) + "]", &m.input_examples));
    const json& outputs = list_field(doc, "outputs", "outputs");
    for (size_t i = 0; i < outputs.size(); ++i)
        m.outputs.push_back(tensor_spec(outputs[i], "outputs[" + std::to_string(i) + "]", nullptr));
    if (m.inputs.empty()) bad_manifest("inputs is empty");
    if (m.outputs.empty()) bad_manifest("outputs is empty");
    if (doc.contains("golden")) {
        const json& sets = field(doc["golden"], "sets", "golden");
        if (!sets.is_array()) bad_manifest("golden.sets is not a list");
        for (const json& s : sets) {
            GoldenSet g;
            g.name = string_field(s, "name", "golden.sets[]");
            const std::string named = "golden set '" + g.name + "'";
            const json& sizes = required(s, "sizes", named + ".sizes");
            if (!sizes.is_object())
                bad_manifest(named + ".sizes is a JSON " + kind(sizes) + ", not an object");
            for (auto it = sizes.begin(); it != sizes.end(); ++it)
                g.sizes[it.key()] = integer_in(it.value(), named + ".sizes." + it.key(), 1, kMaxDim);
            g.inputs = string_map(field(s, "inputs", "golden set " + g.name), "golden set " + g.name);
            g.outputs = string_map(field(s, "outputs", "golden set " + g.name), "golden set " + g.name);
            if (s.contains("sha256"))
                g.sha256 = string_map(s["sha256"], "golden set " + g.name + ".sha256");
            if (auto batch = number_or_none(s, "batch", "golden set " + g.name)) {
                g.batch = count_field(*batch, "golden set " + g.name + ".batch");
                if (*g.batch < 1) bad_manifest("golden set " + g.name + " has batch < 1");
            }
            m.golden_sets.push_back(std::move(g));
        }
    }
    if (const json* model = optional_object(doc, "model", "model"))
        if (auto source = model->find("source"); source != model->end())
            m.source = nonempty_string(*source, "model.source");
    if (doc.contains("recommended") && doc["recommended"].is_object() &&
        doc["recommended"].contains("artifact") && doc["recommended"]["artifact"].is_string())
        m.recommended = doc["recommended"]["artifact"].get<std::string>();
    return m;
}

namespace {

// manifest.json.sig beside the manifest: the raw 64-byte Ed25519 signature of its bytes.
void check_signature(const fs::path& dir, const std::string& manifest, const PublicKey& key) {
    std::error_code ec;
    fs::path file = dir / "manifest.json.sig";
    if (!fs::is_regular_file(fs::symlink_status(file, ec)))  // a symlink is not a signature
        throw Error(EP_ERR_INTEGRITY, "bundle '" + dir.string() +
                                          "' is not signed (no manifest.json.sig) and a public key "
                                          "was given: refusing it");
    std::ifstream in(file, std::ios::binary);
    std::vector<unsigned char> signature(65);  // one byte more than a signature: a longer file fails
    in.read(reinterpret_cast<char*>(signature.data()), std::streamsize(signature.size()));
    signature.resize(in ? signature.size() : static_cast<size_t>(in.gcount()));
    if (signature.size() != 64 || !ed25519_verify(key, manifest, signature))
        throw Error(EP_ERR_INTEGRITY, "manifest.json.sig does not verify against public key '" +
                                          key.file +
                                          "': the manifest changed after signing, or another key "
                                          "signed it");
}

}  // namespace

fs::path inside(const fs::path& root, const std::string& relative, const std::string& what) {
    fs::path rel(relative);
    bool dotdot = false;
    for (const auto& part : rel) dotdot = dotdot || part == "..";
    if (relative.empty() || relative.find('\0') != std::string::npos || rel.is_absolute() || dotdot)
        throw Error(EP_ERR_INTEGRITY, what + " points at '" + relative +
                                          "', outside the bundle: paths in a bundle must be "
                                          "relative and stay inside it");
    std::error_code ec;
    fs::path base = fs::weakly_canonical(root, ec);
    fs::path full = fs::weakly_canonical(root / rel, ec);
    auto mismatch = std::mismatch(base.begin(), base.end(), full.begin(), full.end());
    if (ec || mismatch.first != base.end())
        throw Error(EP_ERR_INTEGRITY, what + " '" + relative +
                                          "' resolves (through a symlink) outside the bundle, to '" +
                                          full.string() + "'");
    return root / rel;
}

Bundle Bundle::load(const fs::path& dir, const PublicKey* key) {
    std::error_code ec;
    if (!fs::exists(dir, ec))
        throw Error(EP_ERR_NOT_FOUND, "'" + dir.string() + "' does not exist");
    if (fs::is_symlink(dir / "manifest.json", ec))
        inside(dir, "manifest.json", "the manifest");  // a link out is refused like any path
    auto size = fs::file_size(dir / "manifest.json", ec);
    if (!ec && size > (64u << 20))
        throw Error(EP_ERR_CORRUPT, "manifest.json is " + std::to_string(size) +
                                        " bytes; a manifest is under 64 MiB");
    std::ifstream in(dir / "manifest.json", std::ios::binary);
    if (!in)
        throw Error(EP_ERR_NOT_FOUND, "'" + dir.string() +
                                          "' is not an edgeport bundle: it has no manifest.json "
                                          "(make one with `edgeport export`)");
    // Read once: the bytes whose signature is checked are the bytes that are parsed.
    std::stringstream text;
    text << in.rdbuf();
    const std::string manifest = text.str();
    if (key != nullptr) check_signature(dir, manifest, *key);
    return Bundle{dir, parse_manifest(manifest)};
}

const Artifact& Bundle::artifact(const std::string& name) const {
    auto it = manifest.artifacts.find(name);
    if (it != manifest.artifacts.end()) return it->second;
    std::string names;
    for (const auto& n : manifest.artifact_order) names += (names.empty() ? "" : ", ") + n;
    throw Error(EP_ERR_NOT_FOUND, "the bundle has no artifact '" + name + "'. Available: " + names);
}

std::string Bundle::default_onnx() const {
    auto it = manifest.artifacts.find(manifest.recommended);
    if (it != manifest.artifacts.end() && it->second.format == "onnx") return it->first;
    return "onnx-fp32";
}

namespace {

void expect_sha256(const FileRecord& record, const std::string& actual) {
    if (actual != record.sha256)
        throw Error(EP_ERR_INTEGRITY, "sha256 of '" + record.path + "' is " + actual +
                                          ", manifest says " + record.sha256 +
                                          ": the file changed after the bundle was written; "
                                          "re-export it, and do not run it as is");
}

}  // namespace

void Bundle::check_artifact(const Artifact& a, const std::vector<unsigned char>& model_bytes,
                            bool hashes) const {
    inside(root, a.path, "artifact '" + a.name + "'");
    std::vector<std::pair<fs::path, const FileRecord*>> external;
    for (const auto& record : a.external_data)
        external.emplace_back(inside(root, record.path, "external data of '" + a.name + "'"),
                              &record);
    if (!hashes) return;
    // The model is hashed from the bytes ONNX Runtime will load, not read a second time.
    expect_sha256({a.path, a.sha256}, sha256_hex(model_bytes.data(), model_bytes.size()));
    for (const auto& [file, record] : external) expect_sha256(*record, sha256_file(file));
}

Array Bundle::read_golden(const GoldenSet& set, const std::string& relative) const {
    fs::path file = inside(root, relative, "golden file of set '" + set.name + "'");
    auto hash = set.sha256.find(relative);
    if (hash == set.sha256.end())
        throw Error(EP_ERR_INTEGRITY, "golden file '" + relative + "' has no sha256 in the manifest");
    std::ifstream in(file, std::ios::binary);
    if (!in) throw Error(EP_ERR_NOT_FOUND, "cannot read '" + file.string() + "': no such file");
    std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(in)),
                                     std::istreambuf_iterator<char>());
    expect_sha256({relative, hash->second}, sha256_hex(bytes.data(), bytes.size()));
    return parse_npy(bytes.data(), bytes.size(), "'" + file.string() + "'");
}

std::map<std::string, Array> Bundle::read_golden(
    const GoldenSet& set, const std::map<std::string, std::string>& files) const {
    std::map<std::string, Array> out;
    for (const auto& [name, relative] : files) out[name] = read_golden(set, relative);
    return out;
}

}  // namespace edgeport
