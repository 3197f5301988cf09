// Answer scoring as in the official SQuAD v1.1/v2.0 and HotpotQA evaluation scripts: normalise
// (lowercase, drop punctuation, drop the articles a/an/the, collapse whitespace), then exact match
// and token-level F1, the maximum over the gold answers.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace sparkv::eval {

struct Score {
    double em = 0;  // 0 or 1
    double f1 = 0;  // [0, 1]
};

std::string normalize_answer(std::string_view text);
std::vector<std::string> answer_tokens(std::string_view text);  // normalised, split on spaces

// Exact match and token F1 of one prediction against one reference. Two answers that normalise
// to nothing match (1, 1); one empty and one not score 0 (as the SQuAD v2 script does).
Score score_pair(std::string_view prediction, std::string_view reference);

// A prediction "says there is no answer" when it normalises to nothing or contains one of a few
// refusal phrases ("no answer", "unanswerable", "not mentioned", "cannot be answered",
// "does not say", "not provided", "i dont know", "unknown").
bool is_no_answer(std::string_view prediction);

// Against the gold answers: the best score_pair over them. No gold answers (an unanswerable
// SQuAD v2 question): 1 for a prediction that is_no_answer, else 0.
Score score_answer(std::string_view prediction, const std::vector<std::string>& gold);

// The model's raw generation cut to its answer: the first non-empty line, without a leading
// label ("Answer:", "The answer is:", any case) and surrounding whitespace.
std::string clean_prediction(std::string_view generated);

}  // namespace sparkv::eval
