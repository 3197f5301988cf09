#include "eval/context_builder.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <sstream>

namespace sparkv::eval {
namespace {

// One token per whitespace-separated word: enough to test lengths without a model.
int64_t words(std::string_view text) {
    std::istringstream s{std::string(text)};
    int64_t n = 0;
    for (std::string w; s >> w;) ++n;
    return n;
}

std::vector<QaParagraph> make_pool(int n) {
    std::vector<QaParagraph> pool;
    for (int i = 0; i < n; ++i) {
        std::string text;
        const std::string word = fmt::format("w{} ", i);
        for (int w = 0; w < 20 + (i * 7) % 40; ++w) text += word;
        pool.push_back({fmt::format("Title {}", i), text});
    }
    return pool;
}

QaItem make_item(const std::vector<QaParagraph>& pool) {
    QaItem item;
    item.id = "q1";
    item.question = "Which?";
    item.answers = {"w3"};
    item.gold = {pool[3], pool[5]};
    item.own_titles = {pool[3].title, pool[5].title, pool[7].title};
    return item;
}

TEST(EvalContextBuilder, IsDeterministicFromTheSeed) {
    const auto pool = make_pool(300);
    const auto item = make_item(pool);
    const auto a = build_context(item, pool, 1000, 42, words, words);
    const auto b = build_context(item, pool, 1000, 42, words, words);
    const auto c = build_context(item, pool, 1000, 43, words, words);
    EXPECT_EQ(a.document, b.document);
    EXPECT_EQ(a.gold_positions, b.gold_positions);
    EXPECT_NE(a.document, c.document);
}

TEST(EvalContextBuilder, ReachesTheTargetWithoutExceedingIt) {
    const auto pool = make_pool(300);
    const auto item = make_item(pool);
    for (int64_t target : {300, 1000, 4096}) {
        const auto ctx = build_context(item, pool, target, 7, words, words);
        EXPECT_EQ(ctx.tokens, words(ctx.document));
        EXPECT_LE(ctx.tokens, target);
        // Stops only when no paragraph of the pool fits any more (the longest has 60 words).
        EXPECT_GT(ctx.tokens, target - 2 * 61) << target;
    }
}

TEST(EvalContextBuilder, HoldsTheGoldParagraphsAndNoOwnDistractor) {
    const auto pool = make_pool(300);
    const auto item = make_item(pool);
    const auto ctx = build_context(item, pool, 2000, 3, words, words);
    ASSERT_EQ(ctx.gold_positions.size(), 2u);
    for (const auto& g : item.gold)
        EXPECT_NE(ctx.document.find(render_paragraph(g)), std::string::npos);
    std::vector<std::string> gold_titles;
    for (size_t p : ctx.gold_positions) gold_titles.push_back(ctx.titles[p]);
    EXPECT_EQ(std::count(gold_titles.begin(), gold_titles.end(), "Title 3"), 1);
    EXPECT_EQ(std::count(gold_titles.begin(), gold_titles.end(), "Title 5"), 1);
    // The item's own non-gold paragraph is never drawn as a distractor, nothing twice.
    EXPECT_EQ(std::count(ctx.titles.begin(), ctx.titles.end(), "Title 7"), 0);
    std::vector<std::string> sorted = ctx.titles;
    std::sort(sorted.begin(), sorted.end());
    EXPECT_EQ(std::adjacent_find(sorted.begin(), sorted.end()), sorted.end());
    EXPECT_GT(ctx.titles.size(), 20u);
}

TEST(EvalContextBuilder, DropsDistractorsWhenTheRealCountIsLarger) {
    const auto pool = make_pool(300);
    const auto item = make_item(pool);
    // The document counter charges 100 tokens more (a template, BOS): trailing distractors go.
    const auto more = [](std::string_view t) { return words(t) + 100; };
    const auto ctx = build_context(item, pool, 1000, 7, words, more);
    EXPECT_LE(ctx.tokens, 1000);
    EXPECT_EQ(ctx.tokens, more(ctx.document));
    EXPECT_EQ(ctx.gold_positions.size(), 2u);
}

TEST(EvalContextBuilder, FailsWhenTheGoldAloneIsTooLong) {
    const auto pool = make_pool(300);
    const auto item = make_item(pool);
    EXPECT_THROW(build_context(item, pool, 10, 7, words, words), std::exception);
}

TEST(EvalQuestionDraw, IsDeterministicAndWithoutRepeats) {
    const auto a = select_questions(1000, 50, 1);
    EXPECT_EQ(a, select_questions(1000, 50, 1));
    EXPECT_NE(a, select_questions(1000, 50, 2));
    std::vector<size_t> s = a;
    std::sort(s.begin(), s.end());
    EXPECT_EQ(std::adjacent_find(s.begin(), s.end()), s.end());
    EXPECT_EQ(select_questions(5, 50, 1).size(), 5u);
    // A longer draw starts with the shorter one: 10 questions are the first 10 of 50.
    const auto b = select_questions(1000, 10, 1);
    EXPECT_TRUE(std::equal(b.begin(), b.end(), a.begin()));
}

}  // namespace
}  // namespace sparkv::eval
