#include "testkit/random_model.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <vector>

#include "common/error.h"
#include "engine/gguf_writer.h"
#include "engine/kernels/kernels.h"

namespace sparkv {

namespace {

// GPT-2's reversible byte -> printable code point map.
std::vector<std::string> byte_tokens() {
    std::vector<int> printable;
    for (int b = '!'; b <= '~'; ++b) printable.push_back(b);
    for (int b = 0xA1; b <= 0xAC; ++b) printable.push_back(b);
    for (int b = 0xAE; b <= 0xFF; ++b) printable.push_back(b);
    std::vector<std::string> out(256);
    int extra = 0;
    for (int b = 0; b < 256; ++b) {
        const bool direct = std::find(printable.begin(), printable.end(), b) != printable.end();
        const int cp = direct ? b : 256 + extra++;
        std::string utf8;
        if (cp < 0x80) {
            utf8 += static_cast<char>(cp);
        } else {
            utf8 += static_cast<char>(0xC0 | (cp >> 6));
            utf8 += static_cast<char>(0x80 | (cp & 0x3F));
        }
        out[static_cast<size_t>(b)] = utf8;
    }
    return out;
}

struct Vocab {
    std::vector<std::string> tokens;
    std::vector<int32_t> types;
    std::vector<std::string> merges;
};

Vocab make_vocab() {
    Vocab v;
    v.tokens = byte_tokens();
    v.types.assign(v.tokens.size(), 1);  // normal
    // Merge frequent English letters pairwise, then a space-prefixed variant ("Ġ" is byte ' ').
    const std::string letters = "etaoinshrdlucmfw";
    const std::string space = v.tokens[static_cast<size_t>(' ')];
    for (char a : letters) {
        for (char b : letters) {
            const std::string left(1, a), right(1, b);
            v.merges.push_back(left + " " + right);
            v.tokens.push_back(left + right);
            v.types.push_back(1);
        }
    }
    for (char a : letters) {
        v.merges.push_back(space + " " + std::string(1, a));
        v.tokens.push_back(space + std::string(1, a));
        v.types.push_back(1);
    }
    v.tokens.push_back("<|endoftext|>");
    v.types.push_back(3);  // control
    return v;
}

// Deterministic on every platform (std::normal_distribution is implementation-defined), so a
// model rebuilt from the same spec is byte-identical and stored peer outputs stay valid.
class WeightFactory {
  public:
    explicit WeightFactory(uint64_t seed) : state_(seed) {}

    std::vector<float> gaussian(size_t n, float stddev, float mean = 0.0f) {
        std::vector<float> out(n);
        for (size_t i = 0; i < n; i += 2) {
            // Box-Muller on two uniforms in (0, 1].
            const double u1 = (static_cast<double>(next() >> 11) + 1.0) * 0x1.0p-53;
            const double u2 = static_cast<double>(next() >> 11) * 0x1.0p-53;
            const double r = std::sqrt(-2.0 * std::log(u1));
            out[i] = mean + stddev * static_cast<float>(r * std::cos(2.0 * M_PI * u2));
            if (i + 1 < n)
                out[i + 1] = mean + stddev * static_cast<float>(r * std::sin(2.0 * M_PI * u2));
        }
        return out;
    }

    static std::vector<uint8_t> encode(GgmlType type, const std::vector<float>& values,
                                       int64_t cols) {
        const int64_t rows = static_cast<int64_t>(values.size()) / cols;
        const size_t row_bytes = ggml_row_bytes(type, cols);
        std::vector<uint8_t> out(static_cast<size_t>(rows) * row_bytes);
        for (int64_t r = 0; r < rows; ++r)
            kernels::quantize_row(type, values.data() + r * cols, out.data() + r * row_bytes, cols);
        return out;
    }

  private:
    uint64_t next() {  // splitmix64
        uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    }
    uint64_t state_;
};

}  // namespace

GgmlType random_model_tensor_type(const RandomModelSpec& s, const std::string& tensor,
                                  int64_t cols) {
    if (s.mix.empty()) return s.weight_type;
    if (s.mix != "q4_k_m") fail("random model: unknown type mix '{}' (known: q4_k_m)", s.mix);
    const auto fits = [&](GgmlType want, GgmlType fallback) {
        return cols % ggml_traits(want).block_elements == 0 ? want : fallback;
    };
    if (tensor == "output.weight") return fits(GgmlType::Q6_K, GgmlType::Q8_0);
    const bool alternating = tensor.find("attn_v.") != std::string::npos ||
                             tensor.find("ffn_down.") != std::string::npos;
    if (alternating) {
        const int layer = std::stoi(tensor.substr(4));  // "blk.N."
        return layer % 2 == 0 ? fits(GgmlType::Q6_K, GgmlType::Q8_0)
                              : fits(GgmlType::Q4_K, GgmlType::Q5_0);
    }
    return fits(GgmlType::Q4_K, GgmlType::Q5_0);
}

void write_random_model(const RandomModelSpec& s, const std::string& path) {
    if (s.arch != "llama" && s.arch != "qwen2" && s.arch != "qwen3")
        fail("random model: unsupported architecture '{}'", s.arch);
    const Vocab vocab = make_vocab();
    const int n_vocab = static_cast<int>(vocab.tokens.size());
    const int q_dim = s.n_head * s.head_dim;
    const int kv_dim = s.n_kv_head * s.head_dim;

    GgufWriter w;
    const std::string a = s.arch + ".";
    w.set_string("general.architecture", s.arch);
    w.set_string("general.name", "sparkv-random-" + s.arch);
    w.set_u32(a + "block_count", static_cast<uint32_t>(s.n_layer));
    w.set_u32(a + "context_length", static_cast<uint32_t>(s.n_ctx));
    w.set_u32(a + "embedding_length", static_cast<uint32_t>(s.n_embd));
    w.set_u32(a + "feed_forward_length", static_cast<uint32_t>(s.n_ff));
    w.set_u32(a + "attention.head_count", static_cast<uint32_t>(s.n_head));
    w.set_u32(a + "attention.head_count_kv", static_cast<uint32_t>(s.n_kv_head));
    w.set_u32(a + "attention.key_length", static_cast<uint32_t>(s.head_dim));
    w.set_u32(a + "attention.value_length", static_cast<uint32_t>(s.head_dim));
    w.set_u32(a + "rope.dimension_count", static_cast<uint32_t>(s.head_dim));
    w.set_f32(a + "rope.freq_base", s.rope_base);
    w.set_f32(a + "attention.layer_norm_rms_epsilon", 1e-5f);
    w.set_u32(a + "vocab_size", static_cast<uint32_t>(n_vocab));
    w.set_string("tokenizer.ggml.model", "gpt2");
    w.set_string("tokenizer.ggml.pre", "gpt-2");
    w.set_string_array("tokenizer.ggml.tokens", vocab.tokens);
    w.set_i32_array("tokenizer.ggml.token_type", vocab.types);
    w.set_string_array("tokenizer.ggml.merges", vocab.merges);
    w.set_u32("tokenizer.ggml.bos_token_id", static_cast<uint32_t>(n_vocab - 1));
    w.set_u32("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(n_vocab - 1));
    w.set_bool("tokenizer.ggml.add_bos_token", false);

    WeightFactory f(s.seed);
    auto matrix = [&](const std::string& name, GgmlType type, int cols, int rows, float stddev) {
        if (name != "token_embd.weight") type = random_model_tensor_type(s, name, cols);
        const auto values = f.gaussian(static_cast<size_t>(cols) * rows, stddev);
        w.add_tensor(name, type, {cols, rows}, WeightFactory::encode(type, values, cols));
    };
    auto vec = [&](const std::string& name, int n, float stddev, float mean) {
        w.add_tensor(name, GgmlType::F32, {n},
                     WeightFactory::encode(GgmlType::F32,
                                           f.gaussian(static_cast<size_t>(n), stddev, mean), n));
    };

    matrix("token_embd.weight", s.embedding_type, s.n_embd, n_vocab, 1.0f);
    vec("output_norm.weight", s.n_embd, 0.1f, 1.0f);
    if (!s.tied_output)
        matrix("output.weight", s.weight_type, s.n_embd, n_vocab,
               s.output_scale / std::sqrt(static_cast<float>(s.n_embd)));
    for (int l = 0; l < s.n_layer; ++l) {
        const std::string p = "blk." + std::to_string(l) + ".";
        const float in_std = 1.0f / std::sqrt(static_cast<float>(s.n_embd));
        vec(p + "attn_norm.weight", s.n_embd, 0.1f, 1.0f);
        matrix(p + "attn_q.weight", s.weight_type, s.n_embd, q_dim, in_std);
        matrix(p + "attn_k.weight", s.weight_type, s.n_embd, kv_dim, in_std);
        matrix(p + "attn_v.weight", s.weight_type, s.n_embd, kv_dim, in_std);
        matrix(p + "attn_output.weight", s.weight_type, q_dim, s.n_embd,
               1.0f / std::sqrt(static_cast<float>(q_dim)));
        if (s.arch == "qwen2") {
            vec(p + "attn_q.bias", q_dim, 0.1f, 0.0f);
            vec(p + "attn_k.bias", kv_dim, 0.1f, 0.0f);
            vec(p + "attn_v.bias", kv_dim, 0.1f, 0.0f);
        }
        if (s.arch == "qwen3") {
            vec(p + "attn_q_norm.weight", s.head_dim, 0.1f, 1.0f);
            vec(p + "attn_k_norm.weight", s.head_dim, 0.1f, 1.0f);
        }
        vec(p + "ffn_norm.weight", s.n_embd, 0.1f, 1.0f);
        matrix(p + "ffn_gate.weight", s.weight_type, s.n_embd, s.n_ff, in_std);
        matrix(p + "ffn_up.weight", s.weight_type, s.n_embd, s.n_ff, in_std);
        matrix(p + "ffn_down.weight", s.weight_type, s.n_ff, s.n_embd,
               1.0f / std::sqrt(static_cast<float>(s.n_ff)));
    }
    w.write(path);
}

}  // namespace sparkv
