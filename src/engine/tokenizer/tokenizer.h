// Tokenizer built from GGUF metadata (tokenizer.ggml.*): byte-level BPE (model "gpt2", with the
// pre-tokenizer named by tokenizer.ggml.pre) and SentencePiece-style BPE (model "llama").
// Token for token the same as llama.cpp's llama_tokenize (checked against fixtures made with the
// peer, see bench/tokenizer_fixtures.mjs); decoding returns exact bytes, without llama.cpp's
// clean-up of spaces before punctuation.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace sparkv {

class GgufFile;

class Tokenizer {
  public:
    // Throws Error if the file's tokenizer model or pre-tokenizer is not supported.
    static Tokenizer from_gguf(const GgufFile& file);

    Tokenizer(Tokenizer&&) noexcept;
    Tokenizer& operator=(Tokenizer&&) noexcept;
    ~Tokenizer();

    // add_special: prepend BOS (and append EOS) when the file asks for it
    // (tokenizer.ggml.add_bos_token / add_eos_token, with the model type's defaults).
    // parse_special: recognise control tokens such as "<|im_start|>" written in the text
    // (user-defined tokens are always recognised, as in llama.cpp).
    // Invalid UTF-8 never throws: in byte-level BPE each bad byte reads as U+FFFD (as llama.cpp
    // does); SentencePiece keeps the raw bytes through its <0xXX> fallback.
    std::vector<int32_t> encode(std::string_view text, bool add_special, bool parse_special) const;

    // Concatenated pieces (bytes; a UTF-8 character split over tokens comes out whole); control
    // tokens are rendered only if render_special is set. For SentencePiece the space that encode
    // put before the text is removed from the first piece, so decode(encode(x)) == x.
    // Throws Error for an id outside [0, n_vocab).
    std::string decode(std::span<const int32_t> tokens, bool render_special = false) const;
    // The bytes of one token (possibly an incomplete UTF-8 sequence). Throws Error if out of range.
    std::string token_to_piece(int32_t token, bool render_special = false) const;

    int32_t n_vocab() const;
    int32_t bos() const;  // -1 if none
    int32_t eos() const;  // -1 if none
    // End of generation: EOS, EOT and the chat end-of-turn token (e.g. <|im_end|>, <|eot_id|>).
    bool is_end_of_generation(int32_t token) const;
    const std::string& model_name() const;  // "gpt2" or "llama"
    const std::string& pre_name() const;    // pre-tokenizer ("smollm", "llama-bpe", "qwen2", ...)

    struct Impl;

  private:
    explicit Tokenizer(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

// One chat message for the chat template.
struct ChatMessage {
    std::string role;  // "system", "user" or "assistant"
    std::string content;
};

// Renders messages with the model's chat template (tokenizer.chat_template). SparKV recognises
// the common template families (ChatML, Llama 3, Llama 2 / Zephyr-style) by their markers rather
// than running Jinja; an unrecognised template is an Error naming it. The text has no leading
// BOS: encode it with add_special = true (and parse_special = true for the chat markers).
std::string apply_chat_template(const GgufFile& file, const std::vector<ChatMessage>& messages,
                                bool add_generation_prompt);

}  // namespace sparkv
