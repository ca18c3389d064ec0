// The C API over ONNX Runtime's C API. Every entry point catches everything: no exception
// crosses the boundary; failures become an ep_status and a thread-local message.
#include <dlfcn.h>
#include <onnxruntime_c_api.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <mutex>
#include <new>
#include <algorithm>
#include <set>
#include <unordered_map>

#include "internal.hpp"

using edgeport::Error;
namespace fs = std::filesystem;

namespace {

thread_local std::string g_last_error;

template <typename F>
ep_status guard(F&& body) noexcept {
    g_last_error.clear();
    try {
        body();
        return EP_OK;
    } catch (const Error& e) {
        g_last_error = e.what();
        return e.status();
    } catch (const std::bad_alloc&) {
        g_last_error = "out of memory";
        return EP_ERR_INTERNAL;
    } catch (const std::exception& e) {
        g_last_error = std::string("internal error: ") + e.what();
        return EP_ERR_INTERNAL;
    } catch (...) {
        g_last_error = "internal error: unknown exception";
        return EP_ERR_INTERNAL;
    }
}

void require(const void* pointer, const char* what) {
    if (pointer == nullptr) throw Error(EP_ERR_INVALID_ARGUMENT, std::string(what) + " is NULL");
}

// ONNX Runtime is loaded at run time (dlopen), not bound at link time: a library linked against
// one onnxruntime build binds OrtGetApiBase@VERS_<that version> and then refuses to load with
// any other (seen on a GPU machine with onnxruntime-gpu 1.31 against a 1.32 build). The C API
// is versioned by ORT_API_VERSION instead, which every newer library serves. The library is
// $EDGEPORT_ONNXRUNTIME if set, else libonnxruntime.so.1 from the library path or this
// library's RUNPATH ($ORIGIN when installed: the package ships it beside libedgeport).
const OrtApiBase& ort_base() {
    static const OrtApiBase* base = [] {
        const char* chosen = std::getenv("EDGEPORT_ONNXRUNTIME");
        const char* name = chosen && *chosen ? chosen : "libonnxruntime.so.1";
        void* handle = dlopen(name, RTLD_NOW | RTLD_LOCAL);
        if (handle == nullptr)
            throw Error(EP_ERR_RUNTIME,
                        std::string("cannot load ONNX Runtime from '") + name + "': " + dlerror() +
                            ". Fix: put libonnxruntime.so.1 beside libedgeport or on the library "
                            "path, or set EDGEPORT_ONNXRUNTIME to its file");
        using GetApiBase = const OrtApiBase* (*)();
        auto get = reinterpret_cast<GetApiBase>(dlsym(handle, "OrtGetApiBase"));
        if (get == nullptr)
            throw Error(EP_ERR_RUNTIME, std::string("'") + name + "' has no OrtGetApiBase: it is "
                                        "not an ONNX Runtime library");
        return get();
    }();
    return *base;
}

const OrtApi& ort() {
    static const OrtApi* api = ort_base().GetApi(ORT_API_VERSION);
    if (api == nullptr)
        throw Error(EP_ERR_RUNTIME, std::string("the ONNX Runtime library (") +
                                        ort_base().GetVersionString() +
                                        ") does not provide C API version " +
                                        std::to_string(ORT_API_VERSION) + " (1." +
                                        std::to_string(ORT_API_VERSION) + " or newer needed)");
    return *api;
}

void check(OrtStatus* status, ep_status code, const std::string& what) {
    if (status == nullptr) return;
    std::string message = ort().GetErrorMessage(status);
    ort().ReleaseStatus(status);
    throw Error(code, what + ": " + message);
}

OrtEnv* env() {
    static OrtEnv* instance = [] {
        OrtEnv* e = nullptr;
        check(ort().CreateEnv(ORT_LOGGING_LEVEL_ERROR, "edgeport", &e), EP_ERR_RUNTIME,
              "creating the ONNX Runtime environment");
        return e;
    }();
    return instance;
}

struct OrtDeleter {
    void operator()(OrtSessionOptions* p) const { ort().ReleaseSessionOptions(p); }
    void operator()(OrtTypeInfo* p) const { ort().ReleaseTypeInfo(p); }
    void operator()(OrtTensorTypeAndShapeInfo* p) const { ort().ReleaseTensorTypeAndShapeInfo(p); }
    void operator()(OrtValue* p) const { ort().ReleaseValue(p); }
    void operator()(OrtCUDAProviderOptionsV2* p) const { ort().ReleaseCUDAProviderOptions(p); }
};
template <typename T>
using Owned = std::unique_ptr<T, OrtDeleter>;

std::vector<unsigned char> read_file(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error(EP_ERR_NOT_FOUND, "cannot read '" + path.string() + "'");
    return std::vector<unsigned char>((std::istreambuf_iterator<char>(in)),
                                      std::istreambuf_iterator<char>());
}

}  // namespace

struct TensorDesc {
    std::string name;
    ep_dtype dtype = EP_DTYPE_UNDEFINED;
    std::vector<int64_t> shape;
    std::vector<std::string> dim_names;
    std::vector<const char*> dim_name_ptrs;

    void fill(ep_tensor_info* out) const {
        out->name = name.c_str();
        out->dtype = dtype;
        out->rank = shape.size();
        out->shape = shape.data();
        out->dim_names = dim_name_ptrs.data();
    }
    void finish() {
        dim_name_ptrs.clear();
        for (const auto& n : dim_names) dim_name_ptrs.push_back(n.c_str());
    }
};

struct ep_options {
    std::string artifact;
    std::string provider = "cpu";
    int threads = 0;
    bool allow_fallback = false;
    bool spinning = true;
    bool verify_hashes = true;
    std::optional<edgeport::PublicKey> public_key;  // read when set; the file is not kept open
};

struct ep_tensor {
    OrtValue* value = nullptr;
    TensorDesc desc;
    const void* data = nullptr;
    size_t byte_size = 0;
    ~ep_tensor() {
        if (value) ort().ReleaseValue(value);
    }
};

struct ep_session {
    OrtSession* session = nullptr;
    OrtMemoryInfo* cpu = nullptr;
    std::vector<TensorDesc> inputs, outputs;
    std::vector<const char*> output_names;
    std::unordered_map<std::string, size_t> input_index;
    std::string artifact, provider;
    std::atomic<uint64_t> runs{0}, errors{0};
    ~ep_session() {
        if (session) ort().ReleaseSession(session);
        if (cpu) ort().ReleaseMemoryInfo(cpu);
    }
};

namespace {

TensorDesc describe(const OrtTypeInfo* type_info, std::string name) {
    TensorDesc desc;
    desc.name = std::move(name);
    const OrtTensorTypeAndShapeInfo* info = nullptr;
    check(ort().CastTypeInfoToTensorInfo(type_info, &info), EP_ERR_RUNTIME, "reading model IO");
    if (info == nullptr)
        throw Error(EP_ERR_UNSUPPORTED, "model IO '" + desc.name +
                                            "' is not a tensor (sequences and maps are not "
                                            "supported)");
    ONNXTensorElementDataType type;
    size_t rank = 0;
    check(ort().GetTensorElementType(info, &type), EP_ERR_RUNTIME, "reading model IO");
    check(ort().GetDimensionsCount(info, &rank), EP_ERR_RUNTIME, "reading model IO");
    desc.dtype = static_cast<ep_dtype>(type);
    desc.shape.resize(rank);
    std::vector<const char*> names(rank, nullptr);
    check(ort().GetDimensions(info, desc.shape.data(), rank), EP_ERR_RUNTIME, "reading model IO");
    check(ort().GetSymbolicDimensions(info, names.data(), rank), EP_ERR_RUNTIME, "reading model IO");
    for (size_t i = 0; i < rank; ++i) {
        desc.dim_names.emplace_back(names[i] ? names[i] : "");
        if (desc.shape[i] < 0) desc.shape[i] = -1;
    }
    desc.finish();
    return desc;
}

std::string allocated_name(char* raw) {
    OrtAllocator* allocator = nullptr;
    check(ort().GetAllocatorWithDefaultOptions(&allocator), EP_ERR_RUNTIME, "allocator");
    std::string name(raw);
    check(ort().AllocatorFree(allocator, raw), EP_ERR_RUNTIME, "allocator");
    return name;
}

std::vector<std::string> provider_names() {
    char** names = nullptr;
    int count = 0;
    check(ort().GetAvailableProviders(&names, &count), EP_ERR_RUNTIME, "listing providers");
    std::vector<std::string> out(names, names + count);
    if (OrtStatus* status = ort().ReleaseAvailableProviders(names, count)) ort().ReleaseStatus(status);
    return out;
}

// Resolve what to open: the model file, its bytes (hashed and scanned), and a label.
struct Model {
    fs::path path;
    std::vector<unsigned char> bytes;
    std::string artifact;
};

Model locate(const char* path_text, const ep_options& options) {
    fs::path path(path_text);
    std::error_code ec;
    if (!fs::exists(path, ec))
        throw Error(EP_ERR_NOT_FOUND, "'" + path.string() + "' does not exist");
    Model model;
    std::set<std::string> recorded;  // external data files the manifest vouches for
    if (fs::is_directory(path, ec)) {
        if (options.public_key && !options.verify_hashes)
            throw Error(EP_ERR_INVALID_ARGUMENT,
                        "a public key was given with sha256 checks off: the signature vouches for "
                        "the bundle's files only through their sha256 in the manifest. Fix: keep "
                        "the checks on (ep_options_set_verify_hashes(options, 1))");
        edgeport::Bundle bundle =
            edgeport::Bundle::load(path, options.public_key ? &*options.public_key : nullptr);
        std::string name = options.artifact.empty() ? bundle.default_onnx() : options.artifact;
        const edgeport::Artifact& a = bundle.artifact(name);
        if (a.format != "onnx")
            throw Error(EP_ERR_UNSUPPORTED,
                        "artifact '" + name + "' is " + a.format +
                            "; libedgeport runs ONNX artifacts (pick one with "
                            "ep_options_set_artifact, e.g. onnx-fp32)");
        model.path = edgeport::inside(path, a.path, "artifact '" + name + "'");
        model.bytes = read_file(model.path);
        bundle.check_artifact(a, model.bytes, options.verify_hashes);
        for (const auto& record : a.external_data)
            recorded.insert(fs::weakly_canonical(path / record.path, ec).string());
        model.artifact = name;
    } else {
        if (options.public_key)
            throw Error(EP_ERR_INTEGRITY,
                        "a public key was given, but '" + path.string() +
                            "' is a bare model file, which carries no signature: refusing it "
                            "(open the signed bundle directory instead)");
        if (!options.artifact.empty())
            throw Error(EP_ERR_INVALID_ARGUMENT,
                        "an artifact name was given, but '" + path.string() +
                            "' is a file, not a bundle directory");
        model.path = path;
        model.bytes = read_file(path);
        model.artifact = path.filename().string();
    }
    fs::path dir = model.path.parent_path().empty() ? fs::path(".") : model.path.parent_path();
    for (const std::string& location :
         edgeport::external_data_locations(model.bytes.data(), model.bytes.size())) {
        fs::path full = edgeport::inside(dir, location, "the model's external data");
        if (fs::is_directory(path, ec) &&
            recorded.count(fs::weakly_canonical(full, ec).string()) == 0)
            throw Error(EP_ERR_INTEGRITY, "the model's external data '" + location +
                                              "' is not recorded in the manifest, so its "
                                              "sha256 cannot be checked");
    }
    return model;
}

// Fills ``out`` with the description of inputs/outputs[index] of a session.
void describe_at(const ep_session* s, std::vector<TensorDesc> ep_session::*list, const char* kind,
                 size_t index, ep_tensor_info* out) {
    require(s, "session");
    require(out, "out");
    const std::vector<TensorDesc>& descs = s->*list;
    if (index >= descs.size())
        throw Error(EP_ERR_INVALID_ARGUMENT, std::string(kind) + " index " + std::to_string(index) +
                                                 " out of range (the model has " +
                                                 std::to_string(descs.size()) + ")");
    descs[index].fill(out);
}

}  // namespace

extern "C" {

const char* ep_version(void) { return "0.1.0"; }

const char* ep_status_name(ep_status status) {
    switch (status) {
        case EP_OK: return "EP_OK";
        case EP_ERR_INVALID_ARGUMENT: return "EP_ERR_INVALID_ARGUMENT";
        case EP_ERR_NOT_FOUND: return "EP_ERR_NOT_FOUND";
        case EP_ERR_CORRUPT: return "EP_ERR_CORRUPT";
        case EP_ERR_INTEGRITY: return "EP_ERR_INTEGRITY";
        case EP_ERR_PROVIDER: return "EP_ERR_PROVIDER";
        case EP_ERR_INPUT: return "EP_ERR_INPUT";
        case EP_ERR_RUNTIME: return "EP_ERR_RUNTIME";
        case EP_ERR_PARITY: return "EP_ERR_PARITY";
        case EP_ERR_UNSUPPORTED: return "EP_ERR_UNSUPPORTED";
        case EP_ERR_INTERNAL: return "EP_ERR_INTERNAL";
    }
    return "EP_ERR_UNKNOWN";
}

const char* ep_last_error_message(void) { return g_last_error.c_str(); }

ep_status ep_options_create(ep_options** out) {
    return guard([&] {
        require(out, "out");
        *out = new ep_options();
    });
}

void ep_options_release(ep_options* options) { delete options; }

ep_status ep_options_set_artifact(ep_options* options, const char* artifact) {
    return guard([&] {
        require(options, "options");
        options->artifact = artifact ? artifact : "";
    });
}

ep_status ep_options_set_provider(ep_options* options, const char* provider) {
    return guard([&] {
        require(options, "options");
        require(provider, "provider");
        std::string p(provider);
        if (p != "cpu" && p != "cuda")
            throw Error(EP_ERR_INVALID_ARGUMENT,
                        "unknown provider '" + p + "'. Available: cpu, cuda");
        options->provider = p;
    });
}

ep_status ep_options_set_threads(ep_options* options, int threads) {
    return guard([&] {
        require(options, "options");
        if (threads < 0)
            throw Error(EP_ERR_INVALID_ARGUMENT,
                        "threads=" + std::to_string(threads) + " must be 0 (default) or more");
        options->threads = threads;
    });
}

ep_status ep_options_set_allow_fallback(ep_options* options, int allow) {
    return guard([&] {
        require(options, "options");
        options->allow_fallback = allow != 0;
    });
}

ep_status ep_options_set_spinning(ep_options* options, int spinning) {
    return guard([&] {
        require(options, "options");
        options->spinning = spinning != 0;
    });
}

ep_status ep_options_set_verify_hashes(ep_options* options, int verify) {
    return guard([&] {
        require(options, "options");
        options->verify_hashes = verify != 0;
    });
}

ep_status ep_options_set_public_key_file(ep_options* options, const char* pem_path) {
    return guard([&] {
        require(options, "options");
        if (pem_path == nullptr || *pem_path == '\0')
            options->public_key.reset();
        else
            options->public_key = edgeport::PublicKey::read_pem(pem_path);
    });
}

ep_status ep_session_open(const char* path, const ep_options* options_in, ep_session** out) {
    return guard([&] {
        require(out, "out");
        *out = nullptr;
        require(path, "path");
        const ep_options defaults;
        const ep_options& options = options_in ? *options_in : defaults;
        Model model = locate(path, options);
        OrtEnv* environment = env();  // first: provider options need ONNX Runtime's logger
        auto session = std::make_unique<ep_session>();
        session->artifact = model.artifact;

        OrtSessionOptions* raw_options = nullptr;
        check(ort().CreateSessionOptions(&raw_options), EP_ERR_RUNTIME, "session options");
        Owned<OrtSessionOptions> so(raw_options);
        check(ort().SetSessionLogSeverityLevel(so.get(), 3), EP_ERR_RUNTIME, "session options");
        check(ort().SetSessionGraphOptimizationLevel(so.get(), ORT_ENABLE_ALL), EP_ERR_RUNTIME,
              "session options");
        if (options.threads > 0)
            check(ort().SetIntraOpNumThreads(so.get(), options.threads), EP_ERR_RUNTIME,
                  "session options");
        const char* spin = options.spinning ? "1" : "0";
        check(ort().AddSessionConfigEntry(so.get(), "session.intra_op.allow_spinning", spin),
              EP_ERR_RUNTIME, "session options");
        check(ort().AddSessionConfigEntry(so.get(), "session.inter_op.allow_spinning", spin),
              EP_ERR_RUNTIME, "session options");
        std::string folder = model.path.parent_path().empty() ? "." : model.path.parent_path().string();
        check(ort().AddSessionConfigEntry(so.get(),
                                          "session.model_external_initializers_file_folder_path",
                                          folder.c_str()),
              EP_ERR_RUNTIME, "session options");

        session->provider = "cpu";
        if (options.provider == "cuda") {
            std::string why;
            std::vector<std::string> have = provider_names();
            if (std::find(have.begin(), have.end(), "CUDAExecutionProvider") == have.end()) {
                why = "this onnxruntime build has";
                for (const auto& name : have) why += (name == have.front() ? " " : ", ") + name;
            } else {
                OrtCUDAProviderOptionsV2* raw_cuda = nullptr;
                check(ort().CreateCUDAProviderOptions(&raw_cuda), EP_ERR_PROVIDER, "CUDA options");
                Owned<OrtCUDAProviderOptionsV2> cuda(raw_cuda);
                // fp32 stays fp32: ONNX Runtime enables TF32 unless told otherwise.
                const char* keys[] = {"device_id", "use_tf32"};
                const char* values[] = {"0", "0"};
                check(ort().UpdateCUDAProviderOptions(cuda.get(), keys, values, 2), EP_ERR_PROVIDER,
                      "CUDA options");
                OrtStatus* status =
                    ort().SessionOptionsAppendExecutionProvider_CUDA_V2(so.get(), cuda.get());
                if (status == nullptr) {
                    session->provider = "cuda";
                } else {
                    why = ort().GetErrorMessage(status);
                    ort().ReleaseStatus(status);
                }
            }
            if (session->provider != "cuda" && !options.allow_fallback)
                throw Error(EP_ERR_PROVIDER,
                            "provider 'cuda' (CUDAExecutionProvider) is not usable: " + why +
                                ". Fix: install onnxruntime-gpu's library with matching CUDA/cuDNN, "
                                "or allow fallback (ep_options_set_allow_fallback, "
                                "--allow-fallback) to run on the CPU with results labeled 'cpu'");
        }
        check(ort().CreateSessionFromArray(environment, model.bytes.data(), model.bytes.size(), so.get(),
                                           &session->session),
              EP_ERR_CORRUPT, "ONNX Runtime cannot load '" + model.path.string() + "'");
        check(ort().CreateCpuMemoryInfo(OrtArenaAllocator, OrtMemTypeDefault, &session->cpu),
              EP_ERR_RUNTIME, "memory info");

        OrtAllocator* allocator = nullptr;
        check(ort().GetAllocatorWithDefaultOptions(&allocator), EP_ERR_RUNTIME, "allocator");
        size_t count = 0;
        check(ort().SessionGetInputCount(session->session, &count), EP_ERR_RUNTIME, "inputs");
        for (size_t i = 0; i < count; ++i) {
            char* name = nullptr;
            check(ort().SessionGetInputName(session->session, i, allocator, &name), EP_ERR_RUNTIME,
                  "inputs");
            OrtTypeInfo* info = nullptr;
            std::string text = allocated_name(name);
            check(ort().SessionGetInputTypeInfo(session->session, i, &info), EP_ERR_RUNTIME, "inputs");
            Owned<OrtTypeInfo> owned(info);
            session->inputs.push_back(describe(info, text));
            session->input_index[text] = i;
        }
        check(ort().SessionGetOutputCount(session->session, &count), EP_ERR_RUNTIME, "outputs");
        for (size_t i = 0; i < count; ++i) {
            char* name = nullptr;
            check(ort().SessionGetOutputName(session->session, i, allocator, &name),
                  EP_ERR_RUNTIME, "outputs");
            std::string text = allocated_name(name);
            OrtTypeInfo* info = nullptr;
            check(ort().SessionGetOutputTypeInfo(session->session, i, &info), EP_ERR_RUNTIME,
                  "outputs");
            Owned<OrtTypeInfo> owned(info);
            session->outputs.push_back(describe(info, text));
        }
        for (const auto& o : session->outputs) session->output_names.push_back(o.name.c_str());
        *out = session.release();
    });
}

void ep_session_release(ep_session* session) { delete session; }

size_t ep_session_input_count(const ep_session* s) { return s ? s->inputs.size() : 0; }
size_t ep_session_output_count(const ep_session* s) { return s ? s->outputs.size() : 0; }

ep_status ep_session_input_info(const ep_session* s, size_t index, ep_tensor_info* out) {
    return guard([&] { describe_at(s, &ep_session::inputs, "input", index, out); });
}

ep_status ep_session_output_info(const ep_session* s, size_t index, ep_tensor_info* out) {
    return guard([&] { describe_at(s, &ep_session::outputs, "output", index, out); });
}

const char* ep_session_artifact(const ep_session* s) { return s ? s->artifact.c_str() : ""; }
const char* ep_session_provider(const ep_session* s) { return s ? s->provider.c_str() : ""; }
uint64_t ep_session_run_count(const ep_session* s) { return s ? s->runs.load() : 0; }
uint64_t ep_session_error_count(const ep_session* s) { return s ? s->errors.load() : 0; }

}  // extern "C"

namespace {

std::string dims_text(const int64_t* shape, size_t rank) {
    std::string s = "[";
    for (size_t i = 0; i < rank; ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + "]";
}

std::string spec_text(const TensorDesc& d) {
    std::string s = "[";
    for (size_t i = 0; i < d.shape.size(); ++i) {
        s += i ? ", " : "";
        s += d.shape[i] >= 0 ? std::to_string(d.shape[i])
                             : (d.dim_names[i].empty() ? "?" : d.dim_names[i]);
    }
    return s + "]";
}

std::string input_list(const ep_session& s) {
    std::string all;
    for (const auto& d : s.inputs)
        all += (all.empty() ? "" : ", ") + d.name + " " + ep_dtype_name(d.dtype) + spec_text(d);
    return all;
}

// Validates the inputs; returns them ordered as the model declares them.
std::vector<const ep_input*> validate(const ep_session& s, const ep_input* inputs, size_t count) {
    if (count > 0) require(inputs, "inputs");
    std::vector<const ep_input*> ordered(s.inputs.size(), nullptr);
    std::unordered_map<std::string, std::pair<int64_t, std::string>> labels;
    for (size_t k = 0; k < count; ++k) {
        const ep_input& in = inputs[k];
        if (in.name == nullptr) throw Error(EP_ERR_INVALID_ARGUMENT, "inputs[" + std::to_string(k) + "].name is NULL");
        auto it = s.input_index.find(in.name);
        if (it == s.input_index.end())
            throw Error(EP_ERR_INPUT, "unknown input '" + std::string(in.name) +
                                          "'. The model takes: " + input_list(s));
        if (ordered[it->second] != nullptr)
            throw Error(EP_ERR_INPUT, "input '" + std::string(in.name) + "' is given twice");
        const TensorDesc& d = s.inputs[it->second];
        if (in.dtype != d.dtype)
            throw Error(EP_ERR_INPUT, "input '" + d.name + "' is " + ep_dtype_name(in.dtype) +
                                          ", the model takes " + ep_dtype_name(d.dtype) +
                                          " (libedgeport never casts; convert the data first)");
        if (in.rank != d.shape.size())
            throw Error(EP_ERR_INPUT, "input '" + d.name + "' has rank " + std::to_string(in.rank) +
                                          ", the model takes rank " +
                                          std::to_string(d.shape.size()) + " " + spec_text(d));
        if (in.rank > 0) require(in.shape, "input shape");
        size_t elements = 1;
        for (size_t i = 0; i < in.rank; ++i) {
            int64_t dim = in.shape[i];
            if (dim < 0)
                throw Error(EP_ERR_INPUT, "input '" + d.name + "' has a negative dim " +
                                              dims_text(in.shape, in.rank));
            if (d.shape[i] >= 0 && dim != d.shape[i])
                throw Error(EP_ERR_INPUT, "input '" + d.name + "' has shape " +
                                              dims_text(in.shape, in.rank) + ", the model takes " +
                                              spec_text(d) + " (dim " + std::to_string(i) +
                                              " must be " + std::to_string(d.shape[i]) + ")");
            if (d.shape[i] < 0 && !d.dim_names[i].empty()) {
                auto [seen, inserted] = labels.try_emplace(d.dim_names[i], dim, d.name);
                if (!inserted && seen->second.first != dim)
                    throw Error(EP_ERR_INPUT, "dim '" + d.dim_names[i] + "' is " +
                                                  std::to_string(seen->second.first) + " in input '" +
                                                  seen->second.second + "' but " + std::to_string(dim) +
                                                  " in input '" + d.name + "'");
            }
            if (dim != 0 && elements > SIZE_MAX / static_cast<size_t>(dim))
                throw Error(EP_ERR_INPUT, "input '" + d.name + "' shape overflows");
            elements *= static_cast<size_t>(dim);
        }
        size_t item = ep_dtype_size(d.dtype);
        if (item == 0) throw Error(EP_ERR_UNSUPPORTED, "input '" + d.name + "' has an unsupported dtype");
        if (elements > SIZE_MAX / item || elements * item != in.byte_size)
            throw Error(EP_ERR_INPUT, "input '" + d.name + "' has " + std::to_string(in.byte_size) +
                                          " bytes, but shape " + dims_text(in.shape, in.rank) +
                                          " of " + ep_dtype_name(d.dtype) + " needs " +
                                          std::to_string(elements * item));
        if (in.byte_size > 0) require(in.data, "input data");
        ordered[it->second] = &in;
    }
    for (size_t i = 0; i < ordered.size(); ++i)
        if (ordered[i] == nullptr)
            throw Error(EP_ERR_INPUT, "input '" + s.inputs[i].name +
                                          "' is missing. The model takes: " + input_list(s));
    return ordered;
}

}  // namespace

extern "C" {

ep_status ep_session_run(ep_session* s, const ep_input* inputs, size_t input_count,
                         ep_tensor** outputs) {
    if (outputs && s)
        for (size_t i = 0; i < s->outputs.size(); ++i) outputs[i] = nullptr;
    ep_status status = guard([&] {
        require(s, "session");
        require(outputs, "outputs");
        std::vector<const ep_input*> ordered = validate(*s, inputs, input_count);
        std::vector<Owned<OrtValue>> owned;
        std::vector<const OrtValue*> values;
        std::vector<const char*> names;
        for (size_t i = 0; i < ordered.size(); ++i) {
            const ep_input& in = *ordered[i];
            OrtValue* value = nullptr;
            static unsigned char empty = 0;
            void* data = in.byte_size ? const_cast<void*>(in.data) : &empty;
            check(ort().CreateTensorWithDataAsOrtValue(
                      s->cpu, data, in.byte_size, in.shape, in.rank,
                      static_cast<ONNXTensorElementDataType>(in.dtype), &value),
                  EP_ERR_RUNTIME, "wrapping input '" + s->inputs[i].name + "'");
            owned.emplace_back(value);
            values.push_back(value);
            names.push_back(s->inputs[i].name.c_str());
        }
        std::vector<OrtValue*> results(s->outputs.size(), nullptr);
        check(ort().Run(s->session, nullptr, names.data(), values.data(), values.size(),
                        s->output_names.data(), s->output_names.size(), results.data()),
              EP_ERR_RUNTIME, "ONNX Runtime failed to run '" + s->artifact + "'");
        std::vector<std::unique_ptr<ep_tensor>> made;
        for (OrtValue* v : results) {
            made.emplace_back(new ep_tensor());
            made.back()->value = v;
        }
        for (size_t i = 0; i < made.size(); ++i) {
            ep_tensor& t = *made[i];
            OrtTensorTypeAndShapeInfo* raw = nullptr;
            check(ort().GetTensorTypeAndShape(t.value, &raw), EP_ERR_RUNTIME, "output shape");
            Owned<OrtTensorTypeAndShapeInfo> info(raw);
            ONNXTensorElementDataType type;
            size_t rank = 0, elements = 0;
            check(ort().GetTensorElementType(info.get(), &type), EP_ERR_RUNTIME, "output type");
            check(ort().GetDimensionsCount(info.get(), &rank), EP_ERR_RUNTIME, "output shape");
            check(ort().GetTensorShapeElementCount(info.get(), &elements), EP_ERR_RUNTIME,
                  "output shape");
            t.desc.name = s->outputs[i].name;
            t.desc.dtype = static_cast<ep_dtype>(type);
            t.desc.shape.resize(rank);
            check(ort().GetDimensions(info.get(), t.desc.shape.data(), rank), EP_ERR_RUNTIME,
                  "output shape");
            t.desc.dim_names.assign(rank, "");
            t.desc.finish();
            void* data = nullptr;
            check(ort().GetTensorMutableData(t.value, &data), EP_ERR_RUNTIME, "output data");
            t.data = data;
            t.byte_size = elements * ep_dtype_size(t.desc.dtype);
        }
        for (size_t i = 0; i < made.size(); ++i) outputs[i] = made[i].release();
    });
    if (s) (status == EP_OK ? s->runs : s->errors).fetch_add(1);
    return status;
}

ep_status ep_tensor_info_get(const ep_tensor* tensor, ep_tensor_info* out) {
    return guard([&] {
        require(tensor, "tensor");
        require(out, "out");
        tensor->desc.fill(out);
    });
}

const void* ep_tensor_data(const ep_tensor* tensor) { return tensor ? tensor->data : nullptr; }
size_t ep_tensor_byte_size(const ep_tensor* tensor) { return tensor ? tensor->byte_size : 0; }
void ep_tensor_release(ep_tensor* tensor) { delete tensor; }

}  // extern "C"
