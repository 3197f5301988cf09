// Long QA contexts the way long-context benchmarks build them: the question's gold paragraphs
// placed at random positions among distractor paragraphs drawn from other questions, until the
// context reaches a target token count. Deterministic from (seed, question id).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "eval/qa_dataset.h"

namespace sparkv::eval {

// Tokens of a piece of text in the model's context format (the caller's tokenizer; tests pass a
// word counter).
using TokenCounter = std::function<int64_t(std::string_view text)>;

struct BuiltContext {
    std::string document;                // paragraphs joined by blank lines
    std::vector<std::string> titles;     // in order
    std::vector<size_t> gold_positions;  // indices into titles
    int64_t tokens = 0;                  // count_document(document): at most the target
};

// Paragraphs are rendered "title\ntext". Distractors never share a title with the question's own
// paragraphs (own_titles), so no distractor can hold the answer by construction of the data set.
// Distractors are added while the sum of count_piece over the paragraphs (and separators) stays
// within target_tokens; then the whole document is counted with count_document (the real context
// tokens: template, BOS) and trailing distractors are dropped until it fits. The gold paragraphs
// are always in it (an error if they alone exceed the target).
BuiltContext build_context(const QaItem& item, const std::vector<QaParagraph>& pool,
                           int64_t target_tokens, uint64_t seed, const TokenCounter& count_piece,
                           const TokenCounter& count_document);

std::string render_paragraph(const QaParagraph& p);

}  // namespace sparkv::eval
