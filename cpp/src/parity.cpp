// Parity checks, defined as in the Python side (edgeport.parity).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <sstream>

#include "internal.hpp"

namespace edgeport {
namespace {

template <typename T>
void widen(const Array& a, std::vector<double>& out) {
    const size_t n = a.elements();
    out.resize(n);
    for (size_t i = 0; i < n; ++i) {
        T value;
        std::memcpy(&value, a.data.data() + i * sizeof(T), sizeof(T));
        out[i] = static_cast<double>(value);
    }
}

double half_to_double(uint16_t h) {
    int sign = (h >> 15) ? -1 : 1, exponent = (h >> 10) & 0x1f, mantissa = h & 0x3ff;
    if (exponent == 0) return sign * std::ldexp(mantissa, -24);
    if (exponent == 31) return mantissa ? NAN : sign * INFINITY;
    return sign * std::ldexp(mantissa + 1024, exponent - 25);
}

std::string shape_text(const Array& a) {
    std::string s = std::string(ep_dtype_name(a.dtype)) + "[";
    for (size_t i = 0; i < a.shape.size(); ++i) s += (i ? ", " : "") + std::to_string(a.shape[i]);
    return s + "]";
}

std::string fmt(double value, int precision = 5) {
    std::ostringstream out;
    out.precision(precision);
    out << value;
    return out.str();
}

}  // namespace

std::vector<double> as_doubles(const Array& a) {
    std::vector<double> out;
    size_t item = ep_dtype_size(a.dtype);
    if (item != 0 && a.data.size() / item < a.elements())
        throw Error(EP_ERR_INTERNAL, "an array of shape " + shape_text(a) + " holds only " +
                                         std::to_string(a.data.size()) + " bytes");
    switch (a.dtype) {
        case EP_DTYPE_FLOAT32: widen<float>(a, out); break;
        case EP_DTYPE_FLOAT64: widen<double>(a, out); break;
        case EP_DTYPE_INT64: widen<int64_t>(a, out); break;
        case EP_DTYPE_INT32: widen<int32_t>(a, out); break;
        case EP_DTYPE_INT16: widen<int16_t>(a, out); break;
        case EP_DTYPE_INT8: widen<int8_t>(a, out); break;
        case EP_DTYPE_UINT8:
        case EP_DTYPE_BOOL: widen<uint8_t>(a, out); break;
        case EP_DTYPE_UINT16: widen<uint16_t>(a, out); break;
        case EP_DTYPE_UINT32: widen<uint32_t>(a, out); break;
        case EP_DTYPE_UINT64: widen<uint64_t>(a, out); break;
        case EP_DTYPE_FLOAT16: {
            std::vector<double> bits;
            widen<uint16_t>(a, bits);
            out.resize(bits.size());
            for (size_t i = 0; i < bits.size(); ++i)
                out[i] = half_to_double(static_cast<uint16_t>(bits[i]));
            break;
        }
        default:
            throw Error(EP_ERR_UNSUPPORTED, std::string("cannot compare dtype ") + ep_dtype_name(a.dtype));
    }
    return out;
}

OutputCheck check_output(const std::string& name, const Array& got, const Array& reference,
                         const Tolerance& tolerance) {
    OutputCheck check;
    check.output = name;
    if (got.dtype != reference.dtype || got.shape != reference.shape) {
        check.failures.push_back("output '" + name + "': got " + shape_text(got) +
                                 ", reference is " + shape_text(reference));
        return check;
    }
    std::vector<double> a = as_doubles(got), r = as_doubles(reference);
    const double atol = tolerance.atol.value_or(0.0);
    double dot = 0, na = 0, nr = 0;
    size_t out_of_tolerance = 0, worst = 0;
    double worst_excess = -INFINITY;
    for (size_t i = 0; i < a.size(); ++i) {
        double diff = std::fabs(a[i] - r[i]);
        if (!(diff <= check.max_abs_err)) check.max_abs_err = diff;  // NaN propagates
        dot += a[i] * r[i];
        na += a[i] * a[i];
        nr += r[i] * r[i];
        if (tolerance.rtol) {
            double excess = diff - (atol + *tolerance.rtol * std::fabs(r[i]));
            if (!(excess <= 0)) ++out_of_tolerance;
            if (!(excess <= worst_excess)) worst_excess = excess, worst = i;
        }
    }
    na = std::sqrt(na);
    nr = std::sqrt(nr);
    check.cosine = (na < 1e-12 && nr < 1e-12) ? 1.0 : dot / std::max(na * nr, 1e-12);
    if (got.shape.size() == 2 && got.shape[1] >= 2 && got.shape[0] >= 1) {
        size_t rows = static_cast<size_t>(got.shape[0]), cols = static_cast<size_t>(got.shape[1]);
        size_t agree = 0;
        for (size_t row = 0; row < rows; ++row) {
            auto ra = a.begin() + long(row * cols), rr = r.begin() + long(row * cols);
            agree += std::max_element(ra, ra + long(cols)) - ra == std::max_element(rr, rr + long(cols)) - rr;
        }
        check.top1 = double(agree) / double(rows);
    }
    if (tolerance.rtol && out_of_tolerance > 0)
        check.failures.push_back(
            "output '" + name + "': max_abs_err " + fmt(check.max_abs_err, 3) +
            " exceeds tolerance atol " + fmt(atol) + " + rtol " + fmt(*tolerance.rtol) +
            "·|ref| (worst at flat index " + std::to_string(worst) + ": got " + fmt(a[worst], 6) +
            ", reference " + fmt(r[worst], 6) + "; " + std::to_string(out_of_tolerance) + " of " +
            std::to_string(a.size()) + " elements out of tolerance)");
    if (tolerance.min_cosine && !(check.cosine >= *tolerance.min_cosine))
        check.failures.push_back("output '" + name + "': cosine " + fmt(check.cosine) +
                                 " is below tolerance " + fmt(*tolerance.min_cosine));
    if (tolerance.min_top1 && check.top1 && !(*check.top1 >= *tolerance.min_top1))
        check.failures.push_back("output '" + name + "': top1_agreement " + fmt(*check.top1, 3) +
                                 " is below tolerance " + fmt(*tolerance.min_top1));
    return check;
}

Tolerance profile_tolerance(const std::string& precision) {
    if (precision == "fp32") return {1e-3, 1e-5, std::nullopt, std::nullopt};
    if (precision == "int8") return {std::nullopt, std::nullopt, 0.99, 0.95};
    throw Error(EP_ERR_CORRUPT, "precision '" + precision +
                                    "' has no tolerance profile (expected 'fp32' or 'int8')");
}

namespace {

// The stricter of two criteria, or the one that is set.
template <typename Pick>
std::optional<double> tighter(std::optional<double> a, std::optional<double> b, Pick pick) {
    if (a && b) return pick(*a, *b);
    return a ? a : b;
}

}  // namespace

Tolerance effective_tolerance(const Artifact& artifact, const ToleranceOverride& given) {
    const Tolerance profile = profile_tolerance(artifact.precision);
    const Tolerance& recorded = artifact.tolerance;
    auto smaller = [](double a, double b) { return std::min(a, b); };
    auto larger = [](double a, double b) { return std::max(a, b); };
    Tolerance t;
    t.rtol = given.rtol ? given.rtol : tighter(profile.rtol, recorded.rtol, smaller);
    t.atol = given.atol ? given.atol : tighter(profile.atol, recorded.atol, smaller);
    t.min_cosine = given.min_cosine ? given.min_cosine
                                    : tighter(profile.min_cosine, recorded.min_cosine, larger);
    t.min_top1 = given.min_top1 ? given.min_top1
                                : tighter(profile.min_top1, recorded.min_top1, larger);
    return t;
}

}  // namespace edgeport
