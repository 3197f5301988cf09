// How a reusable context and a question become tokens. The context's tokens must not depend on the
// question, so that the cloud can ingest the context once and every device can append its own
// question after it: the prompt is rendered with the document first, split where the document
// ends, and the two halves are tokenized separately.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "engine/model.h"

namespace sparkv {

enum class PromptFormat {
    raw,   // the document as plain text, then "\n\nQuestion: ...\nAnswer:"
    chat,  // the model's chat template: one user turn holding the document and the question
};

PromptFormat prompt_format_from_name(std::string_view name);  // "raw" or "chat"
std::string_view prompt_format_name(PromptFormat format);
// chat when the model has a chat template, else raw.
PromptFormat default_prompt_format(const Model& model);

struct PromptParts {
    std::string context;   // everything up to the end of the document
    std::string question;  // the rest: the question and, for chat, the assistant header
};

PromptParts split_prompt(const Model& model, std::string_view document, std::string_view question,
                         PromptFormat format);

// Token ids of the context part (with BOS when the model wants one) and of the question part.
std::vector<int32_t> context_tokens(const Model& model, std::string_view document,
                                    PromptFormat format);
std::vector<int32_t> question_tokens(const Model& model, std::string_view question,
                                     PromptFormat format);

}  // namespace sparkv
