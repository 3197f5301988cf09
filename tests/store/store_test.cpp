#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "common/error.h"
#include "store/content_id.h"
#include "store/context_store.h"
#include "store/fs_backend.h"
#include "test_support.h"

namespace sparkv {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

std::vector<uint8_t> random_bytes(size_t n, uint32_t seed) {
    std::mt19937 rng(seed);
    std::vector<uint8_t> bytes(n);
    for (auto& b : bytes) b = static_cast<uint8_t>(rng());
    return bytes;
}

Manifest skeleton(int32_t n_layers = 4, int64_t n_tokens = 300, int32_t chunk = 100,
                  std::string fingerprint = "fp") {
    const std::vector<int32_t> tokens(static_cast<size_t>(n_tokens), 7);
    return make_manifest(context_id(fingerprint, tokens, chunk),
                         {fingerprint, "test-model", n_layers, 2, 8}, n_tokens, chunk,
                         {"int8", "q3h"});
}

void ingest(ContextStore& store, const Manifest& m, size_t unit_bytes, uint32_t seed = 1) {
    ContextWriter writer(store, m);
    writer.put_tokens(std::vector<int32_t>(static_cast<size_t>(m.n_tokens), 7));
    for (const auto& u : m.units)
        for (const auto& level : m.levels)
            writer.put_unit(u.t, u.l, level,
                            random_bytes(unit_bytes + static_cast<size_t>(u.l), seed++));
    writer.commit();
}

TEST(FilesystemBackend, PutGetListRemove) {
    TempDir dir;
    FilesystemBackend backend(dir.path());
    const auto bytes = random_bytes(5000, 3);
    backend.put("a/b/c.bin", bytes);
    EXPECT_TRUE(backend.contains("a/b/c.bin"));
    EXPECT_EQ(backend.size("a/b/c.bin"), 5000u);
    EXPECT_EQ(backend.get("a/b/c.bin"), bytes);
    auto reader = backend.open("a/b/c.bin");
    ASSERT_TRUE(reader);
    std::vector<uint8_t> part(100);
    EXPECT_EQ(reader->read_at(4950, part), 50u);
    EXPECT_TRUE(std::equal(part.begin(), part.begin() + 50, bytes.begin() + 4950));
    EXPECT_EQ(reader->read_at(6000, part), 0u);
    EXPECT_EQ(backend.list("a"), std::vector<std::string>{"a/b/c.bin"});
    EXPECT_EQ(backend.list_children("a"), std::vector<std::string>{"b"});
    EXPECT_FALSE(backend.open("a/b/missing"));
    EXPECT_THROW(backend.get("a/b/missing"), Error);
    backend.remove("a/b/c.bin");
    EXPECT_FALSE(backend.contains("a/b/c.bin"));
    EXPECT_FALSE(fs::exists(dir.path() / "a"));  // emptied directories are pruned
    backend.remove("a/b/c.bin");                 // removing twice is fine
}

TEST(FilesystemBackend, RejectsKeysThatLeaveTheStore) {
    TempDir dir;
    TempDir outside;
    FilesystemBackend backend(dir.path() / "store");
    for (const char* key : {"../x", "a/../../x", "/etc/passwd", "a//b", "a/./b", ".hidden",
                            "a/.tmp-x", "", "a\\b", "a/b/"})
        EXPECT_THROW(backend.put(key, random_bytes(1, 1)), Error) << key;
    // A symlink inside the store that points outside must not be followed.
    std::ofstream(outside.file("secret")) << "secret";
    fs::create_directory_symlink(outside.path(), dir.path() / "store" / "escape");
    EXPECT_THROW(backend.open("escape/secret"), Error);
    EXPECT_THROW(backend.get("escape/secret"), Error);
    EXPECT_THROW(backend.put("escape/new", random_bytes(1, 1)), Error);
    EXPECT_FALSE(fs::exists(outside.path() / "new"));
}

TEST(ContextStore, LayoutIsPlainFiles) {
    TempDir dir;
    ContextStore store(std::make_shared<FilesystemBackend>(dir.path()));
    const Manifest m = skeleton();
    ingest(store, m, 256);
    const fs::path base = dir.path() / "contexts" / m.context_id;
    EXPECT_TRUE(fs::is_regular_file(base / "manifest.json"));
    EXPECT_EQ(fs::file_size(base / "units" / "q3h" / "t2_l3.kvu"), 259u);
    EXPECT_EQ(store.list_contexts(), std::vector<std::string>{m.context_id});
    EXPECT_TRUE(store.is_complete(m.context_id, ContextStore::Check::checksums));
    const Manifest back = store.read_manifest(m.context_id);
    EXPECT_EQ(back.object(2, 3, "q3h").xxh64,
              object_checksum(store.read_unit(m.context_id, "q3h", 2, 3)));
    store.remove_context(m.context_id);
    EXPECT_TRUE(store.list_contexts().empty());
    EXPECT_FALSE(fs::exists(base));
}

TEST(ContextStore, UncommittedIngestLeavesNoManifest) {
    TempDir dir;
    auto backend = std::make_shared<FilesystemBackend>(dir.path());
    ContextStore store(backend);
    const Manifest m = skeleton();
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
    // A partial temporary file from an interrupted put is invisible and can be cleaned.
    const fs::path units = dir.path() / "contexts" / m.context_id / "units" / "q3h";
    fs::create_directories(units);
    std::ofstream(units / ".tmp-t0_l0.kvu-1-2-3") << "partial";
    EXPECT_EQ(backend->list(fmt::format("contexts/{}/units/q3h", m.context_id)).size(), 0u);
    EXPECT_EQ(backend->remove_stale_temp_files(std::chrono::hours(1)), 0u);  // too young
    EXPECT_EQ(backend->remove_stale_temp_files(std::chrono::seconds(0)), 1u);
    EXPECT_FALSE(fs::exists(units / ".tmp-t0_l0.kvu-1-2-3"));
    // Redoing the ingest completes it; doing it again is detectable as a no-op.
    ingest(store, m, 64);
    EXPECT_TRUE(store.is_complete(m.context_id, ContextStore::Check::checksums));
}

TEST(ContextStore, DamagedObjectsMakeContextIncomplete) {
    TempDir dir;
    ContextStore store(std::make_shared<FilesystemBackend>(dir.path()));
    const Manifest m = skeleton();
    ingest(store, m, 128);
    const fs::path object = dir.path() / "contexts" / m.context_id / "units" / "int8" / "t1_l2.kvu";
    {
        std::fstream f(object, std::ios::in | std::ios::out | std::ios::binary);
        f.seekp(10);
        f.put('\x5a');
        f.put('\xa5');
    }
    EXPECT_TRUE(store.is_complete(m.context_id, ContextStore::Check::sizes));
    EXPECT_FALSE(store.is_complete(m.context_id, ContextStore::Check::checksums));
    fs::resize_file(object, 5);
    EXPECT_FALSE(store.is_complete(m.context_id, ContextStore::Check::sizes));
    fs::remove(object);
    EXPECT_FALSE(store.is_complete(m.context_id));
    // A manifest that is not valid JSON is an Error, and the context is not complete.
    std::ofstream(dir.path() / "contexts" / m.context_id / "manifest.json") << "{\"units\": [";
    EXPECT_THROW(store.read_manifest(m.context_id), Error);
    EXPECT_FALSE(store.is_complete(m.context_id));
}

// Kills a real ingest process at varied moments: whatever survives must be consistent (no
// manifest, or a manifest whose every object is complete and intact).
TEST(ContextStore, KilledIngestNeverLeavesADanglingManifest) {
    TempDir dir;
    // Time one uncontended ingest, then kill others at fractions of that time (some past it).
    const auto start = std::chrono::steady_clock::now();
    {
        ContextStore store(std::make_shared<FilesystemBackend>(dir.path()));
        ingest(store, skeleton(6, 400, 100, "timing"), 32 * 1024);
    }
    const auto ingest_time = std::chrono::steady_clock::now() - start;
    int saw_complete = 0, saw_absent = 0;
    for (int round = 0; round < 12; ++round) {
        const Manifest m = skeleton(6, 400, 100, fmt::format("fp{}", round));
        const pid_t child = fork();
        ASSERT_GE(child, 0);
        if (child == 0) {
            try {
                ContextStore store(std::make_shared<FilesystemBackend>(dir.path()));
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
        ContextStore store(std::make_shared<FilesystemBackend>(dir.path()));
        if (store.has_manifest(m.context_id)) {
            EXPECT_TRUE(store.is_complete(m.context_id, ContextStore::Check::checksums))
                << "round " << round;
            ++saw_complete;
        } else {
            ++saw_absent;
        }
    }
    // Early kills must leave nothing; kills after the ingest's duration usually find it done.
    RecordProperty("complete", saw_complete);
    RecordProperty("absent", saw_absent);
    EXPECT_GT(saw_absent, 0);
}

TEST(ContextStore, TokenIdsAreACheckedObjectOfTheContext) {
    TempDir dir;
    auto backend = std::make_shared<FilesystemBackend>(dir.path());
    ContextStore store(backend);
    const Manifest m = skeleton();
    ingest(store, m, 64);
    const Manifest back = store.read_manifest(m.context_id);
    EXPECT_EQ(back.tokens.bytes, 300u * 4);
    EXPECT_EQ(store.read_tokens(back), std::vector<int32_t>(300, 7));
    EXPECT_TRUE(fs::is_regular_file(dir.path() / "contexts" / m.context_id / "tokens.i32"));

    // Tampered ids fail the checksum; ids that pass it (and the SHA-256) but hash to another
    // context are refused.
    auto bytes = backend->get(tokens_key(m.context_id));
    bytes[5] ^= 1;
    EXPECT_THROW(parse_tokens(back, bytes), Error);
    Manifest forged = back;
    forged.tokens.xxh64 = object_checksum(bytes);
    forged.tokens.sha256 = sha256(bytes);
    try {
        parse_tokens(forged, bytes);
        FAIL() << "tokens of another context were accepted";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("do not hash to the context id"), std::string::npos);
    }
    bytes.pop_back();
    EXPECT_THROW(parse_tokens(back, bytes), Error);  // size
}

TEST(ContextWriter, CommitNeedsTheTokenIds) {
    TempDir dir;
    ContextStore store(std::make_shared<FilesystemBackend>(dir.path()));
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

TEST(ContextWriter, RejectsBadInput) {
    TempDir dir;
    ContextStore store(std::make_shared<FilesystemBackend>(dir.path()));
    ContextWriter writer(store, skeleton());
    EXPECT_THROW(writer.put_unit(0, 0, "fp16", random_bytes(4, 1)), Error);  // unknown level
    EXPECT_THROW(writer.put_unit(9, 0, "int8", random_bytes(4, 1)), Error);  // unknown unit
    EXPECT_THROW(writer.put_unit(0, 0, "int8", {}), Error);                  // empty object
    EXPECT_THROW(store.read_manifest("not-an-id"), Error);
    EXPECT_THROW(store.read_manifest(std::string(64, 'a')), Error);  // absent
}

}  // namespace
}  // namespace sparkv
