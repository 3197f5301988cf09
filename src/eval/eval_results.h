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
    // What the plan started from (diagnostics): CPU availability, link estimate and its source.
    double availability = 1;
    double planned_mbps = 0;
    std::string bandwidth_source;
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

// sparkv against one baseline in one cell (length, link condition, sparkv's level), on the
// questions both answered, so that cells measured on different question sets (baselines run on
// fewer questions, an interrupted run) still compare like with like. Ratios are baseline /
// sparkv of the medians over those questions: above 1, sparkv is faster or spends less.
struct Comparison {
    int64_t context_tokens = 0;
    std::string trace;
    double scale = 1;
    std::string level;     // sparkv's (stream and cake are compared at the same level)
    std::string baseline;  // local, stream, cake or oracle
    size_t n_questions = 0;
    double ttft_ratio = 0, energy_ratio = 0;
    double f1_delta = 0;   // sparkv - baseline, means over the questions, points (0..100 scale)
    double identical = 0;  // share of sparkv's answers identical to the baseline's, 0..1
};

// Every (cell, baseline) with at least one question answered by both, in the records' order of
// lengths and conditions; local's records (one per question) serve every condition.
std::vector<Comparison> compare_to_baselines(const std::vector<QuestionRecord>& records,
                                             const std::vector<LinkCondition>& conditions);

nlohmann::json to_json(const Comparison& c);

// The quality check over every link condition, per sparkv level: how far sparkv's F1 strays from
// local's on the same questions, and how many answers are identical.
struct QualityVsLocal {
    std::string level;
    size_t cells = 0;
    size_t min_questions = 0;      // the smallest cell
    double max_abs_f1_delta = 0;   // points
    double mean_f1_delta = 0;      // over cells
    size_t identical_answers = 0;  // over all cells
    size_t answers = 0;
};

std::vector<QualityVsLocal> quality_vs_local(const std::vector<Comparison>& comparisons);

nlohmann::json to_json(const QualityVsLocal& q);

}  // namespace sparkv::eval
