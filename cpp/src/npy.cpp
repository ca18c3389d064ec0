// .npy reading and writing (NumPy format versions 1.0-3.0; C order; little-endian).
#include <cstring>
#include <fstream>
#include <limits>

#include "internal.hpp"

namespace edgeport {
namespace {

struct DescrEntry {
    const char* descr;
    ep_dtype dtype;
};
constexpr DescrEntry kDescrs[] = {
    {"<f4", EP_DTYPE_FLOAT32}, {"<f8", EP_DTYPE_FLOAT64}, {"<f2", EP_DTYPE_FLOAT16},
    {"|u1", EP_DTYPE_UINT8},   {"|i1", EP_DTYPE_INT8},    {"<u2", EP_DTYPE_UINT16},
    {"<i2", EP_DTYPE_INT16},   {"<i4", EP_DTYPE_INT32},   {"<i8", EP_DTYPE_INT64},
    {"<u4", EP_DTYPE_UINT32},  {"<u8", EP_DTYPE_UINT64},  {"|b1", EP_DTYPE_BOOL},
};

[[noreturn]] void corrupt(const std::string& what, const std::string& why) {
    throw Error(EP_ERR_CORRUPT, what + " is not a valid .npy file: " + why);
}

// The value of 'key' in the header dict, as raw text up to the next top-level comma or brace.
std::string dict_value(const std::string& header, const std::string& key, const std::string& what) {
    for (const char quote : {'\'', '"'}) {
        std::string needle = std::string(1, quote) + key + quote;
        size_t at = header.find(needle);
        if (at == std::string::npos) continue;
        at = header.find(':', at + needle.size());
        if (at == std::string::npos) break;
        ++at;
        while (at < header.size() && header[at] == ' ') ++at;
        int depth = 0;
        size_t end = at;
        for (; end < header.size(); ++end) {
            char c = header[end];
            if (c == '(' || c == '[') ++depth;
            if (c == ')' || c == ']') --depth;
            if (depth < 0 || (depth == 0 && (c == ',' || c == '}'))) break;
        }
        return header.substr(at, end - at);
    }
    corrupt(what, "the header has no '" + key + "'");
}

}  // namespace

size_t Array::elements() const {
    size_t n = 1;
    for (int64_t d : shape) n *= static_cast<size_t>(d);
    return n;
}

std::string npy_descr(ep_dtype dtype) {
    for (const auto& e : kDescrs)
        if (e.dtype == dtype) return e.descr;
    throw Error(EP_ERR_UNSUPPORTED,
                std::string("dtype ") + ep_dtype_name(dtype) + " cannot be stored in .npy here");
}

Array parse_npy(const unsigned char* bytes, size_t size, const std::string& what) {
    static const unsigned char kMagic[] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
    if (size < 10 || std::memcmp(bytes, kMagic, sizeof(kMagic)) != 0)
        corrupt(what, "it does not start with the .npy magic bytes");
    unsigned major = bytes[6];
    size_t header_len = 0, offset = 0;
    if (major == 1) {
        header_len = size_t(bytes[8]) | (size_t(bytes[9]) << 8);
        offset = 10;
    } else if (major == 2 || major == 3) {
        if (size < 12) corrupt(what, "truncated header");
        header_len = size_t(bytes[8]) | (size_t(bytes[9]) << 8) | (size_t(bytes[10]) << 16) |
                     (size_t(bytes[11]) << 24);
        offset = 12;
    } else {
        corrupt(what, "unknown format version " + std::to_string(major));
    }
    if (header_len > size - offset) corrupt(what, "the header runs past the end of the file");
    std::string header(reinterpret_cast<const char*>(bytes + offset), header_len);
    offset += header_len;

    std::string descr = dict_value(header, "descr", what);
    if (descr.size() < 2 || (descr.front() != '\'' && descr.front() != '"'))
        corrupt(what, "descr is not a string");
    descr = descr.substr(1, descr.find(descr.front(), 1) - 1);
    if (descr.size() == 3 && descr[0] == '=') descr[0] = '<';
    if (descr == "<u1" || descr == "<i1" || descr == "<b1") descr[0] = '|';
    Array array;
    for (const auto& e : kDescrs)
        if (descr == e.descr) array.dtype = e.dtype;
    if (array.dtype == EP_DTYPE_UNDEFINED)
        corrupt(what, "dtype '" + descr + "' is not supported (little-endian numbers and bool only)");

    std::string fortran = dict_value(header, "fortran_order", what);
    if (fortran.rfind("False", 0) != 0) corrupt(what, "Fortran-order arrays are not supported");

    std::string shape = dict_value(header, "shape", what);
    if (shape.empty() || shape.front() != '(') corrupt(what, "shape is not a tuple");
    size_t elements = 1;
    const size_t max = std::numeric_limits<size_t>::max();
    for (size_t i = 1; i < shape.size() && shape[i] != ')';) {
        if (shape[i] == ' ' || shape[i] == ',') {
            ++i;
            continue;
        }
        if (shape[i] < '0' || shape[i] > '9') corrupt(what, "shape has a non-numeric entry");
        uint64_t dim = 0;
        while (i < shape.size() && shape[i] >= '0' && shape[i] <= '9') {
            if (dim > (uint64_t(1) << 40)) corrupt(what, "a dimension is absurdly large");
            dim = dim * 10 + uint64_t(shape[i] - '0');
            ++i;
        }
        if (dim != 0 && elements > max / dim) corrupt(what, "the shape overflows");
        elements *= dim;
        array.shape.push_back(static_cast<int64_t>(dim));
    }
    size_t item = ep_dtype_size(array.dtype);
    if (elements > max / item) corrupt(what, "the shape overflows");
    size_t need = elements * item;
    if (size - offset != need)
        corrupt(what, "the header promises " + std::to_string(need) + " bytes of data, the file has " +
                          std::to_string(size - offset));
    array.data.assign(bytes + offset, bytes + size);
    return array;
}

Array read_npy(const fs::path& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error(EP_ERR_NOT_FOUND, "cannot read '" + path.string() + "': no such file");
    std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(in)),
                                     std::istreambuf_iterator<char>());
    return parse_npy(bytes.data(), bytes.size(), "'" + path.string() + "'");
}

void write_npy(const fs::path& path, const Array& array) {
    std::string header = "{'descr': '" + npy_descr(array.dtype) + "', 'fortran_order': False, 'shape': (";
    for (size_t i = 0; i < array.shape.size(); ++i) {
        header += std::to_string(array.shape[i]);
        if (array.shape.size() == 1 || i + 1 < array.shape.size()) header += ",";
        if (i + 1 < array.shape.size()) header += " ";
    }
    header += "), }";
    size_t total = 10 + header.size() + 1;
    header.append((64 - total % 64) % 64, ' ');
    header += '\n';
    std::ofstream out(path, std::ios::binary);
    if (!out) throw Error(EP_ERR_NOT_FOUND, "cannot write '" + path.string() + "'");
    const unsigned char prefix[] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0,
                                    static_cast<unsigned char>(header.size() & 0xff),
                                    static_cast<unsigned char>(header.size() >> 8)};
    out.write(reinterpret_cast<const char*>(prefix), sizeof(prefix));
    out.write(header.data(), static_cast<std::streamsize>(header.size()));
    out.write(reinterpret_cast<const char*>(array.data.data()),
              static_cast<std::streamsize>(array.data.size()));
    if (!out) throw Error(EP_ERR_RUNTIME, "writing '" + path.string() + "' failed");
}

}  // namespace edgeport
