#include "eval/context_builder.h"

#include <algorithm>
#include <random>
#include <set>

#include "common/error.h"
#include "eval/random.h"

namespace sparkv::eval {

namespace {

constexpr std::string_view kSeparator = "\n\n";

// A per-question stream: the same question gets the same context whichever questions run with it.
uint64_t question_seed(uint64_t seed, std::string_view id) {
    uint64_t h = 1469598103934665603ull;  // FNV-1a
    for (unsigned char c : id) h = (h ^ c) * 1099511628211ull;
    return seed ^ h;
}

struct Layout {
    std::vector<const QaParagraph*> paragraphs;
    std::vector<size_t> gold_positions;
};

BuiltContext render(const Layout& layout) {
    BuiltContext c;
    for (size_t i = 0; i < layout.paragraphs.size(); ++i) {
        if (i) c.document += kSeparator;
        c.document += render_paragraph(*layout.paragraphs[i]);
        c.titles.push_back(layout.paragraphs[i]->title);
    }
    c.gold_positions = layout.gold_positions;
    return c;
}

// Gold paragraphs at random slots among the first n distractors (slots drawn once, so dropping
// trailing distractors keeps the gold where it was relative to the ones before it).
Layout arrange(const std::vector<const QaParagraph*>& gold,
               const std::vector<const QaParagraph*>& distractors, size_t n,
               const std::vector<size_t>& slots) {
    Layout l;
    std::vector<std::pair<size_t, const QaParagraph*>> golds;  // (slot, paragraph)
    for (size_t g = 0; g < gold.size(); ++g) golds.emplace_back(std::min(slots[g], n), gold[g]);
    std::stable_sort(golds.begin(), golds.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    size_t next_gold = 0;
    for (size_t i = 0; i <= n; ++i) {
        while (next_gold < golds.size() && golds[next_gold].first == i) {
            l.gold_positions.push_back(l.paragraphs.size());
            l.paragraphs.push_back(golds[next_gold++].second);
        }
        if (i < n) l.paragraphs.push_back(distractors[i]);
    }
    return l;
}

}  // namespace

std::string render_paragraph(const QaParagraph& p) {
    return p.title + "\n" + p.text;
}

BuiltContext build_context(const QaItem& item, const std::vector<QaParagraph>& pool,
                           int64_t target_tokens, uint64_t seed, const TokenCounter& count_piece,
                           const TokenCounter& count_document) {
    if (target_tokens <= 0) fail("context length must be positive");
    std::mt19937_64 rng(question_seed(seed, item.id));
    const std::set<std::string> excluded(item.own_titles.begin(), item.own_titles.end());
    const auto sep_tokens = count_piece(kSeparator);

    std::vector<const QaParagraph*> gold;
    int64_t used = 0;
    for (const auto& p : item.gold) {
        gold.push_back(&p);
        used += count_piece(render_paragraph(p)) + sep_tokens;
    }
    // Distractors by estimate (per-paragraph counts add up to about the whole's), then checked.
    std::vector<const QaParagraph*> distractors;
    std::set<const QaParagraph*> taken;
    size_t misses = 0;
    while (!pool.empty() && misses < 1000) {
        const QaParagraph* p = &pool[uniform_index(rng, pool.size())];
        if (excluded.count(p->title) || !taken.insert(p).second) {
            ++misses;
            continue;
        }
        const int64_t cost = count_piece(render_paragraph(*p)) + sep_tokens;
        if (used + cost > target_tokens) {
            // One that does not fit: try a few more (a shorter one may), then stop.
            if (++misses > 50) break;
            continue;
        }
        used += cost;
        distractors.push_back(p);
    }
    std::vector<size_t> slots;
    for (size_t g = 0; g < gold.size(); ++g)
        slots.push_back(uniform_index(rng, distractors.size() + 1));

    for (size_t n = distractors.size();; --n) {
        BuiltContext c = render(arrange(gold, distractors, n, slots));
        c.tokens = count_document(c.document);
        if (c.tokens <= target_tokens) return c;
        if (n == 0)
            fail("question {}: its gold paragraphs alone take {} tokens, more than {}", item.id,
                 c.tokens, target_tokens);
    }
}

}  // namespace sparkv::eval
