// Chat templates by family. Like llama.cpp's llm_chat_apply_template, SparKV recognises the common
// Jinja templates by their markers and renders the family's format directly; the one thing it
// reads out of the Jinja source is a ChatML default system message (SmolLM2 injects one when the
// conversation does not start with a system message).
#include <cctype>
#include <optional>
#include <string>
#include <string_view>

#include "common/error.h"
#include "engine/gguf.h"
#include "engine/tokenizer/tokenizer.h"

namespace sparkv {

namespace {

constexpr std::string_view kTemplateKey = "tokenizer.chat_template";

bool contains(std::string_view haystack, std::string_view needle) {
    return haystack.find(needle) != std::string_view::npos;
}

std::string trim(std::string_view s) {
    size_t b = 0;
    size_t e = s.size();
    while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
    while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
    return std::string(s.substr(b, e - b));
}

// Reads the Jinja string literal whose opening quote is at `open`; nullopt if it is unterminated.
std::optional<std::string> read_literal(std::string_view tmpl, size_t open) {
    const char quote = tmpl[open];
    std::string out;
    for (size_t i = open + 1; i < tmpl.size(); ++i) {
        const char c = tmpl[i];
        if (c == quote) return out;
        if (c != '\\' || i + 1 == tmpl.size()) {
            out.push_back(c);
            continue;
        }
        const char e = tmpl[++i];
        switch (e) {
            case 'n':
                out.push_back('\n');
                break;
            case 't':
                out.push_back('\t');
                break;
            case 'r':
                out.push_back('\r');
                break;
            default:
                out.push_back(e);
                break;  // \\ \' \"
        }
    }
    return std::nullopt;
}

// A ChatML template that checks the first message's role and contains a literal system turn
// ('<|im_start|>system\n...<|im_end|>\n') injects that turn when the conversation has none.
std::optional<std::string> chatml_default_system(std::string_view tmpl) {
    if (!contains(tmpl, "messages[0]['role']") && !contains(tmpl, "messages[0][\"role\"]") &&
        !contains(tmpl, "messages[0].role"))
        return std::nullopt;
    for (const char quote : {'\'', '"'}) {
        const std::string opening = std::string(1, quote) + "<|im_start|>system";
        for (size_t at = tmpl.find(opening); at != std::string_view::npos;
             at = tmpl.find(opening, at + 1)) {
            auto literal = read_literal(tmpl, at);
            if (literal && literal->size() > 19 && literal->ends_with("<|im_end|>\n"))
                return literal;
        }
    }
    return std::nullopt;
}

std::string render_chatml(std::string_view tmpl, const std::vector<ChatMessage>& messages,
                          bool add_generation_prompt) {
    std::string out;
    if (!messages.empty() && messages.front().role != "system") {
        if (auto system = chatml_default_system(tmpl)) out += *system;
    }
    for (const auto& m : messages)
        out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
    if (add_generation_prompt) out += "<|im_start|>assistant\n";
    return out;
}

// Llama 3: the text carries no BOS; encode(..., add_special = true) adds it.
std::string render_llama3(const std::vector<ChatMessage>& messages, bool add_generation_prompt) {
    std::string out;
    for (const auto& m : messages) {
        out += "<|start_header_id|>" + m.role + "<|end_header_id|>\n\n" + trim(m.content) +
               "<|eot_id|>";
    }
    if (add_generation_prompt) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
    return out;
}

// Llama 2 "[INST]" and its variants (as llama.cpp distinguishes them): with or without <<SYS>>,
// BOS inside the history, stripped contents. The leading BOS comes from the tokenizer.
std::string render_llama2(std::string_view tmpl, const std::vector<ChatMessage>& messages) {
    // The variants are exclusive, checked in this order (as llama.cpp does); all but the plain
    // one put a system message in a <<SYS>> block.
    const bool strip = contains(tmpl, "content.strip()");
    const bool bos_inside = !strip && contains(tmpl, "bos_token + '[INST]");
    const bool system_block = strip || bos_inside || contains(tmpl, "<<SYS>>");
    std::string out = "[INST] ";
    bool inside_turn = true;
    for (const auto& m : messages) {
        const std::string content = strip ? trim(m.content) : m.content;
        if (!inside_turn) {
            inside_turn = true;
            out += bos_inside ? "<s>[INST] " : "[INST] ";
        }
        if (m.role == "system") {
            out += system_block ? "<<SYS>>\n" + content + "\n<</SYS>>\n\n" : content + "\n";
        } else if (m.role == "user") {
            out += content + " [/INST]";
        } else {
            out += content + "</s>";
            inside_turn = false;
        }
    }
    return out;
}

// Zephyr / TinyLlama: "<|role|>\n" + content + end marker + "\n".
std::string render_zephyr(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                          const std::string& end) {
    std::string out;
    for (const auto& m : messages) out += "<|" + m.role + "|>\n" + m.content + end + "\n";
    if (add_generation_prompt) out += "<|assistant|>\n";
    return out;
}

std::string eos_text(const GgufFile& file) {
    const uint64_t id = file.get_uint("tokenizer.ggml.eos_token_id");
    const auto& tokens = file.get_string_array("tokenizer.ggml.tokens");
    if (id >= tokens.size())
        fail("{}: tokenizer.ggml.eos_token_id {} is out of range", file.source(), id);
    return std::string(tokens[id]);
}

[[noreturn]] void unrecognised(const GgufFile& file, std::string_view tmpl, std::string_view why) {
    constexpr size_t kShown = 60;
    std::string head(tmpl.substr(0, kShown));
    for (char& c : head)
        if (c == '\n') c = ' ';
    fail("{}: unsupported chat template ({}): \"{}{}\"", file.source(), why, head,
         tmpl.size() > kShown ? "..." : "");
}

}  // namespace

std::string apply_chat_template(const GgufFile& file, const std::vector<ChatMessage>& messages,
                                bool add_generation_prompt) {
    if (!file.has(kTemplateKey))
        fail("{}: the model has no chat template ({})", file.source(), kTemplateKey);
    const std::string tmpl = file.get_string(kTemplateKey);

    if (contains(tmpl, "<|im_start|>")) {
        if (contains(tmpl, "<|im_sep|>") || contains(tmpl, "<end_of_utterance>"))
            unrecognised(file, tmpl, "a ChatML variant SparKV does not render");
        return render_chatml(tmpl, messages, add_generation_prompt);
    }
    if (contains(tmpl, "[INST]")) {
        if (contains(tmpl, "[SYSTEM_PROMPT]") || contains(tmpl, "[AVAILABLE_TOOLS]") ||
            contains(tmpl, "' [INST] ' + system_message"))
            unrecognised(file, tmpl, "a Mistral [INST] variant");
        // Llama 2 has no generation prompt: the text ends after " [/INST]".
        return render_llama2(tmpl, messages);
    }
    if (contains(tmpl, "<|start_header_id|>") && contains(tmpl, "<|end_header_id|>"))
        return render_llama3(messages, add_generation_prompt);
    if (contains(tmpl, "<|user|>") && contains(tmpl, "<|assistant|>") &&
        !contains(tmpl, "<|end|>")) {
        if (contains(tmpl, "<|endoftext|>"))
            return render_zephyr(messages, add_generation_prompt, "<|endoftext|>");
        if (contains(tmpl, "eos_token"))
            return render_zephyr(messages, add_generation_prompt, eos_text(file));
        if (contains(tmpl, "</s>")) return render_zephyr(messages, add_generation_prompt, "</s>");
    }
    unrecognised(file, tmpl, "no known family's markers (ChatML, Llama 3, Llama 2, Zephyr)");
}

}  // namespace sparkv
