// A made-up eval run for the eval tests: question q, 4,096 tokens, trace T.down; "Paris" is the
// gold answer; energy follows TTFT.
#pragma once

#include <string>

#include "eval/eval_results.h"

namespace sparkv::eval {

inline QuestionRecord rec(const std::string& q, const std::string& policy, const std::string& level,
                          const std::string& answer, double ttft, double scale = 1) {
    QuestionRecord r;
    r.model = std::string("m");
    r.dataset = "hotpotqa";
    r.question_id = q;
    r.context_tokens = 4096;
    r.policy = policy;
    r.level = level;
    r.trace = "T.down";
    r.scale = scale;
    r.raw_answer.assign(answer);
    r.answer.assign(answer);
    r.f1 = answer == "Paris" ? 100 : 0;
    r.em = r.f1;
    r.ttft_ms = ttft;
    r.energy_j = ttft / 1000;
    return r;
}

}  // namespace sparkv::eval
