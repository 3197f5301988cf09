#include "eval/scoring.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <map>
#include <sstream>

namespace sparkv::eval {

namespace {

bool is_space(unsigned char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

std::string trim(std::string_view s) {
    size_t a = 0, b = s.size();
    while (a < b && is_space(static_cast<unsigned char>(s[a]))) ++a;
    while (b > a && is_space(static_cast<unsigned char>(s[b - 1]))) --b;
    return std::string(s.substr(a, b - a));
}

}  // namespace

std::string normalize_answer(std::string_view text) {
    // lower(), then remove string.punctuation (ASCII, as the official scripts do; non-ASCII
    // bytes are kept), then the articles as whole words, then whitespace runs.
    std::string s;
    for (unsigned char c : text) {
        if (std::ispunct(c) && c < 0x80) continue;
        s.push_back(c < 0x80 ? static_cast<char>(std::tolower(c)) : static_cast<char>(c));
    }
    std::string out;
    std::istringstream words(s);
    for (std::string w; words >> w;) {
        if (w == "a" || w == "an" || w == "the") continue;
        if (!out.empty()) out += ' ';
        out += w;
    }
    return out;
}

std::vector<std::string> answer_tokens(std::string_view text) {
    std::vector<std::string> out;
    std::istringstream words(normalize_answer(text));
    for (std::string w; words >> w;) out.push_back(w);
    return out;
}

Score score_pair(std::string_view prediction, std::string_view reference) {
    const auto p = answer_tokens(prediction), r = answer_tokens(reference);
    Score s;
    s.em = normalize_answer(prediction) == normalize_answer(reference) ? 1 : 0;
    if (p.empty() || r.empty()) {
        s.f1 = (p.empty() && r.empty()) ? 1 : 0;
        return s;
    }
    std::map<std::string, int> counts;
    for (const auto& w : r) ++counts[w];
    int common = 0;
    for (const auto& w : p)
        if (auto it = counts.find(w); it != counts.end() && it->second > 0) {
            --it->second;
            ++common;
        }
    if (common == 0) return s;
    const double precision = static_cast<double>(common) / static_cast<double>(p.size());
    const double recall = static_cast<double>(common) / static_cast<double>(r.size());
    s.f1 = 2 * precision * recall / (precision + recall);
    return s;
}

bool is_no_answer(std::string_view prediction) {
    const std::string n = normalize_answer(prediction);
    if (n.empty()) return true;
    static const std::array<std::string_view, 8> phrases = {
        "no answer",    "unanswerable", "not mentioned", "cannot be answered",
        "does not say", "not provided", "i dont know",   "unknown"};
    const std::string padded = " " + n + " ";
    return std::any_of(phrases.begin(), phrases.end(), [&](std::string_view ph) {
        std::string needle(1, ' ');
        needle.append(ph).push_back(' ');
        return padded.find(needle) != std::string::npos;
    });
}

Score score_answer(std::string_view prediction, const std::vector<std::string>& gold) {
    if (gold.empty()) {
        const double v = is_no_answer(prediction) ? 1 : 0;
        return {v, v};
    }
    Score best;
    for (const auto& g : gold) {
        const Score s = score_pair(prediction, g);
        best.em = std::max(best.em, s.em);
        best.f1 = std::max(best.f1, s.f1);
    }
    return best;
}

std::string clean_prediction(std::string_view generated) {
    std::string line;
    std::istringstream lines{std::string(generated)};
    for (std::string l; std::getline(lines, l);) {
        line = trim(l);
        if (!line.empty()) break;
    }
    // Labels small models put before the answer; case-insensitive, longest first.
    for (std::string_view label : {"the answer is:", "the answer is", "answer:", "a:"}) {
        if (line.size() < label.size()) continue;
        std::string head = line.substr(0, label.size());
        for (auto& c : head) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        if (head == label) {
            line = trim(std::string_view(line).substr(label.size()));
            break;
        }
    }
    return line;
}

}  // namespace sparkv::eval
