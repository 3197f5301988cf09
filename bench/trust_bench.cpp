// trust_bench: what verifying a signed context costs a device, next to what it costs without.
//
// On a reference-model-shaped context (8 chunks x 30 layers x 4 levels, the default ingest), it
// measures: the manifest's size with and without the SHA-256 of every object and the signature;
// parsing it without a trust key versus parsing and verifying the signature; and hashing unit
// bytes with xxhash64 (always done) versus SHA-256 (under a trust key), in MB/s on one core,
// beside the link rate they must outpace. Medians of --repeats runs.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <random>
#include <vector>

#include "common/timer.h"
#include "store/content_id.h"
#include "store/manifest_signature.h"
#include "store/trust.h"

using namespace sparkv;

namespace {

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

template <typename F>
double time_median(int repeats, F&& f) {
    std::vector<double> t;
    for (int i = 0; i < repeats; ++i) {
        const double start = now_seconds();
        f();
        t.push_back(now_seconds() - start);
    }
    return median(t);
}

}  // namespace

int main(int argc, char** argv) {
    int chunks = 8, layers = 30, repeats = 7;
    size_t unit_bytes = 174'763;  // as bench/link_load.cpp
    CLI::App app{"Cost of signed contexts on the device: manifest size, verification, hashing"};
    app.add_option("--chunks", chunks)->capture_default_str();
    app.add_option("--layers", layers)->capture_default_str();
    app.add_option("--unit-bytes", unit_bytes)->capture_default_str();
    app.add_option("--repeats", repeats)->capture_default_str();
    CLI11_PARSE(app, argc, argv);

    const std::vector<std::string> levels = {"fp16", "int8", "q5h", "q3h"};
    const std::vector<int32_t> tokens(static_cast<size_t>(chunks) * 1024, 5);
    Manifest m = make_manifest(context_id("fp", tokens, 1024), {"fp", "m", layers, 3, 64},
                               static_cast<int64_t>(tokens.size()), 1024, levels);
    m.attempt = "bench";  // as an ingest names its attempt (store/context_store.h)
    std::mt19937_64 rng(1);
    auto random_digest = [&] {
        Sha256Digest d;
        for (auto& b : d) b = static_cast<uint8_t>(rng());
        return d;
    };
    m.tokens = {tokens.size() * 4, rng(), random_digest()};
    for (auto& u : m.units)
        for (auto& o : u.objects) o = {unit_bytes + rng() % 1000, rng(), random_digest()};

    // Size: what the manifest would be without SHA-256 members, as it is, and signed.
    nlohmann::json plain = m.to_json();
    const std::string with_hashes = plain.dump(1);
    nlohmann::json without = plain;
    without["tokens"].erase("sha256");
    for (auto& u : without["units"])
        for (auto& [level, o] : u["objects"].items()) o.erase("sha256");
    const SigningKey key = SigningKey::generate();
    nlohmann::json signed_json = plain;
    sign_manifest_json(signed_json, key);
    const std::string signed_text = signed_json.dump(1);
    std::printf(
        "manifest of %d units x %zu levels: %.1f KB without SHA-256, %.1f KB with, %.1f KB "
        "signed (x%.2f)\n",
        chunks * layers, levels.size(), without.dump(1).size() / 1e3, with_hashes.size() / 1e3,
        signed_text.size() / 1e3,
        static_cast<double>(signed_text.size()) / static_cast<double>(without.dump(1).size()));

    const TrustPolicy none, trust({key.public_key()});
    const double parse_s =
        time_median(repeats, [&] { (void)none.check_manifest(signed_text, m.context_id); });
    const double verify_s =
        time_median(repeats, [&] { (void)trust.check_manifest(signed_text, m.context_id); });
    std::printf(
        "manifest: parse %.2f ms without a trust key, parse + verify %.2f ms with (x%.2f)\n",
        parse_s * 1e3, verify_s * 1e3, verify_s / parse_s);

    std::vector<uint8_t> unit(unit_bytes);
    for (auto& b : unit) b = static_cast<uint8_t>(rng());
    const int per_run = 50;
    const double xxh_s = time_median(repeats, [&] {
        uint64_t sink = 0;
        for (int i = 0; i < per_run; ++i) sink += object_checksum(unit);
        if (sink == 42) std::printf(" ");
    });
    const double sha_s = time_median(repeats, [&] {
        uint8_t sink = 0;
        for (int i = 0; i < per_run; ++i) sink ^= sha256(unit)[0];
        if (sink == 42) std::printf(" ");
    });
    const double mb = static_cast<double>(unit_bytes) * per_run / 1e6;
    std::printf(
        "unit hashing, one core: xxhash64 %.0f MB/s, SHA-256 %.0f MB/s (x%.1f slower); a "
        "%.0f KB unit costs %.2f ms of SHA-256, %.0fx faster than a 100 Mbit/s link "
        "delivers it\n",
        mb / xxh_s, mb / sha_s, sha_s / xxh_s, unit_bytes / 1e3, sha_s / per_run * 1e3,
        (mb / sha_s) / 12.5);
    return 0;
}
