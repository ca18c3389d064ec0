// Golden sets as verify uses them: which sets an artifact is checked on, and how a set is cut
// into runs (batches along axis 0) and its outputs put back together. Every check here happens
// before an array is sliced or concatenated.
#include <algorithm>

#include "internal.hpp"

namespace edgeport {
namespace {

std::string shape_text(const Array& a) {
    std::string s = std::string(ep_dtype_name(a.dtype)) + "[";
    for (size_t i = 0; i < a.shape.size(); ++i) s += (i ? ", " : "") + std::to_string(a.shape[i]);
    return s + "]";
}

// Bytes of one sample (one index along axis 0) of an array of rank >= 1, after checking that
// the data holds exactly shape[0] of them.
size_t sample_bytes(const Array& a, const std::string& what) {
    size_t bytes = ep_dtype_size(a.dtype);
    bool fits = bytes != 0 && a.shape[0] >= 0;
    for (size_t d = 1; fits && d < a.shape.size(); ++d) {
        fits = a.shape[d] >= 0 && (a.shape[d] == 0 || bytes <= SIZE_MAX / size_t(a.shape[d]));
        if (fits) bytes *= size_t(a.shape[d]);
    }
    size_t samples = size_t(a.shape[0]);
    if (!fits || (bytes != 0 && samples > SIZE_MAX / bytes) || samples * bytes != a.data.size())
        throw Error(EP_ERR_CORRUPT, what + " is " + shape_text(a) + " but holds " +
                                        std::to_string(a.data.size()) + " bytes");
    return bytes;
}

}  // namespace

std::vector<const GoldenSet*> golden_sets_of(const Manifest& manifest, const Artifact& artifact) {
    std::vector<const GoldenSet*> sets;
    if (!artifact.golden_sets) {
        for (const GoldenSet& set : manifest.golden_sets) sets.push_back(&set);
    } else {
        for (const std::string& name : *artifact.golden_sets) {
            auto it = std::find_if(manifest.golden_sets.begin(), manifest.golden_sets.end(),
                                   [&](const GoldenSet& set) { return set.name == name; });
            if (it == manifest.golden_sets.end())
                throw Error(EP_ERR_PARITY, "artifact '" + artifact.name + "' names golden set '" +
                                               name + "', which the manifest does not have");
            sets.push_back(&*it);
        }
    }
    if (sets.empty())
        throw Error(EP_ERR_PARITY, "artifact '" + artifact.name +
                                       "' is checked on no golden set: verify cannot vouch for it");
    return sets;
}

BatchPlan plan_batches(const GoldenSet& set, const std::map<std::string, Array>& inputs) {
    BatchPlan plan;
    plan.set = set.name;
    if (!set.batch || inputs.empty()) return plan;  // one run with the whole set
    plan.batched = true;
    plan.step = *set.batch;
    if (plan.step < 1)
        throw Error(EP_ERR_CORRUPT, "golden set '" + set.name + "' has batch " +
                                        std::to_string(plan.step) + " (at least 1 expected)");
    for (const auto& [name, array] : inputs)
        if (array.shape.empty())
            throw Error(EP_ERR_CORRUPT, "golden set '" + set.name + "' is run in batches of " +
                                            std::to_string(plan.step) + ", but input '" + name +
                                            "' is 0-d");
    const int64_t samples = inputs.begin()->second.shape[0];
    bool agree = true;
    std::string counts;  // every input, in name order
    for (const auto& [name, array] : inputs) {
        agree = agree && array.shape[0] == samples;
        counts += (counts.empty() ? "" : ", ") + name + " has " + std::to_string(array.shape[0]);
    }
    if (!agree)
        throw Error(EP_ERR_CORRUPT, "golden set '" + set.name +
                                        "': inputs disagree on the number of samples (" + counts + ")");
    for (const auto& [name, array] : inputs)
        sample_bytes(array, "golden set '" + set.name + "': input '" + name + "'");
    plan.samples = samples;
    plan.runs = std::max<size_t>(
        1, size_t(plan.samples / plan.step + (plan.samples % plan.step != 0 ? 1 : 0)));
    return plan;
}

std::map<std::string, Array> batch_inputs(const BatchPlan& plan,
                                          const std::map<std::string, Array>& inputs, size_t index) {
    if (index >= plan.runs)
        throw Error(EP_ERR_INTERNAL, "run " + std::to_string(index) + " of a golden set with " +
                                         std::to_string(plan.runs) + " runs");
    if (!plan.batched) return inputs;
    const int64_t start = std::min<int64_t>(plan.samples, int64_t(index) * plan.step);
    const int64_t count = std::min(plan.step, plan.samples - start);
    std::map<std::string, Array> chunk;
    for (const auto& [name, array] : inputs) {
        if (array.shape.empty() || array.shape[0] != plan.samples)
            throw Error(EP_ERR_INTERNAL, "input '" + name + "' is not the one the plan was made for");
        size_t row = sample_bytes(array, "golden set '" + plan.set + "': input '" + name + "'");
        Array part{array.dtype, array.shape, {}};
        part.shape[0] = count;
        auto begin = array.data.begin() + std::ptrdiff_t(size_t(start) * row);
        part.data.assign(begin, begin + std::ptrdiff_t(size_t(count) * row));
        chunk.emplace(name, std::move(part));
    }
    return chunk;
}

void append_batch_output(const BatchPlan& plan, const std::string& output, Array& into,
                         const Array& more) {
    if (more.shape.empty())
        throw Error(EP_ERR_CORRUPT, "golden set '" + plan.set + "' is run in batches, but output '" +
                                        output + "' is 0-d");
    sample_bytes(more, "output '" + output + "'");
    if (into.shape.empty()) {
        into = more;
        return;
    }
    if (more.dtype != into.dtype ||
        !std::equal(more.shape.begin() + 1, more.shape.end(), into.shape.begin() + 1,
                    into.shape.end()))
        throw Error(EP_ERR_CORRUPT, "golden set '" + plan.set + "': output '" + output + "' is " +
                                        shape_text(into) + " after the first runs but " +
                                        shape_text(more) + " in the next: the batches cannot be "
                                        "joined");
    into.shape[0] += more.shape[0];
    into.data.insert(into.data.end(), more.data.begin(), more.data.end());
}

std::map<std::string, Array> default_inputs(const Bundle& bundle, const Artifact& artifact) {
    std::vector<const GoldenSet*> sets;
    try {
        sets = golden_sets_of(bundle.manifest, artifact);
    } catch (const Error& e) {
        if (e.status() != EP_ERR_PARITY) throw;
        throw Error(EP_ERR_NOT_FOUND, "the bundle has no golden inputs for '" + artifact.name +
                                          "' (" + e.what() + "): give the inputs as .npy files");
    }
    const GoldenSet& set = *sets.front();
    std::map<std::string, Array> inputs = bundle.read_golden(set, set.inputs);
    return batch_inputs(plan_batches(set, inputs), inputs, 0);
}

}  // namespace edgeport
