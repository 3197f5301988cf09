// Measures what each codec level costs and what it does to the model's answers, on a real model
// and a real text: size, single-thread encode/decode speed, and fidelity against the exact fp16 KV
// of a local prefill (next-token KL divergence and perplexity on the text's real continuation,
// greedy agreement of generated tokens after a question).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "codec/profile.h"
#include "engine/engine.h"
#include "engine/model.h"

namespace sparkv {

struct CodecEvalOptions {
    int64_t context_tokens = 4096;      // the ingested part of the text
    int64_t continuation_tokens = 256;  // the text's real next tokens, scored for perplexity and KL
    int32_t chunk_tokens = 1024;
    int greedy_tokens = 32;
    std::string question = "What are the main points the author makes above?";
    std::vector<std::string> levels = {"fp16", "int8", "q6h", "q5h", "q4h", "q3h"};
    int threads = 0;  // for the model; codec timings always run on one thread
    int timing_repeats = 3;
    // The model's codec profile, needed by the calibrated levels (c4..c8); its fingerprint must
    // be the evaluated model's.
    std::optional<codec::CodecProfile> profile;
    // Sparse prefill rows: for each tau, the context's KV computed with block-sparse attention
    // (this block size and similarity threshold), scored like a level against the exact (dense)
    // KV. The continuation and the question always run dense.
    std::vector<float> sparse_taus;
    SparseAttentionOptions sparse;
    std::function<void(const std::string& stage)> on_stage;
};

struct LevelEval {
    std::string name;
    bool lossless = false;
    uint64_t bytes = 0;
    double bytes_per_token = 0;
    double ratio_vs_fp16 = 0;       // raw fp16 bytes / encoded bytes
    double encode_mb_s = 0;         // MB of fp16 input per second, 1 thread
    double decode_mb_s = 0;         // MB of encoded input per second, 1 thread
    double decode_output_mb_s = 0;  // MB of fp16 output per second, 1 thread
    double kl_mean = 0;             // mean KL(exact || level) over the continuation positions
    double kl_max = 0;
    double ppl = 0;
    double ppl_change_rel = 0;   // ppl / ppl(exact) - 1
    double greedy_agree_32 = 0;  // common prefix of the greedy answers / greedy_tokens
    double top1_agree = 0;       // continuation positions whose argmax matches the exact KV's
};

struct SparseEval {
    SparseAttentionOptions options;
    double density = 1;          // active / causal blocks over the context prefill
    double prefill_seconds = 0;  // context prefill with these settings
    LevelEval fidelity;          // against the exact (dense) KV
};

struct CodecEvalResult {
    int64_t context_tokens = 0;
    int64_t continuation_tokens = 0;
    double exact_ppl = 0;
    std::vector<int32_t> exact_greedy;
    std::vector<LevelEval> levels;
    double exact_prefill_seconds = 0;  // the dense context prefill
    std::vector<SparseEval> sparse;    // one per CodecEvalOptions::sparse_taus
    // The engine's own sensitivity: the exact KV with its last bit flipped everywhere (a 1-ulp
    // change no codec can avoid). Quantised weights and activations turn such tiny changes into
    // rounding flips, so on a Q4/Q8 model this floor is far above what the change itself costs.
    LevelEval noise_floor;
};

CodecEvalResult evaluate_codec(const Model& model, const std::vector<int32_t>& text_tokens,
                               const CodecEvalOptions& options);

}  // namespace sparkv
