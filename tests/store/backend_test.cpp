// The store's behaviour on every backend: the filesystem, and S3 against a real Garage started
// by the test (garage_support.h). Each S3 test works under its own key prefix of the bucket.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

#include "common/error.h"
#include "garage_support.h"
#include "store/content_id.h"
#include "store/context_store.h"
#include "store/fs_backend.h"
#include "store/garbage.h"
#include "store/s3_backend.h"
#include "store_helpers.h"
#include "test_support.h"

namespace sparkv {
namespace {

using testing::ingest;
using testing::random_bytes;
using testing::skeleton;

enum class Kind { filesystem, garage };

class Backends : public ::testing::TestWithParam<Kind> {
  protected:
    void SetUp() override {
        if (GetParam() == Kind::garage) {
            garage_ = testing::start_garage_or_skip(1);
            if (!garage_) {
                if (HasFailure()) GTEST_FAIL() << "garage is required here";
                GTEST_SKIP() << "garage not built (scripts/install_garage.sh)";
            }
        }
        backend_ = make_backend();
        store_ = std::make_unique<ContextStore>(backend_);
    }

    // A backend on the same objects (another worker, or one with other settings).
    std::shared_ptr<StorageBackend> make_backend(S3Config* tweak = nullptr) {
        if (GetParam() == Kind::filesystem)
            return std::make_shared<FilesystemBackend>(dir_.path() / "store");
        S3Config config = garage_->s3_config();
        if (tweak) {
            tweak->endpoint = config.endpoint;
            tweak->region = config.region;
            tweak->access_key_id = config.access_key_id;
            tweak->secret_access_key = config.secret_access_key;
            tweak->bucket = config.bucket;
            config = *tweak;
        }
        return std::make_shared<S3Backend>(config, "tests/kv");
    }

    testing::TempDir dir_;
    std::unique_ptr<testing::GarageCluster> garage_;
    std::shared_ptr<StorageBackend> backend_;
    std::unique_ptr<ContextStore> store_;
};

TEST_P(Backends, PutGetListRemove) {
    StorageBackend& backend = *backend_;
    const auto bytes = random_bytes(5000, 3);
    const auto before = std::chrono::system_clock::now() - std::chrono::seconds(5);
    backend.put("a/b/c.bin", bytes);
    backend.put("a/d.json", random_bytes(10, 4));
    EXPECT_TRUE(backend.contains("a/b/c.bin"));
    EXPECT_EQ(backend.size("a/b/c.bin"), 5000u);
    EXPECT_FALSE(backend.size("a/b/missing"));
    EXPECT_EQ(backend.get("a/b/c.bin"), bytes);
    auto reader = backend.open("a/b/c.bin");
    ASSERT_TRUE(reader);
    EXPECT_EQ(reader->size(), 5000u);
    std::vector<uint8_t> part(100);
    EXPECT_EQ(reader->read_at(4950, part), 50u);
    EXPECT_TRUE(std::equal(part.begin(), part.begin() + 50, bytes.begin() + 4950));
    EXPECT_EQ(reader->read_at(6000, part), 0u);
    EXPECT_EQ(backend.list("a"), (std::vector<std::string>{"a/b/c.bin", "a/d.json"}));
    EXPECT_EQ(backend.list_children("a"), (std::vector<std::string>{"b", "d.json"}));
    EXPECT_EQ(backend.list_children(""), std::vector<std::string>{"a"});
    const auto infos = backend.list_info("a/b");
    ASSERT_EQ(infos.size(), 1u);
    EXPECT_EQ(infos[0].key, "a/b/c.bin");
    EXPECT_EQ(infos[0].size, 5000u);
    EXPECT_GT(infos[0].modified, before);
    EXPECT_LT(infos[0].modified, std::chrono::system_clock::now() + std::chrono::seconds(5));
    EXPECT_FALSE(backend.open("a/b/missing"));
    EXPECT_THROW(backend.get("a/b/missing"), Error);
    EXPECT_THROW(backend.put("../x", bytes), Error);
    EXPECT_THROW(backend.get("a/.tmp-x"), Error);
    backend.put("a/b/c.bin", random_bytes(7, 9));  // an overwrite is whole
    EXPECT_EQ(backend.get("a/b/c.bin"), random_bytes(7, 9));
    backend.remove("a/b/c.bin");
    EXPECT_FALSE(backend.contains("a/b/c.bin"));
    backend.remove("a/b/c.bin");  // removing twice is fine
    EXPECT_EQ(backend.list("a"), std::vector<std::string>{"a/d.json"});
}

TEST_P(Backends, EmptyAndLargeObjectsReadInPieces) {
    backend_->put("e", {});
    auto empty = backend_->open("e");
    ASSERT_TRUE(empty);
    EXPECT_EQ(empty->size(), 0u);
    EXPECT_TRUE(backend_->get("e").empty());
    // Larger than the S3 reader's window: reads across window boundaries come out right.
    const size_t n = S3Backend::kReadWindow * 2 + 12345;
    const auto bytes = random_bytes(n, 5);
    backend_->put("big/object", bytes);
    auto reader = backend_->open("big/object");
    ASSERT_TRUE(reader);
    ASSERT_EQ(reader->size(), n);
    for (uint64_t offset : {uint64_t{0}, S3Backend::kReadWindow - 10, uint64_t{77},
                            2 * S3Backend::kReadWindow - 1, uint64_t{n - 100}}) {
        std::vector<uint8_t> part(1000);
        const size_t got = reader->read_at(offset, part);
        ASSERT_EQ(got, std::min<size_t>(1000, n - offset)) << offset;
        EXPECT_TRUE(std::equal(part.begin(), part.begin() + static_cast<long>(got),
                               bytes.begin() + static_cast<long>(offset)))
            << offset;
    }
    EXPECT_EQ(backend_->get("big/object"), bytes);
}

TEST_P(Backends, LargeObjectsUploadInParts) {
    S3Config small_parts;
    small_parts.part_size = uint64_t{5} << 20;  // S3's minimum
    small_parts.multipart_threshold = small_parts.part_size;
    auto backend = make_backend(&small_parts);
    const auto bytes = random_bytes((uint64_t{11} << 20) + 3, 6);  // 3 parts, the last small
    backend->put("parts/object", bytes);
    EXPECT_EQ(backend->size("parts/object"), bytes.size());
    EXPECT_EQ(backend->get("parts/object"), bytes);
    EXPECT_EQ(backend->remove_incomplete_writes(std::chrono::seconds(0)), 0u);
}

TEST_P(Backends, ContextRoundTrip) {
    ContextStore& store = *store_;
    const Manifest m = ingest(store, skeleton(), 256);
    EXPECT_TRUE(is_attempt_name(m.attempt));
    EXPECT_EQ(store.list_contexts(), std::vector<std::string>{m.context_id});
    EXPECT_TRUE(store.is_complete(m.context_id, ContextStore::Check::checksums));
    const Manifest back = store.read_manifest(m.context_id);
    EXPECT_EQ(back.attempt, m.attempt);
    EXPECT_EQ(back.object(2, 3, "q3h").bytes, 259u);
    EXPECT_EQ(back.object(2, 3, "q3h").xxh64, object_checksum(store.read_unit(back, "q3h", 2, 3)));
    EXPECT_THROW(store.read_unit(back, "fp16", 0, 0), Error);
    const auto attempts = store.list_attempts(m.context_id);
    ASSERT_EQ(attempts.size(), 1u);
    EXPECT_EQ(attempts[0].name, m.attempt);
    EXPECT_EQ(attempts[0].objects, 1 + m.units.size() * 2);
    store.remove_context(m.context_id);
    EXPECT_TRUE(store.list_contexts().empty());
    EXPECT_TRUE(backend_->list("contexts").empty());
}

TEST_P(Backends, UncommittedIngestIsInvisibleAndCollected) {
    ContextStore& store = *store_;
    Manifest m = skeleton();
    {
        ContextWriter writer(store, m);
        writer.put_tokens(std::vector<int32_t>(static_cast<size_t>(m.n_tokens), 7));
        for (const auto& u : m.units) writer.put_unit(u.t, u.l, "int8", random_bytes(64, 1));
        // q3h objects never written: commit must refuse and name what is missing.
        try {
            writer.commit();
            FAIL() << "commit succeeded with missing objects";
        } catch (const Error& e) {
            EXPECT_NE(std::string(e.what()).find("unit (0, 0) at level q3h"), std::string::npos);
        }
    }  // the "crash": the writer goes away without a manifest
    EXPECT_FALSE(store.has_manifest(m.context_id));
    EXPECT_FALSE(store.is_complete(m.context_id));
    EXPECT_TRUE(store.list_contexts().empty());
    EXPECT_EQ(store.list_attempts(m.context_id).size(), 1u);
    // Young: kept (it may be a worker still writing); old enough: removed.
    GcReport kept = collect_garbage(store, {});
    EXPECT_EQ(kept.kept_attempts, 1u);
    EXPECT_TRUE(kept.removed.empty());
    GcReport dry = collect_garbage(store, {std::chrono::seconds(0), true});
    EXPECT_EQ(dry.objects_removed(), 1 + m.units.size());
    EXPECT_EQ(store.list_attempts(m.context_id).size(), 1u);  // a dry run removes nothing
    GcReport gone = collect_garbage(store, {std::chrono::seconds(0), false});
    ASSERT_EQ(gone.removed.size(), 1u);
    EXPECT_FALSE(gone.removed[0].committed_context);
    EXPECT_TRUE(backend_->list("contexts").empty());
    // Redoing the ingest completes it.
    ingest(store, m, 64);
    EXPECT_TRUE(store.is_complete(m.context_id, ContextStore::Check::checksums));
}

// Two workers ingest one context with different bytes (as different thread counts or instruction
// sets would round differently), interleaved: whichever manifest lands last names only its own
// objects, and collection removes the loser's attempt without touching the winner's.
TEST_P(Backends, RacingWritersNeverMixAndTheLoserIsCollected) {
    ContextStore& store = *store_;
    ContextStore other(make_backend());
    const Manifest m = skeleton(3, 250, 100);
    ContextWriter a(store, m), b(other, m);
    ASSERT_NE(a.manifest().attempt, b.manifest().attempt);
    const std::vector<int32_t> tokens(static_cast<size_t>(m.n_tokens), 7);
    a.put_tokens(tokens);
    b.put_tokens(tokens);
    uint32_t seed = 1;
    for (const auto& u : m.units)
        for (const auto& level : m.levels) {
            a.put_unit(u.t, u.l, level, random_bytes(100, seed));
            b.put_unit(u.t, u.l, level, random_bytes(120, seed + 1000));
            ++seed;
        }
    a.commit();
    const Manifest& winner = b.commit();
    const Manifest back = store.read_manifest(m.context_id);
    EXPECT_EQ(back.attempt, winner.attempt);
    EXPECT_TRUE(store.is_complete(m.context_id, ContextStore::Check::checksums));
    for (const auto& u : back.units)
        EXPECT_EQ(store.read_unit(back, "int8", u.t, u.l).size(), 120u);
    EXPECT_EQ(store.list_attempts(m.context_id).size(), 2u);
    const GcReport report = collect_garbage(store, {std::chrono::seconds(0), false});
    ASSERT_EQ(report.removed.size(), 1u);
    EXPECT_EQ(report.removed[0].group, a.manifest().attempt);
    EXPECT_TRUE(report.removed[0].committed_context);
    ASSERT_EQ(store.list_attempts(m.context_id).size(), 1u);
    EXPECT_TRUE(store.is_complete(m.context_id, ContextStore::Check::checksums));
}

// A worker whose attempt was collected while it stalled must not commit a dangling manifest.
TEST_P(Backends, CommitRefusesWhenObjectsWentMissing) {
    ContextStore& store = *store_;
    const Manifest m = skeleton(2, 150, 100);
    ContextWriter writer(store, m);
    writer.put_tokens(std::vector<int32_t>(150, 7));
    for (const auto& u : m.units)
        for (const auto& level : m.levels) writer.put_unit(u.t, u.l, level, random_bytes(50, 1));
    collect_garbage(store, {std::chrono::seconds(0), false});  // takes the attempt for dead
    try {
        writer.commit();
        FAIL() << "committed a manifest whose objects are gone";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("not in"), std::string::npos) << e.what();
    }
    EXPECT_FALSE(store.has_manifest(m.context_id));
}

TEST_P(Backends, DamagedObjectsMakeContextIncomplete) {
    ContextStore& store = *store_;
    const Manifest m = ingest(store, skeleton(), 128);
    const std::string key = unit_key(m, "int8", 1, 2);
    auto bytes = backend_->get(key);
    bytes[10] ^= 0x5a;
    backend_->put(key, bytes);
    EXPECT_TRUE(store.is_complete(m.context_id, ContextStore::Check::sizes));
    EXPECT_FALSE(store.is_complete(m.context_id, ContextStore::Check::checksums));
    bytes.resize(5);
    backend_->put(key, bytes);
    EXPECT_FALSE(store.is_complete(m.context_id, ContextStore::Check::sizes));
    backend_->remove(key);
    EXPECT_FALSE(store.is_complete(m.context_id));
    // A manifest that is not valid JSON is an Error, and the context is not complete; garbage
    // collection leaves such a context alone.
    const std::string broken = "{\"units\": [";
    backend_->put(manifest_key(m.context_id),
                  std::span(reinterpret_cast<const uint8_t*>(broken.data()), broken.size()));
    EXPECT_THROW(store.read_manifest(m.context_id), Error);
    EXPECT_FALSE(store.is_complete(m.context_id));
    const GcReport report = collect_garbage(store, {std::chrono::seconds(0), false});
    EXPECT_EQ(report.unreadable, 1u);
    EXPECT_TRUE(report.removed.empty());
}

TEST_P(Backends, TokenIdsAreACheckedObjectOfTheContext) {
    ContextStore& store = *store_;
    const Manifest m = ingest(store, skeleton(), 64);
    const Manifest back = store.read_manifest(m.context_id);
    EXPECT_EQ(back.tokens.bytes, 300u * 4);
    EXPECT_EQ(store.read_tokens(back), std::vector<int32_t>(300, 7));
    EXPECT_TRUE(backend_->contains(tokens_key(m)));
    // Tampered ids fail the checksum; ids that pass it but hash to another context are refused.
    auto bytes = backend_->get(tokens_key(m));
    bytes[5] ^= 1;
    EXPECT_THROW(parse_tokens(back, bytes), Error);
    Manifest forged = back;
    forged.tokens.xxh64 = object_checksum(bytes);
    try {
        parse_tokens(forged, bytes);
        FAIL() << "tokens of another context were accepted";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("do not hash to the context id"), std::string::npos);
    }
    bytes.pop_back();
    EXPECT_THROW(parse_tokens(back, bytes), Error);  // size
}

TEST_P(Backends, CommitNeedsTheTokenIds) {
    ContextStore& store = *store_;
    const Manifest m = skeleton();
    ContextWriter writer(store, m);
    for (const auto& u : m.units)
        for (const auto& level : m.levels) writer.put_unit(u.t, u.l, level, random_bytes(8, 1));
    EXPECT_THROW(writer.commit(), Error);
    EXPECT_THROW(writer.put_tokens(std::vector<int32_t>(5, 1)), Error);  // wrong count
    writer.put_tokens(std::vector<int32_t>(300, 7));
    writer.commit();
    EXPECT_TRUE(store.is_complete(m.context_id));
}

TEST_P(Backends, RejectsBadInput) {
    ContextStore& store = *store_;
    ContextWriter writer(store, skeleton());
    EXPECT_THROW(writer.put_unit(0, 0, "fp16", random_bytes(4, 1)), Error);  // unknown level
    EXPECT_THROW(writer.put_unit(9, 0, "int8", random_bytes(4, 1)), Error);  // unknown unit
    EXPECT_THROW(writer.put_unit(0, 0, "int8", {}), Error);                  // empty object
    EXPECT_THROW(store.read_manifest("not-an-id"), Error);
    EXPECT_THROW(store.read_manifest(std::string(32, 'a')), Error);  // absent
    Manifest bad = skeleton();
    bad.attempt = "../escape";
    EXPECT_THROW(ContextWriter(store, bad), Error);
}

// Kills a real writer process at varied moments: whatever survives must be consistent (no
// manifest, or a manifest whose every object is complete and intact).
TEST_P(Backends, KilledIngestNeverLeavesADanglingManifest) {
    // Time one uncontended ingest, then kill others at fractions of that time (some past it).
    const auto start = std::chrono::steady_clock::now();
    ingest(*store_, skeleton(6, 400, 100, "timing"), 32 * 1024);
    const auto ingest_time = std::chrono::steady_clock::now() - start;
    int saw_complete = 0, saw_absent = 0;
    for (int round = 0; round < 12; ++round) {
        const Manifest m = skeleton(6, 400, 100, fmt::format("fp{}", round));
        const pid_t child = fork();
        ASSERT_GE(child, 0);
        if (child == 0) {
            try {
                ContextStore store(make_backend());
                ingest(store, m, 32 * 1024);
            } catch (...) {
                _exit(3);
            }
            _exit(0);
        }
        std::this_thread::sleep_for(ingest_time * round / 9);
        kill(child, SIGKILL);
        int status = 0;
        waitpid(child, &status, 0);
        if (store_->has_manifest(m.context_id)) {
            EXPECT_TRUE(store_->is_complete(m.context_id, ContextStore::Check::checksums))
                << "round " << round;
            ++saw_complete;
        } else {
            EXPECT_FALSE(store_->is_complete(m.context_id));
            ++saw_absent;
        }
    }
    // Early kills must leave nothing; kills after the ingest's duration usually find it done.
    RecordProperty("complete", saw_complete);
    RecordProperty("absent", saw_absent);
    EXPECT_GT(saw_absent, 0);
    // Whatever the killed writers left is collectable, and the committed contexts survive it.
    collect_garbage(*store_, {std::chrono::seconds(0), false});
    for (const auto& id : store_->list_contexts()) {
        EXPECT_TRUE(store_->is_complete(id, ContextStore::Check::checksums));
        EXPECT_EQ(store_->list_attempts(id).size(), 1u);
    }
}

INSTANTIATE_TEST_SUITE_P(Store, Backends, ::testing::Values(Kind::filesystem, Kind::garage),
                         [](const ::testing::TestParamInfo<Kind>& param) {
                             return param.param == Kind::filesystem ? "Filesystem" : "Garage";
                         });

}  // namespace
}  // namespace sparkv
