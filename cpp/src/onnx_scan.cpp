// A minimal reader of the protobuf wire format, enough to list an ONNX model's external-data
// locations before ONNX Runtime opens any file they name.
#include "internal.hpp"

namespace edgeport {
namespace {

// Field numbers from onnx.proto3.
enum Kind { kModel, kGraph, kNode, kAttribute, kTensor, kSparseTensor, kFunction, kEntry };

struct Reader {
    const unsigned char* p;
    const unsigned char* end;
    int depth;

    [[noreturn]] static void bad(const std::string& why) {
        throw Error(EP_ERR_CORRUPT, "not a readable ONNX model: " + why);
    }
    uint64_t varint() {
        uint64_t value = 0;
        for (int shift = 0; shift < 64; shift += 7) {
            if (p >= end) bad("truncated varint");
            unsigned char byte = *p++;
            value |= uint64_t(byte & 0x7f) << shift;
            if (!(byte & 0x80)) return value;
        }
        bad("varint longer than 10 bytes");
    }
    void skip(uint32_t wire) {
        switch (wire) {
            case 0: varint(); break;
            case 1: advance(8); break;
            case 5: advance(4); break;
            case 2: advance(varint()); break;
            default: bad("unsupported wire type " + std::to_string(wire));
        }
    }
    void advance(uint64_t n) {
        if (n > uint64_t(end - p)) bad("a field runs past the end of its message");
        p += n;
    }
};

void scan(Reader r, Kind kind, std::vector<std::string>& out);

// Which length-delimited fields hold messages that can (transitively) hold tensors.
bool child(Kind kind, uint64_t field, Kind& next) {
    switch (kind) {
        case kModel:
            if (field == 7) return next = kGraph, true;
            if (field == 25) return next = kFunction, true;
            return false;
        case kGraph:
            if (field == 1) return next = kNode, true;
            if (field == 5) return next = kTensor, true;
            if (field == 15) return next = kSparseTensor, true;
            return false;
        case kNode:
            if (field == 5) return next = kAttribute, true;
            return false;
        case kAttribute:
            if (field == 5 || field == 10) return next = kTensor, true;
            if (field == 6 || field == 11) return next = kGraph, true;
            if (field == 22 || field == 23) return next = kSparseTensor, true;
            return false;
        case kSparseTensor:
            if (field == 1 || field == 2) return next = kTensor, true;
            return false;
        case kFunction:
            if (field == 7) return next = kNode, true;
            return false;
        case kTensor:
            if (field == 13) return next = kEntry, true;
            return false;
        case kEntry:
            return false;
    }
    return false;
}

void scan(Reader r, Kind kind, std::vector<std::string>& out) {
    if (r.depth > 64) Reader::bad("messages nested more than 64 deep");
    std::string key, value;
    while (r.p < r.end) {
        uint64_t tag = r.varint();
        uint64_t field = tag >> 3;
        uint32_t wire = static_cast<uint32_t>(tag & 7);
        if (field == 0) Reader::bad("field number 0");
        Kind next = kEntry;
        if (wire == 2 && ((kind == kEntry && field <= 2) || child(kind, field, next))) {
            uint64_t n = r.varint();
            const unsigned char* start = r.p;
            r.advance(n);
            if (kind == kEntry) {
                std::string text(reinterpret_cast<const char*>(start), n);
                (field == 1 ? key : value) = std::move(text);
            } else {
                scan(Reader{start, start + n, r.depth + 1}, next, out);
            }
        } else {
            r.skip(wire);
        }
    }
    if (kind == kEntry && key == "location") out.push_back(value);
}

}  // namespace

std::vector<std::string> external_data_locations(const unsigned char* bytes, size_t size) {
    std::vector<std::string> out;
    scan(Reader{bytes, bytes + size, 0}, kModel, out);
    return out;
}

}  // namespace edgeport
