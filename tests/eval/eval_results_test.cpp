#include "eval/eval_results.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/temp_dir.h"
#include "eval/test_records.h"

namespace sparkv::eval {
namespace {

TEST(EvalResults, RowsScoreAgainstLocalAndRepeatLocalPerCondition) {
    const std::vector<QuestionRecord> records = {
        rec("a", "local", "none", "Paris", 8000),    rec("b", "local", "none", "London", 9000),
        rec("a", "sparkv", "q5h", "Paris", 4000),    rec("b", "sparkv", "q5h", "Paris", 5000),
        rec("a", "sparkv", "q5h", "Paris", 2000, 4), rec("b", "sparkv", "q5h", "London", 3000, 4)};
    const auto rows = aggregate(records, {{"T.down", 1}, {"T.down", 4}});
    ASSERT_EQ(rows.size(), 4u);  // local and sparkv under x1 and x4
    EXPECT_EQ(rows[0].policy, "local");
    EXPECT_TRUE(rows[0].local_measured_once);
    EXPECT_EQ(rows[0].n_questions, 2u);
    EXPECT_DOUBLE_EQ(rows[0].f1, 50);
    EXPECT_DOUBLE_EQ(rows[0].f1_vs_local, 100);
    EXPECT_DOUBLE_EQ(rows[0].ttft_ms_median, 8500);
    EXPECT_EQ(rows[1].policy, "sparkv");
    EXPECT_DOUBLE_EQ(rows[1].scale, 1);
    EXPECT_DOUBLE_EQ(rows[1].f1, 100);
    EXPECT_DOUBLE_EQ(rows[1].f1_vs_local, 50);  // b: "Paris" against local's "London"
    EXPECT_DOUBLE_EQ(rows[1].identical_to_local, 0.5);
    EXPECT_EQ(rows[2].policy, "local");
    EXPECT_DOUBLE_EQ(rows[2].scale, 4);
    EXPECT_DOUBLE_EQ(rows[3].f1_vs_local, 100);
    EXPECT_DOUBLE_EQ(rows[3].ttft_ms_p90, 2900);
}

TEST(EvalResults, JournalResumesAndSkipsACutLine) {
    TempDirectory dir("eval-journal");
    const std::string path = (dir.path() / "out.json.journal.jsonl").string();
    {
        Journal j(path);
        j.append(rec("a", "local", "none", "Paris", 8000));
        auto planned = rec("a", "sparkv", "q5h", "Paris", 4000);
        planned.availability = 0.75;  // what the plan started from rides along
        planned.planned_mbps = 12.5;
        planned.bandwidth_source = "probe";
        j.append(planned);
    }
    std::ofstream(path, std::ios::app) << "{\"model\": \"m\", \"datas";  // killed mid-line
    Journal again(path);
    EXPECT_EQ(again.records().size(), 2u);
    EXPECT_TRUE(again.has(rec("a", "sparkv", "q5h", "", 0).key()));
    EXPECT_FALSE(again.has(rec("a", "sparkv", "q5h", "", 0, 4).key()));
    // local's key ignores the link: it is measured once per question and length.
    auto local_elsewhere = rec("a", "local", "none", "", 0, 16);
    local_elsewhere.trace = "Other.down";
    EXPECT_TRUE(again.has(local_elsewhere.key()));
    const auto* r = again.find(rec("a", "local", "none", "", 0).key());
    ASSERT_NE(r, nullptr);
    EXPECT_EQ(r->answer, "Paris");
    EXPECT_EQ(r->bandwidth_source, "");  // local plans no link: nothing recorded
    const auto* s = again.find(rec("a", "sparkv", "q5h", "", 0).key());
    ASSERT_NE(s, nullptr);
    EXPECT_DOUBLE_EQ(s->availability, 0.75);
    EXPECT_DOUBLE_EQ(s->planned_mbps, 12.5);
    EXPECT_EQ(s->bandwidth_source, "probe");
}

TEST(EvalResults, ComparisonsPairQuestionsAcrossUnequalCells) {
    // stream ran on question a only; local and sparkv on a and b.
    const std::vector<QuestionRecord> records = {
        rec("a", "local", "none", "Paris", 8000),   rec("b", "local", "none", "London", 9000),
        rec("a", "sparkv", "q5h", "Paris", 4000),   rec("b", "sparkv", "q5h", "Paris", 3000),
        rec("a", "stream", "q5h", "Paris", 12000),  rec("a", "cake", "fp16", "Paris", 1000),
        rec("a", "sparkv", "q5h", "Paris", 2000, 4)};
    const auto c = compare_to_baselines(records, {{"T.down", 1}, {"T.down", 4}});
    ASSERT_EQ(c.size(), 3u);  // x1: local, stream (cake ran at another level); x4: local
    EXPECT_EQ(c[0].baseline, "local");
    EXPECT_EQ(c[0].n_questions, 2u);
    EXPECT_DOUBLE_EQ(c[0].ttft_ratio, 8500.0 / 3500.0);
    EXPECT_DOUBLE_EQ(c[0].f1_delta, 50);  // b: sparkv right, local wrong
    EXPECT_DOUBLE_EQ(c[0].identical, 0.5);
    EXPECT_EQ(c[1].baseline, "stream");
    EXPECT_EQ(c[1].n_questions, 1u);  // only the question both answered
    EXPECT_DOUBLE_EQ(c[1].ttft_ratio, 3.0);
    EXPECT_DOUBLE_EQ(c[1].energy_ratio, 3.0);
    EXPECT_DOUBLE_EQ(c[2].scale, 4);
    EXPECT_EQ(c[2].n_questions, 1u);
    EXPECT_DOUBLE_EQ(c[2].ttft_ratio, 4.0);

    const auto q = quality_vs_local(c);
    ASSERT_EQ(q.size(), 1u);
    EXPECT_EQ(q[0].level, "q5h");
    EXPECT_EQ(q[0].cells, 2u);
    EXPECT_EQ(q[0].min_questions, 1u);
    EXPECT_DOUBLE_EQ(q[0].max_abs_f1_delta, 50);
    EXPECT_DOUBLE_EQ(q[0].mean_f1_delta, 25);
    EXPECT_EQ(q[0].identical_answers, 2u);
    EXPECT_EQ(q[0].answers, 3u);
}

TEST(EvalResults, NoComparisonWithoutAQuestionInCommon) {
    const std::vector<QuestionRecord> records = {rec("a", "local", "none", "Paris", 8000),
                                                 rec("b", "sparkv", "q5h", "Paris", 3000)};
    EXPECT_TRUE(compare_to_baselines(records, {{"T.down", 1}}).empty());
    EXPECT_TRUE(quality_vs_local({}).empty());
}

}  // namespace
}  // namespace sparkv::eval
