// The C API and the C++ wrapper over the fixture bundles: results, validation messages,
// integrity failures, provider policy, NULL safety and concurrent runs.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <thread>

#include "edgeport/edgeport.h"
#include "edgeport/edgeport.hpp"
#include "internal.hpp"

namespace {

const std::string kFixtures = EDGEPORT_FIXTURES;

struct Opened {
    ep_status status;
    std::string message;
};

Opened open_status(const std::string& path, const char* provider = nullptr, int fallback = 0) {
    ep_options* options = nullptr;
    EXPECT_EQ(ep_options_create(&options), EP_OK);
    if (provider) ep_options_set_provider(options, provider);
    ep_options_set_allow_fallback(options, fallback);
    ep_session* session = nullptr;
    ep_status status = ep_session_open(path.c_str(), options, &session);
    Opened result{status, ep_last_error_message()};
    ep_session_release(session);
    ep_options_release(options);
    return result;
}

edgeport::Array golden(const std::string& name) {
    return edgeport::read_npy(kFixtures + "/tiny/golden/" + name + ".npy");
}

struct Feeds {
    edgeport::Array x = golden("x"), scale = golden("scale");
    std::vector<ep_input> inputs() const {
        return {{"x", x.dtype, x.shape.data(), x.shape.size(), x.data.data(), x.data.size()},
                {"scale", scale.dtype, scale.shape.data(), scale.shape.size(), scale.data.data(),
                 scale.data.size()}};
    }
};

std::string run_message(ep_session* session, std::vector<ep_input> inputs, ep_status expected) {
    ep_tensor* out[1] = {reinterpret_cast<ep_tensor*>(0x1)};
    ep_status status = ep_session_run(session, inputs.data(), inputs.size(), out);
    EXPECT_EQ(status, expected) << ep_last_error_message();
    EXPECT_EQ(out[0], nullptr);
    return ep_last_error_message();
}

}  // namespace

TEST(Session, RunsTheBundleAndMatchesTheGoldenOutputs) {
    ep_session* session = nullptr;
    ASSERT_EQ(ep_session_open((kFixtures + "/tiny").c_str(), nullptr, &session), EP_OK)
        << ep_last_error_message();
    EXPECT_STREQ(ep_session_artifact(session), "onnx-fp32");
    EXPECT_STREQ(ep_session_provider(session), "cpu");
    ASSERT_EQ(ep_session_input_count(session), 2u);
    ep_tensor_info info{};
    ASSERT_EQ(ep_session_input_info(session, 0, &info), EP_OK);
    EXPECT_STREQ(info.name, "x");
    EXPECT_EQ(info.dtype, EP_DTYPE_FLOAT32);
    ASSERT_EQ(info.rank, 2u);
    EXPECT_EQ(info.shape[0], -1);
    EXPECT_STREQ(info.dim_names[0], "batch");
    EXPECT_EQ(info.shape[1], 4);
    EXPECT_EQ(ep_session_input_info(session, 2, &info), EP_ERR_INVALID_ARGUMENT);
    EXPECT_STREQ(ep_last_error_message(), "input index 2 out of range (the model has 2)");

    Feeds feeds;
    auto inputs = feeds.inputs();
    ep_tensor* out[1] = {nullptr};
    ASSERT_EQ(ep_session_run(session, inputs.data(), inputs.size(), out), EP_OK)
        << ep_last_error_message();
    ep_tensor_info out_info{};
    ASSERT_EQ(ep_tensor_info_get(out[0], &out_info), EP_OK);
    EXPECT_STREQ(out_info.name, "y");
    EXPECT_EQ(out_info.shape[0], 2);
    EXPECT_EQ(out_info.shape[1], 3);
    edgeport::Array got{out_info.dtype, {2, 3}, {}};
    auto* p = static_cast<const unsigned char*>(ep_tensor_data(out[0]));
    got.data.assign(p, p + ep_tensor_byte_size(out[0]));
    edgeport::OutputCheck check =
        edgeport::check_output("y", got, golden("y"), {1e-5, 1e-6, std::nullopt, std::nullopt});
    EXPECT_TRUE(check.failures.empty()) << check.failures[0];
    ep_tensor_release(out[0]);
    EXPECT_EQ(ep_session_run_count(session), 1u);
    ep_session_release(session);
}

TEST(Session, ValidatesInputsBeforeOnnxRuntimeSeesThem) {
    edgeport::Session wrapped(kFixtures + "/tiny");
    ep_session* s = wrapped.handle();
    Feeds feeds;
    auto inputs = feeds.inputs();

    auto renamed = inputs;
    renamed[0].name = "X";
    EXPECT_EQ(run_message(s, renamed, EP_ERR_INPUT),
              "unknown input 'X'. The model takes: x float32[batch, 4], scale float32[batch, 1]");
    EXPECT_EQ(run_message(s, {inputs[0]}, EP_ERR_INPUT),
              "input 'scale' is missing. The model takes: x float32[batch, 4], scale float32[batch, 1]");
    EXPECT_EQ(run_message(s, {inputs[0], inputs[0]}, EP_ERR_INPUT), "input 'x' is given twice");

    auto typed = inputs;
    typed[0].dtype = EP_DTYPE_FLOAT64;
    EXPECT_EQ(run_message(s, typed, EP_ERR_INPUT),
              "input 'x' is float64, the model takes float32 (libedgeport never casts; convert the "
              "data first)");

    int64_t flat[] = {8};
    auto ranked = inputs;
    ranked[0].shape = flat;
    ranked[0].rank = 1;
    EXPECT_EQ(run_message(s, ranked, EP_ERR_INPUT),
              "input 'x' has rank 1, the model takes rank 2 [batch, 4]");

    int64_t wide[] = {1, 8};
    auto shaped = inputs;
    shaped[0].shape = wide;
    EXPECT_EQ(run_message(s, shaped, EP_ERR_INPUT),
              "input 'x' has shape [1, 8], the model takes [batch, 4] (dim 1 must be 4)");

    int64_t one[] = {1, 1};
    auto mismatched = inputs;
    mismatched[1].shape = one;
    mismatched[1].byte_size = 4;
    EXPECT_EQ(run_message(s, mismatched, EP_ERR_INPUT),
              "dim 'batch' is 2 in input 'x' but 1 in input 'scale'");

    auto short_data = inputs;
    short_data[0].byte_size -= 4;
    EXPECT_EQ(run_message(s, short_data, EP_ERR_INPUT),
              "input 'x' has 28 bytes, but shape [2, 4] of float32 needs 32");

    auto null_data = inputs;
    null_data[0].data = nullptr;
    EXPECT_EQ(run_message(s, null_data, EP_ERR_INVALID_ARGUMENT), "input data is NULL");
    EXPECT_EQ(wrapped.errors(), 9u);
    EXPECT_EQ(wrapped.runs(), 0u);
}

TEST(Session, BadBundlesGiveTheirStatusAndMessage) {
    Opened missing = open_status(kFixtures + "/nope");
    EXPECT_EQ(missing.status, EP_ERR_NOT_FOUND);
    EXPECT_EQ(missing.message, "'" + kFixtures + "/nope' does not exist");

    Opened corrupt = open_status(kFixtures + "/corrupt_manifest");
    EXPECT_EQ(corrupt.status, EP_ERR_CORRUPT);
    EXPECT_EQ(corrupt.message, "manifest.json is not a valid edgeport manifest: the file is not JSON (parse error at byte 39)");

    Opened schema = open_status(kFixtures + "/wrong_schema");
    EXPECT_EQ(schema.status, EP_ERR_UNSUPPORTED);

    Opened tampered = open_status(kFixtures + "/tampered");
    EXPECT_EQ(tampered.status, EP_ERR_INTEGRITY);
    EXPECT_NE(tampered.message.find("sha256 of 'model.onnx' is "), std::string::npos) << tampered.message;
    EXPECT_NE(tampered.message.find(", manifest says "), std::string::npos);

    Opened escape = open_status(kFixtures + "/escape/b");
    EXPECT_EQ(escape.status, EP_ERR_INTEGRITY);
    EXPECT_EQ(escape.message,
              "the model's external data points at '../outside.bin', outside the bundle: paths in "
              "a bundle must be relative and stay inside it");
    Opened bare = open_status(kFixtures + "/escape/b/model.onnx");
    EXPECT_EQ(bare.status, EP_ERR_INTEGRITY) << bare.message;

    Opened unlisted = open_status(kFixtures + "/unlisted");
    EXPECT_EQ(unlisted.status, EP_ERR_INTEGRITY);
    EXPECT_EQ(unlisted.message,
              "the model's external data 'weights.bin' is not recorded in the manifest, so its "
              "sha256 cannot be checked");

    Opened fine = open_status(kFixtures + "/external_ok");
    EXPECT_EQ(fine.status, EP_OK) << fine.message;

    ep_options* options = nullptr;
    ASSERT_EQ(ep_options_create(&options), EP_OK);
    ASSERT_EQ(ep_options_set_artifact(options, "onnx-int8"), EP_OK);
    ep_session* session = nullptr;
    EXPECT_EQ(ep_session_open((kFixtures + "/tiny").c_str(), options, &session), EP_ERR_NOT_FOUND);
    EXPECT_STREQ(ep_last_error_message(), "the bundle has no artifact 'onnx-int8'. Available: onnx-fp32");
    EXPECT_EQ(session, nullptr);
    EXPECT_EQ(ep_options_set_provider(options, "npu"), EP_ERR_INVALID_ARGUMENT);
    EXPECT_STREQ(ep_last_error_message(), "unknown provider 'npu'. Available: cpu, cuda");
    ep_options_release(options);
}

TEST(Session, CudaFailsClosedOnACpuOnlyBuild) {
    Opened cuda = open_status(kFixtures + "/tiny", "cuda");
    if (cuda.status == EP_OK) GTEST_SKIP() << "this onnxruntime has a usable CUDA provider";
    EXPECT_EQ(cuda.status, EP_ERR_PROVIDER);
    EXPECT_NE(cuda.message.find("provider 'cuda' (CUDAExecutionProvider) is not usable: this "
                                "onnxruntime build has "),
              std::string::npos)
        << cuda.message;
    EXPECT_NE(cuda.message.find("--allow-fallback"), std::string::npos);
    edgeport::Options options;
    options.provider = "cuda";
    options.allow_fallback = true;
    edgeport::Session fallback(kFixtures + "/tiny", options);
    EXPECT_EQ(fallback.provider(), "cpu");
}

TEST(Session, NullIsSafeEverywhere) {
    ep_session_release(nullptr);
    ep_options_release(nullptr);
    ep_tensor_release(nullptr);
    EXPECT_EQ(ep_session_open(nullptr, nullptr, nullptr), EP_ERR_INVALID_ARGUMENT);
    ep_session* session = nullptr;
    EXPECT_EQ(ep_session_open(nullptr, nullptr, &session), EP_ERR_INVALID_ARGUMENT);
    EXPECT_STREQ(ep_last_error_message(), "path is NULL");
    EXPECT_EQ(ep_session_run(nullptr, nullptr, 0, nullptr), EP_ERR_INVALID_ARGUMENT);
    EXPECT_EQ(ep_session_input_count(nullptr), 0u);
    EXPECT_EQ(ep_tensor_data(nullptr), nullptr);
    EXPECT_EQ(ep_options_set_threads(nullptr, 1), EP_ERR_INVALID_ARGUMENT);
    EXPECT_STREQ(ep_status_name(EP_ERR_INTEGRITY), "EP_ERR_INTEGRITY");
}

TEST(Wrapper, ThrowsWithTheStatusAndMoves) {
    try {
        edgeport::Session bad(kFixtures + "/tampered");
        FAIL() << "opened a tampered bundle";
    } catch (const edgeport::Exception& e) {
        EXPECT_EQ(e.status(), EP_ERR_INTEGRITY);
    }
    edgeport::Session a(kFixtures + "/tiny");
    edgeport::Session b = std::move(a);
    EXPECT_EQ(a.handle(), nullptr);
    EXPECT_EQ(b.inputs()[1].name, "scale");
    EXPECT_EQ(b.outputs()[0].dim_names[0], "batch");
}

TEST(Session, ConcurrentRunsMatchASingleThread) {
    edgeport::Options options;
    options.threads = 1;
    edgeport::Session session(kFixtures + "/tiny", options);
    Feeds feeds;
    std::vector<edgeport::Input> inputs = {
        {"x", feeds.x.dtype, feeds.x.shape, feeds.x.data.data(), feeds.x.data.size()},
        {"scale", feeds.scale.dtype, feeds.scale.shape, feeds.scale.data.data(), feeds.scale.data.size()}};
    auto reference = session.run(inputs);
    std::vector<float> expected(reference[0].data<float>(), reference[0].data<float>() + 6);
    std::atomic<int> mismatches{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t)
        threads.emplace_back([&] {
            for (int i = 0; i < 200; ++i) {
                auto out = session.run(inputs);
                if (std::memcmp(out[0].data<float>(), expected.data(), 24) != 0) ++mismatches;
            }
        });
    for (auto& t : threads) t.join();
    EXPECT_EQ(mismatches.load(), 0);
    EXPECT_EQ(session.runs(), 1601u);
}
