// libFuzzer target for the readers that take untrusted bytes: the first byte picks the .npy
// parser, the manifest parser or the ONNX external-data scan. Errors must be edgeport::Error;
// anything else (a crash, a sanitizer report, another exception) is a finding.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "internal.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    if (size < 1) return 0;
    const unsigned char* body = data + 1;
    size_t n = size - 1;
    try {
        switch (data[0] % 3) {
            case 0: edgeport::parse_npy(body, n, "fuzz"); break;
            case 1: edgeport::parse_manifest(std::string_view(reinterpret_cast<const char*>(body), n)); break;
            case 2: edgeport::external_data_locations(body, n); break;
        }
    } catch (const edgeport::Error&) {
    }
    return 0;
}
