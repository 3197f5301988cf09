#include "net/access_control.h"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/error.h"
#include "store/content_id.h"

namespace sparkv {

namespace {

// Shorter tokens can be guessed; `head -c 32 /dev/urandom | base64` gives 44 characters.
constexpr size_t kMinTokenLength = 16;
constexpr size_t kMaxTokenLength = 1024;

}  // namespace

bool Tenant::may_read(std::string_view context_id) const {
    if (prefix && context_id.starts_with(*prefix)) return true;
    for (const auto& id : contexts)
        if (id == context_id) return true;
    return false;
}

AccessControl AccessControl::load(const std::string& path) {
    std::ifstream in(path);
    if (!in) fail("--auth {}: cannot open", path);
    std::ostringstream text;
    text << in.rdbuf();
    return parse(text.str(), path);
}

AccessControl AccessControl::parse(std::string_view json_text, const std::string& where) {
    nlohmann::json j;
    try {
        j = nlohmann::json::parse(json_text.begin(), json_text.end());
    } catch (const nlohmann::json::exception& e) {
        fail("access config {}: not valid JSON ({})", where, e.what());
    }
    if (!j.is_object() || !j.contains("tenants") || !j["tenants"].is_object() ||
        !j.contains("tokens") || !j["tokens"].is_array())
        fail("access config {}: needs an object \"tenants\" and an array \"tokens\"", where);

    AccessControl ac;
    for (const auto& [name, spec] : j["tenants"].items()) {
        Tenant tenant;
        tenant.name = name;
        if (!spec.is_object())
            fail("access config {}: tenant \"{}\" is not an object", where, name);
        if (spec.contains("contexts")) {
            if (!spec["contexts"].is_array())
                fail("access config {}: tenant \"{}\": \"contexts\" is not an array", where, name);
            for (const auto& id : spec["contexts"]) {
                if (!id.is_string() || !is_context_id(id.get<std::string>()))
                    fail("access config {}: tenant \"{}\": {} is not a context id", where, name,
                         id.dump().substr(0, 80));
                tenant.contexts.push_back(id.get<std::string>());
            }
        }
        if (spec.contains("prefix")) {
            if (!spec["prefix"].is_string())
                fail("access config {}: tenant \"{}\": \"prefix\" is not a string", where, name);
            tenant.prefix = spec["prefix"].get<std::string>();
        }
        if (tenant.contexts.empty() && !tenant.prefix)
            fail(
                "access config {}: tenant \"{}\" may read nothing (give \"contexts\" or "
                "\"prefix\")",
                where, name);
        ac.tenants_.push_back(std::move(tenant));
    }
    for (size_t i = 0; i < j["tokens"].size(); ++i) {
        const auto& entry = j["tokens"][i];
        if (!entry.is_object() || !entry.contains("tenant") || !entry["tenant"].is_string())
            fail("access config {}: tokens[{}] has no \"tenant\"", where, i);
        const std::string tenant = entry["tenant"].get<std::string>();
        size_t index = ac.tenants_.size();
        for (size_t t = 0; t < ac.tenants_.size(); ++t)
            if (ac.tenants_[t].name == tenant) index = t;
        if (index == ac.tenants_.size())
            fail("access config {}: tokens[{}] names tenant \"{}\", which is not in \"tenants\"",
                 where, i, tenant);
        TokenEntry token{{}, index};
        const bool plain = entry.contains("token"), hashed = entry.contains("sha256");
        if (plain == hashed)
            fail("access config {}: tokens[{}] needs exactly one of \"token\" and \"sha256\"",
                 where, i);
        if (plain) {
            if (!entry["token"].is_string())
                fail("access config {}: tokens[{}].token is not a string", where, i);
            const std::string& text = entry["token"].get_ref<const std::string&>();
            if (text.size() < kMinTokenLength || text.size() > kMaxTokenLength)
                fail("access config {}: tokens[{}] is {} characters; use {} to {}", where, i,
                     text.size(), kMinTokenLength, kMaxTokenLength);
            token.digest = sha256(text);
        } else {
            const auto digest = entry["sha256"].is_string()
                                    ? parse_sha256_hex(entry["sha256"].get<std::string>())
                                    : std::nullopt;
            if (!digest)
                fail("access config {}: tokens[{}].sha256 is not 64 lowercase hex digits", where,
                     i);
            token.digest = *digest;
        }
        ac.tokens_.push_back(token);
    }
    if (ac.tokens_.empty()) fail("access config {}: no tokens: nobody could read anything", where);
    return ac;
}

const Tenant* AccessControl::authenticate(std::string_view authorization) const {
    constexpr std::string_view kScheme = "Bearer ";
    if (authorization.size() < kScheme.size() ||
        !std::equal(kScheme.begin(), kScheme.end(), authorization.begin(), [](char a, char b) {
            return std::tolower(static_cast<unsigned char>(a)) ==
                   std::tolower(static_cast<unsigned char>(b));
        }))
        return nullptr;
    std::string_view token = authorization.substr(kScheme.size());
    while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
    while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
    if (token.empty() || token.size() > kMaxTokenLength) return nullptr;
    // Hashing first gives every comparison the same length; every entry is compared, so the
    // time taken does not say which entry (if any) matched.
    const Sha256Digest digest = sha256(token);
    size_t match = tokens_.size();
    for (size_t i = 0; i < tokens_.size(); ++i) {
        const bool equal = constant_time_equal(digest, tokens_[i].digest);
        match = equal ? i : match;
    }
    return match < tokens_.size() ? &tenants_[tokens_[match].tenant] : nullptr;
}

}  // namespace sparkv
