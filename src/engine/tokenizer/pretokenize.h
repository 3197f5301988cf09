// Pre-tokenizers of byte-level BPE models: split text (as code points) into words before merges.
// Each kind reproduces the regular expressions llama.cpp uses for a tokenizer.ggml.pre name, with
// hand-written matchers over Unicode categories rather than a regex engine.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace sparkv::pretok {

enum class Kind {
    Default,  // no or "default" pre-tokenizer: punctuation runs, GPT-2 words, digits in threes
    Gpt2,     // GPT-2: 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
    Smollm,   // each \p{N} on its own, then GPT-2 (StarCoder family, SmolLM)
    Llama3,   // Llama 3: case-insensitive contractions, \p{N}{1,3}, newline-aware white space
    Qwen2,    // Qwen2: as Llama 3 but one digit per word
};

struct PreTokenizerInfo {
    Kind kind;
    bool ignore_merges;  // a word that is itself a token is taken whole (Llama 3 family)
    bool add_bos;        // llama.cpp's default for tokenizer.ggml.add_bos_token
};

// Looks up a tokenizer.ggml.pre name ("" means default). Throws Error naming an unknown one.
PreTokenizerInfo lookup(std::string_view name);

// Splits code points into words. Reuses its buffers across calls.
class Splitter {
  public:
    explicit Splitter(Kind kind) : kind_(kind) {}
    // `lengths` receives the word lengths, in code points, covering all of `cps` in order.
    void split(std::span<const uint32_t> cps, std::vector<uint32_t>& lengths);

  private:
    Kind kind_;
    std::vector<uint8_t> classes_;
    std::vector<uint32_t> scratch_;
};

}  // namespace sparkv::pretok
