// End to end: ingest -> serve -> ask, with every policy and every failure path of the runtime.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <thread>

#include "common/error.h"
#include "engine/prompt.h"
#include "runtime_fixture.h"
#include "store/signing.h"
#include "store/trust.h"

namespace sparkv {
namespace {

using plan::Policy;

class AskTest : public ::testing::Test {
  protected:
    static void SetUpTestSuite() { world_ = new testing::RuntimeWorld(); }
    static void TearDownTestSuite() {
        delete world_;
        world_ = nullptr;
    }
    void SetUp() override { world_->serve(); }
    void TearDown() override { world_->server.reset(); }

    static double max_rel_error(const std::vector<float>& a, const std::vector<float>& b) {
        EXPECT_EQ(a.size(), b.size());
        float scale = 0;
        for (float x : b) scale = std::max(scale, std::abs(x));
        double worst = 0;
        for (size_t i = 0; i < a.size() && i < b.size(); ++i)
            worst = std::max(worst, static_cast<double>(std::abs(a[i] - b[i]) / scale));
        return worst;
    }

    // Every unit streamed at `level`: the tiny test model computes faster than any link, so the
    // policies would rightly compute; the failure paths need the stream lane busy.
    static runtime::AskOptions stream_all(const std::string& level = "fp16") {
        auto ask = world_->ask(Policy::stream, level);
        const auto shape =
            plan::ContextShape::uniform(static_cast<int64_t>(world_->tokens.size()), 32, 4);
        ask.fixed_plan =
            plan::Plan::from_prefixes(shape, std::vector<int32_t>(6, 0), level == "fp16" ? 0 : 1);
        ask.fixed_plan->policy = "stream-all";
        return ask;
    }

    std::vector<int32_t> question_ids() const {
        return question_tokens(*world_->model, "what comes next?", PromptFormat::raw);
    }

    static testing::RuntimeWorld* world_;
};

testing::RuntimeWorld* AskTest::world_ = nullptr;

// With the lossless level, every policy's logits are those of one local prefill and every
// policy answers exactly what local answers.
TEST_F(AskTest, LosslessLevelGivesTheLocalAnswerWithEveryPolicy) {
    runtime::Device device(world_->device_options());
    const auto reference = world_->local_logits(question_ids());
    const auto local = device.ask(world_->ask(Policy::local));
    EXPECT_EQ(local.units_streamed, 0u);
    EXPECT_EQ(local.units_computed, 24u);
    EXPECT_LT(max_rel_error(local.first_logits, reference), 1e-4);
    for (Policy policy : {Policy::stream, Policy::cake, Policy::sparkv, Policy::oracle}) {
        auto ask = world_->ask(policy);
        if (policy == Policy::oracle) ask.realised_link = runtime::RealisedLink{{}, 1, 1000};
        const auto r = device.ask(ask);
        SCOPED_TRACE(r.policy);
        EXPECT_EQ(r.units_computed + r.units_streamed, 24u);
        EXPECT_TRUE(r.failures.empty());
        EXPECT_LT(max_rel_error(r.first_logits, reference), 1e-4);
        EXPECT_EQ(r.answer_tokens, local.answer_tokens);
        EXPECT_GT(r.ttft_ms, 0);
        EXPECT_GT(r.energy.total_j, 0);
        EXPECT_GE(r.bytes_received, r.units_streamed * 1000);
    }
}

TEST_F(AskTest, AnAllStreamPlanStreamsAtItsLevel) {
    runtime::Device device(world_->device_options());
    const auto r = device.ask(stream_all("q5h"));
    EXPECT_EQ(r.units_streamed, 24u);
    EXPECT_EQ(r.level, "q5h");
    EXPECT_EQ(r.answer_tokens.size(), 8u);
    // The timeline holds every unit once, and nothing after the first token but the answer.
    size_t streamed = 0;
    for (const auto& e : r.timeline->events()) streamed += e.kind == runtime::EventKind::stream;
    EXPECT_EQ(streamed, 24u);
}

TEST_F(AskTest, ACorruptUnitIsDetectedAndRecomputed) {
    // Flip one byte of a stored lossless unit: the checksum catches it, the compute lane
    // recomputes that unit, and the answer is still exactly the lossless one.
    const std::string file = world_->unit_file("fp16", 2, 1);
    std::vector<char> bytes;
    {
        std::ifstream in(file, std::ios::binary);
        bytes.assign(std::istreambuf_iterator<char>(in), {});
    }
    std::vector<char> corrupt = bytes;
    corrupt[corrupt.size() / 2] ^= 0x40;
    std::ofstream(file, std::ios::binary | std::ios::trunc)
        .write(corrupt.data(), static_cast<std::streamsize>(corrupt.size()));

    runtime::Device device(world_->device_options());
    const auto local = device.ask(world_->ask(Policy::local));
    const auto r = device.ask(stream_all());
    std::ofstream(file, std::ios::binary | std::ios::trunc)
        .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    ASSERT_EQ(r.failures.size(), 1u);
    EXPECT_EQ(r.failures[0].kind, FailureKind::checksum_mismatch);
    EXPECT_EQ(r.failures[0].unit.t, 2);
    EXPECT_EQ(r.failures[0].unit.l, 1);
    EXPECT_GE(r.units_computed, 1u);
    EXPECT_EQ(r.answer_tokens, local.answer_tokens);
    EXPECT_LT(max_rel_error(r.first_logits, local.first_logits), 1e-4);
}

TEST_F(AskTest, AUnitThatPassesItsChecksumButCannotBeDecodedIsRecomputed) {
    // Swap two stored units together with their manifest entries: sizes and checksums match, but
    // each unit's own header names the other (t, l), so the decoder refuses both.
    ContextStore store(world_->backend);
    const std::string manifest_path =
        (world_->backend->root() / manifest_key(world_->context_id)).string();
    const std::string original = testing::read_file(manifest_path);
    const std::string a = world_->unit_file("fp16", 1, 1), b = world_->unit_file("fp16", 2, 1);
    const std::string bytes_a = testing::read_file(a), bytes_b = testing::read_file(b);
    Manifest m = Manifest::parse(original);
    std::swap(m.unit(1, 1).objects[0], m.unit(2, 1).objects[0]);
    testing::write_file(manifest_path, m.dump());
    testing::write_file(a, bytes_b);
    testing::write_file(b, bytes_a);

    runtime::Device device(world_->device_options());
    const auto r = device.ask(stream_all());
    testing::write_file(manifest_path, original);
    testing::write_file(a, bytes_a);
    testing::write_file(b, bytes_b);
    ASSERT_EQ(r.failures.size(), 2u);
    for (const auto& f : r.failures) EXPECT_EQ(f.kind, FailureKind::decode) << f.reason;
    EXPECT_EQ(r.units_computed, 2u);
    const auto local = device.ask(world_->ask(Policy::local));
    EXPECT_EQ(r.answer_tokens, local.answer_tokens);
}

TEST_F(AskTest, TheControllerMovesUnitsToTheComputeLaneWhenTheLinkIsSlow) {
    // Everything planned for a 1 Mbit/s link that the tiny model out-computes: after its warm-up
    // the controller hands the stream lane's frontier units to the compute lane.
    world_->server.reset();
    LinkConfig slow;
    slow.rate_mbps = 1;
    world_->serve(slow);
    runtime::Device device(world_->device_options());
    const auto r = device.ask(stream_all());
    EXPECT_GT(r.controller_migrations, 0);
    EXPECT_GT(r.units_computed, 0u);
    EXPECT_EQ(r.units_computed + r.units_streamed, 24u);
    EXPECT_TRUE(r.failures.empty());
    EXPECT_EQ(r.answer_tokens, device.ask(world_->ask(Policy::local)).answer_tokens);
}

// The link speed one request observed is what the next request to that server plans with, for
// DeviceOptions::link_memory_s; before any request (or after), the manifest fetch's estimate.
TEST(LinkMemory, TheNextRequestPlansWithTheLinkTheLastOneSaw) {
    // Units above the bandwidth estimator's 16 KB floor: 4 chunks of 128 tokens.
    testing::RuntimeWorld world(512, 128);
    LinkConfig link;
    link.rate_mbps = 40;
    world.serve(link);
    auto all_streamed = world.ask(Policy::stream, "fp16");
    all_streamed.fixed_plan = plan::Plan::from_prefixes(plan::ContextShape::uniform(512, 128, 4),
                                                        std::vector<int32_t>(4, 0), 0);
    for (double memory_s : {30.0, 0.0}) {
        auto options = world.device_options();
        options.link_memory_s = memory_s;
        runtime::Device device(options);
        EXPECT_EQ(device.ask(all_streamed).bandwidth_source, "probe");
        const auto second = device.ask(all_streamed);
        if (memory_s > 0) {
            EXPECT_EQ(second.bandwidth_source, "recent");
            // Per-unit throughput of a paced 40 Mbit/s link.
            EXPECT_GT(second.planned_mbps, 20);
            EXPECT_LT(second.planned_mbps, 120);
        } else {
            EXPECT_EQ(second.bandwidth_source, "probe");
        }
        // A local request streams nothing and leaves the memory as it was.
        device.ask(world.ask(Policy::local));
        EXPECT_EQ(device.ask(all_streamed).bandwidth_source, memory_s > 0 ? "recent" : "probe");
    }
}

// With a trust key the runtime refuses an unsigned context or one signed by another key, and
// answers exactly as before once the context is signed by the trusted key.
TEST_F(AskTest, ATrustKeyRefusesUnsignedOrForeignContexts) {
    const SigningKey cloud = SigningKey::generate();
    const SigningKey stranger = SigningKey::generate();
    runtime::Device device(world_->device_options());
    const auto local = device.ask(world_->ask(Policy::local));
    auto ask = stream_all();
    ask.trust = std::make_shared<const TrustPolicy>(std::vector<PublicKey>{cloud.public_key()});
    ask.compute_untrusted = false;
    EXPECT_THROW(device.ask(ask), UntrustedContext);  // unsigned

    // By default a refused context is computed locally from its token ids, nothing streamed.
    for (Policy policy : {Policy::sparkv, Policy::oracle}) {
        auto fallback = world_->ask(policy);
        fallback.trust = ask.trust;
        if (policy == Policy::oracle) fallback.realised_link = runtime::RealisedLink{{}, 1, 1000};
        const auto computed = device.ask(fallback);
        EXPECT_NE(computed.trust_refusal.find("refused"), std::string::npos)
            << computed.trust_refusal;
        EXPECT_EQ(computed.units_streamed, 0u);
        EXPECT_EQ(computed.units_computed, 24u);
        EXPECT_EQ(computed.answer_tokens, local.answer_tokens);
    }
    auto fixed = stream_all();
    fixed.trust = ask.trust;
    EXPECT_EQ(device.ask(fixed).units_streamed, 0u);  // not even a fixed all-stream plan

    // Re-signing a present context verifies its objects and signs the same attempt.
    const auto resign = [&](const SigningKey& key) {
        ContextStore store(world_->backend);
        IngestOptions io;
        io.chunk_tokens = 32;
        io.levels = {"fp16", "q5h"};
        io.threads = 1;
        io.prompt_format = "raw";
        io.signing_key = &key;
        const auto r = ingest_context(*world_->model, store, world_->tokens, io);
        EXPECT_TRUE(r.already_present);
        EXPECT_TRUE(r.resigned);
    };
    resign(stranger);
    EXPECT_THROW(device.ask(ask), UntrustedContext);  // signed, but not by a trusted key
    resign(cloud);
    const auto r = device.ask(ask);
    EXPECT_TRUE(r.failures.empty());
    EXPECT_EQ(r.answer_tokens, local.answer_tokens);
    EXPECT_LT(max_rel_error(r.first_logits, local.first_logits), 1e-4);
}

TEST_F(AskTest, TheAnswerComesWhenTheServerDiesMidRun) {
    // A slow link keeps the stream lane busy; the server goes away mid-run. Every unit it did not
    // deliver is computed, and nothing waits for the dead link.
    world_->server.reset();
    LinkConfig slow;
    slow.rate_mbps = 2;
    world_->serve(slow);
    runtime::Device device(world_->device_options());
    const auto local = device.ask(world_->ask(Policy::local));
    runtime::AskResult r;
    std::thread asker([&] { r = device.ask(stream_all()); });
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
    world_->server->stop();
    asker.join();
    EXPECT_FALSE(r.failures.empty());
    EXPECT_GT(r.units_computed, 0u);
    EXPECT_EQ(r.units_computed + r.units_streamed, 24u);
    EXPECT_EQ(r.answer_tokens, local.answer_tokens);
}

TEST_F(AskTest, BadRequestsAreClearErrors) {
    runtime::Device device(world_->device_options());
    auto ask = world_->ask(Policy::sparkv);
    ask.context_id = std::string(64, 'a');
    EXPECT_THROW(device.ask(ask), Error);  // unknown context: 404
    ask = world_->ask(Policy::sparkv);
    ask.level = "q9z";
    EXPECT_THROW(device.ask(ask), Error);
    ask = world_->ask(Policy::oracle);
    EXPECT_THROW(device.ask(ask), Error);  // the oracle needs the realised link
    ask = world_->ask(Policy::sparkv);
    ask.server = "nonsense";
    EXPECT_THROW(device.ask(ask), Error);
    ask = world_->ask(Policy::sparkv);
    ask.question.clear();
    EXPECT_THROW(device.ask(ask), Error);
    // A context ingested with other weights is refused, not silently used.
    RandomModelSpec other;
    other.n_layer = 4;
    other.seed = 99;
    world_->dir.file("other.gguf");
    write_random_model(other, world_->dir.file("other.gguf"));
    auto options = world_->device_options();
    options.model_path = world_->dir.file("other.gguf");
    options.profile_path.clear();
    const auto other_model = Model::load(options.model_path);
    runtime::ProfileOptions po;
    po.samples = 30;
    po.max_span = 256;
    po.chunk_tokens = 32;
    po.contention = false;
    po.mlp_epochs = 5;
    options.profile_path = world_->dir.file("other-profile.json");
    runtime::measure_device_profile(*other_model, po).save(options.profile_path);
    runtime::Device other_device(options);
    try {
        other_device.ask(world_->ask(Policy::sparkv));
        FAIL() << "a context of other weights was accepted";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("was ingested with model"), std::string::npos)
            << e.what();
    }
}

}  // namespace
}  // namespace sparkv

namespace sparkv::runtime {
namespace {

TEST(ChooseLevel, WantedThenTheModelsDefaultThenQ5hThenTheSmallest) {
    ModelInfo info;
    info.fingerprint = "00000000000000aa";
    info.n_layers = 1;
    info.n_kv_heads = 1;
    info.head_dim = 4;
    Manifest m = make_manifest("ctx", info, 8, 8, {"fp16", "q5h", "c5", "q3h"});
    EXPECT_EQ(choose_level(m, "q3h", "c5"), 3);
    EXPECT_EQ(choose_level(m, "", "c5"), 2);  // the model's default, when stored
    EXPECT_EQ(choose_level(m, "", "c4"), 1);  // not stored: q5h
    EXPECT_EQ(choose_level(m, "", ""), 1);
    EXPECT_THROW(choose_level(m, "c6", "c5"), Error);  // asked for, not stored
}

}  // namespace
}  // namespace sparkv::runtime
