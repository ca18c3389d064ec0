// C++ wrapper over the C API: RAII, move-only handles, exceptions carrying the status.
//
//   edgeport::Session session("bundle_dir");            // the recommended artifact, on the CPU
//   std::vector<float> x(1 * 3 * 224 * 224);
//   auto outputs = session.run({edgeport::Input::of("input", x, {1, 3, 224, 224})});
//   const float* logits = outputs[0].data<float>();
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "edgeport/edgeport.h"

namespace edgeport {

class Exception : public std::runtime_error {
public:
    Exception(ep_status status, const std::string& message)
        : std::runtime_error(message), status_(status) {}
    [[nodiscard]] ep_status status() const noexcept { return status_; }

private:
    ep_status status_;
};

inline void check(ep_status status) {
    if (status != EP_OK) throw Exception(status, ep_last_error_message());
}

template <typename T>
constexpr ep_dtype dtype_of();
template <> constexpr ep_dtype dtype_of<float>() { return EP_DTYPE_FLOAT32; }
template <> constexpr ep_dtype dtype_of<double>() { return EP_DTYPE_FLOAT64; }
template <> constexpr ep_dtype dtype_of<int64_t>() { return EP_DTYPE_INT64; }
template <> constexpr ep_dtype dtype_of<int32_t>() { return EP_DTYPE_INT32; }
template <> constexpr ep_dtype dtype_of<int8_t>() { return EP_DTYPE_INT8; }
template <> constexpr ep_dtype dtype_of<uint8_t>() { return EP_DTYPE_UINT8; }

// A named input that borrows its data for the duration of a run.
struct Input {
    std::string name;
    ep_dtype dtype = EP_DTYPE_UNDEFINED;
    std::vector<int64_t> shape;
    const void* data = nullptr;
    size_t byte_size = 0;

    template <typename T>
    [[nodiscard]] static Input of(std::string name, const std::vector<T>& values,
                                  std::vector<int64_t> shape) {
        return Input{std::move(name), dtype_of<T>(), std::move(shape), values.data(),
                     values.size() * sizeof(T)};
    }
};

struct TensorInfo {
    std::string name;
    ep_dtype dtype = EP_DTYPE_UNDEFINED;
    std::vector<int64_t> shape;            // -1 for a symbolic dim
    std::vector<std::string> dim_names;    // labels of symbolic dims ("" if none)

    static TensorInfo from(const ep_tensor_info& info) {
        TensorInfo out{info.name, info.dtype, {info.shape, info.shape + info.rank}, {}};
        for (size_t i = 0; i < info.rank; ++i)
            out.dim_names.emplace_back(info.dim_names && info.dim_names[i] ? info.dim_names[i] : "");
        return out;
    }
};

// An output tensor owned by the caller.
class Tensor {
public:
    explicit Tensor(ep_tensor* handle) noexcept : handle_(handle) {}
    Tensor(Tensor&& other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}
    Tensor& operator=(Tensor&& other) noexcept {
        if (this != &other) {
            ep_tensor_release(handle_);
            handle_ = std::exchange(other.handle_, nullptr);
        }
        return *this;
    }
    Tensor(const Tensor&) = delete;
    Tensor& operator=(const Tensor&) = delete;
    ~Tensor() { ep_tensor_release(handle_); }

    [[nodiscard]] TensorInfo info() const {
        ep_tensor_info raw{};
        check(ep_tensor_info_get(handle_, &raw));
        return TensorInfo::from(raw);
    }
    template <typename T>
    [[nodiscard]] const T* data() const {
        if (info().dtype != dtype_of<T>())
            throw Exception(EP_ERR_INVALID_ARGUMENT, "tensor dtype does not match the requested type");
        return static_cast<const T*>(ep_tensor_data(handle_));
    }
    [[nodiscard]] const void* raw_data() const noexcept { return ep_tensor_data(handle_); }
    [[nodiscard]] size_t byte_size() const noexcept { return ep_tensor_byte_size(handle_); }

private:
    ep_tensor* handle_;
};

struct Options {
    std::string artifact;       // default: the recommended ONNX artifact
    std::string provider = "cpu";
    int threads = 0;            // 0: ONNX Runtime's choice
    bool allow_fallback = false;
    bool spinning = true;
    bool verify_hashes = true;
    std::string public_key_file;  // Ed25519 PEM public key: only bundles signed with it open
};

class Session {
public:
    explicit Session(const std::string& path, const Options& options = {}) {
        ep_options* raw = nullptr;
        check(ep_options_create(&raw));
        struct Release {
            ep_options* p;
            ~Release() { ep_options_release(p); }
        } release{raw};
        if (!options.artifact.empty()) check(ep_options_set_artifact(raw, options.artifact.c_str()));
        check(ep_options_set_provider(raw, options.provider.c_str()));
        check(ep_options_set_threads(raw, options.threads));
        check(ep_options_set_allow_fallback(raw, options.allow_fallback));
        check(ep_options_set_spinning(raw, options.spinning));
        check(ep_options_set_verify_hashes(raw, options.verify_hashes));
        if (!options.public_key_file.empty())
            check(ep_options_set_public_key_file(raw, options.public_key_file.c_str()));
        check(ep_session_open(path.c_str(), raw, &handle_));
    }
    Session(Session&& other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}
    Session& operator=(Session&& other) noexcept {
        if (this != &other) {
            ep_session_release(handle_);
            handle_ = std::exchange(other.handle_, nullptr);
        }
        return *this;
    }
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;
    ~Session() { ep_session_release(handle_); }

    [[nodiscard]] std::vector<TensorInfo> inputs() const { return infos(true); }
    [[nodiscard]] std::vector<TensorInfo> outputs() const { return infos(false); }
    [[nodiscard]] std::string artifact() const { return ep_session_artifact(handle_); }
    [[nodiscard]] std::string provider() const { return ep_session_provider(handle_); }
    [[nodiscard]] uint64_t runs() const noexcept { return ep_session_run_count(handle_); }
    [[nodiscard]] uint64_t errors() const noexcept { return ep_session_error_count(handle_); }
    [[nodiscard]] ep_session* handle() const noexcept { return handle_; }

    // Thread-safe. Outputs in the model's order.
    [[nodiscard]] std::vector<Tensor> run(const std::vector<Input>& inputs) {
        std::vector<ep_input> raw;
        raw.reserve(inputs.size());
        for (const Input& in : inputs)
            raw.push_back({in.name.c_str(), in.dtype, in.shape.data(), in.shape.size(), in.data,
                           in.byte_size});
        std::vector<ep_tensor*> handles(ep_session_output_count(handle_), nullptr);
        check(ep_session_run(handle_, raw.data(), raw.size(), handles.data()));
        std::vector<Tensor> out;
        out.reserve(handles.size());
        for (ep_tensor* h : handles) out.emplace_back(h);
        return out;
    }

private:
    std::vector<TensorInfo> infos(bool inputs) const {
        size_t n = inputs ? ep_session_input_count(handle_) : ep_session_output_count(handle_);
        std::vector<TensorInfo> out;
        for (size_t i = 0; i < n; ++i) {
            ep_tensor_info raw{};
            check(inputs ? ep_session_input_info(handle_, i, &raw)
                         : ep_session_output_info(handle_, i, &raw));
            out.push_back(TensorInfo::from(raw));
        }
        return out;
    }

    ep_session* handle_ = nullptr;
};

}  // namespace edgeport
