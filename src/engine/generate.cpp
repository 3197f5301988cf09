#include "engine/generate.h"

#include <algorithm>

#include "common/error.h"
#include "common/timer.h"

namespace sparkv {

GenerateResult generate(Engine& engine, std::span<const int32_t> prompt,
                        const GenerateOptions& options) {
    if (prompt.empty()) fail("generate: the prompt has no tokens");
    const int64_t n_prompt = static_cast<int64_t>(prompt.size());
    if (n_prompt + options.n_predict > engine.cache().capacity())
        fail("generate: {} prompt tokens + {} new tokens exceed the context of {} positions",
             n_prompt, options.n_predict, engine.cache().capacity());
    engine.cache().clear();
    const double t0 = now_seconds();
    std::vector<float> logits;
    const int64_t step = std::max<int64_t>(1, options.prefill_chunk);
    for (int64_t pos = 0; pos < n_prompt; pos += step) {
        const int64_t n = std::min(step, n_prompt - pos);
        logits =
            engine.prefill(prompt.subspan(static_cast<size_t>(pos), static_cast<size_t>(n)), pos);
    }
    const double prefill_seconds = now_seconds() - t0;
    GenerateResult result = generate_from(engine, std::move(logits), n_prompt, options);
    result.prefill_seconds = prefill_seconds;
    result.prompt_tokens = n_prompt;
    return result;
}

GenerateResult generate_from(Engine& engine, std::vector<float> logits, int64_t next_pos,
                             const GenerateOptions& options) {
    GenerateResult result;
    result.first_logits = logits;
    Sampler sampler(options.sampling);
    const Tokenizer& tok = engine.model().tokenizer();
    const double t0 = now_seconds();
    for (int i = 0; i < options.n_predict; ++i) {
        const int32_t token = sampler.sample(logits);
        result.tokens.push_back(token);
        if (options.on_token) options.on_token(token);
        if (options.stop_at_end_of_generation && tok.is_end_of_generation(token)) break;
        if (i + 1 == options.n_predict) break;  // the last token needs no forward pass
        if (next_pos >= engine.cache().capacity()) fail("generate: the context is full");
        const int32_t one[1] = {token};
        logits = engine.prefill(one, next_pos);
        ++next_pos;
        ++result.decode_steps;
    }
    result.decode_seconds = now_seconds() - t0;
    return result;
}

}  // namespace sparkv
