#include "eval/eval_results.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
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
    if (!r.bandwidth_source.empty()) {
        j["availability"] = r.availability;
        j["planned_mbps"] = r.planned_mbps;
        j["bandwidth_source"] = r.bandwidth_source;
    }
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
    r.availability = j.value("availability", 1.0);
    r.planned_mbps = j.value("planned_mbps", 0.0);
    r.bandwidth_source = j.value("bandwidth_source", std::string());
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

std::vector<Comparison> compare_to_baselines(const std::vector<QuestionRecord>& records,
                                             const std::vector<LinkCondition>& conditions) {
    // Each cell's records by question; local's by (question, length) only.
    using Cell = std::tuple<int64_t, std::string, double, std::string, std::string>;
    std::map<Cell, std::map<std::string, const QuestionRecord*>> cells;
    std::map<std::pair<std::string, int64_t>, const QuestionRecord*> local;
    std::vector<int64_t> lengths;
    for (const auto& r : records) {
        if (std::find(lengths.begin(), lengths.end(), r.context_tokens) == lengths.end())
            lengths.push_back(r.context_tokens);
        if (r.policy == "local")
            local[{r.question_id, r.context_tokens}] = &r;
        else
            cells[{r.context_tokens, r.trace, r.scale, r.policy, r.level}][r.question_id] = &r;
    }
    std::vector<Comparison> out;
    const auto compare = [&](const Comparison& base_cell,
                             const std::map<std::string, const QuestionRecord*>& sparkv,
                             const auto& baseline_of) {
        Comparison c = base_cell;
        std::vector<double> ttft_b, ttft_s, energy_b, energy_s;
        for (const auto& [id, s] : sparkv) {
            const QuestionRecord* b = baseline_of(id);
            if (!b) continue;
            ttft_b.push_back(b->ttft_ms);
            ttft_s.push_back(s->ttft_ms);
            energy_b.push_back(b->energy_j);
            energy_s.push_back(s->energy_j);
            c.f1_delta += s->f1 - b->f1;
            c.identical += s->raw_answer == b->raw_answer ? 1 : 0;
        }
        c.n_questions = ttft_b.size();
        if (c.n_questions == 0) return;
        const double n = static_cast<double>(c.n_questions);
        c.f1_delta /= n;
        c.identical /= n;
        const double ts = median(ttft_s), es = median(energy_s);
        c.ttft_ratio = ts > 0 ? median(ttft_b) / ts : 0;
        c.energy_ratio = es > 0 ? median(energy_b) / es : 0;
        out.push_back(c);
    };
    for (int64_t n : lengths)
        for (const auto& cond : conditions)
            for (const auto& [cell, sparkv] : cells) {
                if (std::get<3>(cell) != "sparkv" || std::get<0>(cell) != n ||
                    std::get<1>(cell) != cond.trace || std::get<2>(cell) != cond.scale)
                    continue;
                Comparison base{n, cond.trace, cond.scale, std::get<4>(cell), "local"};
                compare(base, sparkv, [&](const std::string& id) -> const QuestionRecord* {
                    const auto it = local.find({id, n});
                    return it == local.end() ? nullptr : it->second;
                });
                for (const char* name : {"stream", "cake", "oracle"}) {
                    const auto other = cells.find({n, cond.trace, cond.scale, name, base.level});
                    if (other == cells.end()) continue;
                    base.baseline = name;
                    const auto& by_id = other->second;
                    compare(base, sparkv, [&](const std::string& id) -> const QuestionRecord* {
                        const auto it = by_id.find(id);
                        return it == by_id.end() ? nullptr : it->second;
                    });
                }
            }
    return out;
}

nlohmann::json to_json(const Comparison& c) {
    return {{"context_tokens", c.context_tokens},
            {"trace", c.trace},
            {"scale", c.scale},
            {"level", c.level},
            {"baseline", c.baseline},
            {"n_questions", c.n_questions},
            {"ttft_ratio", c.ttft_ratio},
            {"energy_ratio", c.energy_ratio},
            {"f1_delta", c.f1_delta},
            {"identical", c.identical}};
}

std::vector<QualityVsLocal> quality_vs_local(const std::vector<Comparison>& comparisons) {
    std::vector<QualityVsLocal> out;
    for (const auto& c : comparisons) {
        if (c.baseline != "local") continue;
        auto it = std::find_if(out.begin(), out.end(),
                               [&](const QualityVsLocal& q) { return q.level == c.level; });
        if (it == out.end()) {
            it = out.insert(out.end(), QualityVsLocal{});
            it->level = c.level;
            it->min_questions = c.n_questions;
        }
        ++it->cells;
        it->min_questions = std::min(it->min_questions, c.n_questions);
        it->max_abs_f1_delta = std::max(it->max_abs_f1_delta, std::abs(c.f1_delta));
        it->mean_f1_delta += c.f1_delta;
        it->identical_answers +=
            static_cast<size_t>(std::lround(c.identical * static_cast<double>(c.n_questions)));
        it->answers += c.n_questions;
    }
    for (auto& q : out) q.mean_f1_delta /= static_cast<double>(q.cells);
    return out;
}

nlohmann::json to_json(const QualityVsLocal& q) {
    return {{"level", q.level},
            {"cells", q.cells},
            {"min_questions", q.min_questions},
            {"max_abs_f1_delta", q.max_abs_f1_delta},
            {"mean_f1_delta", q.mean_f1_delta},
            {"identical_answers", q.identical_answers},
            {"answers", q.answers}};
}

}  // namespace sparkv::eval
