#include "eval/eval_report.h"

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <tuple>

#include "common/error.h"
#include "common/statistics.h"
#include "common/svg_chart.h"

namespace sparkv::eval {

namespace {

std::string condition(const Row& r) {
    return fmt::format("{} x{:g}", std::filesystem::path(r.trace).stem().string(), r.scale);
}

std::string series_name(const Row& r) {
    return r.policy == "local" ? r.policy : r.policy + " " + r.level;
}

template <class T>
void push_unique(std::vector<T>& v, const T& x) {
    if (std::find(v.begin(), v.end(), x) == v.end()) v.push_back(x);
}

void write_file(const std::filesystem::path& path, const std::string& text) {
    std::ofstream out(path);
    out << text;
    if (!out) fail("cannot write {}", path.string());
}

// One bar chart per context length: groups = link conditions, one bar per policy (and level).
std::string bars_by_condition(const std::vector<Row>& rows, double (*value)(const Row&),
                              const std::string& what, const std::string& unit, bool log_y,
                              const ReportInfo& info) {
    std::set<int64_t> lengths;
    for (const auto& r : rows) lengths.insert(r.context_tokens);
    std::vector<std::string> charts;
    for (int64_t n : lengths) {
        std::vector<std::string> groups, names;
        for (const auto& r : rows)
            if (r.context_tokens == n) {
                push_unique(groups, condition(r));
                push_unique(names, series_name(r));
            }
        std::vector<svg::Series> series;
        for (const auto& name : names)
            series.push_back({name, std::vector<double>(groups.size(), 0), {}, ""});
        for (const auto& r : rows) {
            if (r.context_tokens != n) continue;
            const auto g = std::find(groups.begin(), groups.end(), condition(r)) - groups.begin();
            const auto s = std::find(names.begin(), names.end(), series_name(r)) - names.begin();
            series[static_cast<size_t>(s)].values[static_cast<size_t>(g)] = value(r);
        }
        svg::ChartOptions o;
        o.title = fmt::format("{}, {}-token {} contexts", what, n, info.dataset);
        o.subtitle =
            fmt::format("{}, {} threads, median over the questions", info.model, info.threads);
        o.y_label = unit;
        o.x_label = "link condition (trace x capacity scale, replayed on loopback)";
        o.log_y = log_y;
        o.show_values = groups.size() * series.size() <= 24;
        o.width = std::max(960.0, 40.0 * static_cast<double>(groups.size() * series.size()) + 250);
        charts.push_back(svg::bar_chart(groups, series, o));
    }
    return svg::stack(charts);
}

// F1 against gold and against local, per policy and level (the first condition: quality does
// not depend much on the link, and the full table has every one).
std::string f1_chart(const std::vector<Row>& rows, const ReportInfo& info) {
    std::vector<std::string> groups;
    for (const auto& r : rows)
        push_unique(groups, fmt::format("{} @{}", series_name(r), r.context_tokens));
    std::vector<svg::Series> series = {
        {"F1 vs gold", std::vector<double>(groups.size(), 0), {}, ""},
        {"F1 vs local's answer", std::vector<double>(groups.size(), 0), {}, ""},
        {"EM vs gold", std::vector<double>(groups.size(), 0), {}, ""}};
    std::vector<std::vector<double>> f1(groups.size()), vs(groups.size()), em(groups.size());
    for (const auto& r : rows) {
        const auto g =
            static_cast<size_t>(std::find(groups.begin(), groups.end(),
                                          fmt::format("{} @{}", series_name(r), r.context_tokens)) -
                                groups.begin());
        f1[g].push_back(r.f1);
        vs[g].push_back(r.f1_vs_local);
        em[g].push_back(r.em);
    }
    for (size_t g = 0; g < groups.size(); ++g) {
        series[0].values[g] = median(f1[g]);
        series[1].values[g] = median(vs[g]);
        series[2].values[g] = median(em[g]);
    }
    svg::ChartOptions o;
    o.title = fmt::format("Answer quality per policy and codec level, {}", info.dataset);
    o.subtitle =
        fmt::format("{}; mean over the questions, median over link conditions", info.model);
    o.y_label = "score (0-100)";
    o.x_label = "policy, level @ context tokens";
    o.show_values = true;
    o.width = std::max(960.0, 130.0 * static_cast<double>(groups.size()) + 250);
    return svg::bar_chart(groups, series, o);
}

// TTFT (x) against F1 vs local (y): one series per policy, one point per codec level, per
// condition; local is the reference point (100).
std::string tradeoff_chart(const std::vector<Row>& rows, const ReportInfo& info) {
    std::vector<std::string> names;
    for (const auto& r : rows)
        push_unique(names, fmt::format("{} @{} {}", r.policy, r.context_tokens, condition(r)));
    std::vector<svg::Series> series;
    for (const auto& name : names) series.push_back({name, {}, {}, ""});
    for (const auto& r : rows) {
        const auto s = static_cast<size_t>(
            std::find(names.begin(), names.end(),
                      fmt::format("{} @{} {}", r.policy, r.context_tokens, condition(r))) -
            names.begin());
        series[s].x.push_back(r.ttft_ms_median / 1e3);
        series[s].values.push_back(r.f1_vs_local);
    }
    svg::ChartOptions o;
    o.title = "TTFT against agreement with local prefill, across codec levels";
    o.subtitle = fmt::format("{}, {}; one point per codec level (local: the reference)", info.model,
                             info.dataset);
    o.x_label = "median TTFT (s, log scale)";
    o.y_label = "F1 vs local's answer (0-100)";
    o.log_x = true;
    o.lines = true;
    o.height = 480;
    return svg::line_chart(series, o);
}

// The paper's three claims side by side: how many times faster and less energy-hungry sparkv is
// than each baseline, and how close its answers stay to local's, on the questions both answered.
std::string ratio_table(const std::vector<Comparison>& comparisons) {
    using Cell = std::tuple<int64_t, std::string, double, std::string>;
    std::vector<Cell> order;
    std::map<Cell, std::map<std::string, const Comparison*>> cells;
    for (const auto& c : comparisons) {
        const Cell cell{c.context_tokens, c.trace, c.scale, c.level};
        if (!cells.count(cell)) order.push_back(cell);
        cells[cell][c.baseline] = &c;
    }
    if (order.empty()) return "";
    std::string md =
        "\n## sparkv against the baselines\n\nRatios baseline / sparkv of the median TTFT and "
        "energy over the questions both answered (above 1: sparkv is faster or spends less; n: "
        "questions compared with local, and with a baseline when it ran on fewer). The paper "
        "(arXiv 2604.21231) reports TTFT 1.3-5.1x and energy 1.5-3.3x lower than the baselines, "
        "with negligible quality loss.\n\n"
        "| tokens | trace | scale | level | n | TTFT local/sparkv | stream/sparkv | cake/sparkv | "
        "energy local/sparkv | stream/sparkv | cake/sparkv | sparkv F1 - local F1 | same answer "
        "as local |\n"
        "|---:|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
    for (const auto& cell : order) {
        const auto& by = cells.at(cell);
        const auto get = [&](const char* p) -> const Comparison* {
            const auto it = by.find(p);
            return it == by.end() ? nullptr : it->second;
        };
        const Comparison* l = get("local");
        const size_t n_local = l ? l->n_questions : 0;
        const auto ratio = [&](const Comparison* c, bool energy) -> std::string {
            if (!c) return "";
            const std::string v = fmt::format("{:.2f}", energy ? c->energy_ratio : c->ttft_ratio);
            return c->n_questions == n_local ? v : fmt::format("{} (n={})", v, c->n_questions);
        };
        md += fmt::format("| {} | {} | {:g} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                          std::get<0>(cell), std::get<1>(cell), std::get<2>(cell),
                          std::get<3>(cell), n_local, ratio(l, false), ratio(get("stream"), false),
                          ratio(get("cake"), false), ratio(l, true), ratio(get("stream"), true),
                          ratio(get("cake"), true), l ? fmt::format("{:+.1f}", l->f1_delta) : "",
                          l ? fmt::format("{:.0f}%", 100 * l->identical) : "");
    }
    return md;
}

// The quality check over every link condition, one line per sparkv level.
std::string quality_table(const std::vector<Comparison>& comparisons) {
    const auto quality = quality_vs_local(comparisons);
    if (quality.empty()) return "";
    std::string md =
        "\n## sparkv's answers against local's, over every link condition\n\n"
        "| level | conditions | questions per condition (fewest) | largest \\|F1 - local F1\\| "
        "| mean F1 - local F1 | answers identical to local's |\n"
        "|---|---:|---:|---:|---:|---:|\n";
    for (const auto& q : quality)
        md += fmt::format(
            "| {} | {} | {} | {:.2f} | {:+.2f} | {} of {} ({:.1f}%) |\n", q.level, q.cells,
            q.min_questions, q.max_abs_f1_delta, q.mean_f1_delta, q.identical_answers, q.answers,
            q.answers
                ? 100.0 * static_cast<double>(q.identical_answers) / static_cast<double>(q.answers)
                : 0.0);
    return md;
}

}  // namespace

void write_report(const std::string& dir, const std::vector<Row>& rows,
                  const std::vector<Comparison>& comparisons, const ReportInfo& info) {
    namespace fs = std::filesystem;
    fs::create_directories(dir);
    const fs::path d(dir);
    write_file(d / "ttft.svg",
               bars_by_condition(
                   rows, [](const Row& r) { return r.ttft_ms_median / 1e3; }, "Time to first token",
                   "median TTFT (s, log scale)", true, info));
    write_file(d / "energy.svg",
               bars_by_condition(
                   rows, [](const Row& r) { return r.energy_j_median; },
                   "Energy per request (modelled)", "median energy (J)", false, info));
    write_file(d / "f1.svg", f1_chart(rows, info));
    write_file(d / "tradeoff.svg", tradeoff_chart(rows, info));

    std::string md = fmt::format("# SparKV evaluation: {} on {}\n\n", info.dataset, info.model);
    md += fmt::format(
        "Reproduce: `{}`\n\n{}Wall time of the last invocation {:.0f} s ({} runs measured, {} "
        "resumed from the journal), {} compute threads. Energy is modelled (measured "
        "time x the `{}` power model). `local` computes every unit and streams nothing, so it ran "
        "once per question and length (under {}) and its figures are repeated under every link "
        "condition. F1 and EM are SQuAD-style (normalised answers, token F1, max over gold "
        "answers), 0-100; \"F1 vs local\" scores each answer against `local`'s answer to the same "
        "question; \"same as local\" is the share of answers identical to `local`'s.\n\n",
        info.command,
        info.runs_present < info.runs_expected
            ? fmt::format("**Partial:** {} of the {} runs this configuration asks for are in the "
                          "journal; every row and ratio covers the questions measured (see n). ",
                          info.runs_present, info.runs_expected)
            : std::string(),
        info.wall_s, info.runs_measured, info.runs_resumed, info.threads, info.power_profile,
        info.local_condition);
    md +=
        "![TTFT per policy and link condition](ttft.svg)\n\n![Energy per policy](energy.svg)\n\n"
        "![F1 per policy and level](f1.svg)\n\n![TTFT-quality trade-off](tradeoff.svg)\n\n";
    md +=
        "| tokens | trace | scale | policy | level | F1 | EM | F1 vs local | same as local | "
        "TTFT median (s) | TTFT p90 (s) | TTFT / local | energy median (J) | energy / local | n |\n"
        "|---:|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
    std::map<std::tuple<int64_t, std::string, double>, const Row*> local;
    for (const auto& r : rows)
        if (r.policy == "local") local[{r.context_tokens, r.trace, r.scale}] = &r;
    for (const auto& r : rows) {
        const auto it = local.find({r.context_tokens, r.trace, r.scale});
        const bool has_local = it != local.end() && it->second->ttft_ms_median > 0;
        md += fmt::format(
            "| {} | {} | {:g} | {} | {} | {:.1f} | {:.1f} | {:.1f} | {:.0f}% | {:.2f} | {:.2f} | "
            "{} | {:.2f} | {} | {} |\n",
            r.context_tokens, r.trace, r.scale, r.policy, r.level, r.f1, r.em, r.f1_vs_local,
            100 * r.identical_to_local, r.ttft_ms_median / 1e3, r.ttft_ms_p90 / 1e3,
            has_local ? fmt::format("{:.2f}", r.ttft_ms_median / it->second->ttft_ms_median) : "",
            r.energy_j_median,
            has_local && it->second->energy_j_median > 0
                ? fmt::format("{:.2f}", r.energy_j_median / it->second->energy_j_median)
                : "",
            r.n_questions);
    }
    md += quality_table(comparisons);
    md += ratio_table(comparisons);
    write_file(d / "report.md", md);
}

}  // namespace sparkv::eval
