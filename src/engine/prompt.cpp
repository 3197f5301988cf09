#include "engine/prompt.h"

#include "common/error.h"

namespace sparkv {

namespace {
// The document is followed by this separator inside the user turn, so that the split point is
// the same for every question.
constexpr std::string_view kQuestionLead = "\n\nQuestion: ";
constexpr std::string_view kRawAnswerLead = "\nAnswer:";
}  // namespace

PromptFormat prompt_format_from_name(std::string_view name) {
    if (name == "raw") return PromptFormat::raw;
    if (name == "chat") return PromptFormat::chat;
    fail("unknown prompt format '{}' (use raw or chat)", name);
}

std::string_view prompt_format_name(PromptFormat format) {
    return format == PromptFormat::chat ? "chat" : "raw";
}

PromptFormat default_prompt_format(const Model& model) {
    return model.file().has("tokenizer.chat_template") ? PromptFormat::chat : PromptFormat::raw;
}

PromptParts split_prompt(const Model& model, std::string_view document, std::string_view question,
                         PromptFormat format) {
    const std::string doc(document);
    const std::string tail = std::string(kQuestionLead) + std::string(question);
    if (format == PromptFormat::raw) return {doc, tail + std::string(kRawAnswerLead)};
    const std::string full = apply_chat_template(model.file(), {{"user", doc + tail}}, true);
    // The template may add text before the document (system turn, headers) but copies the user
    // content verbatim, so the document's end is found by searching for document + lead.
    const size_t at = full.find(doc + std::string(kQuestionLead));
    if (at == std::string::npos)
        fail("the chat template of {} does not copy the user message verbatim; use --format raw",
             model.file().source());
    const size_t split = at + doc.size();
    return {full.substr(0, split), full.substr(split)};
}

std::vector<int32_t> context_tokens(const Model& model, std::string_view document,
                                    PromptFormat format) {
    const auto parts = split_prompt(model, document, "", format);
    // Special tokens are parsed only in text the template wrote, never in the document itself:
    // the template's prefix holds them; a document containing "<|im_start|>" stays plain text.
    const auto& tok = model.tokenizer();
    if (format == PromptFormat::raw) return tok.encode(parts.context, true, false);
    const size_t doc_at = parts.context.size() - document.size();
    auto out = tok.encode(parts.context.substr(0, doc_at), true, true);
    const auto body = tok.encode(document, false, false);
    out.insert(out.end(), body.begin(), body.end());
    return out;
}

std::vector<int32_t> question_tokens(const Model& model, std::string_view question,
                                     PromptFormat format) {
    const auto parts = split_prompt(model, "", question, format);
    const auto& tok = model.tokenizer();
    // As for the document: the user's words are plain text, the template's suffix may hold
    // control tokens.
    const size_t user_len = kQuestionLead.size() + question.size();
    auto out = tok.encode(parts.question.substr(0, user_len), false, false);
    const auto suffix =
        tok.encode(parts.question.substr(user_len), false, format == PromptFormat::chat);
    out.insert(out.end(), suffix.begin(), suffix.end());
    return out;
}

}  // namespace sparkv
