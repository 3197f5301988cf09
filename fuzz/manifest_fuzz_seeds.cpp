// Writes small valid manifests (unsigned and signed) into a directory: a seed corpus for
// manifest_fuzz, so it starts from inputs that pass the parser and reach the deep checks.
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "store/content_id.h"
#include "store/manifest.h"
#include "store/manifest_signature.h"

int main(int argc, char** argv) {
    using namespace sparkv;
    if (argc != 2) {
        std::fprintf(stderr, "usage: manifest_fuzz_seeds DIR\n");
        return 2;
    }
    const SigningKey key = SigningKey::generate();
    int count = 0;
    for (const int n_tokens : {1, 70}) {
        for (const int layers : {1, 3}) {
            const std::vector<int32_t> tokens(static_cast<size_t>(n_tokens), 9);
            Manifest m = make_manifest(context_id("fp", tokens, 32), {"fp", "m", layers, 2, 8},
                                       n_tokens, 32, {"int8", "q5h"});
            m.tokens = {static_cast<uint64_t>(n_tokens) * 4, 1, {}};
            for (auto& u : m.units)
                for (auto& o : u.objects) o = {100, 2, {}};
            nlohmann::json j = m.to_json();
            for (const bool sign : {false, true}) {
                if (sign) sign_manifest_json(j, key);
                std::ofstream(std::string(argv[1]) + "/seed" + std::to_string(count++)) << j.dump();
            }
        }
    }
    return 0;
}
