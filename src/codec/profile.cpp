#include "codec/profile.h"

#include <fmt/format.h>
#include <xxhash.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/error.h"
#include "common/paths.h"

namespace sparkv::codec {

namespace {

constexpr std::string_view kFormatName = "sparkv-codec-profile";

// The hashed form: every field that changes how a unit is encoded, in a fixed textual layout
// (no floating point, so the hash does not depend on number formatting).
std::string canonical(const CodecProfile& p) {
    std::string s = fmt::format("{}|v{}|{:016x}|{}|{}", kFormatName, p.version, p.model_fingerprint,
                                p.n_layers, p.sink_tokens);
    for (const auto& t : p.levels) {
        s += fmt::format("|{}:{}", level_name(t.level), format_layer_bits(t.bits));
        for (const auto& heads : t.head_bits) {
            s += ';';
            s += format_head_bits(heads);
        }
        // Only when used, so the hashes of profiles without salient tokens stay what they were.
        if (t.salient_per_mille > 0)
            s += fmt::format("|salient:{}@{}q{}", t.salient_per_mille, t.salient_bits,
                             p.saliency_queries);
    }
    return s;
}

}  // namespace

uint64_t CodecProfile::hash() const {
    const std::string s = canonical(*this);
    return XXH64(s.data(), s.size(), 0);
}

const CodecProfile::LevelTable* CodecProfile::find(Level level) const {
    for (const auto& t : levels)
        if (t.level == level) return &t;
    return nullptr;
}

BitWidths CodecProfile::bits_for(Level level, uint32_t layer) const {
    const LevelTable* t = find(level);
    if (!t) fail("codec profile {:016x} has no table for level {}", hash(), level_name(level));
    if (layer >= t->bits.size())
        fail("codec profile {:016x}: layer {} is outside its {} layers", hash(), layer,
             t->bits.size());
    return t->bits[layer];
}

const std::vector<BitWidths>* CodecProfile::head_bits_for(Level level, uint32_t layer) const {
    const LevelTable* t = find(level);
    if (!t || layer >= t->head_bits.size()) return nullptr;
    return &t->head_bits[layer];
}

bool CodecProfile::uses_saliency() const {
    for (const auto& t : levels)
        if (t.salient_per_mille > 0) return true;
    return false;
}

std::vector<uint32_t> CodecProfile::evenly_spread_salient_rows(Level level,
                                                               uint32_t n_tokens) const {
    std::vector<uint32_t> rows;
    const LevelTable* t = find(level);
    if (!t || t->salient_per_mille == 0) return rows;
    const uint32_t stride = std::max<uint32_t>(1, 1000 / t->salient_per_mille);
    for (uint32_t r = stride / 2; r < n_tokens; r += stride) rows.push_back(r);
    return rows;
}

const CodecProfile& require_profile(const CodecProfile* profile, Level level) {
    if (!profile)
        fail(
            "codec level {} needs the model's codec profile; run `sparkv codec-calibrate "
            "--model MODEL --docs TEXT...`, which writes it where ingest and codec-bench look "
            "(<cache>/codec-profiles/<fingerprint>.json)",
            level_name(level));
    return *profile;
}

std::string profile_to_json(const CodecProfile& p) {
    nlohmann::ordered_json j;
    j["format"] = kFormatName;
    j["version"] = p.version;
    j["model_fingerprint"] = fmt::format("{:016x}", p.model_fingerprint);
    j["hash"] = fmt::format("{:016x}", p.hash());
    j["n_layers"] = p.n_layers;
    j["sink_tokens"] = p.sink_tokens;
    if (p.uses_saliency()) j["saliency_queries"] = p.saliency_queries;
    j["levels"] = nlohmann::ordered_json::array();
    for (const auto& t : p.levels) {
        nlohmann::ordered_json e = {{"name", level_name(t.level)},
                                    {"bits", format_layer_bits(t.bits)},
                                    {"predicted_kl", t.predicted_kl},
                                    {"ratio_vs_fp16", t.ratio_vs_fp16}};
        if (!t.head_bits.empty()) {
            e["head_bits"] = nlohmann::ordered_json::array();
            for (const auto& heads : t.head_bits) e["head_bits"].push_back(format_head_bits(heads));
        }
        if (t.salient_per_mille > 0) {
            e["salient_per_mille"] = t.salient_per_mille;
            e["salient_bits"] = t.salient_bits;
        }
        j["levels"].push_back(std::move(e));
    }
    if (p.default_level) j["default_level"] = level_name(*p.default_level);
    j["calibration"] = nlohmann::ordered_json::parse(p.calibration_json);
    return j.dump(2) + "\n";
}

CodecProfile profile_from_json(std::string_view text, std::string_view where) {
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(text);
    } catch (const std::exception& e) {
        fail("codec profile {}: not JSON ({})", where, e.what());
    }
    CodecProfile p;
    try {
        if (!j.is_object() || j.value("format", "") != kFormatName)
            fail("codec profile {}: not a SparKV codec profile (format field)", where);
        p.version = j.at("version").get<uint32_t>();
        if (p.version < 1 || p.version > CodecProfile::kVersion)
            fail("codec profile {}: version {} is not supported (this build reads 1 to {})", where,
                 p.version, CodecProfile::kVersion);
        p.model_fingerprint =
            std::stoull(j.at("model_fingerprint").get<std::string>(), nullptr, 16);
        p.n_layers = j.at("n_layers").get<uint32_t>();
        p.sink_tokens = j.at("sink_tokens").get<uint32_t>();
        p.saliency_queries = j.value("saliency_queries", 64u);
        if (p.saliency_queries < 1 || p.saliency_queries > kMaxTokens)
            fail("codec profile {}: saliency_queries {} out of range", where, p.saliency_queries);
        if (p.n_layers < 1 || p.n_layers > 4096 || p.sink_tokens > kMaxTokens)
            fail("codec profile {}: n_layers {} or sink_tokens {} out of range", where, p.n_layers,
                 p.sink_tokens);
        for (const auto& e : j.at("levels")) {
            CodecProfile::LevelTable t;
            t.level = level_from_name(e.at("name").get<std::string>());
            if (!level_info(t.level).calibrated())
                fail("codec profile {}: level {} is not a calibrated level", where,
                     level_name(t.level));
            if (p.find(t.level))
                fail("codec profile {}: level {} twice", where, level_name(t.level));
            // Every layer must be covered: start from an invalid width and check none is left.
            t.bits = parse_layer_bits(e.at("bits").get<std::string>(),
                                      std::vector<BitWidths>(p.n_layers, BitWidths{0, 0}));
            for (const BitWidths& b : t.bits)
                if (b.k == 0)
                    fail("codec profile {}: level {} misses layers", where, level_name(t.level));
            if (e.contains("head_bits")) {
                if (p.version < 2) fail("codec profile {}: per-head widths need version 2", where);
                const auto& list = e.at("head_bits");
                if (!list.is_array() || list.size() != p.n_layers)
                    fail("codec profile {}: level {} head_bits needs one entry per layer", where,
                         level_name(t.level));
                for (uint32_t l = 0; l < p.n_layers; ++l) {
                    t.head_bits.push_back(parse_head_bits(list[l].get<std::string>()));
                    if (t.head_bits.back().size() != t.head_bits.front().size() ||
                        !(widest(t.head_bits.back()) == t.bits[l]))
                        fail(
                            "codec profile {}: level {} layer {}: head widths {} disagree with "
                            "the layer's {}/{}",
                            where, level_name(t.level), l, list[l].get<std::string>(), t.bits[l].k,
                            t.bits[l].v);
                }
            }
            if (e.contains("salient_per_mille")) {
                if (p.version < 3) fail("codec profile {}: salient tokens need version 3", where);
                t.salient_per_mille = e.at("salient_per_mille").get<uint32_t>();
                t.salient_bits = e.value("salient_bits", uint8_t{8});
                if (t.salient_per_mille > 1000 || t.salient_bits < 2 || t.salient_bits > 8)
                    fail(
                        "codec profile {}: level {}: salient {} per mille at {} bits is out of "
                        "range (0-1000, 2-8 bits)",
                        where, level_name(t.level), t.salient_per_mille, t.salient_bits);
            }
            t.predicted_kl = e.value("predicted_kl", 0.0);
            t.ratio_vs_fp16 = e.value("ratio_vs_fp16", 0.0);
            p.levels.push_back(std::move(t));
        }
        if (j.contains("default_level")) {
            p.default_level = level_from_name(j["default_level"].get<std::string>());
            if (level_info(*p.default_level).calibrated() && !p.find(*p.default_level))
                fail("codec profile {}: default level {} has no table", where,
                     level_name(*p.default_level));
        }
        if (j.contains("calibration")) p.calibration_json = j["calibration"].dump();
        if (j.contains("hash") && j["hash"].get<std::string>() != fmt::format("{:016x}", p.hash()))
            fail(
                "codec profile {}: hash {} does not match its contents ({:016x}); the file was "
                "edited or damaged",
                where, j["hash"].get<std::string>(), p.hash());
    } catch (const nlohmann::json::exception& e) {
        fail("codec profile {}: missing or malformed field ({})", where, e.what());
    } catch (const std::invalid_argument&) {
        fail("codec profile {}: malformed model fingerprint", where);
    }
    return p;
}

CodecProfile load_profile(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) fail("cannot read codec profile {}", path);
    std::ostringstream text;
    text << f.rdbuf();
    return profile_from_json(text.str(), path);
}

void save_profile(const CodecProfile& profile, const std::string& path) {
    const std::filesystem::path p(path);
    if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path());
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f << profile_to_json(profile);
    if (!f) fail("cannot write codec profile {}", path);
}

std::string default_profile_path(uint64_t model_fingerprint) {
    return fmt::format("{}/codec-profiles/{:016x}.json", cache_dir(), model_fingerprint);
}

std::string find_model_profile_path(uint64_t model_fingerprint) {
    const std::string cached = default_profile_path(model_fingerprint);
    if (std::filesystem::exists(cached)) return cached;
    return shipped_data_path(fmt::format("codec-profiles/{:016x}.json", model_fingerprint));
}

std::optional<CodecProfile> find_model_profile(uint64_t model_fingerprint) {
    const std::string path = find_model_profile_path(model_fingerprint);
    if (path.empty()) return std::nullopt;
    CodecProfile p = load_profile(path);
    if (p.model_fingerprint != model_fingerprint)
        fail("codec profile {} is for model {:016x}, not {:016x}", path, p.model_fingerprint,
             model_fingerprint);
    return p;
}

Level default_lossy_level(const CodecProfile* profile) {
    return profile && profile->default_level ? *profile->default_level : kDefaultLossyLevel;
}

Level default_lossy_level(uint64_t model_fingerprint) {
    const auto profile = find_model_profile(model_fingerprint);
    return default_lossy_level(profile ? &*profile : nullptr);
}

}  // namespace sparkv::codec
