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
#include "store_helpers.h"
#include "test_support.h"

namespace sparkv {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

using testing::ingest;
using testing::random_bytes;
using testing::skeleton;

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

TEST(FilesystemBackend, LayoutIsPlainFiles) {
    TempDir dir;
    ContextStore store(std::make_shared<FilesystemBackend>(dir.path()));
    const Manifest m = ingest(store, skeleton(), 256);
    const fs::path base = dir.path() / "contexts" / m.context_id;
    EXPECT_TRUE(fs::is_regular_file(base / "manifest.json"));
    EXPECT_TRUE(is_attempt_name(m.attempt));
    EXPECT_EQ(fs::file_size(base / "attempts" / m.attempt / "units" / "q3h" / "t2_l3.kvu"), 259u);
    EXPECT_EQ(store.list_contexts(), std::vector<std::string>{m.context_id});
    EXPECT_TRUE(store.is_complete(m.context_id, ContextStore::Check::checksums));
    const Manifest back = store.read_manifest(m.context_id);
    EXPECT_EQ(back.object(2, 3, "q3h").xxh64, object_checksum(store.read_unit(back, "q3h", 2, 3)));
    store.remove_context(m.context_id);
    EXPECT_TRUE(store.list_contexts().empty());
    EXPECT_FALSE(fs::exists(base));
}

// The filesystem side of an interrupted ingest: temporary files (backend_test.cpp has the rest).
TEST(FilesystemBackend, UncommittedIngestLeavesOnlyCollectableFiles) {
    TempDir dir;
    auto backend = std::make_shared<FilesystemBackend>(dir.path());
    ContextStore store(backend);
    Manifest m = skeleton();
    m.attempt = "crashed-attempt";
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
    const fs::path units =
        dir.path() / "contexts" / m.context_id / "attempts" / m.attempt / "units" / "q3h";
    fs::create_directories(units);
    std::ofstream(units / ".tmp-t0_l0.kvu-1-2-3") << "partial";
    EXPECT_EQ(
        backend->list(fmt::format("contexts/{}/attempts/{}/units/q3h", m.context_id, m.attempt))
            .size(),
        0u);
    EXPECT_EQ(backend->remove_stale_temp_files(std::chrono::hours(1)), 0u);  // too young
    EXPECT_EQ(backend->remove_stale_temp_files(std::chrono::seconds(0)), 1u);
    EXPECT_FALSE(fs::exists(units / ".tmp-t0_l0.kvu-1-2-3"));
    // Redoing the ingest (a new attempt) completes it; doing it again is detectable as a no-op.
    m.attempt.clear();
    ingest(store, m, 64);
    EXPECT_TRUE(store.is_complete(m.context_id, ContextStore::Check::checksums));
}

}  // namespace
}  // namespace sparkv
