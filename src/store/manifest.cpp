#include "store/manifest.h"

#include <fmt/ranges.h>

#include <limits>
#include <set>

#include "common/error.h"
#include "store/content_id.h"

namespace sparkv {

namespace {

using nlohmann::json;

constexpr std::string_view kFormatName = "sparkv-manifest";
// Limits that keep a hostile manifest from asking for absurd allocations.
constexpr int64_t kMaxTokens = int64_t{1} << 31;
constexpr int64_t kMaxUnits = int64_t{1} << 22;

const json& field(const json& object, const char* name, const std::string& where) {
    if (!object.is_object()) fail("manifest: {} is not a JSON object", where);
    auto it = object.find(name);
    if (it == object.end()) fail("manifest: {} has no field \"{}\"", where, name);
    return *it;
}

int64_t int_field(const json& object, const char* name, const std::string& where, int64_t min,
                  int64_t max) {
    const json& value = field(object, name, where);
    if (!value.is_number_integer()) fail("manifest: {}.{} is not an integer", where, name);
    // Unsigned values above int64 range would wrap; reject them as out of range.
    if (value.is_number_unsigned() &&
        value.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        fail("manifest: {}.{} is out of range", where, name);
    const int64_t v = value.get<int64_t>();
    if (v < min || v > max)
        fail("manifest: {}.{} = {} is outside [{}, {}]", where, name, v, min, max);
    return v;
}

std::string string_field(const json& object, const char* name, const std::string& where) {
    const json& value = field(object, name, where);
    if (!value.is_string()) fail("manifest: {}.{} is not a string", where, name);
    return value.get<std::string>();
}

std::string unit_name(int32_t t, int32_t l) {
    return fmt::format("unit ({}, {})", t, l);
}

}  // namespace

bool is_level_name(std::string_view name) {
    if (name.empty() || name.size() > 32) return false;
    for (char c : name)
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return false;
    return true;
}

bool is_attempt_name(std::string_view name) {
    if (name.empty() || name.size() > 64) return false;
    for (char c : name)
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-'))
            return false;
    return true;
}

const UnitInfo& Manifest::unit(int32_t t, int32_t l) const {
    if (t < 0 || t >= n_chunks() || l < 0 || l >= n_layers())
        fail("{} does not exist: context {} has {} chunks x {} layers", unit_name(t, l), context_id,
             n_chunks(), n_layers());
    return units[static_cast<size_t>(t) * static_cast<size_t>(n_layers()) + static_cast<size_t>(l)];
}

UnitInfo& Manifest::unit(int32_t t, int32_t l) {
    return const_cast<UnitInfo&>(static_cast<const Manifest&>(*this).unit(t, l));
}

int Manifest::level_index(std::string_view level) const {
    for (size_t i = 0; i < levels.size(); ++i)
        if (levels[i] == level) return static_cast<int>(i);
    return -1;
}

int Manifest::require_level(std::string_view level) const {
    const int index = level_index(level);
    if (index < 0)
        fail("context {} has no level \"{}\" (it has: {})", context_id, level,
             fmt::join(levels, ", "));
    return index;
}

const UnitObject& Manifest::object(int32_t t, int32_t l, std::string_view level) const {
    return unit(t, l).objects[static_cast<size_t>(require_level(level))];
}

uint64_t Manifest::total_bytes(std::string_view level) const {
    const auto index = static_cast<size_t>(require_level(level));
    uint64_t total = 0;
    for (const auto& u : units) total += u.objects[index].bytes;
    return total;
}

void Manifest::validate() const {
    if (!is_context_id(context_id)) fail("manifest: context id \"{}\" is malformed", context_id);
    if (!is_attempt_name(attempt))
        fail("manifest: attempt name \"{}\" is not [A-Za-z0-9-]{{1,64}}", attempt);
    if (model.fingerprint.empty()) fail("manifest: model fingerprint is empty");
    if (model.n_layers <= 0 || model.n_layers > 1024)
        fail("manifest: n_layers = {} is invalid", model.n_layers);
    if (model.n_kv_heads <= 0 || model.head_dim <= 0)
        fail("manifest: KV shape {} heads x {} dims is invalid", model.n_kv_heads, model.head_dim);
    if (n_tokens <= 0 || n_tokens > kMaxTokens)
        fail("manifest: n_tokens = {} is invalid", n_tokens);
    if (chunk_size <= 0) fail("manifest: chunk_size = {} is invalid", chunk_size);
    const int64_t expected_chunks = (n_tokens + chunk_size - 1) / chunk_size;
    if (static_cast<int64_t>(chunks.size()) != expected_chunks)
        fail("manifest: {} tokens in chunks of {} make {} chunks, the manifest lists {}", n_tokens,
             chunk_size, expected_chunks, chunks.size());
    int64_t next_token = 0;
    for (size_t i = 0; i < chunks.size(); ++i) {
        const ChunkInfo& c = chunks[i];
        const int64_t want = std::min<int64_t>(chunk_size, n_tokens - next_token);
        if (c.index != static_cast<int32_t>(i) || c.first_token != next_token || c.n_tokens != want)
            fail("manifest: chunk {} should be index {}, tokens [{}, {}), found index {}, [{}, {})",
                 i, i, next_token, next_token + want, c.index, c.first_token,
                 c.first_token + c.n_tokens);
        next_token += want;
    }
    if (!prompt_format.empty() && prompt_format != "chat" && prompt_format != "raw")
        fail("manifest: prompt format \"{}\" is not chat or raw", prompt_format);
    if (levels.empty()) fail("manifest: no quality levels");
    std::set<std::string_view> seen;
    for (const auto& level : levels) {
        if (!is_level_name(level))
            fail("manifest: level name \"{}\" is not [a-z0-9_-]{{1,32}}", level);
        if (!seen.insert(level).second) fail("manifest: level \"{}\" is listed twice", level);
    }
    if (tokens.bytes != static_cast<uint64_t>(n_tokens) * sizeof(int32_t))
        fail("manifest: the token object holds {} bytes, {} tokens need {}", tokens.bytes, n_tokens,
             n_tokens * static_cast<int64_t>(sizeof(int32_t)));
    const int64_t expected_units = expected_chunks * model.n_layers;
    if (static_cast<int64_t>(units.size()) != expected_units)
        fail("manifest: expected {} units ({} chunks x {} layers), found {}", expected_units,
             expected_chunks, model.n_layers, units.size());
    for (size_t i = 0; i < units.size(); ++i) {
        const UnitInfo& u = units[i];
        const auto t = static_cast<int32_t>(i / static_cast<size_t>(model.n_layers));
        const auto l = static_cast<int32_t>(i % static_cast<size_t>(model.n_layers));
        if (u.t != t || u.l != l)
            fail("manifest: units are out of order: position {} holds {}, expected {}", i,
                 unit_name(u.t, u.l), unit_name(t, l));
        const ChunkInfo& c = chunks[static_cast<size_t>(t)];
        if (u.first_token != c.first_token || u.n_tokens != c.n_tokens ||
            u.attention_span != c.first_token + c.n_tokens)
            fail("manifest: {} features (tokens [{}, {}), span {}) disagree with chunk {}",
                 unit_name(t, l), u.first_token, u.first_token + u.n_tokens, u.attention_span, t);
        if (u.objects.size() != levels.size())
            fail("manifest: {} has {} objects for {} levels", unit_name(t, l), u.objects.size(),
                 levels.size());
        for (size_t k = 0; k < levels.size(); ++k)
            if (u.objects[k].bytes == 0)
                fail("manifest: {} at level {} has no object", unit_name(t, l), levels[k]);
    }
}

nlohmann::json Manifest::to_json() const {
    json j;
    j["format"] = kFormatName;
    j["version"] = kFormatVersion;
    j["context_id"] = context_id;
    j["attempt"] = attempt;
    j["model"] = {{"fingerprint", model.fingerprint},
                  {"name", model.name},
                  {"n_layers", model.n_layers},
                  {"n_kv_heads", model.n_kv_heads},
                  {"head_dim", model.head_dim}};
    j["n_tokens"] = n_tokens;
    j["chunk_size"] = chunk_size;
    json chunk_list = json::array();
    for (const auto& c : chunks)
        chunk_list.push_back(
            {{"index", c.index}, {"first_token", c.first_token}, {"n_tokens", c.n_tokens}});
    j["chunks"] = std::move(chunk_list);
    j["levels"] = levels;
    j["tokens"] = {{"bytes", tokens.bytes}, {"xxh64", hex64(tokens.xxh64)}};
    if (!prompt_format.empty()) j["prompt_format"] = prompt_format;
    json unit_list = json::array();
    for (const auto& u : units) {
        json objects = json::object();
        for (size_t k = 0; k < levels.size() && k < u.objects.size(); ++k)
            objects[levels[k]] = {{"bytes", u.objects[k].bytes},
                                  {"xxh64", hex64(u.objects[k].xxh64)}};
        unit_list.push_back({{"t", u.t},
                             {"l", u.l},
                             {"first_token", u.first_token},
                             {"n_tokens", u.n_tokens},
                             {"attention_span", u.attention_span},
                             {"objects", std::move(objects)}});
    }
    j["units"] = std::move(unit_list);
    return j;
}

Manifest Manifest::from_json(const nlohmann::json& j) {
    if (!j.is_object()) fail("manifest: top level is not a JSON object");
    if (string_field(j, "format", "manifest") != kFormatName)
        fail("manifest: format is not \"{}\"", kFormatName);
    const int64_t version = int_field(j, "version", "manifest", 0, 1 << 30);
    if (version != kFormatVersion)
        fail("manifest: format version {} is not supported (this build reads version {}{})",
             version, kFormatVersion,
             version < kFormatVersion ? "; re-ingest the context with this build" : "");

    Manifest m;
    m.context_id = string_field(j, "context_id", "manifest");
    m.attempt = string_field(j, "attempt", "manifest");
    const json& model = field(j, "model", "manifest");
    m.model.fingerprint = string_field(model, "fingerprint", "model");
    m.model.name = string_field(model, "name", "model");
    m.model.n_layers = static_cast<int32_t>(int_field(model, "n_layers", "model", 1, 1024));
    m.model.n_kv_heads = static_cast<int32_t>(int_field(model, "n_kv_heads", "model", 1, 4096));
    m.model.head_dim = static_cast<int32_t>(int_field(model, "head_dim", "model", 1, 65536));
    m.n_tokens = int_field(j, "n_tokens", "manifest", 1, kMaxTokens);
    m.chunk_size = static_cast<int32_t>(int_field(j, "chunk_size", "manifest", 1, 1 << 24));
    const int64_t n_chunks = (m.n_tokens + m.chunk_size - 1) / m.chunk_size;
    if (n_chunks * m.model.n_layers > kMaxUnits)
        fail("manifest: {} chunks x {} layers is more units than this build accepts", n_chunks,
             m.model.n_layers);

    const json& chunks = field(j, "chunks", "manifest");
    if (!chunks.is_array() || static_cast<int64_t>(chunks.size()) != n_chunks)
        fail("manifest: \"chunks\" must be an array of {} chunks", n_chunks);
    for (size_t i = 0; i < chunks.size(); ++i) {
        const std::string where = fmt::format("chunks[{}]", i);
        m.chunks.push_back(
            {static_cast<int32_t>(int_field(chunks[i], "index", where, 0, n_chunks)),
             int_field(chunks[i], "first_token", where, 0, kMaxTokens),
             static_cast<int32_t>(int_field(chunks[i], "n_tokens", where, 1, m.chunk_size))});
    }

    const json& levels = field(j, "levels", "manifest");
    if (!levels.is_array()) fail("manifest: \"levels\" is not an array");
    for (const auto& level : levels) {
        if (!level.is_string()) fail("manifest: a level name is not a string");
        m.levels.push_back(level.get<std::string>());
    }

    const json& tokens = field(j, "tokens", "manifest");
    m.tokens.bytes = static_cast<uint64_t>(int_field(tokens, "bytes", "tokens", 1, kMaxTokens * 4));
    const auto tokens_hash = parse_hex64(string_field(tokens, "xxh64", "tokens"));
    if (!tokens_hash) fail("manifest: tokens.xxh64 is not 16 lowercase hex digits");
    m.tokens.xxh64 = *tokens_hash;
    if (j.contains("prompt_format")) m.prompt_format = string_field(j, "prompt_format", "manifest");

    const json& units = field(j, "units", "manifest");
    if (!units.is_array() || static_cast<int64_t>(units.size()) != n_chunks * m.model.n_layers)
        fail("manifest: \"units\" must be an array of {} units", n_chunks * m.model.n_layers);
    m.units.reserve(units.size());
    for (size_t i = 0; i < units.size(); ++i) {
        const std::string where = fmt::format("units[{}]", i);
        const json& ju = units[i];
        UnitInfo u;
        u.t = static_cast<int32_t>(int_field(ju, "t", where, 0, n_chunks - 1));
        u.l = static_cast<int32_t>(int_field(ju, "l", where, 0, m.model.n_layers - 1));
        u.first_token = int_field(ju, "first_token", where, 0, kMaxTokens);
        u.n_tokens = static_cast<int32_t>(int_field(ju, "n_tokens", where, 1, m.chunk_size));
        u.attention_span = int_field(ju, "attention_span", where, 1, kMaxTokens);
        const json& objects = field(ju, "objects", where);
        if (!objects.is_object() || objects.size() != m.levels.size())
            fail("manifest: {}.objects must hold one entry per level", where);
        for (const auto& level : m.levels) {
            const std::string object_where = where + ".objects." + level;
            const json& jo = field(objects, level.c_str(), where + ".objects");
            UnitObject object;
            object.bytes = static_cast<uint64_t>(
                int_field(jo, "bytes", object_where, 1, std::numeric_limits<int64_t>::max()));
            const auto hash = parse_hex64(string_field(jo, "xxh64", object_where));
            if (!hash) fail("manifest: {}.xxh64 is not 16 lowercase hex digits", object_where);
            object.xxh64 = *hash;
            u.objects.push_back(object);
        }
        m.units.push_back(std::move(u));
    }
    m.validate();
    return m;
}

std::string Manifest::dump() const {
    return to_json().dump(1);
}

Manifest Manifest::parse(std::string_view text) {
    json j;
    try {
        j = json::parse(text.begin(), text.end());
    } catch (const json::exception& e) {
        fail("manifest: not valid JSON ({})", e.what());
    }
    try {
        return from_json(j);
    } catch (const json::exception& e) {
        // Type mismatches deep inside nlohmann are reported, not propagated as crashes.
        fail("manifest: unexpected JSON content ({})", e.what());
    }
}

Manifest make_manifest(std::string context_id, ModelInfo model, int64_t n_tokens,
                       int32_t chunk_size, std::vector<std::string> levels) {
    if (n_tokens <= 0 || chunk_size <= 0 || model.n_layers <= 0)
        fail("manifest: need positive tokens ({}), chunk size ({}) and layers ({})", n_tokens,
             chunk_size, model.n_layers);
    Manifest m;
    m.context_id = std::move(context_id);
    m.model = std::move(model);
    m.n_tokens = n_tokens;
    m.chunk_size = chunk_size;
    m.levels = std::move(levels);
    for (int64_t first = 0, index = 0; first < n_tokens; first += chunk_size, ++index)
        m.chunks.push_back({static_cast<int32_t>(index), first,
                            static_cast<int32_t>(std::min<int64_t>(chunk_size, n_tokens - first))});
    for (const auto& c : m.chunks)
        for (int32_t l = 0; l < m.model.n_layers; ++l)
            m.units.push_back({c.index, l, c.first_token, c.n_tokens, c.first_token + c.n_tokens,
                               std::vector<UnitObject>(m.levels.size())});
    return m;
}

}  // namespace sparkv
