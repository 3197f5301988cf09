// The smallest use of the public API: greedy generation from a GGUF model.
//   minimal [MODEL.gguf|known-name] [PROMPT]
// (no model: the reference model, as placed by `sparkv model --fetch`).
#include <sparkv/sparkv.h>

#include <cstdio>
#include <string>

int main(int argc, char** argv) {
    sparkv::GenerationRequest request;
    request.model_path = argc > 1 ? argv[1] : "";
    request.prompt = argc > 2 ? argv[2] : "The capital of France is";
    request.n_predict = 8;
    request.threads = 1;
    try {
        const sparkv::GenerationResult result = sparkv::generate_text(request);
        std::printf("%s%s\n", request.prompt.c_str(), result.text.c_str());
        std::printf("(%zu tokens generated, %lld prompt tokens)\n", result.tokens.size(),
                    static_cast<long long>(result.prompt_tokens));
    } catch (const sparkv::Error& e) {
        std::fprintf(stderr, "minimal: %s\n", e.what());
        return 1;
    }
    return 0;
}
