// What `sparkv eval` records: one QuestionRecord per (question, context length, policy, level,
// link condition) run, appended to a JSON-lines journal as soon as it is measured (so an
// interrupted run resumes where it stopped), and the rows aggregated from them.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace sparkv::eval {

struct QuestionRecord {
    std::string model;
    std::string dataset;
    std::string question_id;
    std::string question;
    std::vector<std::string> gold;
    int64_t context_tokens = 0;  // the requested length (row key)
    int64_t actual_context_tokens = 0;
    std::string policy;
    std::string level;  // "none" for local: it streams nothing
    std::string trace;  // file name; for local, the condition it was measured under
    double scale = 1;
    std::string raw_answer;
    std::string answer;     // clean_prediction(raw_answer)
    double f1 = 0, em = 0;  // against gold, 0..100
    double ttft_ms = 0;
    double energy_j = 0;
    size_t units_computed = 0, units_streamed = 0;
    uint64_t bytes_received = 0;
    int migrations = 0;
    std::vector<double> unit_compute_s;  // local only: what the oracle is told

    // Which run this is; the journal holds each key at most once.
    std::string key() const;
};

nlohmann::json to_json(const QuestionRecord& r);
QuestionRecord record_from_json(const nlohmann::json& j);

// The journal: JSON lines, one record each, flushed after every line. A line cut by a crash
// (the last one) is ignored on load.
class Journal {
  public:
    explicit Journal(std::string path);
    const std::vector<QuestionRecord>& records() const { return records_; }
    bool has(const std::string& key) const { return keys_.count(key) > 0; }
    const QuestionRecord* find(const std::string& key) const;
    void append(const QuestionRecord& r);
    const std::string& path() const { return path_; }

  private:
    std::string path_;
    std::vector<QuestionRecord> records_;
    std::set<std::string> keys_;
};

std::string record_key(const std::string& model, const std::string& question_id,
                       int64_t context_tokens, const std::string& policy, const std::string& level,
                       const std::string& trace, double scale);

struct LinkCondition {
    std::string trace;  // file name
    double scale = 1;
};

struct Row {
    std::string policy, level, trace;
    double scale = 1;
    int64_t context_tokens = 0;
    double f1 = 0, em = 0, f1_vs_local = 0;  // means, 0..100
    double identical_to_local = 0;           // share of answers equal to local's, 0..1
    double ttft_ms_median = 0, ttft_ms_p90 = 0, energy_j_median = 0;
    size_t n_questions = 0;
    bool local_measured_once = false;  // local: one run per question, shared by every condition
};

// One row per (policy, level, condition, context length) present in `records` of this model and
// data set; local's records (one per question and length) are repeated under every condition.
// f1_vs_local compares each answer with local's answer to the same question at the same length;
// a question local has not answered yet is left out of every row of its length.
std::vector<Row> aggregate(const std::vector<QuestionRecord>& records,
                           const std::vector<LinkCondition>& conditions);

nlohmann::json to_json(const Row& r);

}  // namespace sparkv::eval
