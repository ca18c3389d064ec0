// The readers that need no ONNX Runtime: sha256, .npy, manifest, ONNX external-data scan.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <functional>
#include <string>

#include "internal.hpp"

using namespace edgeport;

namespace {

std::string message_of(const std::function<void()>& body, ep_status* status = nullptr) {
    try {
        body();
    } catch (const Error& e) {
        if (status) *status = e.status();
        return e.what();
    }
    return "<no error>";
}

std::vector<unsigned char> bytes(const std::string& text) { return {text.begin(), text.end()}; }

std::vector<unsigned char> npy(const std::string& header, size_t data_bytes) {
    std::string h = header;
    while ((10 + h.size() + 1) % 64) h += ' ';
    h += '\n';
    std::vector<unsigned char> out = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0,
                                      static_cast<unsigned char>(h.size()), 0};
    out.insert(out.end(), h.begin(), h.end());
    out.resize(out.size() + data_bytes, 0);
    return out;
}

}  // namespace

TEST(Sha256, KnownVectors) {
    EXPECT_EQ(sha256_hex("abc", 3), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    EXPECT_EQ(sha256_hex("", 0), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    std::string million(1000000, 'a');
    EXPECT_EQ(sha256_hex(million.data(), million.size()),
              "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(Npy, RoundTripAndShapes) {
    Array a{EP_DTYPE_INT64, {2, 3}, {}};
    a.data.resize(48);
    for (size_t i = 0; i < 6; ++i) reinterpret_cast<int64_t*>(a.data.data())[i] = int64_t(i) - 2;
    fs::path path = fs::temp_directory_path() / "edgeport_roundtrip.npy";
    write_npy(path, a);
    Array b = read_npy(path);
    EXPECT_EQ(b.dtype, EP_DTYPE_INT64);
    EXPECT_EQ(b.shape, (std::vector<int64_t>{2, 3}));
    EXPECT_EQ(b.data, a.data);
    Array scalar = parse_npy(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (), }", 4).data(),
                             npy("{'descr': '<f4', 'fortran_order': False, 'shape': (), }", 4).size(), "s");
    EXPECT_TRUE(scalar.shape.empty());
    auto one = npy("{'descr': '|b1', 'fortran_order': False, 'shape': (5,), }", 5);
    EXPECT_EQ(parse_npy(one.data(), one.size(), "b").shape, std::vector<int64_t>{5});
}

TEST(Npy, MalformedFilesAreRefusedWithTheReason) {
    auto check = [](const std::vector<unsigned char>& data, const std::string& expected) {
        ep_status status = EP_OK;
        std::string message = message_of([&] { parse_npy(data.data(), data.size(), "'x.npy'"); }, &status);
        EXPECT_EQ(status, EP_ERR_CORRUPT) << message;
        EXPECT_NE(message.find(expected), std::string::npos) << message;
    };
    check(bytes("not an npy file at all"), "'x.npy' is not a valid .npy file: it does not start with the .npy magic bytes");
    check(npy("{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", 8), "dtype '>f4' is not supported");
    check(npy("{'descr': '<f4', 'fortran_order': True, 'shape': (2,), }", 8), "Fortran-order");
    check(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", 8),
          "the header promises 24 bytes of data, the file has 8");
    check(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4294967296), }", 8),
          "overflows");
    check(npy("{'descr': '<f4', 'fortran_order': False, }", 0), "the header has no 'shape'");
    auto truncated = npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", 8);
    truncated[8] = 0xff;  // header length past the end
    check(truncated, "the header runs past the end of the file");
    EXPECT_EQ(message_of([] { read_npy("/nonexistent/x.npy"); }),
              "cannot read '/nonexistent/x.npy': no such file");
}

TEST(Manifest, ParsesTheFixtureAndNamesWhatIsWrong) {
    std::ifstream in(std::string(EDGEPORT_FIXTURES) + "/tiny/manifest.json");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    Manifest m = parse_manifest(text);
    EXPECT_EQ(m.recommended, "onnx-fp32");
    ASSERT_EQ(m.artifacts.count("onnx-fp32"), 1u);
    EXPECT_EQ(*m.artifacts["onnx-fp32"].tolerance.rtol, 1e-3);
    EXPECT_EQ(m.golden_sets.size(), 2u);
    EXPECT_EQ(m.golden_sets[1].batch, 1);
    EXPECT_EQ(m.golden_sets[0].sha256.size(), 3u);
    EXPECT_EQ(m.golden_sets[0].sha256.count("golden/scale.npy"), 1u);

    ep_status status = EP_OK;
    EXPECT_EQ(message_of([] { parse_manifest("{\"schema\": \"edgeport.bundle/1\", \"artif"); }, &status),
              "manifest.json is not a valid edgeport manifest: the file is not JSON (parse error at byte 39)");
    EXPECT_EQ(status, EP_ERR_CORRUPT);
    EXPECT_EQ(message_of([] { parse_manifest(R"({"schema": "edgeport.bundle/1"})"); }),
              "manifest.json is not a valid edgeport manifest: the manifest has no 'artifacts'");
    EXPECT_EQ(message_of([] {
                  parse_manifest(R"({"schema": "edgeport.bundle/1", "artifacts": {"a": {"path": 3}}})");
              }),
              "manifest.json is not a valid edgeport manifest: artifacts.a.path is not a string");
    // Found by the fuzzer: a number too large for a double threw a non-parse json exception.
    std::string huge(400, '9');
    EXPECT_EQ(message_of([&] { parse_manifest(huge); }, &status).rfind(
                  "manifest.json is not a valid edgeport manifest: the file is not usable JSON: ", 0),
              0u);
    EXPECT_EQ(status, EP_ERR_CORRUPT);
    EXPECT_EQ(message_of([] {
                  parse_manifest(R"({"schema": "edgeport.bundle/1", "artifacts": {"a": {"path": "m",
                     "sha256": "x", "format": "onnx", "precision": "fp32", "size_bytes": 1e300}}})");
              }),
              "manifest.json is not a valid edgeport manifest: artifacts.a.size_bytes is not a "
              "usable count");
    EXPECT_EQ(message_of([] { parse_manifest(R"({"schema": "other/2", "artifacts": {}})"); }, &status),
              "manifest.json has schema 'other/2'; this libedgeport reads 'edgeport.bundle/1'");
    EXPECT_EQ(status, EP_ERR_UNSUPPORTED);
}

TEST(Paths, StayInsideTheBundle) {
    fs::path root = fs::path(EDGEPORT_FIXTURES) / "tiny";
    EXPECT_EQ(inside(root, "model.onnx", "artifact"), root / "model.onnx");
    ep_status status = EP_OK;
    EXPECT_EQ(message_of([&] { inside(root, "../escape/outside.bin", "external data"); }, &status),
              "external data points at '../escape/outside.bin', outside the bundle: paths in a "
              "bundle must be relative and stay inside it");
    EXPECT_EQ(status, EP_ERR_INTEGRITY);
    EXPECT_NE(message_of([&] { inside(root, "/etc/passwd", "artifact"); }).find("outside the bundle"),
              std::string::npos);
    fs::path link = fs::temp_directory_path() / "edgeport_link_bundle";
    fs::remove_all(link);
    fs::create_directories(link);
    fs::create_symlink("/etc", link / "etc");
    EXPECT_NE(message_of([&] { inside(link, "etc/passwd", "artifact"); })
                  .find("resolves (through a symlink) outside the bundle"),
              std::string::npos);
}

TEST(OnnxScan, ListsExternalDataLocations) {
    auto read = [](const std::string& rel) {
        std::ifstream in(std::string(EDGEPORT_FIXTURES) + rel, std::ios::binary);
        return std::vector<unsigned char>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    };
    auto ok = read("/external_ok/model.onnx");
    EXPECT_EQ(external_data_locations(ok.data(), ok.size()), std::vector<std::string>{"weights.bin"});
    auto escape = read("/escape/b/model.onnx");
    EXPECT_EQ(external_data_locations(escape.data(), escape.size()),
              std::vector<std::string>{"../outside.bin"});
    auto plain = read("/tiny/model.onnx");
    EXPECT_TRUE(external_data_locations(plain.data(), plain.size()).empty());
    auto cut = std::vector<unsigned char>(plain.begin(), plain.begin() + long(plain.size() / 2));
    ep_status status = EP_OK;
    message_of([&] { external_data_locations(cut.data(), cut.size()); }, &status);
    EXPECT_EQ(status, EP_ERR_CORRUPT);
}

TEST(Parity, SameRulesAsPython) {
    Array ref{EP_DTYPE_FLOAT32, {1, 3}, {}}, got = ref;
    float r[] = {1.0f, 2.0f, 3.0f}, g[] = {1.0f, 2.01f, 3.0f};
    ref.data.assign(reinterpret_cast<unsigned char*>(r), reinterpret_cast<unsigned char*>(r) + 12);
    got.data.assign(reinterpret_cast<unsigned char*>(g), reinterpret_cast<unsigned char*>(g) + 12);
    Tolerance fp32{1e-3, 1e-5, std::nullopt, std::nullopt};
    OutputCheck c = check_output("y", got, ref, fp32);
    ASSERT_EQ(c.failures.size(), 1u);
    EXPECT_EQ(c.failures[0],
              "output 'y': max_abs_err 0.01 exceeds tolerance atol 1e-05 + rtol 0.001·|ref| (worst at "
              "flat index 1: got 2.01, reference 2; 1 of 3 elements out of tolerance)");
    EXPECT_TRUE(check_output("y", ref, ref, fp32).failures.empty());
    Tolerance int8{std::nullopt, 0, 0.99999, 0.95};
    EXPECT_NEAR(check_output("y", got, ref, int8).cosine, 0.99999, 1e-5);
    EXPECT_EQ(*check_output("y", got, ref, int8).top1, 1.0);
}

TEST(Stats, PercentilesAndBootstrap) {
    EXPECT_DOUBLE_EQ(percentile({1, 2, 3, 4}, 50), 2.5);  // numpy's linear interpolation
    EXPECT_DOUBLE_EQ(percentile({1, 2, 3, 4}, 90), 3.7);
    CallStats s = call_stats({{1, 1, 1}, {2, 2, 2}, {3, 3, 3}}, 4);
    EXPECT_DOUBLE_EQ(s.p50, 2);
    EXPECT_EQ(s.calls, 9u);
    EXPECT_DOUBLE_EQ(s.throughput, 4 / (2.0 / 1e3));
    EXPECT_GE(s.ci95_low, 1);
    EXPECT_LE(s.ci95_high, 3);
    EXPECT_LT(s.ci95_low, s.ci95_high);
}

namespace {

// The model's inputs and outputs of a minimal manifest (parse_manifest requires them).
const std::string kTensors = R"(, "inputs": [{"name": "x", "dtype": "float32", "shape": ["batch", 4]}],
    "outputs": [{"name": "y", "dtype": "float32", "shape": ["batch", null]}])";

std::string manifest_with(const std::string& artifact_fields, const std::string& golden = "",
                          const std::string& tensors = kTensors) {
    return R"({"schema": "edgeport.bundle/1", "artifacts": {"a": {"path": "m", "sha256": "x",
        "format": "onnx")" + artifact_fields + "}}" + tensors + golden + "}";
}

const std::string kBad = "manifest.json is not a valid edgeport manifest: ";

Array floats(std::vector<int64_t> shape, float first = 0) {
    Array a{EP_DTYPE_FLOAT32, std::move(shape), {}};
    a.data.resize(a.elements() * 4);
    for (size_t i = 0; i < a.elements(); ++i) {
        float v = first + float(i);
        std::memcpy(a.data.data() + i * 4, &v, 4);
    }
    return a;
}

}  // namespace

TEST(Manifest, PrecisionIsFp32OrInt8) {
    EXPECT_EQ(message_of([] { parse_manifest(manifest_with("")); }),
              kBad + "artifacts.a.precision is missing; expected 'fp32' or 'int8'");
    ep_status status = EP_OK;
    EXPECT_EQ(message_of([] { parse_manifest(manifest_with(R"(, "precision": "fp16")")); }, &status),
              kBad + "artifacts.a.precision is \"fp16\"; expected 'fp32' or 'int8'");
    EXPECT_EQ(status, EP_ERR_CORRUPT);
    EXPECT_EQ(message_of([] { parse_manifest(manifest_with(R"(, "precision": 8)")); }),
              kBad + "artifacts.a.precision is 8; expected 'fp32' or 'int8'");
    EXPECT_EQ(parse_manifest(manifest_with(R"(, "precision": "int8")")).artifacts["a"].precision, "int8");
}

TEST(Manifest, GoldenHashesAndGoldenSetsAreTyped) {
    const std::string fp32 = R"(, "precision": "fp32")";
    auto golden = [](const std::string& sha) {
        return R"(, "golden": {"sets": [{"name": "g", "sizes": {}, "inputs": {"x": "x.npy"},
            "outputs": {}, "sha256": )" + sha + "}]}";
    };
    Manifest m = parse_manifest(manifest_with(fp32, golden(R"({"x.npy": "ab"})")));
    EXPECT_EQ(m.golden_sets[0].sha256.at("x.npy"), "ab");
    EXPECT_FALSE(m.artifacts["a"].golden_sets.has_value());  // absent: every set
    EXPECT_EQ(message_of([&] { parse_manifest(manifest_with(fp32, golden("[1]"))); }),
              kBad + "golden set g.sha256 is not an object");
    EXPECT_EQ(message_of([&] { parse_manifest(manifest_with(fp32, golden(R"({"x.npy": 1})"))); }),
              kBad + "golden set g.sha256.x.npy is not a string");
    Manifest none = parse_manifest(manifest_with(fp32 + R"(, "golden_sets": [])"));
    ASSERT_TRUE(none.artifacts["a"].golden_sets.has_value());
    EXPECT_TRUE(none.artifacts["a"].golden_sets->empty());
}

// The fields edgeport.manifest checks and libedgeport once ignored: the same manifests are
// refused, each naming the field as Python does.
TEST(Manifest, InputsOutputsAndTheirSizesAreCheckedAsPythonChecksThem) {
    const std::string fp32 = R"(, "precision": "fp32")";
    auto parse = [&](const std::string& tensors, const std::string& golden = "") {
        return parse_manifest(manifest_with(fp32, golden, tensors));
    };
    auto refusal = [&](const std::string& tensors, const std::string& golden = "") {
        ep_status status = EP_OK;
        std::string message = message_of([&] { parse(tensors, golden); }, &status);
        EXPECT_EQ(status, EP_ERR_CORRUPT) << message;
        return message;
    };
    auto input = [](const std::string& spec, const std::string& rest = "") {
        return R"(, "inputs": [)" + spec + R"(], "outputs": [{"name": "y", "dtype": "bool", "shape": []}])" + rest;
    };

    Manifest m = parse(input(R"({"name": "x", "dtype": "uint8", "shape": ["batch", null, 3, 0]})",
                             R"(, "input_examples": {"batch": 16777216}, "model": {"source": "m.py"})"));
    ASSERT_EQ(m.inputs.size(), 1u);
    EXPECT_EQ(m.inputs[0].name, "x");
    EXPECT_EQ(m.inputs[0].dtype, "uint8");
    ASSERT_EQ(m.inputs[0].dims.size(), 4u);
    EXPECT_EQ(m.inputs[0].dims[0].symbol, "batch");
    EXPECT_FALSE(m.inputs[0].dims[0].size.has_value());
    EXPECT_FALSE(m.inputs[0].dims[1].size.has_value());
    EXPECT_TRUE(m.inputs[0].dims[1].symbol.empty());
    EXPECT_EQ(m.inputs[0].dims[2].size, 3);
    EXPECT_EQ(m.inputs[0].dims[3].size, 0);
    EXPECT_EQ(m.outputs.at(0).dtype, "bool");
    EXPECT_TRUE(m.outputs[0].dims.empty());
    EXPECT_EQ(m.input_examples.at("batch"), 1 << 24);
    EXPECT_EQ(m.source, "m.py");
    EXPECT_FALSE(parse(kTensors).source.has_value());
    // Null input_examples and model are left out, as in Python.
    EXPECT_TRUE(parse(kTensors + R"(, "input_examples": null, "model": null)").input_examples.empty());

    // inputs and outputs: required non-empty lists of {name, dtype, shape}.
    EXPECT_EQ(refusal(R"(, "outputs": [{"name": "y", "dtype": "float32", "shape": []}])"),
              kBad + "inputs is missing");
    EXPECT_EQ(refusal(R"(, "inputs": {"x": 1}, "outputs": [])"),
              kBad + "inputs is a JSON object, not a list");
    EXPECT_EQ(refusal(R"(, "inputs": [{"name": "x", "dtype": "int8", "shape": []}])"),
              kBad + "outputs is missing");
    EXPECT_EQ(refusal(R"(, "inputs": [], "outputs": [])"), kBad + "inputs is empty");
    EXPECT_EQ(refusal(R"(, "inputs": [{"name": "x", "dtype": "int8", "shape": []}], "outputs": [])"),
              kBad + "outputs is empty");
    EXPECT_EQ(refusal(input(R"("x")")), kBad + "inputs[0] is a JSON string, not an object");
    EXPECT_EQ(refusal(input(R"({"dtype": "int8", "shape": []})")), kBad + "inputs[0].name is missing");
    EXPECT_EQ(refusal(input(R"({"name": "", "dtype": "int8", "shape": []})")),
              kBad + "inputs[0].name is \"\", not a non-empty string");
    EXPECT_EQ(refusal(input(R"({"name": "x", "shape": []})")), kBad + "inputs[0].dtype is missing");
    EXPECT_EQ(refusal(input(R"({"name": "x", "dtype": "evil", "shape": []})")),
              kBad + "inputs[0].dtype is \"evil\"; expected one of ('float16', 'float32', 'float64', "
                     "'int8', 'int16', 'int32', 'int64', 'uint8', 'uint16', 'uint32', 'uint64', 'bool')");
    EXPECT_NE(refusal(input(R"({"name": "x", "dtype": 7, "shape": []})")).find("inputs[0].dtype is 7; "),
              std::string::npos);
    EXPECT_EQ(refusal(input(R"({"name": "x", "dtype": "int8"})")), kBad + "inputs[0].shape is missing");
    EXPECT_EQ(refusal(input(R"({"name": "x", "dtype": "int8", "shape": "batch"})")),
              kBad + "inputs[0].shape is a JSON string, not a list");
    // A dim: null, a non-empty string or an integer in [0, 2^24]; no float, boolean or "".
    const std::string dim_range = "; expected an integer in [0, 16,777,216]";
    for (const auto& [dim, shown] : std::vector<std::pair<std::string, std::string>>{
             {"3.5", "3.5"}, {"3.0", "3.0"}, {"true", "true"}, {R"("")", R"("")"}, {"-1", "-1"},
             {"16777217", "16777217"}, {"[1]", "[1]"}, {"18446744073709551615", "18446744073709551615"}})
        EXPECT_EQ(refusal(input(R"({"name": "x", "dtype": "int8", "shape": [1, )" + dim + "]}")),
                  kBad + "inputs[0].shape[1] is " + shown + dim_range);
    EXPECT_EQ(refusal(R"(, "inputs": [{"name": "x", "dtype": "int8", "shape": []}],
                        "outputs": [{"name": "y", "dtype": "int8", "shape": [2.5]}])"),
              kBad + "outputs[0].shape[0] is 2.5" + dim_range);
    // A long value is cut in the message.
    EXPECT_EQ(refusal(input(R"({"name": "x", "dtype": ")" + std::string(100, 'e') + R"(", "shape": []})")),
              kBad + "inputs[0].dtype is \"" + std::string(56, 'e') + "...; expected one of ('float16', "
                     "'float32', 'float64', 'int8', 'int16', 'int32', 'int64', 'uint8', 'uint16', "
                     "'uint32', 'uint64', 'bool')");

    // input_examples: an object of integers in [1, 2^24], and an example of at most 2^28 elements.
    const std::string x = R"({"name": "x", "dtype": "float32", "shape": ["batch", 64, null]})";
    EXPECT_EQ(refusal(input(x, R"(, "input_examples": [1])")),
              kBad + "input_examples is a JSON list, not an object");
    EXPECT_EQ(refusal(input(x, R"(, "input_examples": {"batch": 1000000000000})")),
              kBad + "input_examples.batch is 1000000000000; expected an integer in [1, 16,777,216]");
    EXPECT_EQ(refusal(input(x, R"(, "input_examples": {"batch": 0})")),
              kBad + "input_examples.batch is 0; expected an integer in [1, 16,777,216]");
    EXPECT_EQ(refusal(input(x, R"(, "input_examples": {"batch": 2.0})")),
              kBad + "input_examples.batch is 2.0; expected an integer in [1, 16,777,216]");
    EXPECT_EQ(refusal(input(x, R"(, "input_examples": {"batch": 16777216})")),
              kBad + "input_examples make input 'x' 1,073,741,824 elements, over the 268,435,456 "
                     "edgeport allocates for an example");
    EXPECT_EQ(parse(input(x, R"(, "input_examples": {"batch": 4194304})")).inputs.size(), 1u);  // 2^28
    // A symbolic dim without an example counts 1; a 0 dim makes the example empty.
    EXPECT_EQ(parse(input(R"({"name": "x", "dtype": "int8", "shape": ["n", 16777216, 16]})")).inputs.size(), 1u);
    EXPECT_EQ(refusal(input(R"({"name": "x", "dtype": "int8", "shape": ["n", 16777216, 17]})")),
              kBad + "input_examples make input 'x' 285,212,672 elements, over the 268,435,456 "
                     "edgeport allocates for an example");
    EXPECT_EQ(parse(input(R"({"name": "x", "dtype": "int8",
                              "shape": [16777216, 16777216, 16777216, 16777216, 0]})")).inputs.size(), 1u);
    EXPECT_EQ(refusal(input(R"({"name": "x", "dtype": "int8",
                                "shape": [16777216, 16777216, 16777216, 16777216]})")),
              kBad + "input_examples make input 'x' more than 18,446,744,073,709,551,615 elements, "
                     "over the 268,435,456 edgeport allocates for an example");
    // Outputs have no example: their sizes are the model's.
    EXPECT_EQ(parse(R"(, "inputs": [{"name": "x", "dtype": "int8", "shape": []}],
        "outputs": [{"name": "y", "dtype": "int8", "shape": [16777216, 16777216]}])").outputs.size(), 1u);

    // A golden set's sizes: required, integers in [1, 2^24].
    auto golden = [](const std::string& sizes) {
        return R"(, "golden": {"sets": [{"name": "base", )" + sizes +
               R"( "inputs": {}, "outputs": {}}]})";
    };
    EXPECT_EQ(parse(kTensors, golden(R"("sizes": {"batch": 2},)")).golden_sets.at(0).sizes.at("batch"), 2);
    EXPECT_EQ(refusal(kTensors, golden("")), kBad + "golden set 'base'.sizes is missing");
    EXPECT_EQ(refusal(kTensors, golden(R"("sizes": [2],)")),
              kBad + "golden set 'base'.sizes is a JSON list, not an object");
    EXPECT_EQ(refusal(kTensors, golden(R"("sizes": {"batch": 0},)")),
              kBad + "golden set 'base'.sizes.batch is 0; expected an integer in [1, 16,777,216]");
    EXPECT_EQ(refusal(kTensors, golden(R"("sizes": {"batch": false},)")),
              kBad + "golden set 'base'.sizes.batch is false; expected an integer in [1, 16,777,216]");

    // model: an object when present; its source a non-empty string.
    EXPECT_EQ(refusal(kTensors + R"(, "model": "m.py")"), kBad + "model is a JSON string, not an object");
    EXPECT_EQ(refusal(kTensors + R"(, "model": {"source": ""})"),
              kBad + "model.source is \"\", not a non-empty string");
    EXPECT_EQ(refusal(kTensors + R"(, "model": {"source": null})"),
              kBad + "model.source is null, not a non-empty string");
}

TEST(Tolerance, EffectiveIsTheTighterOfProfileAndManifest) {
    Artifact a;
    a.name = "a";
    a.precision = "fp32";
    Tolerance t = effective_tolerance(a);  // nothing recorded: the profile
    EXPECT_EQ(t.rtol, 1e-3);
    EXPECT_EQ(t.atol, 1e-5);
    EXPECT_FALSE(t.min_cosine.has_value());
    EXPECT_FALSE(t.min_top1.has_value());

    a.tolerance = {1e9, 1e9, -1.0, 0.0};  // looser everywhere: never looser than the profile
    t = effective_tolerance(a);
    EXPECT_EQ(t.rtol, 1e-3);
    EXPECT_EQ(t.atol, 1e-5);
    EXPECT_EQ(t.min_cosine, -1.0);  // only the manifest sets it for fp32
    EXPECT_EQ(t.min_top1, 0.0);

    a.tolerance = {1e-6, std::nullopt, 0.999, std::nullopt};  // tighter: kept
    t = effective_tolerance(a);
    EXPECT_EQ(t.rtol, 1e-6);
    EXPECT_EQ(t.atol, 1e-5);
    EXPECT_EQ(t.min_cosine, 0.999);

    a.precision = "int8";
    a.tolerance = {0.5, std::nullopt, 0.5, 0.99};
    t = effective_tolerance(a);
    EXPECT_EQ(t.rtol, 0.5);  // the int8 profile has no rtol: the manifest's
    EXPECT_FALSE(t.atol.has_value());
    EXPECT_EQ(t.min_cosine, 0.99);  // max(0.99, 0.5)
    EXPECT_EQ(t.min_top1, 0.99);    // max(0.95, 0.99)
    a.tolerance = {};
    t = effective_tolerance(a);
    EXPECT_FALSE(t.rtol.has_value());
    EXPECT_EQ(t.min_cosine, 0.99);
    EXPECT_EQ(t.min_top1, 0.95);
}

TEST(Tolerance, TheCommandLineReplacesACriterion) {
    Artifact a;
    a.precision = "int8";
    a.tolerance.min_cosine = 0.999;
    ToleranceOverride given;
    given.min_cosine = 0.5;  // the user's own word may be looser
    given.rtol = 0.1;
    Tolerance t = effective_tolerance(a, given);
    EXPECT_EQ(t.min_cosine, 0.5);
    EXPECT_EQ(t.rtol, 0.1);
    EXPECT_EQ(t.min_top1, 0.95);  // not given: the effective value
    a.precision = "fp16";
    ep_status status = EP_OK;
    EXPECT_EQ(message_of([&] { effective_tolerance(a); }, &status),
              "precision 'fp16' has no tolerance profile (expected 'fp32' or 'int8')");
    EXPECT_EQ(status, EP_ERR_CORRUPT);
}

TEST(GoldenSets, AbsentMeansEveryAndNoneFails) {
    Manifest m;
    m.golden_sets = {GoldenSet{"base", {}, {}, std::nullopt, {}},
                     GoldenSet{"samples", {}, {}, 2, {}}};
    Artifact a;
    a.name = "onnx-int8";
    EXPECT_EQ(golden_sets_of(m, a).size(), 2u);
    a.golden_sets = std::vector<std::string>{"samples"};
    ASSERT_EQ(golden_sets_of(m, a).size(), 1u);
    EXPECT_EQ(golden_sets_of(m, a)[0]->name, "samples");

    ep_status status = EP_OK;
    a.golden_sets = std::vector<std::string>{"samples", "nope"};
    EXPECT_EQ(message_of([&] { golden_sets_of(m, a); }, &status),
              "artifact 'onnx-int8' names golden set 'nope', which the manifest does not have");
    EXPECT_EQ(status, EP_ERR_PARITY);
    a.golden_sets = std::vector<std::string>{};
    EXPECT_EQ(message_of([&] { golden_sets_of(m, a); }, &status),
              "artifact 'onnx-int8' is checked on no golden set: verify cannot vouch for it");
    EXPECT_EQ(status, EP_ERR_PARITY);
    a.golden_sets.reset();
    m.golden_sets.clear();
    EXPECT_EQ(message_of([&] { golden_sets_of(m, a); }),
              "artifact 'onnx-int8' is checked on no golden set: verify cannot vouch for it");
}

TEST(Batching, RunsInChunksAndJoinsTheOutputs) {
    GoldenSet set{"samples", {}, {}, 2, {}};
    std::map<std::string, Array> inputs = {{"x", floats({5, 3})}, {"scale", floats({5, 1}, 100)}};
    BatchPlan plan = plan_batches(set, inputs);
    EXPECT_TRUE(plan.batched);
    EXPECT_EQ(plan.samples, 5);
    EXPECT_EQ(plan.runs, 3u);  // 2 + 2 + 1
    Array joined;
    for (size_t run = 0; run < plan.runs; ++run) {
        auto chunk = batch_inputs(plan, inputs, run);
        EXPECT_EQ(chunk.at("x").shape, (std::vector<int64_t>{run < 2 ? 2 : 1, 3}));
        append_batch_output(plan, "x", joined, chunk.at("x"));
    }
    EXPECT_EQ(joined.shape, inputs.at("x").shape);
    EXPECT_EQ(joined.data, inputs.at("x").data);
    float third_scale = 0;
    std::memcpy(&third_scale, batch_inputs(plan, inputs, 1).at("scale").data.data(), 4);
    EXPECT_EQ(third_scale, 102.0f);

    set.batch.reset();  // unbatched: one run with the whole set
    BatchPlan whole = plan_batches(set, {{"x", floats({})}});
    EXPECT_FALSE(whole.batched);
    EXPECT_EQ(whole.runs, 1u);
    EXPECT_TRUE(batch_inputs(whole, {{"x", floats({})}}, 0).at("x").shape.empty());
}

// The reviewer's native crashes: a 0-d input of a batched set (SIGSEGV), inputs that disagree
// on the number of samples (heap-buffer-overflow), a 0-d output joined across runs (SIGSEGV).
TEST(Batching, RefusesWhatCannotBeSlicedOrJoined) {
    GoldenSet set{"samples", {}, {}, 1, {}};
    ep_status status = EP_OK;
    EXPECT_EQ(message_of([&] { plan_batches(set, {{"x", floats({})}, {"scale", floats({2, 1})}}); },
                         &status),
              "golden set 'samples' is run in batches of 1, but input 'x' is 0-d");
    EXPECT_EQ(status, EP_ERR_CORRUPT);
    EXPECT_EQ(message_of([&] { plan_batches(set, {{"x", floats({5, 4})}, {"scale", floats({3, 1})}}); },
                         &status),
              "golden set 'samples': inputs disagree on the number of samples (scale has 3, x has 5)");
    EXPECT_EQ(status, EP_ERR_CORRUPT);
    EXPECT_EQ(message_of([&] {
                  plan_batches(set, {{"a", floats({2})}, {"b", floats({2})}, {"c", floats({1, 2})}});
              }),
              "golden set 'samples': inputs disagree on the number of samples (a has 2, b has 2, "
              "c has 1)");
    BatchPlan plan = plan_batches(set, {{"x", floats({2, 4})}});
    Array joined;
    EXPECT_EQ(message_of([&] { append_batch_output(plan, "y", joined, floats({})); }, &status),
              "golden set 'samples' is run in batches, but output 'y' is 0-d");
    EXPECT_EQ(status, EP_ERR_CORRUPT);
    append_batch_output(plan, "y", joined, floats({1, 3}));
    EXPECT_EQ(message_of([&] { append_batch_output(plan, "y", joined, floats({1, 4})); }),
              "golden set 'samples': output 'y' is float32[1, 3] after the first runs but "
              "float32[1, 4] in the next: the batches cannot be joined");
    Array lying = floats({2, 4});
    lying.data.resize(12);  // fewer bytes than the shape says
    EXPECT_EQ(message_of([&] { plan_batches(set, {{"x", lying}}); }, &status),
              "golden set 'samples': input 'x' is float32[2, 4] but holds 12 bytes");
}
