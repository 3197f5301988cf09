// `sparkv eval --report DIR`: a Markdown page (report.md) with the rows as tables and four SVG
// figures drawn by the project (common/svg_chart.h): TTFT per policy per link condition, energy
// per policy, F1 per policy and level, and the TTFT-quality trade-off across codec levels.
#pragma once

#include <string>
#include <vector>

#include "eval/eval_results.h"

namespace sparkv::eval {

struct ReportInfo {
    std::string model;
    std::string dataset;
    std::string command;  // how to reproduce it
    std::string power_profile;
    int threads = 0;
    double wall_s = 0;            // of this invocation
    size_t runs_measured = 0;     // by this invocation
    size_t runs_resumed = 0;      // taken from the journal
    size_t runs_present = 0;      // of this configuration, in the journal after the invocation
    size_t runs_expected = 0;     // what this configuration asks for
    std::string local_condition;  // where local's runs were measured
};

// `comparisons` (compare_to_baselines) give the quality check and the ratio table.
void write_report(const std::string& dir, const std::vector<Row>& rows,
                  const std::vector<Comparison>& comparisons, const ReportInfo& info);

}  // namespace sparkv::eval
