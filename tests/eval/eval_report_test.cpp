#include "eval/eval_report.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/temp_dir.h"

namespace sparkv::eval {
namespace {

QuestionRecord run(const std::string& q, const std::string& policy, const std::string& level,
                   const std::string& answer, double ttft) {
    QuestionRecord r;
    r.model = std::string("m");  // (a literal trips GCC 12's -Wrestrict false positive)
    r.question_id = q;
    r.context_tokens = 4096;
    r.policy = policy;
    r.level = level;
    r.trace = "T.down";
    r.raw_answer.assign(answer);
    r.answer.assign(answer);
    r.f1 = r.em = answer == "Paris" ? 100 : 0;
    r.ttft_ms = ttft;
    r.energy_j = ttft / 1000;
    return r;
}

TEST(EvalReport, WritesFiguresQualityCheckAndPairedRatios) {
    const std::vector<QuestionRecord> records = {
        run("a", "local", "none", "Paris", 8000), run("b", "local", "none", "Rome", 9000),
        run("a", "sparkv", "q5h", "Paris", 4000), run("b", "sparkv", "q5h", "Rome", 3000),
        run("a", "stream", "q5h", "Paris", 12000)};
    const std::vector<LinkCondition> conditions = {{"T.down", 1}};
    TempDirectory dir("eval-report");
    ReportInfo info;
    info.model = std::string("m");
    info.dataset = std::string("hotpotqa");
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
}

}  // namespace
}  // namespace sparkv::eval
