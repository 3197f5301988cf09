// A poisoned store never changes an answer when the device trusts a key. The store's units of one
// chunk are replaced by valid encodings of other KV (checksums recomputed, so nothing "looks"
// damaged), and the manifest is re-signed by a foreign key, left unsigned, or signed by the cloud
// with only the forgeable xxhash64 matching. The device streams what it trusts, computes the
// rest with the engine, and must answer exactly as from the untouched lossless (fp16) store.
// Without a trust key the same poison does change the answer: the test can fail.
#include <gtest/gtest.h>

#include <fstream>
#include <random>
#include <set>
#include <sstream>

#include "cloud/ingest.h"
#include "codec/codec.h"
#include "common/fp16.h"
#include "common/paths.h"
#include "engine/engine.h"
#include "engine/generate.h"
#include "engine/prompt.h"
#include "fault_support.h"
#include "net/server.h"
#include "store/content_id.h"
#include "store/manifest_signature.h"
#include "test_support.h"

namespace sparkv {
namespace {

constexpr int kAnswerTokens = 12;
constexpr int32_t kChunk = 64;

struct Answer {
    std::vector<int32_t> tokens;
    bool manifest_refused = false;
    size_t streamed = 0, refused_units = 0;
};

class PoisonedStore : public ::testing::Test {
  protected:
    void SetUp() override {
        model_path_ = testing::reference_model_or_skip();
        if (model_path_.empty()) GTEST_SKIP() << "reference model not fetched";
        model_ = Model::load(model_path_);
        std::ifstream in(demo_text_path());
        std::ostringstream text;
        text << in.rdbuf();
        context_ = context_tokens(*model_, text.str().substr(0, 900), PromptFormat::raw);
        ASSERT_GT(context_.size(), 2u * kChunk);
        question_ =
            question_tokens(*model_, "\n\nThe main subject of this message is", PromptFormat::raw);
        backend_ = std::make_shared<FilesystemBackend>(dir_.file("store"));
        ContextStore store(backend_);
        IngestOptions options;
        options.chunk_tokens = kChunk;
        options.levels = {"fp16"};
        options.signing_key = &cloud_;
        id_ = ingest_context(*model_, store, context_, options).context_id;
        clean_ = store.read_manifest(id_);
        ServerConfig config;
        server_ = std::make_unique<UnitServer>(backend_, config);
        server_->start();
    }

    // Streams the context through a client with `trust` (null: none), computes every unit it
    // did not get, prefills the question and answers greedily.
    Answer answer(std::shared_ptr<const TrustPolicy> trust) {
        const auto& c = model_->config();
        const std::string fingerprint = hex64(model_->fingerprint());
        Engine engine(*model_, {.n_ctx = static_cast<int64_t>(context_.size() + question_.size()) +
                                         kAnswerTokens,
                                .n_threads = 2});
        Answer out;
        std::set<std::pair<int32_t, int32_t>> have;
        ClientConfig config;
        config.port = server_->port();
        config.trust = std::move(trust);
        config.model_fingerprint = fingerprint;
        UnitClient client(config);
        try {
            const Manifest& m = client.fetch_manifest(id_);
            const auto fetched = testing::fetch_all(client, "fp16");
            out.refused_units = fetched.failures.size();
            codec::Decoder decoder;
            std::vector<uint16_t> k, v;
            for (const auto& [unit, bytes] : fetched.delivered) {
                const auto& chunk = m.chunks[static_cast<size_t>(unit.first)];
                const codec::UnitShape shape{static_cast<uint32_t>(chunk.n_tokens),
                                             static_cast<uint16_t>(c.n_kv_head),
                                             static_cast<uint16_t>(c.head_dim)};
                k.resize(shape.elements());
                v.resize(shape.elements());
                try {
                    decoder.decode(bytes,
                                   {model_->fingerprint(), static_cast<uint32_t>(unit.first),
                                    static_cast<uint32_t>(unit.second)},
                                   shape, codec::contiguous(k.data(), shape),
                                   codec::contiguous(v.data(), shape));
                } catch (const Error&) {
                    continue;  // computed below
                }
                engine.import_kv(unit.second, chunk.first_token, chunk.n_tokens, k.data(),
                                 v.data());
                have.insert(unit);
            }
            out.streamed = have.size();
        } catch (const UntrustedContext&) {
            out.manifest_refused = true;
        }
        // Compute what is missing, chunk by chunk: layers whose KV is present are run over the
        // cached KV only as far as a deeper missing unit needs their hidden state.
        for (const auto& chunk : clean_.chunks) {
            int deepest_missing = -1;
            for (int l = 0; l < c.n_layer; ++l)
                if (!have.count({chunk.index, l})) deepest_missing = l;
            if (deepest_missing < 0) continue;
            HiddenState h =
                engine.embed(std::span(context_).subspan(static_cast<size_t>(chunk.first_token),
                                                         static_cast<size_t>(chunk.n_tokens)),
                             chunk.first_token);
            for (int l = 0; l <= deepest_missing; ++l) {
                if (have.count({chunk.index, l}))
                    engine.run_layer_over_cached_kv(h);
                else if (l < c.n_layer - 1)
                    engine.run_layer(h);
                else
                    engine.project_kv(h);
            }
        }
        const auto n_context = static_cast<int64_t>(context_.size());
        GenerateOptions go;
        go.n_predict = kAnswerTokens;
        go.stop_at_end_of_generation = false;
        out.tokens = generate_from(engine, engine.prefill(question_, n_context),
                                   n_context + static_cast<int64_t>(question_.size()), go)
                         .tokens;
        return out;
    }

    // Replaces every unit of chunk 1 with a valid fp16 encoding of noise and returns the
    // manifest that describes the poisoned objects (checksums and hashes recomputed).
    Manifest poison_chunk_one() {
        const auto& c = model_->config();
        Manifest m = clean_;
        const auto& chunk = m.chunks[1];
        const codec::UnitShape shape{static_cast<uint32_t>(chunk.n_tokens),
                                     static_cast<uint16_t>(c.n_kv_head),
                                     static_cast<uint16_t>(c.head_dim)};
        std::mt19937 rng(7);
        std::normal_distribution<float> noise(0.0f, 4.0f);
        std::vector<uint16_t> k(shape.elements()), v(shape.elements());
        for (int l = 0; l < c.n_layer; ++l) {
            for (auto& x : k) x = fp32_to_fp16(noise(rng));
            for (auto& x : v) x = fp32_to_fp16(noise(rng));
            const auto bytes = codec::encode_unit(
                {model_->fingerprint(), 1, static_cast<uint32_t>(l)}, shape,
                codec::contiguous(k.data(), shape), codec::contiguous(v.data(), shape),
                codec::EncodeOptions(codec::level_from_name("fp16"),
                                     static_cast<uint32_t>(c.n_layer)));
            backend_->put(unit_key(m, "fp16", 1, l), bytes);
            m.unit(1, l).objects[0] = {bytes.size(), object_checksum(bytes), sha256(bytes)};
        }
        return m;
    }

    void write_manifest(const Manifest& m, const SigningKey* key) {
        nlohmann::json j = m.to_json();
        if (key) sign_manifest_json(j, *key);
        testing::put_text(*backend_, manifest_key(id_), j.dump(1));
    }

    std::shared_ptr<const TrustPolicy> trust_cloud() const {
        return std::make_shared<const TrustPolicy>(std::vector<PublicKey>{cloud_.public_key()});
    }

    testing::TempDir dir_;
    std::string model_path_;
    std::unique_ptr<Model> model_;
    std::vector<int32_t> context_, question_;
    std::shared_ptr<FilesystemBackend> backend_;
    SigningKey cloud_ = SigningKey::generate();
    std::string id_;
    Manifest clean_;
    std::unique_ptr<UnitServer> server_;
};

TEST_F(PoisonedStore, NeverChangesTheAnswerUnderATrustKey) {
    const Answer lossless = answer(trust_cloud());
    ASSERT_FALSE(lossless.manifest_refused);
    ASSERT_EQ(lossless.streamed, clean_.units.size());  // everything streamed: the reference
    const SigningKey attacker = SigningKey::generate();
    const Manifest poisoned = poison_chunk_one();

    // Re-signed by a foreign key, or unsigned: the whole context is refused and computed.
    for (const SigningKey* key : {&attacker, static_cast<const SigningKey*>(nullptr)}) {
        write_manifest(poisoned, key);
        const Answer a = answer(trust_cloud());
        EXPECT_TRUE(a.manifest_refused);
        EXPECT_EQ(a.tokens, lossless.tokens);
    }
    // The poison is real: a device without a trust key takes it and answers differently.
    write_manifest(poisoned, &attacker);
    const Answer fooled = answer(nullptr);
    EXPECT_EQ(fooled.streamed, clean_.units.size());
    EXPECT_NE(fooled.tokens, lossless.tokens);

    // Signed by the cloud with the xxhash64 of the poison but the SHA-256 of the real KV (an
    // xxhash64 collision): the poisoned units fail their hash and are computed, the rest stream.
    Manifest collided = poisoned;
    for (int l = 0; l < collided.n_layers(); ++l)
        collided.unit(1, l).objects[0].sha256 = clean_.unit(1, l).objects[0].sha256;
    write_manifest(collided, &cloud_);
    const Answer partial = answer(trust_cloud());
    EXPECT_FALSE(partial.manifest_refused);
    EXPECT_EQ(partial.refused_units, static_cast<size_t>(clean_.n_layers()));
    EXPECT_EQ(partial.streamed, clean_.units.size() - static_cast<size_t>(clean_.n_layers()));
    EXPECT_EQ(partial.tokens, lossless.tokens);
}

}  // namespace
}  // namespace sparkv
