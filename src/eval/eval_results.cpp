#include "eval/eval_results.h"

#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <tuple>

#include "common/error.h"
#include "common/statistics.h"
#include "eval/scoring.h"

namespace sparkv::eval {

std::string record_key(const std::string& model, const std::string& question_id,
                       int64_t context_tokens, const std::string& policy, const std::string& level,
                       const std::string& trace, double scale) {
    return fmt::format("{}|{}|{}|{}|{}|{}|{:g}", model, question_id, context_tokens, policy, level,
                       trace, scale);
}

std::string QuestionRecord::key() const {
    // local's answer does not depend on the link: one record per question and length.
    if (policy == "local")
        return record_key(model, question_id, context_tokens, policy, level, "", 0);
    return record_key(model, question_id, context_tokens, policy, level, trace, scale);
}

nlohmann::json to_json(const QuestionRecord& r) {
    nlohmann::json j = {{"model", r.model},
                        {"dataset", r.dataset},
                        {"question_id", r.question_id},
                        {"question", r.question},
                        {"gold", r.gold},
                        {"context_tokens", r.context_tokens},
                        {"actual_context_tokens", r.actual_context_tokens},
                        {"policy", r.policy},
                        {"level", r.level},
                        {"trace", r.trace},
                        {"scale", r.scale},
                        {"raw_answer", r.raw_answer},
                        {"answer", r.answer},
                        {"f1", r.f1},
                        {"em", r.em},
                        {"ttft_ms", r.ttft_ms},
                        {"energy_j", r.energy_j},
                        {"units_computed", r.units_computed},
                        {"units_streamed", r.units_streamed},
                        {"bytes_received", r.bytes_received},
                        {"controller_migrations", r.migrations}};
    if (!r.unit_compute_s.empty()) j["unit_compute_s"] = r.unit_compute_s;
    return j;
}

QuestionRecord record_from_json(const nlohmann::json& j) {
    QuestionRecord r;
    r.model = j.at("model");
    r.dataset = j.at("dataset");
    r.question_id = j.at("question_id");
    r.question = j.value("question", "");
    r.gold = j.value("gold", std::vector<std::string>{});
    r.context_tokens = j.at("context_tokens");
    r.actual_context_tokens = j.value("actual_context_tokens", int64_t{0});
    r.policy = j.at("policy");
    r.level = j.at("level");
    r.trace = j.at("trace");
    r.scale = j.at("scale");
    r.raw_answer = j.value("raw_answer", "");
    r.answer = j.at("answer");
    r.f1 = j.at("f1");
    r.em = j.at("em");
    r.ttft_ms = j.at("ttft_ms");
    r.energy_j = j.at("energy_j");
    r.units_computed = j.value("units_computed", size_t{0});
    r.units_streamed = j.value("units_streamed", size_t{0});
    r.bytes_received = j.value("bytes_received", uint64_t{0});
    r.migrations = j.value("controller_migrations", 0);
    r.unit_compute_s = j.value("unit_compute_s", std::vector<double>{});
    return r;
}

Journal::Journal(std::string path) : path_(std::move(path)) {
    std::ifstream in(path_);
    size_t line_no = 0;
    for (std::string line; std::getline(in, line);) {
        ++line_no;
        if (line.empty()) continue;
        try {
            auto r = record_from_json(nlohmann::json::parse(line));
            if (keys_.insert(r.key()).second) records_.push_back(std::move(r));
        } catch (const nlohmann::json::exception&) {
            // A line cut short by a crash; the run it describes is simply done again.
            std::fprintf(stderr, "eval: %s line %zu is incomplete, ignored\n", path_.c_str(),
                         line_no);
        }
    }
}

const QuestionRecord* Journal::find(const std::string& key) const {
    for (const auto& r : records_)
        if (r.key() == key) return &r;
    return nullptr;
}

void Journal::append(const QuestionRecord& r) {
    std::ofstream out(path_, std::ios::app);
    out << to_json(r).dump() << "\n";
    out.flush();
    if (!out) fail("cannot append to the journal {}", path_);
    keys_.insert(r.key());
    records_.push_back(r);
}

std::vector<Row> aggregate(const std::vector<QuestionRecord>& records,
                           const std::vector<LinkCondition>& conditions) {
    // local's answer per (question, length).
    std::map<std::pair<std::string, int64_t>, const QuestionRecord*> local;
    for (const auto& r : records)
        if (r.policy == "local") local[{r.question_id, r.context_tokens}] = &r;

    using Key = std::tuple<int64_t, std::string, double, std::string, std::string>;
    std::map<Key, std::vector<const QuestionRecord*>> groups;
    std::vector<std::string> order;  // policies in the order first seen
    for (const auto& r : records) {
        if (!local.count({r.question_id, r.context_tokens})) continue;
        if (std::find(order.begin(), order.end(), r.policy) == order.end())
            order.push_back(r.policy);
        if (r.policy == "local") {
            for (const auto& c : conditions)
                groups[{r.context_tokens, c.trace, c.scale, r.policy, r.level}].push_back(&r);
        } else {
            groups[{r.context_tokens, r.trace, r.scale, r.policy, r.level}].push_back(&r);
        }
    }
    std::vector<Row> rows;
    for (const auto& [key, list] : groups) {
        Row row;
        std::tie(row.context_tokens, row.trace, row.scale, row.policy, row.level) = key;
        row.local_measured_once = row.policy == "local";
        std::vector<double> ttft, energy;
        for (const auto* r : list) {
            const auto* l = local.at({r->question_id, r->context_tokens});
            row.f1 += r->f1;
            row.em += r->em;
            row.f1_vs_local += 100 * score_pair(r->answer, l->answer).f1;
            row.identical_to_local += r->raw_answer == l->raw_answer ? 1 : 0;
            ttft.push_back(r->ttft_ms);
            energy.push_back(r->energy_j);
        }
        const double n = static_cast<double>(list.size());
        row.n_questions = list.size();
        row.f1 /= n;
        row.em /= n;
        row.f1_vs_local /= n;
        row.identical_to_local /= n;
        row.ttft_ms_median = median(ttft);
        row.ttft_ms_p90 = percentile(ttft, 0.9);
        row.energy_j_median = median(energy);
        rows.push_back(row);
    }
    // Rows in a reading order: length, condition as given, policy as first run, level.
    const auto cond_index = [&](const Row& r) {
        for (size_t i = 0; i < conditions.size(); ++i)
            if (conditions[i].trace == r.trace && conditions[i].scale == r.scale) return i;
        return conditions.size();
    };
    const auto pol_index = [&](const Row& r) {
        return static_cast<size_t>(std::find(order.begin(), order.end(), r.policy) - order.begin());
    };
    std::stable_sort(rows.begin(), rows.end(), [&](const Row& a, const Row& b) {
        return std::make_tuple(a.context_tokens, cond_index(a), pol_index(a)) <
               std::make_tuple(b.context_tokens, cond_index(b), pol_index(b));
    });
    return rows;
}

nlohmann::json to_json(const Row& r) {
    return {{"policy", r.policy},
            {"level", r.level},
            {"trace", r.trace},
            {"scale", r.scale},
            {"context_tokens", r.context_tokens},
            {"f1", r.f1},
            {"em", r.em},
            {"f1_vs_local", r.f1_vs_local},
            {"identical_to_local", r.identical_to_local},
            {"ttft_ms_median", r.ttft_ms_median},
            {"ttft_ms_p90", r.ttft_ms_p90},
            {"energy_j_median", r.energy_j_median},
            {"n_questions", r.n_questions},
            {"local_measured_once", r.local_measured_once}};
}

}  // namespace sparkv::eval
