// Bundles from elsewhere are data (issue 15): crafted bundles (make_fixtures.py writes them) are
// refused with their status and message by verify; signed bundles open only with their key.
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <fstream>
#include <memory>

#include "edgeport/edgeport.h"
#include "edgeport/edgeport.hpp"
#include "internal.hpp"

namespace fs = std::filesystem;

namespace {

const std::string kFixtures = EDGEPORT_FIXTURES;
const std::string kSame = ", outside the bundle: paths in a bundle must be relative and stay inside it";

struct Outcome {
    ep_status status;
    std::string message;
};

// verify of one artifact, as a status and a message: EP_ERR_PARITY with every parity failure
// when outputs are out of tolerance; the error's status and message when the check cannot be made.
Outcome verify(const std::string& dir, const std::string& artifact = "onnx-fp32",
               const edgeport::VerifyOptions& options = {}) {
    try {
        edgeport::Bundle bundle = edgeport::Bundle::load(dir);
        edgeport::Verdict verdict = edgeport::verify_artifact(bundle, artifact, options);
        std::string failures;
        for (const auto& [set, check] : verdict.checks)
            for (const auto& failure : check.failures) failures += failure + "\n";
        return {verdict.failed() ? EP_ERR_PARITY : EP_OK, failures};
    } catch (const edgeport::Error& e) {
        return {e.status(), e.what()};
    }
}

Outcome open_signed(const std::string& dir, const std::string& key, int verify_hashes = 1) {
    ep_options* options = nullptr;
    EXPECT_EQ(ep_options_create(&options), EP_OK);
    EXPECT_EQ(ep_options_set_verify_hashes(options, verify_hashes), EP_OK);
    ep_status status = ep_options_set_public_key_file(options, key.c_str());
    ep_session* session = nullptr;
    if (status == EP_OK) status = ep_session_open(dir.c_str(), options, &session);
    Outcome outcome{status, ep_last_error_message()};
    EXPECT_EQ(session == nullptr, status != EP_OK);
    ep_session_release(session);
    ep_options_release(options);
    return outcome;
}

struct Crafted {
    const char* bundle;
    const char* artifact;
    ep_status status;
    std::string message;  // a substring of the message
};

void PrintTo(const Crafted& c, std::ostream* out) { *out << c.bundle << " " << c.artifact; }

const Crafted kCrafted[] = {
    // Every path a manifest names: relative, no "..", inside after symlinks, before it is opened.
    {"artifact_dotdot", "onnx-fp32", EP_ERR_INTEGRITY,
     "artifact 'onnx-fp32' points at '../../tiny/model.onnx'" + kSame},
    {"artifact_absolute", "onnx-fp32", EP_ERR_INTEGRITY, "artifact 'onnx-fp32' points at '/"},
    {"artifact_symlink", "onnx-fp32", EP_ERR_INTEGRITY,
     "artifact 'onnx-fp32' 'model.onnx' resolves (through a symlink) outside the bundle, to '"},
    {"external_dotdot", "onnx-fp32", EP_ERR_INTEGRITY,
     "external data of 'onnx-fp32' points at '../../external_ok/weights.bin'" + kSame},
    {"external_absolute", "onnx-fp32", EP_ERR_INTEGRITY, "external data of 'onnx-fp32' points at '/"},
    {"external_symlink", "onnx-fp32", EP_ERR_INTEGRITY,
     "external data of 'onnx-fp32' 'weights.bin' resolves (through a symlink) outside the bundle"},
    {"golden_dotdot", "onnx-fp32", EP_ERR_INTEGRITY,
     "golden file of set 'base' points at '../../tiny/golden/x.npy'" + kSame},
    {"golden_absolute", "onnx-fp32", EP_ERR_INTEGRITY, "golden file of set 'base' points at '/"},
    {"golden_symlink", "onnx-fp32", EP_ERR_INTEGRITY,
     "golden file of set 'base' 'golden/x.npy' resolves (through a symlink) outside the bundle, to '"},
    // Manifest fields, typed once.
    {"no_precision", "onnx-fp32", EP_ERR_CORRUPT,
     "manifest.json is not a valid edgeport manifest: artifacts.onnx-fp32.precision is missing; "
     "expected 'fp32' or 'int8'"},
    {"unknown_precision", "onnx-fp32", EP_ERR_CORRUPT,
     "artifacts.onnx-fp32.precision is \"fp16\"; expected 'fp32' or 'int8'"},
    {"path_not_string", "onnx-fp32", EP_ERR_CORRUPT, "artifacts.onnx-fp32.path is not a string"},
    {"golden_sets_not_list", "onnx-fp32", EP_ERR_CORRUPT,
     "artifacts.onnx-fp32.golden_sets is not a list"},
    {"golden_sha_not_object", "onnx-fp32", EP_ERR_CORRUPT, "golden set base.sha256 is not an object"},
    {"golden_sha_not_string", "onnx-fp32", EP_ERR_CORRUPT,
     "golden set base.sha256.golden/x.npy is not a string"},
    // ... every field edgeport.manifest checks: the two runtimes refuse the same manifests.
    {"no_inputs", "onnx-fp32", EP_ERR_CORRUPT,
     "manifest.json is not a valid edgeport manifest: inputs is missing"},
    {"dtype_evil", "onnx-fp32", EP_ERR_CORRUPT,
     "manifest.json is not a valid edgeport manifest: inputs[0].dtype is \"evil\"; expected one of "
     "('float16', 'float32', 'float64', 'int8', 'int16', 'int32', 'int64', 'uint8', 'uint16', "
     "'uint32', 'uint64', 'bool')"},
    {"dim_float", "onnx-fp32", EP_ERR_CORRUPT,
     "inputs[0].shape[1] is 3.5; expected an integer in [0, 16,777,216]"},
    {"golden_no_sizes", "onnx-fp32", EP_ERR_CORRUPT,
     "manifest.json is not a valid edgeport manifest: golden set 'base'.sizes is missing"},
    {"example_huge", "onnx-fp32", EP_ERR_CORRUPT,
     "input_examples.batch is 1000000000000; expected an integer in [1, 16,777,216]"},
    {"example_too_many_elements", "onnx-fp32", EP_ERR_CORRUPT,
     "manifest.json is not a valid edgeport manifest: input_examples make input 'x' 1,073,741,824 "
     "elements, over the 268,435,456 edgeport allocates for an example"},
    // verify decides, the manifest records: a tolerance of 1e9 does not pass an all-42 model.
    {"loose_tolerance", "onnx-fp32", EP_ERR_PARITY,
     "output 'y': max_abs_err 47 exceeds tolerance atol 1e-05 + rtol 0.001·|ref|"},
    {"loose_tolerance", "onnx-int8", EP_ERR_PARITY, "is below tolerance 0.99\n"},
    {"loose_tolerance", "onnx-int8", EP_ERR_PARITY, "output 'y': top1_agreement 0.5 is below tolerance 0.95"},
    // An artifact checked on no golden set fails.
    {"empty_golden_sets", "onnx-fp32", EP_ERR_PARITY,
     "artifact 'onnx-fp32' is checked on no golden set: verify cannot vouch for it"},
    {"no_golden", "onnx-fp32", EP_ERR_PARITY,
     "artifact 'onnx-fp32' is checked on no golden set: verify cannot vouch for it"},
    {"dangling_golden_set", "onnx-fp32", EP_ERR_PARITY,
     "artifact 'onnx-fp32' names golden set 'nope', which the manifest does not have"},
    // Golden files are hashed.
    {"golden_changed", "onnx-fp32", EP_ERR_INTEGRITY, "sha256 of 'golden/y.npy' is "},
    {"golden_unhashed", "onnx-fp32", EP_ERR_INTEGRITY,
     "golden file 'golden/y.npy' has no sha256 in the manifest"},
    // The native crashes: refused before any slicing.
    {"scalar_input_batched", "onnx-fp32", EP_ERR_CORRUPT,
     "golden set 'samples' is run in batches of 1, but input 'x' is 0-d"},
    {"scalar_output_batched", "onnx-fp32", EP_ERR_CORRUPT,
     "golden set 'samples' is run in batches, but output 'y' is 0-d"},
    {"samples_disagree", "onnx-fp32", EP_ERR_CORRUPT,
     "golden set 'samples': inputs disagree on the number of samples (scale has 5, x has 3)"},
};

class CraftedBundle : public testing::TestWithParam<Crafted> {};

TEST_P(CraftedBundle, VerifyRefusesItWithStatusAndMessage) {
    const Crafted& c = GetParam();
    Outcome got = verify(kFixtures + "/crafted/" + c.bundle, c.artifact);
    EXPECT_EQ(got.status, c.status) << ep_status_name(got.status) << ": " << got.message;
    EXPECT_NE(got.message.find(c.message), std::string::npos) << got.message;
}

INSTANTIATE_TEST_SUITE_P(Issue15, CraftedBundle, testing::ValuesIn(kCrafted),
                         [](const testing::TestParamInfo<Crafted>& info) {
                             return std::string(info.param.bundle) + "_" +
                                    std::to_string(info.index);
                         });

}  // namespace

TEST(Verify, TheFixturePassesWithTheProfileTolerance) {
    edgeport::Bundle bundle = edgeport::Bundle::load(kFixtures + "/tiny");
    edgeport::Verdict verdict = edgeport::verify_artifact(bundle, "onnx-fp32", {});
    EXPECT_EQ(verdict.failed(), 0u);
    ASSERT_EQ(verdict.checks.size(), 2u);  // y on "base" and on "samples" (in 2 runs)
    EXPECT_EQ(verdict.checks[1].set, "samples");
    EXPECT_LT(verdict.checks[1].check.max_abs_err, 1e-5);
    EXPECT_EQ(verdict.tolerance.rtol, 1e-3);
    EXPECT_EQ(verdict.tolerance.atol, 1e-5);
}

TEST(Verify, TheCommandLineMayLoosenWhatTheManifestCannot) {
    edgeport::VerifyOptions options;
    options.tolerance.rtol = 1e9;
    options.tolerance.atol = 1e9;
    Outcome loose = verify(kFixtures + "/crafted/loose_tolerance", "onnx-fp32", options);
    EXPECT_EQ(loose.status, EP_OK) << loose.message;
}

TEST(Verify, AZeroDOutputOfASetThatFitsOneRunIsChecked) {
    Outcome one = verify(kFixtures + "/crafted/scalar_output_one_batch");
    EXPECT_EQ(one.status, EP_OK) << one.message;
}

TEST(Verify, DefaultRunInputsFollowTheSameRules) {
    edgeport::Bundle tiny = edgeport::Bundle::load(kFixtures + "/tiny");
    auto inputs = edgeport::default_inputs(tiny, tiny.artifact("onnx-fp32"));
    EXPECT_EQ(inputs.at("x").shape, (std::vector<int64_t>{2, 4}));  // the "base" set, whole
    edgeport::Bundle scalar = edgeport::Bundle::load(kFixtures + "/crafted/scalar_input_batched");
    try {
        edgeport::default_inputs(scalar, scalar.artifact("onnx-fp32"));
        FAIL() << "a 0-d input was sliced";
    } catch (const edgeport::Error& e) {
        EXPECT_EQ(e.status(), EP_ERR_CORRUPT);
        EXPECT_STREQ(e.what(), "golden set 'samples' is run in batches of 1, but input 'x' is 0-d");
    }
    edgeport::Bundle none = edgeport::Bundle::load(kFixtures + "/crafted/no_golden");
    try {
        edgeport::default_inputs(none, none.artifact("onnx-fp32"));
        FAIL() << "inputs from no golden set";
    } catch (const edgeport::Error& e) {
        EXPECT_EQ(e.status(), EP_ERR_NOT_FOUND);
        EXPECT_NE(std::string(e.what()).find("the bundle has no golden inputs for 'onnx-fp32'"),
                  std::string::npos);
    }
}

// ---- signatures -------------------------------------------------------------------------------

namespace {

const std::string kKeys = kFixtures + "/keys/";
const std::string kNotVerified =
    "manifest.json.sig does not verify against public key '" + kKeys +
    "signer.pub': the manifest changed after signing, or another key signed it";

}  // namespace

TEST(Signature, ASignedBundleRunsWithItsKey) {
    Outcome signed_ok = open_signed(kFixtures + "/signed", kKeys + "signer.pub");
    EXPECT_EQ(signed_ok.status, EP_OK) << signed_ok.message;
    edgeport::Options options;
    options.public_key_file = kKeys + "signer.pub";
    edgeport::Session session(kFixtures + "/signed", options);
    EXPECT_EQ(session.artifact(), "onnx-fp32");
    edgeport::VerifyOptions verify_options;
    verify_options.public_key_file = kKeys + "signer.pub";
    Outcome verified = verify(kFixtures + "/signed", "onnx-fp32", verify_options);
    EXPECT_EQ(verified.status, EP_OK) << verified.message;
    // Without a key nothing changes: signed and unsigned bundles open.
    EXPECT_EQ(open_signed(kFixtures + "/signed", "").status, EP_OK);
    EXPECT_EQ(open_signed(kFixtures + "/tiny", "").status, EP_OK);
}

TEST(Signature, AChangedManifestIsRefused) {
    Outcome changed = open_signed(kFixtures + "/signed_manifest_changed", kKeys + "signer.pub");
    EXPECT_EQ(changed.status, EP_ERR_INTEGRITY);
    EXPECT_EQ(changed.message, kNotVerified);
}

TEST(Signature, AnArtifactSwappedWithItsHashRewrittenIsRefused) {
    // The sha256 alone cannot tell: the manifest was rewritten to match the new model.
    EXPECT_EQ(open_signed(kFixtures + "/signed_artifact_swapped", "").status, EP_OK);
    Outcome swapped = open_signed(kFixtures + "/signed_artifact_swapped", kKeys + "signer.pub");
    EXPECT_EQ(swapped.status, EP_ERR_INTEGRITY);
    EXPECT_EQ(swapped.message, kNotVerified);
}

TEST(Signature, AnUnsignedBundleIsRefusedWhenAKeyIsGiven) {
    Outcome unsigned_bundle = open_signed(kFixtures + "/tiny", kKeys + "signer.pub");
    EXPECT_EQ(unsigned_bundle.status, EP_ERR_INTEGRITY);
    EXPECT_EQ(unsigned_bundle.message, "bundle '" + kFixtures +
                                           "/tiny' is not signed (no manifest.json.sig) and a "
                                           "public key was given: refusing it");
    fs::path linked = fs::temp_directory_path() / "edgeport_linked_signature";
    fs::remove_all(linked);
    fs::copy(kFixtures + "/signed", linked, fs::copy_options::recursive);
    fs::remove(linked / "manifest.json.sig");
    fs::create_symlink(kFixtures + "/signed/manifest.json.sig", linked / "manifest.json.sig");
    Outcome symlinked = open_signed(linked.string(), kKeys + "signer.pub");
    EXPECT_EQ(symlinked.status, EP_ERR_INTEGRITY);
    EXPECT_NE(symlinked.message.find("is not signed (no manifest.json.sig)"), std::string::npos)
        << symlinked.message;
    fs::remove_all(linked);
    Outcome bare = open_signed(kFixtures + "/signed/model.onnx", kKeys + "signer.pub");
    EXPECT_EQ(bare.status, EP_ERR_INTEGRITY);
    EXPECT_NE(bare.message.find("is a bare model file, which carries no signature"), std::string::npos)
        << bare.message;
}

TEST(Signature, AnotherKeyOrAShortSignatureIsRefused) {
    Outcome other = open_signed(kFixtures + "/signed", kKeys + "other.pub");
    EXPECT_EQ(other.status, EP_ERR_INTEGRITY);
    EXPECT_EQ(other.message, "manifest.json.sig does not verify against public key '" + kKeys +
                                 "other.pub': the manifest changed after signing, or another "
                                 "key signed it");
    Outcome short_signature = open_signed(kFixtures + "/signed_short_signature", kKeys + "signer.pub");
    EXPECT_EQ(short_signature.status, EP_ERR_INTEGRITY);
    EXPECT_EQ(short_signature.message, kNotVerified);
}

TEST(Signature, WhatIsNotAnEd25519PublicKeyIsRefused) {
    for (const std::string& file : {kKeys + "x25519.pub", kKeys + "garbage.pub",
                                    kKeys + "missing.pub", kFixtures + "/signed/manifest.json.sig",
                                    kFixtures + "/signed"}) {
        Outcome bad = open_signed(kFixtures + "/signed", file);
        EXPECT_EQ(bad.status, EP_ERR_INVALID_ARGUMENT) << file;
        EXPECT_EQ(bad.message, "public key '" + file +
                                   "' is not an Ed25519 public key in PEM (SubjectPublicKeyInfo)");
    }
    Outcome unhashed = open_signed(kFixtures + "/signed", kKeys + "signer.pub", /*verify_hashes=*/0);
    EXPECT_EQ(unhashed.status, EP_ERR_INVALID_ARGUMENT);
    EXPECT_NE(unhashed.message.find("a public key was given with sha256 checks off"),
              std::string::npos);
    EXPECT_EQ(ep_options_set_public_key_file(nullptr, "k.pub"), EP_ERR_INVALID_ARGUMENT);
}

// A key pair from OpenSSL itself (the PEM PEM_write_bio_PUBKEY writes, as `openssl pkey -pubout`):
// the fixture's own signer is the RFC 8032 reference in Python; both must verify.
TEST(Signature, AKeyMadeByOpenSslVerifies) {
    std::unique_ptr<EVP_PKEY_CTX, decltype(&EVP_PKEY_CTX_free)> context(
        EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, nullptr), EVP_PKEY_CTX_free);
    EVP_PKEY* raw = nullptr;
    ASSERT_EQ(EVP_PKEY_keygen_init(context.get()), 1);
    ASSERT_EQ(EVP_PKEY_keygen(context.get(), &raw), 1);
    std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(raw, EVP_PKEY_free);

    fs::path root = fs::temp_directory_path() / "edgeport_openssl_signed";
    fs::remove_all(root);
    fs::copy(kFixtures + "/tiny", root, fs::copy_options::recursive);
    std::ifstream in(root / "manifest.json", std::ios::binary);
    std::string manifest((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> md(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    unsigned char signature[64];
    size_t length = sizeof(signature);
    ASSERT_EQ(EVP_DigestSignInit(md.get(), nullptr, nullptr, nullptr, key.get()), 1);
    ASSERT_EQ(EVP_DigestSign(md.get(), signature, &length,
                             reinterpret_cast<const unsigned char*>(manifest.data()), manifest.size()),
              1);
    std::ofstream(root / "manifest.json.sig", std::ios::binary)
        .write(reinterpret_cast<const char*>(signature), std::streamsize(length));
    std::string pem = (root / "key.pub").string();
    FILE* file = std::fopen(pem.c_str(), "w");
    ASSERT_NE(file, nullptr);
    ASSERT_EQ(PEM_write_PUBKEY(file, key.get()), 1);
    std::fclose(file);

    EXPECT_EQ(edgeport::PublicKey::read_pem(pem).raw.size(), 32u);
    Outcome opened = open_signed(root.string(), pem);
    EXPECT_EQ(opened.status, EP_OK) << opened.message;
    Outcome wrong = open_signed(kFixtures + "/signed", pem);
    EXPECT_EQ(wrong.status, EP_ERR_INTEGRITY);
    fs::remove_all(root);
}
