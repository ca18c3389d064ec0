// Open a bundle, feed zeros of the right shape (symbolic dims = 1), print the first outputs.
//   embed BUNDLE_DIR
#include <cstdio>
#include <vector>

#include <edgeport/edgeport.hpp>

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: embed BUNDLE_DIR\n");
        return 2;
    }
    try {
        edgeport::Session session(argv[1]);
        std::vector<std::vector<float>> buffers;
        std::vector<edgeport::Input> inputs;
        for (const auto& info : session.inputs()) {
            std::vector<int64_t> shape = info.shape;
            size_t n = 1;
            for (auto& d : shape) n *= static_cast<size_t>(d = d < 0 ? 1 : d);
            buffers.emplace_back(n, 0.0f);
            inputs.push_back(edgeport::Input::of(info.name, buffers.back(), shape));
        }
        auto outputs = session.run(inputs);
        const float* y = outputs[0].data<float>();
        std::printf("%s on %s: %s[0..2] = %g %g %g\n", session.artifact().c_str(),
                    session.provider().c_str(), session.outputs()[0].name.c_str(), y[0], y[1], y[2]);
        return 0;
    } catch (const edgeport::Exception& e) {
        std::fprintf(stderr, "error: %s [%s]\n", e.what(), ep_status_name(e.status()));
        return 1;
    }
}
