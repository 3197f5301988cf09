#include "eval/qa_dataset.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <unordered_set>

#include "common/error.h"
#include "common/paths.h"
#include "eval/random.h"

namespace sparkv::eval {

namespace {

nlohmann::json read_json(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) fail("cannot read {}; fetch it with `sparkv model --fetch hotpotqa squad`", path);
    try {
        return nlohmann::json::parse(f);
    } catch (const nlohmann::json::exception& e) {
        fail("{} is not valid JSON ({}); fetch it again with `sparkv model --fetch`", path,
             e.what());
    }
}

// Paragraphs appear in several items (HotpotQA reuses Wikipedia paragraphs): keep one of each.
class ParagraphPool {
  public:
    void add(const QaParagraph& p) {
        if (seen_.insert(p.title + '\n' + p.text).second) out.push_back(p);
    }
    std::vector<QaParagraph> out;

  private:
    std::unordered_set<std::string> seen_;
};

QaDataset load_hotpotqa(const nlohmann::json& j) {
    QaDataset d{"hotpotqa", {}, {}};
    ParagraphPool pool;
    for (const auto& q : j) {
        QaItem item;
        item.id = q.at("_id").get<std::string>();
        item.question = q.at("question").get<std::string>();
        item.answers = {q.at("answer").get<std::string>()};
        std::set<std::string> supporting;
        for (const auto& f : q.at("supporting_facts"))
            supporting.insert(f.at(0).get<std::string>());
        for (const auto& c : q.at("context")) {
            QaParagraph p{c.at(0).get<std::string>(), {}};
            for (const auto& s : c.at(1)) p.text += s.get<std::string>();
            item.own_titles.push_back(p.title);
            if (supporting.count(p.title)) item.gold.push_back(p);
            pool.add(p);
        }
        if (item.gold.empty()) fail("hotpotqa: question {} has no supporting paragraph", item.id);
        d.items.push_back(std::move(item));
    }
    d.paragraphs = std::move(pool.out);
    return d;
}

QaDataset load_squad(const nlohmann::json& j) {
    QaDataset d{"squad", {}, {}};
    ParagraphPool pool;
    for (const auto& article : j.at("data")) {
        const std::string title = article.at("title").get<std::string>();
        for (const auto& para : article.at("paragraphs")) {
            const QaParagraph p{title, para.at("context").get<std::string>()};
            pool.add(p);
            for (const auto& q : para.at("qas")) {
                QaItem item;
                item.id = q.at("id").get<std::string>();
                item.question = q.at("question").get<std::string>();
                if (!q.value("is_impossible", false))
                    for (const auto& a : q.at("answers")) item.answers.push_back(a.at("text"));
                item.gold = {p};
                // Other paragraphs of the same article may answer the question too.
                item.own_titles = {title};
                d.items.push_back(std::move(item));
            }
        }
    }
    d.paragraphs = std::move(pool.out);
    return d;
}

}  // namespace

std::string dataset_path(std::string_view name) {
    return cache_dir() + "/datasets/" + std::string(name) + ".json";
}

bool is_dataset_name(std::string_view name) {
    return name == "hotpotqa" || name == "squad";
}

QaDataset load_dataset(std::string_view name, const std::string& path) {
    if (name == "hotpotqa") return load_hotpotqa(read_json(path));
    if (name == "squad") return load_squad(read_json(path));
    fail("unknown data set '{}' (hotpotqa or squad)", name);
}

std::vector<size_t> select_questions(size_t n_items, size_t n, uint64_t seed) {
    std::vector<size_t> order(n_items);
    for (size_t i = 0; i < n_items; ++i) order[i] = i;
    std::mt19937_64 rng(seed);
    const size_t take = std::min(n, n_items);
    for (size_t i = 0; i < take; ++i)
        std::swap(order[i], order[i + uniform_index(rng, n_items - i)]);
    order.resize(take);
    return order;
}

}  // namespace sparkv::eval
