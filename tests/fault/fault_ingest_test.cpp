// The fault matrix, ingest rows: a disk that fills up mid-ingest and `kill -9` of the ingest
// process at any moment. Either the context is not visible at all, or it is complete, intact and
// signed; a re-ingest always finishes it, and a device that trusts the key then gets every unit.
#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <thread>

#include "cloud/ingest.h"
#include "fault_support.h"
#include "net/server.h"
#include "store/content_id.h"
#include "store/fs_backend.h"
#include "test_support.h"
#include "testkit/random_model.h"

namespace sparkv {
namespace {

using testing::TempDir;

class IngestFaults : public ::testing::Test {
  protected:
    void SetUp() override {
        RandomModelSpec spec;
        spec.n_layer = 3;
        write_random_model(spec, dir_.file("model.gguf"));
        model_ = Model::load(dir_.file("model.gguf"));
        for (int i = 0; i < 200; ++i) tokens_.push_back((i * 37 + 11) % 300);
        key_.write_files(dir_.file("cloud"));
        options_.chunk_tokens = 32;
        options_.levels = {"fp16", "q5h"};
        options_.threads = 1;
        options_.signing_key = &key_;
    }

    // What a device that trusts the key sees: the manifest verifies, every object matches it,
    // and the token ids hash to the id (read_tokens); they are the fixture's own unless
    // `any_tokens` (contexts ingested from a document by the CLI).
    void expect_complete_and_signed(const std::string& store_dir, const std::string& id,
                                    bool any_tokens = false) {
        auto backend = std::make_shared<FilesystemBackend>(store_dir);
        ContextStore store(backend);
        ASSERT_TRUE(store.is_complete(id, ContextStore::Check::checksums));
        const TrustPolicy trust({key_.public_key()});
        const Manifest m = trust.check_manifest(testing::get_text(*backend, manifest_key(id)), id,
                                                hex64(model_->fingerprint()));
        for (const auto& u : m.units) {
            for (const auto& level : m.levels) {
                EXPECT_TRUE(trust.object_matches(m.object(u.t, u.l, level),
                                                 store.read_unit(m, level, u.t, u.l)));
            }
        }
        const auto tokens = store.read_tokens(m);
        if (!any_tokens) {
            EXPECT_EQ(tokens, tokens_);
        }
    }

    TempDir dir_;
    std::unique_ptr<Model> model_;
    std::vector<int32_t> tokens_;
    SigningKey key_ = SigningKey::generate();
    IngestOptions options_;
};

TEST_F(IngestFaults, DiskFullAtAnyWriteLeavesNothingVisibleAndReingestCompletes) {
    // 1 token object + 7 chunks x 3 layers x 2 levels + the manifest = 44 writes.
    const int total_writes = 1 + 7 * 3 * 2 + 1;
    for (int fail_at : {1, 2, 20, total_writes - 1, total_writes}) {
        const std::string store_dir = dir_.file(fmt::format("store{}", fail_at));
        auto full = std::make_shared<testing::DiskFullBackend>(store_dir, fail_at);
        ContextStore store(full);
        try {
            ingest_context(*model_, store, tokens_, options_);
            FAIL() << "ingest succeeded on a full disk (write " << fail_at << ")";
        } catch (const Error& e) {
            const std::string what = e.what();
            EXPECT_NE(what.find("No space left on device"), std::string::npos) << what;
            if (fail_at < total_writes) {  // the manifest write fails inside commit itself
                EXPECT_NE(what.find("nothing was committed"), std::string::npos) << what;
            }
        }
        // Ingest stops at the first failed write; unit puts already in flight (up to 8 run
        // concurrently, cloud/ingest.cpp) may still be attempted, and fail too.
        EXPECT_GE(full->puts(), fail_at);
        EXPECT_LE(full->puts(), fail_at + 8);
        EXPECT_TRUE(store.list_contexts().empty()) << "write " << fail_at;

        // The disk has room again: the same ingest completes and is signed.
        ContextStore healthy(std::make_shared<FilesystemBackend>(store_dir));
        const IngestResult r = ingest_context(*model_, healthy, tokens_, options_);
        EXPECT_FALSE(r.already_present);
        EXPECT_EQ(r.signed_by, key_.public_key().id());
        expect_complete_and_signed(store_dir, r.context_id);
    }
}

TEST_F(IngestFaults, AnUnsignedContextIsVerifiedAndResignedNotRecomputed) {
    const std::string store_dir = dir_.file("store");
    ContextStore store(std::make_shared<FilesystemBackend>(store_dir));
    IngestOptions unsigned_options = options_;
    unsigned_options.signing_key = nullptr;
    const IngestResult first = ingest_context(*model_, store, tokens_, unsigned_options);
    EXPECT_TRUE(first.signed_by.empty());
    const IngestResult second = ingest_context(*model_, store, tokens_, options_);
    EXPECT_TRUE(second.already_present);
    EXPECT_TRUE(second.resigned);
    expect_complete_and_signed(store_dir, first.context_id);
    const IngestResult third = ingest_context(*model_, store, tokens_, options_);
    EXPECT_TRUE(third.already_present);
    EXPECT_FALSE(third.resigned);
    // A damaged object is not vouched for: the context is recomputed instead.
    testing::flip_bit(std::filesystem::path(store_dir) /
                          unit_key(store.read_manifest(first.context_id), "q5h", 2, 1),
                      40, 0);
    const SigningKey other = SigningKey::generate();
    IngestOptions other_options = options_;
    other_options.signing_key = &other;
    const IngestResult fourth = ingest_context(*model_, store, tokens_, other_options);
    EXPECT_FALSE(fourth.already_present);
    EXPECT_TRUE(store.is_complete(first.context_id, ContextStore::Check::checksums));
}

// `sparkv ingest` killed with SIGKILL at moments spread over its run, then run again.
TEST_F(IngestFaults, KillNineAtRandomPointsThenReingest) {
    std::string doc;
    for (int i = 0; doc.size() < 1500; ++i)
        doc += fmt::format("Line {} of a document about lighthouses and the sea. ", i);
    std::ofstream(dir_.file("doc.txt")) << doc;
    const std::string store_dir = dir_.file("store"), model = dir_.file("model.gguf"),
                      doc_path = dir_.file("doc.txt"), key = dir_.file("cloud.key");
    auto run_ingest = [&]() -> pid_t {
        const pid_t child = fork();
        if (child == 0) {
            const int null = ::open("/dev/null", O_WRONLY);
            dup2(null, STDOUT_FILENO);
            dup2(null, STDERR_FILENO);
            testing::close_inherited_fds();
            execl(SPARKV_BINARY, SPARKV_BINARY, "ingest", "--model", model.c_str(), "--store",
                  store_dir.c_str(), "--doc", doc_path.c_str(), "--chunk-tokens", "64", "--levels",
                  "fp16,q5h", "--threads", "1", "--sign-key", key.c_str(), nullptr);
            _exit(127);
        }
        return child;
    };
    auto wait_exit = [](pid_t child) {
        int status = 0;
        waitpid(child, &status, 0);
        return status;
    };
    // One uncontended run gives the time scale (and the context id).
    const auto start = std::chrono::steady_clock::now();
    ASSERT_EQ(wait_exit(run_ingest()), 0);
    const auto duration = std::chrono::steady_clock::now() - start;
    ContextStore timing(std::make_shared<FilesystemBackend>(store_dir));
    const auto ids = timing.list_contexts();
    ASSERT_EQ(ids.size(), 1u);
    const std::string id = ids[0];
    expect_complete_and_signed(store_dir, id, true);
    timing.remove_context(id);

    int absent = 0, complete = 0;
    for (int round = 0; round < 10; ++round) {
        const pid_t child = run_ingest();
        std::this_thread::sleep_for(duration * round / 8);
        kill(child, SIGKILL);
        wait_exit(child);
        ContextStore store(std::make_shared<FilesystemBackend>(store_dir));
        if (store.has_manifest(id)) {
            ++complete;
            expect_complete_and_signed(store_dir, id,
                                       true);  // never a manifest without its objects
        } else {
            ++absent;
        }
        // Re-ingest (a no-op if the killed run had finished) always ends complete.
        ASSERT_EQ(wait_exit(run_ingest()), 0) << "round " << round;
        expect_complete_and_signed(store_dir, id, true);
        store.remove_context(id);
    }
    RecordProperty("absent_after_kill", absent);
    RecordProperty("complete_after_kill", complete);
    EXPECT_GT(absent, 0);  // early kills must have left nothing
    // Temporary files of killed writers are never visible as objects; old ones can be swept.
    FilesystemBackend backend(store_dir);
    backend.remove_stale_temp_files(std::chrono::seconds(0));
    EXPECT_TRUE(backend.list("contexts").empty());
}

}  // namespace
}  // namespace sparkv
