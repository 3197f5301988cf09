// `sparkv keygen`: makes the Ed25519 key pair that signs contexts (store/signing.h).
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "cli/commands.h"
#include "store/signing.h"

namespace sparkv::cli {

namespace {

struct KeygenOptions {
    std::string out;
    bool json = false;
};

int run(const KeygenOptions& opt) {
    const SigningKey key = SigningKey::generate();
    key.write_files(opt.out);
    const PublicKey& pub = key.public_key();
    if (opt.json) {
        nlohmann::json j;
        j["secret_key_file"] = opt.out + ".key";
        j["public_key_file"] = opt.out + ".pub";
        j["key_id"] = pub.id();
        j["public_key"] = pub.hex();
        std::printf("%s\n", j.dump(2).c_str());
        return 0;
    }
    std::printf("%s\n", pub.id().c_str());
    std::fprintf(stderr,
                 "sparkv: wrote %s.key (secret, mode 0600: sign with `ingest --sign-key`) and "
                 "%s.pub (give it to devices: `--trust-key`), key id %s\n",
                 opt.out.c_str(), opt.out.c_str(), pub.id().c_str());
    return 0;
}

}  // namespace

CommandRunner add_keygen_command(CLI::App& app) {
    auto opt = std::make_shared<KeygenOptions>();
    auto* cmd = app.add_subcommand(
        "keygen", "Make an Ed25519 key pair for signing contexts (PREFIX.key and PREFIX.pub)");
    cmd->add_option("--out", opt->out, "Path prefix: writes PREFIX.key (secret) and PREFIX.pub")
        ->required();
    cmd->add_flag("--json", opt->json, "Print a JSON result (files, key_id, public_key)");
    return [opt] { return run(*opt); };
}

}  // namespace sparkv::cli
