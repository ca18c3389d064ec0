// verify: an artifact against its golden sets, with the tolerance verify decides
// (docs/design.md §7).
// Every golden file is read, hashed and its set checked before the model runs.
#include <algorithm>

#include "edgeport/edgeport.hpp"
#include "internal.hpp"

namespace edgeport {
namespace {

struct LoadedSet {
    const GoldenSet* set;
    std::map<std::string, Array> inputs, expected;
    BatchPlan plan;
};

Array to_array(const Tensor& t) {
    TensorInfo info = t.info();
    Array a{info.dtype, info.shape, {}};
    const auto* p = static_cast<const unsigned char*>(t.raw_data());
    a.data.assign(p, p + t.byte_size());
    return a;
}

std::vector<Input> as_inputs(const std::map<std::string, Array>& arrays) {
    std::vector<Input> inputs;
    for (const auto& [name, array] : arrays)
        inputs.push_back({name, array.dtype, array.shape, array.data.data(), array.data.size()});
    return inputs;
}

// The outputs of a golden set: one run, or one per batch joined along axis 0.
std::map<std::string, Array> run_set(Session& session, const LoadedSet& loaded) {
    std::vector<TensorInfo> infos = session.outputs();
    std::map<std::string, Array> got;
    for (size_t run = 0; run < loaded.plan.runs; ++run) {
        std::vector<Tensor> outputs =
            session.run(as_inputs(batch_inputs(loaded.plan, loaded.inputs, run)));
        for (size_t i = 0; i < outputs.size(); ++i) {
            Array out = to_array(outputs[i]);
            if (loaded.plan.runs > 1)  // outputs of several runs are joined along axis 0
                append_batch_output(loaded.plan, infos[i].name, got[infos[i].name], out);
            else
                got[infos[i].name] = std::move(out);
        }
    }
    return got;
}

// A golden set must hold every input of the model and a reference for every output; one that
// lacks an output would otherwise pass without comparing it (same message as Python's verify).
void check_covers(const LoadedSet& loaded, const std::vector<TensorInfo>& infos,
                  const std::map<std::string, Array>& have, const char* kind) {
    std::string missing;
    for (const TensorInfo& info : infos)
        if (have.find(info.name) == have.end())
            missing += (missing.empty() ? "'" : ", '") + info.name + "'";
    if (!missing.empty())
        throw Error(EP_ERR_CORRUPT, "golden set '" + loaded.set->name + "' has no " + kind +
                                        " [" + missing + "]");
}

}  // namespace

size_t Verdict::failed() const {
    return size_t(std::count_if(checks.begin(), checks.end(),
                                [](const SetCheck& c) { return !c.check.failures.empty(); }));
}

Verdict verify_artifact(const Bundle& bundle, const std::string& name,
                        const VerifyOptions& options) {
    const Artifact& artifact = bundle.artifact(name);
    Verdict verdict{name, effective_tolerance(artifact, options.tolerance), {}};
    std::vector<LoadedSet> sets;
    for (const GoldenSet* set : golden_sets_of(bundle.manifest, artifact)) {
        LoadedSet loaded{set, bundle.read_golden(*set, set->inputs),
                         bundle.read_golden(*set, set->outputs), {}};
        loaded.plan = plan_batches(*set, loaded.inputs);
        sets.push_back(std::move(loaded));
    }
    try {
        Options session_options;
        session_options.artifact = name;
        session_options.provider = options.provider;
        session_options.threads = options.threads;
        session_options.allow_fallback = options.allow_fallback;
        session_options.public_key_file = options.public_key_file;
        Session session(bundle.root.string(), session_options);
        for (const LoadedSet& loaded : sets) {
            check_covers(loaded, session.inputs(), loaded.inputs, "input");
            check_covers(loaded, session.outputs(), loaded.expected, "output");
            for (const auto& [output, reference] : loaded.expected)
                if (reference.data.empty())  // zero elements compare equal to anything
                    throw Error(EP_ERR_CORRUPT, "golden set '" + loaded.set->name +
                                                    "': reference output '" + output +
                                                    "' is empty: it checks nothing");
            std::map<std::string, Array> got = run_set(session, loaded);
            for (const auto& [output, reference] : loaded.expected) {
                auto it = got.find(output);
                OutputCheck check;
                if (it == got.end()) {
                    check.output = output;
                    check.failures.push_back("output '" + output + "' is missing from the result");
                } else {
                    check = check_output(output, it->second, reference, verdict.tolerance);
                }
                verdict.checks.push_back({loaded.set->name, std::move(check)});
            }
        }
    } catch (const Exception& e) {  // the session's own failure, with its status
        throw Error(e.status(), e.what());
    }
    return verdict;
}

}  // namespace edgeport
