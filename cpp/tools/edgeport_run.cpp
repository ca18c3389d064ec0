// edgeport-run: run, verify and benchmark an edgeport bundle from C++ (same rules and the same
// exit codes as the Python CLI: 0 success, 1 a check failed (parity, integrity), 2 bad usage or
// bad input).
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <thread>

#include <nlohmann/json.hpp>

#include "../src/internal.hpp"
#include "edgeport/edgeport.hpp"

namespace {

using edgeport::Array;
using nlohmann::json;
namespace fs = std::filesystem;

constexpr const char* kUsage =
    "usage: edgeport-run run BUNDLE [--artifact NAME] [--provider cpu|cuda] [--threads N]\n"
    "                        [--allow-fallback] [--input NAME=FILE.npy ...] [--output DIR]\n"
    "                        [--public-key FILE]\n"
    "       edgeport-run verify BUNDLE [--artifact NAME ...] [--threads N] [--public-key FILE]\n"
    "                        [--rtol X] [--atol X] [--min-cosine X] [--min-top1 X]\n"
    "       edgeport-run bench BUNDLE [--artifact NAME ...] [--threads N] [--warmup N]\n"
    "                        [--duration S] [--blocks N] [--pause S] [--json FILE]\n"
    "                        [--spinning | --no-spinning] [--public-key FILE]\n"
    "       edgeport-run [COMMAND] --help\n"
    "\n"
    "run: outputs of one artifact (default: the recommended one) on .npy inputs (default: the\n"
    "     bundle's golden inputs), written as DIR/<output>.npy.\n"
    "verify: every ONNX artifact (or those named) against its golden sets (every set, unless the\n"
    "     manifest names some; an artifact checked on no set fails), with the tolerance of its\n"
    "     precision tightened, never loosened, by the manifest's; --rtol, --atol, --min-cosine\n"
    "     and --min-top1 replace a criterion outright. Exit 1 on a failure.\n"
    "bench: per-call latency of the artifacts on the golden inputs, interleaved in blocks, with\n"
    "     the statistics and JSON schema of `edgeport bench` (edgeport.report/1). ONNX Runtime's\n"
    "     threads spin between ops, as in a default session and `edgeport bench`; --no-spinning\n"
    "     measures a deployment that turns it off.\n"
    "--public-key FILE: open the bundle only if manifest.json.sig is its manifest's Ed25519\n"
    "     signature under this key (PEM SubjectPublicKeyInfo, as `openssl pkey -pubout` writes).\n";

struct Usage : std::runtime_error {
    using std::runtime_error::runtime_error;
};

struct Args {
    std::string command, bundle, provider = "cpu", output, json, public_key;
    edgeport::ToleranceOverride tolerance;
    std::vector<std::string> artifacts;
    std::vector<std::pair<std::string, std::string>> inputs;
    int threads = 0, warmup = 5, blocks = 8;
    double duration = 2.0, pause = 0.1;
    bool allow_fallback = false, spinning = true, spinning_given = false, help = false;
};

bool is_help(const char* arg) { return std::strcmp(arg, "--help") == 0 || std::strcmp(arg, "-h") == 0; }

Args parse(int argc, char** argv) {
    Args a;
    if (argc >= 2 && is_help(argv[1])) {
        a.help = true;
        return a;
    }
    if (argc < 2) throw Usage("expected a command and a bundle");
    a.command = argv[1];
    if (a.command != "run" && a.command != "verify" && a.command != "bench")
        throw Usage("unknown command '" + a.command + "'. Available: run, verify, bench");
    for (int i = 2; i < argc; ++i)
        if (is_help(argv[i])) {
            a.help = true;
            return a;
        }
    if (argc < 3) throw Usage("expected a command and a bundle");
    a.bundle = argv[2];
    auto value = [&](int& i) -> std::string {
        if (i + 1 >= argc) throw Usage(std::string(argv[i]) + " needs a value");
        return argv[++i];
    };
    auto number = [&](int& i) -> double {
        std::string flag = argv[i], text = value(i);
        char* end = nullptr;
        double v = std::strtod(text.c_str(), &end);
        if (end == text.c_str() || *end != '\0' || v < 0)
            throw Usage(flag + " takes a non-negative number, not '" + text + "'");
        return v;
    };
    for (int i = 3; i < argc; ++i) {
        std::string flag = argv[i];
        if (flag == "--artifact") a.artifacts.push_back(value(i));
        else if (flag == "--provider") a.provider = value(i);
        else if (flag == "--threads") a.threads = static_cast<int>(number(i));
        else if (flag == "--warmup") a.warmup = static_cast<int>(number(i));
        else if (flag == "--blocks") a.blocks = static_cast<int>(number(i));
        else if (flag == "--duration") a.duration = number(i);
        else if (flag == "--pause") a.pause = number(i);
        else if (flag == "--output") a.output = value(i);
        else if (flag == "--json") a.json = value(i);
        else if (flag == "--allow-fallback") a.allow_fallback = true;
        else if (flag == "--spinning" || flag == "--no-spinning") {
            a.spinning = flag == "--spinning";
            a.spinning_given = true;
        }
        else if (flag == "--public-key") a.public_key = value(i);
        else if (flag == "--rtol") a.tolerance.rtol = number(i);
        else if (flag == "--atol") a.tolerance.atol = number(i);
        else if (flag == "--min-cosine") a.tolerance.min_cosine = number(i);
        else if (flag == "--min-top1") a.tolerance.min_top1 = number(i);
        else if (flag == "--input") {
            std::string spec = value(i);
            size_t eq = spec.find('=');
            if (eq == std::string::npos || eq == 0)
                throw Usage("--input takes NAME=FILE.npy, not '" + spec + "'");
            a.inputs.emplace_back(spec.substr(0, eq), spec.substr(eq + 1));
        } else throw Usage("unknown option '" + flag + "'");
    }
    if (a.blocks < 2) throw Usage("--blocks must be at least 2");
    const auto& t = a.tolerance;
    if (a.command != "verify" && (t.rtol || t.atol || t.min_cosine || t.min_top1))
        throw Usage("--rtol, --atol, --min-cosine and --min-top1 are options of verify");
    if (a.command != "bench" && a.spinning_given)
        throw Usage("--spinning and --no-spinning are options of bench");
    return a;
}

edgeport::Session open(const Args& a, const std::string& artifact) {
    edgeport::Options options;
    options.artifact = artifact;
    options.provider = a.provider;
    options.threads = a.threads;
    options.allow_fallback = a.allow_fallback;
    options.spinning = a.spinning;
    options.public_key_file = a.public_key;
    return edgeport::Session(a.bundle, options);
}

// The bundle's manifest, its signature checked when a public key was given.
edgeport::Bundle load(const Args& a) {
    if (a.public_key.empty()) return edgeport::Bundle::load(a.bundle);
    edgeport::PublicKey key = edgeport::PublicKey::read_pem(a.public_key);
    return edgeport::Bundle::load(a.bundle, &key);
}

std::vector<edgeport::Input> as_inputs(const std::map<std::string, Array>& arrays) {
    std::vector<edgeport::Input> inputs;
    for (const auto& [name, array] : arrays)
        inputs.push_back({name, array.dtype, array.shape, array.data.data(), array.data.size()});
    return inputs;
}

Array to_array(const edgeport::Tensor& t) {
    edgeport::TensorInfo info = t.info();
    Array a{info.dtype, info.shape, {}};
    const auto* p = static_cast<const unsigned char*>(t.raw_data());
    a.data.assign(p, p + t.byte_size());
    return a;
}

// The golden inputs one run of an artifact takes (the first batch of a batched set).
std::map<std::string, Array> first_inputs(const edgeport::Bundle& b, const std::string& artifact) {
    return edgeport::default_inputs(b, b.artifact(artifact));
}

// A file name for a tensor name, safe for any name a model declares ("../x" stays in DIR), the
// same rule as the Python side's golden files.
std::string file_name(const std::string& tensor) {
    std::string safe;
    for (char c : tensor)
        safe += (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.') ? c : '_';
    if (safe.empty() || safe.find_first_not_of('.') == std::string::npos) safe = "_" + safe;
    return safe + ".npy";
}

int cmd_run(const Args& a) {
    edgeport::Session session = open(a, a.artifacts.empty() ? "" : a.artifacts.front());
    std::map<std::string, Array> arrays;
    if (a.inputs.empty()) {
        if (!fs::is_directory(a.bundle))
            throw Usage("a bare .onnx file needs --input NAME=FILE.npy for every input");
        arrays = first_inputs(load(a), session.artifact());
    } else {
        for (const auto& [name, file] : a.inputs) arrays[name] = edgeport::read_npy(file);
    }
    auto outputs = session.run(as_inputs(arrays));
    auto infos = session.outputs();
    if (!a.output.empty()) fs::create_directories(a.output);
    for (size_t i = 0; i < outputs.size(); ++i) {
        Array out = to_array(outputs[i]);
        std::vector<double> v = edgeport::as_doubles(out);
        double lo = v.empty() ? 0 : *std::min_element(v.begin(), v.end());
        double hi = v.empty() ? 0 : *std::max_element(v.begin(), v.end());
        std::printf("%s %s[", infos[i].name.c_str(), ep_dtype_name(out.dtype));
        for (size_t d = 0; d < out.shape.size(); ++d)
            std::printf("%s%lld", d ? ", " : "", static_cast<long long>(out.shape[d]));
        std::printf("] min %.6g max %.6g\n", lo, hi);
        if (!a.output.empty()) edgeport::write_npy(fs::path(a.output) / file_name(infos[i].name), out);
    }
    std::printf("artifact %s on %s%s\n", session.artifact().c_str(), session.provider().c_str(),
                a.output.empty() ? "" : (", outputs written to " + a.output).c_str());
    return 0;
}

std::string tolerance_text(const edgeport::Tolerance& t) {
    std::string text;
    auto add = [&](const char* name, const std::optional<double>& value) {
        if (!value) return;
        char number[32];
        std::snprintf(number, sizeof(number), "%g", *value);
        text += std::string(text.empty() ? "" : ", ") + name + " " + number;
    };
    add("rtol", t.rtol);
    add("atol", t.atol);
    add("min_cosine", t.min_cosine);
    add("min_top1", t.min_top1);
    return text.empty() ? "none" : text;
}

int cmd_verify(const Args& a) {
    edgeport::Bundle b = load(a);
    std::vector<std::string> names = a.artifacts;
    if (names.empty())
        for (const auto& n : b.manifest.artifact_order)
            if (b.manifest.artifacts.at(n).format == "onnx") names.push_back(n);
    edgeport::VerifyOptions options;
    options.provider = a.provider;
    options.threads = a.threads;
    options.allow_fallback = a.allow_fallback;
    options.public_key_file = a.public_key;
    options.tolerance = a.tolerance;
    size_t failed = 0;
    if (names.empty()) {
        std::printf("FAIL no artifact was checked (the bundle has no ONNX artifact; edgeport-run "
                    "checks ONNX artifacts): verify cannot vouch for it\n");
        ++failed;
    }
    for (const std::string& name : names) {
        edgeport::Verdict verdict;
        try {
            verdict = edgeport::verify_artifact(b, name, options);
        } catch (const edgeport::Error& e) {
            if (e.status() != EP_ERR_PARITY) throw;  // no golden set to check on
            std::printf("FAIL %s: %s\n", name.c_str(), e.what());
            ++failed;
            continue;
        }
        std::printf("     %s: tolerance %s\n", name.c_str(), tolerance_text(verdict.tolerance).c_str());
        for (const auto& [set, c] : verdict.checks) {
            std::printf("%-4s %s / %s / %s: max_abs_err %.3g cosine %.6f%s\n",
                        c.failures.empty() ? "ok" : "FAIL", name.c_str(), set.c_str(),
                        c.output.c_str(), c.max_abs_err, c.cosine,
                        c.top1 ? (" top1 " + std::to_string(*c.top1)).c_str() : "");
            for (const auto& f : c.failures) std::printf("     %s\n", f.c_str());
        }
        failed += verdict.failed();
    }
    if (failed) {
        std::fprintf(stderr, "error: %zu check(s) failed: the bundle is not verified\n", failed);
        return 1;
    }
    std::printf("verified: every artifact passes parity on its golden sets (%zu artifact(s))\n",
                names.size());
    return 0;
}

double rss_mb(const char* key) {
    std::ifstream status("/proc/self/status");
    std::string line;
    while (std::getline(status, line))
        if (line.rfind(key, 0) == 0) return std::strtod(line.c_str() + std::strlen(key) + 1, nullptr) / 1024;
    return 0;
}

int cmd_bench(const Args& a) {
    using clock = std::chrono::steady_clock;
    edgeport::Bundle b = load(a);
    std::vector<std::string> names = a.artifacts;
    if (names.empty())
        for (const auto& n : b.manifest.artifact_order)
            if (b.manifest.artifacts.at(n).format == "onnx") names.push_back(n);
    struct Variant {
        std::string name;
        std::unique_ptr<edgeport::Session> session;
        std::map<std::string, Array> arrays;
        std::vector<edgeport::Input> inputs;
        double creation_ms = 0, cold_ms = 0, rss_delta = 0;
        int64_t batch = 1;
        long calls = 1;
        std::vector<std::vector<double>> blocks;
    };
    std::vector<Variant> variants;
    for (const auto& name : names) {
        Variant v;
        v.name = name;
        double before = rss_mb("VmRSS:");
        auto t0 = clock::now();
        v.session = std::make_unique<edgeport::Session>(open(a, name));
        v.creation_ms = std::chrono::duration<double, std::milli>(clock::now() - t0).count();
        v.arrays = first_inputs(b, name);
        v.inputs = as_inputs(v.arrays);
        v.batch = 1;  // samples per call: the first dim of the first input with one
        for (const auto& [input, array] : v.arrays)
            if (!array.shape.empty()) {
                v.batch = array.shape[0];
                break;
            }
        t0 = clock::now();
        (void)v.session->run(v.inputs);
        v.cold_ms = std::chrono::duration<double, std::milli>(clock::now() - t0).count();
        v.rss_delta = rss_mb("VmRSS:") - before;
        for (int i = 0; i < a.warmup; ++i) (void)v.session->run(v.inputs);
        t0 = clock::now();
        (void)v.session->run(v.inputs);
        double one = std::chrono::duration<double>(clock::now() - t0).count();
        v.calls = std::max(1L, static_cast<long>(a.duration / a.blocks / std::max(one, 1e-6)));
        variants.push_back(std::move(v));
    }
    for (int block = 0; block < a.blocks; ++block) {
        for (size_t k = 0; k < variants.size(); ++k) {
            Variant& v = variants[block % 2 == 0 ? k : variants.size() - 1 - k];
            std::vector<double> ms;
            ms.reserve(static_cast<size_t>(v.calls));
            for (long i = 0; i < v.calls; ++i) {
                auto t0 = clock::now();
                (void)v.session->run(v.inputs);
                ms.push_back(std::chrono::duration<double, std::milli>(clock::now() - t0).count());
            }
            v.blocks.push_back(std::move(ms));
            std::this_thread::sleep_for(std::chrono::duration<double>(a.pause));
        }
    }
    // The variants were timed in turn: the slow drift is pooled over them, as in `edgeport bench`.
    std::vector<edgeport::Blocks> timed;
    std::vector<int64_t> batches;
    for (const auto& v : variants) timed.push_back(v.blocks), batches.push_back(v.batch);
    const std::vector<edgeport::CallStats> stats = edgeport::block_stats(timed, batches);
    json rows = json::array();
    double fp32_p50 = 0;
    for (size_t i = 0; i < variants.size(); ++i)
        if (variants[i].name == "onnx-fp32") fp32_p50 = stats[i].p50;
    std::printf("ONNX Runtime spinning: %s\n", a.spinning ? "on" : "off");
    std::printf("%-22s %5s %9s %9s %9s %7s %13s %13s %11s\n", "variant", "batch", "p50 ms",
                "p90 ms", "p99 ms", "CV", "CI95 ms", "rerun95 ms", "vs fp32");
    for (size_t i = 0; i < variants.size(); ++i) {
        const Variant& v = variants[i];
        const edgeport::CallStats& s = stats[i];
        const edgeport::Artifact& art = b.artifact(v.name);
        json samples = json::array();
        for (const auto& blk : v.blocks)
            for (double x : blk) samples.push_back(x);
        json row = {
            {"variant", v.name}, {"kind", "onnx"}, {"precision", art.precision},
            {"provider", v.session->provider()}, {"batch", v.batch}, {"threads", a.threads},
            {"size_bytes", art.size_bytes}, {"creation_ms", v.creation_ms}, {"cold_ms", v.cold_ms},
            {"rss_delta_mb", v.rss_delta},
            {"stats", edgeport::stats_json(s)},
            {"samples_ms", samples},
            {"speedup_vs_eager", nullptr},
            {"speedup_vs_onnx_fp32", fp32_p50 > 0 ? json(fp32_p50 / s.p50) : json(nullptr)}};
        rows.push_back(row);
        std::printf("%-22s %5lld %9.3f %9.3f %9.3f %7.3f %6.3f-%-6.3f %6.3f-%-6.3f %10s\n",
                    v.name.c_str(), static_cast<long long>(v.batch), s.p50, s.p90, s.p99, s.cv,
                    s.ci95_low, s.ci95_high, s.rerun95_low, s.rerun95_high,
                    fp32_p50 > 0 ? (std::to_string(fp32_p50 / s.p50).substr(0, 4) + "x").c_str() : "-");
    }
    json report = {
        {"schema", "edgeport.report/1"},
        {"tool", std::string("edgeport-run ") + ep_version()},
        {"bundle", a.bundle},
        {"method",
         {{"interleaved", true}, {"blocks", a.blocks}, {"pause_s", a.pause},
          {"onnxruntime_spinning", a.spinning}, {"timer", "steady_clock per call"},
          {"statistics", "over individual calls; CI95 of the median = circular moving-block "
                         "bootstrap over time-ordered blocks (runs of about the cube root of the "
                         "blocks, 1000 draws); rerun interval widened by the slow drift pooled "
                         "over the variants (edgeport.timing.block_stats)"}}},
        {"peak_rss_mb", rss_mb("VmHWM:")},
        {"results", rows},
    };
    if (!a.json.empty()) {
        std::ofstream out(a.json);
        out << report.dump(1) << "\n";
        if (!out) throw edgeport::Error(EP_ERR_RUNTIME, "cannot write '" + a.json + "'");
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        Args args = parse(argc, argv);
        if (args.help) {
            std::fputs(kUsage, stdout);
            return 0;
        }
        if (args.command == "run") return cmd_run(args);
        if (args.command == "verify") return cmd_verify(args);
        return cmd_bench(args);
    } catch (const Usage& e) {
        std::fprintf(stderr, "error: %s\n\n%s", e.what(), kUsage);
        return 2;
    } catch (const edgeport::Exception& e) {
        std::fprintf(stderr, "error: %s [%s]\n", e.what(), ep_status_name(e.status()));
        return e.status() == EP_ERR_PARITY || e.status() == EP_ERR_INTEGRITY ? 1 : 2;
    } catch (const edgeport::Error& e) {
        std::fprintf(stderr, "error: %s [%s]\n", e.what(), ep_status_name(e.status()));
        return e.status() == EP_ERR_PARITY || e.status() == EP_ERR_INTEGRITY ? 1 : 2;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: internal: %s\n", e.what());
        return 2;
    }
}
