// Ed25519 public keys and signature checks (OpenSSL libcrypto): a bundle's manifest.json.sig.
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <fstream>
#include <memory>

#include "internal.hpp"

namespace edgeport {
namespace {

struct Free {
    void operator()(BIO* p) const { BIO_free(p); }
    void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
    void operator()(EVP_MD_CTX* p) const { EVP_MD_CTX_free(p); }
};
template <typename T>
using Owned = std::unique_ptr<T, Free>;

constexpr size_t kMaxPemBytes = 64 * 1024;  // a PEM public key is a few hundred bytes

[[noreturn]] void not_a_key(const std::string& file) {
    ERR_clear_error();  // OpenSSL's reasons stay out of the next caller's way
    throw Error(EP_ERR_INVALID_ARGUMENT, "public key '" + file +
                                             "' is not an Ed25519 public key in PEM "
                                             "(SubjectPublicKeyInfo)");
}

}  // namespace

PublicKey PublicKey::read_pem(const std::string& file) {
    std::ifstream in(file, std::ios::binary);
    std::string text(kMaxPemBytes + 1, '\0');
    in.read(text.data(), std::streamsize(text.size()));
    text.resize(static_cast<size_t>(in.gcount()));
    if (text.empty() || text.size() > kMaxPemBytes) not_a_key(file);
    Owned<BIO> bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())));
    if (!bio) not_a_key(file);
    Owned<EVP_PKEY> pkey(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr));
    if (!pkey || EVP_PKEY_base_id(pkey.get()) != EVP_PKEY_ED25519) not_a_key(file);
    PublicKey key{file, std::vector<unsigned char>(32)};
    size_t length = key.raw.size();
    if (EVP_PKEY_get_raw_public_key(pkey.get(), key.raw.data(), &length) != 1 || length != 32)
        not_a_key(file);
    return key;
}

bool ed25519_verify(const PublicKey& key, std::string_view message,
                    const std::vector<unsigned char>& signature) {
    Owned<EVP_PKEY> pkey(
        EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr, key.raw.data(), key.raw.size()));
    Owned<EVP_MD_CTX> context(EVP_MD_CTX_new());
    bool valid = pkey && context &&
                 EVP_DigestVerifyInit(context.get(), nullptr, nullptr, nullptr, pkey.get()) == 1 &&
                 EVP_DigestVerify(context.get(), signature.data(), signature.size(),
                                  reinterpret_cast<const unsigned char*>(message.data()),
                                  message.size()) == 1;
    ERR_clear_error();
    return valid;
}

}  // namespace edgeport
