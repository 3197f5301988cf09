#include "eval/eval_report.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/temp_dir.h"
#include "eval/test_records.h"

namespace sparkv::eval {
namespace {

TEST(EvalReport, WritesFiguresQualityCheckAndPairedRatios) {
    const std::vector<QuestionRecord> records = {
        rec("a", "local", "none", "Paris", 8000), rec("b", "local", "none", "Rome", 9000),
        rec("a", "sparkv", "q5h", "Paris", 4000), rec("b", "sparkv", "q5h", "Rome", 3000),
        rec("a", "stream", "q5h", "Paris", 12000)};
    const std::vector<LinkCondition> conditions = {{"T.down", 1}};
    TempDirectory dir("eval-report");
    ReportInfo info;
    info.model = std::string("m");
    info.dataset = std::string("hotpotqa");
    info.runs_present = 5;  // cake was asked for and never ran
    info.runs_expected = 7;
    write_report(dir.path().string(), aggregate(records, conditions),
                 compare_to_baselines(records, conditions), info);
    for (const char* f : {"ttft.svg", "energy.svg", "f1.svg", "tradeoff.svg", "report.md"})
        EXPECT_GT(std::filesystem::file_size(dir.path() / f), 100u) << f;
    std::ifstream in(dir.path() / "report.md");
    std::stringstream md;
    md << in.rdbuf();
    // Both answers identical to local's; stream compared on the one question it answered.
    EXPECT_NE(md.str().find("| q5h | 1 | 2 | 0.00 | +0.00 | 2 of 2 (100.0%) |"), std::string::npos)
        << md.str();
    EXPECT_NE(md.str().find("| 2.43 | 3.00 (n=1) |"), std::string::npos) << md.str();
    EXPECT_NE(md.str().find("**Partial:** 5 of the 7 runs"), std::string::npos);
}

}  // namespace
}  // namespace sparkv::eval
