// The baseline for `edgeport-run bench`: the least a program can do to time a model with ONNX
// Runtime's C++ API directly (no manifest, no hashes, no input validation). Same session
// settings as edgeport-run bench (ONNX Runtime's defaults, spinning on; optional intra-op
// threads), same per-call timing in blocks, and the same statistics, printed as JSON.
//
//   ort-baseline MODEL.onnx NAME=INPUT.npy [...] [--threads N] [--duration S] [--blocks N]
#include <onnxruntime_cxx_api.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "../src/internal.hpp"

int main(int argc, char** argv) {
    if (argc < 3) {
        std::fprintf(stderr, "usage: ort-baseline MODEL.onnx NAME=INPUT.npy [...] [--threads N] "
                             "[--duration S] [--blocks N] [--warmup N] [--pause S]\n");
        return 2;
    }
    int threads = 0, blocks = 8, warmup = 5;
    double duration = 2.0, pause = 0.1;
    std::vector<std::string> names;
    std::vector<edgeport::Array> arrays;
    for (int i = 2; i < argc; ++i) {
        std::string arg = argv[i];
        if (arg == "--threads" && i + 1 < argc) threads = std::atoi(argv[++i]);
        else if (arg == "--duration" && i + 1 < argc) duration = std::atof(argv[++i]);
        else if (arg == "--blocks" && i + 1 < argc) blocks = std::atoi(argv[++i]);
        else if (arg == "--warmup" && i + 1 < argc) warmup = std::atoi(argv[++i]);
        else if (arg == "--pause" && i + 1 < argc) pause = std::atof(argv[++i]);
        else {
            size_t eq = arg.find('=');
            names.push_back(arg.substr(0, eq));
            arrays.push_back(edgeport::read_npy(arg.substr(eq + 1)));
        }
    }
    Ort::Env env(ORT_LOGGING_LEVEL_ERROR, "baseline");
    Ort::SessionOptions options;
    options.SetGraphOptimizationLevel(GraphOptimizationLevel::ORT_ENABLE_ALL);
    if (threads > 0) options.SetIntraOpNumThreads(threads);
    Ort::Session session(env, argv[1], options);
    Ort::MemoryInfo cpu = Ort::MemoryInfo::CreateCpu(OrtArenaAllocator, OrtMemTypeDefault);
    std::vector<Ort::Value> inputs;
    std::vector<const char*> input_names;
    for (size_t i = 0; i < arrays.size(); ++i) {
        inputs.push_back(Ort::Value::CreateTensor(
            cpu, arrays[i].data.data(), arrays[i].data.size(), arrays[i].shape.data(),
            arrays[i].shape.size(), static_cast<ONNXTensorElementDataType>(arrays[i].dtype)));
        input_names.push_back(names[i].c_str());
    }
    Ort::AllocatorWithDefaultOptions allocator;
    std::vector<Ort::AllocatedStringPtr> owned;
    std::vector<const char*> output_names;
    for (size_t i = 0; i < session.GetOutputCount(); ++i) {
        owned.push_back(session.GetOutputNameAllocated(i, allocator));
        output_names.push_back(owned.back().get());
    }
    auto run = [&] {
        return session.Run(Ort::RunOptions{nullptr}, input_names.data(), inputs.data(),
                           inputs.size(), output_names.data(), output_names.size());
    };
    using clock = std::chrono::steady_clock;
    for (int i = 0; i < warmup; ++i) run();
    auto t0 = clock::now();
    run();
    double one = std::chrono::duration<double>(clock::now() - t0).count();
    long calls = std::max(1L, static_cast<long>(duration / blocks / std::max(one, 1e-6)));
    std::vector<std::vector<double>> timed;
    for (int b = 0; b < blocks; ++b) {
        std::vector<double> ms;
        for (long i = 0; i < calls; ++i) {
            auto start = clock::now();
            run();
            ms.push_back(std::chrono::duration<double, std::milli>(clock::now() - start).count());
        }
        timed.push_back(std::move(ms));
        std::this_thread::sleep_for(std::chrono::duration<double>(pause));
    }
    int64_t batch = arrays.empty() || arrays[0].shape.empty() ? 1 : arrays[0].shape[0];
    edgeport::CallStats s = edgeport::call_stats(timed, batch);
    std::printf("{\"tool\": \"ort-baseline\", \"onnxruntime\": \"%s\", \"p50_ms\": %.6f, "
                "\"p90_ms\": %.6f, \"p99_ms\": %.6f, \"mean_ms\": %.6f, \"cv\": %.5f, "
                "\"median_ci95_ms\": [%.6f, %.6f], \"calls\": %zu}\n",
                Ort::GetVersionString().c_str(), s.p50, s.p90, s.p99, s.mean, s.cv, s.ci95_low,
                s.ci95_high, s.calls);
    return 0;
}
