#include "eval/scoring.h"

#include <gtest/gtest.h>

namespace sparkv::eval {
namespace {

TEST(EvalScoring, NormalisesLikeTheOfficialScripts) {
    EXPECT_EQ(normalize_answer("The  Eiffel Tower!"), "eiffel tower");
    EXPECT_EQ(normalize_answer("  An apple, a day. "), "apple day");
    EXPECT_EQ(normalize_answer("Theatre"), "theatre");  // articles only as whole words
    EXPECT_EQ(normalize_answer("U.S.A."), "usa");
    EXPECT_EQ(normalize_answer("\"Doctor Strange.\""), "doctor strange");
    EXPECT_EQ(normalize_answer("the"), "");
    EXPECT_EQ(normalize_answer(""), "");
}

TEST(EvalScoring, ExactMatchAndTokenF1) {
    auto s = score_pair("the Eiffel Tower", "Eiffel tower.");
    EXPECT_EQ(s.em, 1);
    EXPECT_EQ(s.f1, 1);
    // prediction "paris france" vs "paris": precision 1/2, recall 1 -> F1 2/3.
    s = score_pair("Paris, France", "Paris");
    EXPECT_EQ(s.em, 0);
    EXPECT_NEAR(s.f1, 2.0 / 3.0, 1e-12);
    // Repeated tokens count once per occurrence in the reference.
    s = score_pair("yes yes", "yes");
    EXPECT_NEAR(s.f1, 2.0 / 3.0, 1e-12);
    EXPECT_EQ(score_pair("London", "Paris").f1, 0);
}

TEST(EvalScoring, EmptyAnswers) {
    EXPECT_EQ(score_pair("", "").f1, 1);
    EXPECT_EQ(score_pair("", "").em, 1);
    EXPECT_EQ(score_pair("the", "").f1, 1);  // normalises to nothing
    EXPECT_EQ(score_pair("", "Paris").f1, 0);
    EXPECT_EQ(score_pair("Paris", "").f1, 0);
}

TEST(EvalScoring, MaxOverGoldAnswers) {
    const std::vector<std::string> gold = {"10th and 11th centuries",
                                           "in the 10th and 11th centuries"};
    auto s = score_answer("in the 10th and 11th centuries", gold);
    EXPECT_EQ(s.em, 1);
    EXPECT_EQ(s.f1, 1);
    s = score_answer("11th century", gold);
    EXPECT_EQ(s.em, 0);
    EXPECT_NEAR(s.f1, 2 * (1.0 / 2) * (1.0 / 4) / (1.0 / 2 + 1.0 / 4), 1e-12);
}

TEST(EvalScoring, UnanswerableSquadV2Questions) {
    const std::vector<std::string> none;
    EXPECT_EQ(score_answer("", none).f1, 1);
    EXPECT_EQ(score_answer("unanswerable", none).em, 1);
    EXPECT_EQ(score_answer("The text does not say.", none).f1, 1);
    EXPECT_EQ(score_answer("It is not mentioned in the text", none).f1, 1);
    EXPECT_EQ(score_answer("No answer.", none).f1, 1);
    EXPECT_EQ(score_answer("France", none).f1, 0);
    EXPECT_EQ(score_answer("France", none).em, 0);
    // "unknown" must be a word of its own, not part of one.
    EXPECT_EQ(score_answer("unknowns", none).f1, 0);
    // An answerable question is not helped by refusing.
    EXPECT_EQ(score_answer("unanswerable", {"France"}).f1, 0);
}

TEST(EvalScoring, CleansTheGeneration) {
    EXPECT_EQ(clean_prediction("\n  Answer: Paris\nThe capital..."), "Paris");
    EXPECT_EQ(clean_prediction("Paris"), "Paris");
    EXPECT_EQ(clean_prediction("The answer is: 1330"), "1330");
    EXPECT_EQ(clean_prediction("the answer is Ctenophora."), "Ctenophora.");
    EXPECT_EQ(clean_prediction("Answers vary"), "Answers vary");
    EXPECT_EQ(clean_prediction("   \n\n"), "");
}

}  // namespace
}  // namespace sparkv::eval
