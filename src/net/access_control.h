// Per-tenant access for `sparkv serve --auth FILE`. The file maps bearer tokens to tenants and
// tenants to the contexts they may read:
//
//   {
//     "tenants": {
//       "acme": {"contexts": ["<context id>", "..."]},
//       "lab":  {"prefix": "3f"},            // every context whose id starts with "3f"
//       "ops":  {"prefix": ""}               // every context
//     },
//     "tokens": [
//       {"tenant": "acme", "token": "<at least 16 characters>"},
//       {"tenant": "lab",  "sha256": "<64 hex digits: SHA-256 of the token>"}
//     ]
//   }
//
// Tokens are kept only as SHA-256 digests and compared in constant time against every entry, so
// neither timing nor the file (with "sha256" entries) reveals them; they are never logged. A
// context id alone grants nothing: without a token that maps to a tenant allowed to read it, the
// server answers 401 (no or unknown token) or 403 (known token, other tenant's context).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "store/crypto.h"

namespace sparkv {

struct Tenant {
    std::string name;
    std::vector<std::string> contexts;  // exact context ids
    std::optional<std::string> prefix;  // or every id with this prefix ("" = all)

    bool may_read(std::string_view context_id) const;
};

class AccessControl {
  public:
    // Reads and validates the file; throws Error naming the entry that is wrong (never a token).
    static AccessControl load(const std::string& path);
    static AccessControl parse(std::string_view json_text, const std::string& where);

    // The tenant of an "Authorization" header value ("Bearer <token>"), or null.
    const Tenant* authenticate(std::string_view authorization) const;

    size_t tenant_count() const { return tenants_.size(); }
    size_t token_count() const { return tokens_.size(); }

  private:
    struct TokenEntry {
        Sha256Digest digest;
        size_t tenant;
    };
    std::vector<Tenant> tenants_;
    std::vector<TokenEntry> tokens_;
};

}  // namespace sparkv
