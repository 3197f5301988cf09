// The public facade on a small random-weight model: one rule for prompts and contexts longer than
// the model's training context (generate and ingest alike), and ingest's defaults from one home.
#include <gtest/gtest.h>

#include <filesystem>

#include "cloud/ingest.h"
#include "sparkv/sparkv.h"
#include "store/context_store.h"
#include "store/fs_backend.h"
#include "test_support.h"
#include "testkit/random_model.h"

namespace sparkv {
namespace {

class ApiTest : public ::testing::Test {
  protected:
    void SetUp() override {
        RandomModelSpec spec;
        spec.n_layer = 2;
        spec.n_ctx = 48;  // a short training context, so a sentence of words exceeds it
        write_random_model(spec, dir_.file("model.gguf"));
        for (int i = 0; i < 40; ++i) long_text_ += "word" + std::to_string(i) + " ";
    }
    testing::TempDir dir_;
    std::string long_text_;  // well over 48 tokens
};

template <typename F>
std::string error_of(F&& f) {
    try {
        f();
    } catch (const Error& e) {
        return e.what();
    }
    return {};
}

TEST_F(ApiTest, GenerateRefusesPromptsPastTheTrainingContextUnlessAllowed) {
    GenerationRequest req;
    req.model_path = dir_.file("model.gguf");
    req.prompt = long_text_;
    req.n_predict = 2;
    req.threads = 1;
    const std::string error = error_of([&] { generate_text(req); });
    EXPECT_NE(error.find("more than the model's 48-token context"), std::string::npos) << error;
    EXPECT_NE(error.find("--allow-long-context"), std::string::npos) << error;

    req.allow_long_context = true;
    const auto r = generate_text(req);
    EXPECT_GT(r.prompt_tokens, 48);
    EXPECT_FALSE(r.tokens.empty());

    req.allow_long_context = false;  // a short prompt whose answer would cross the limit
    req.prompt = "word1 word2";
    req.n_predict = 60;
    EXPECT_NE(error_of([&] { generate_text(req); }).find("+ answer (60)"), std::string::npos);
}

TEST_F(ApiTest, IngestFollowsTheSameRuleAndIngestsDefaults) {
    IngestRequest req;
    req.model_path = dir_.file("model.gguf");
    req.store_dir = dir_.file("store");
    req.document_text = long_text_;
    req.format = "raw";
    req.threads = 1;
    const std::string error = error_of([&] { ingest_document(req); });
    EXPECT_NE(error.find("ingest: the context:"), std::string::npos) << error;
    EXPECT_NE(error.find("--allow-long-context"), std::string::npos) << error;

    req.allow_long_context = true;
    const auto r = ingest_document(req);
    EXPECT_GT(r.tokens, 48);
    // Left at 0 / empty, the request takes ingest's own defaults (IngestOptions).
    const IngestOptions defaults;
    EXPECT_EQ(r.chunks, (r.tokens + defaults.chunk_tokens - 1) / defaults.chunk_tokens);
    ASSERT_EQ(r.bytes_per_level.size(), defaults.levels.size());
    for (size_t i = 0; i < defaults.levels.size(); ++i)
        EXPECT_EQ(r.bytes_per_level[i].first, defaults.levels[i]);
    ContextStore store(std::make_shared<FilesystemBackend>(dir_.file("store")));
    EXPECT_EQ(store.read_manifest(r.context_id).chunk_size, defaults.chunk_tokens);
}

}  // namespace
}  // namespace sparkv
