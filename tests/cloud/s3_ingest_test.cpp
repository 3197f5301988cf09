// Ingest into a real Garage (S3) and read back the way devices do: straight from the bucket's
// website endpoint, or through `sparkv serve`'s server fronting the bucket. Then the multi-worker
// rules with real `sparkv ingest` processes: concurrent workers, a worker killed mid-ingest, and
// a 3-node cluster with one node stopped.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "cloud/ingest.h"
#include "codec/codec.h"
#include "common/error.h"
#include "engine/engine.h"
#include "engine/prompt.h"
#include "garage_support.h"
#include "net/server.h"
#include "net/unit_client.h"
#include "store/content_id.h"
#include "store/fs_backend.h"
#include "store/garbage.h"
#include "store/s3_backend.h"
#include "test_support.h"
#include "testkit/random_model.h"

namespace sparkv {
namespace {

using testing::GarageCluster;

bool wait_for(const std::function<bool()>& pred, double seconds) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (!pred()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return true;
}

class S3Ingest : public ::testing::Test {
  protected:
    void SetUp() override {
        RandomModelSpec spec;
        spec.n_layer = 3;
        model_path_ = dir_.file("model.gguf");
        write_random_model(spec, model_path_);
        model_ = Model::load(model_path_);
        options_.chunk_tokens = 32;
        options_.levels = {"fp16", "q5h"};
        options_.threads = 1;
    }

    std::vector<int32_t> tokens(int n, int seed) const {
        std::vector<int32_t> out;
        for (int i = 0; i < n; ++i) out.push_back((i * 37 + seed * 101 + 11) % 300);
        return out;
    }

    // Every fp16 unit of the context decodes to exactly the KV a local prefill of its tokens
    // gives (same engine, one thread): a context assembled from two workers' attempts would not.
    void expect_kv_of_a_local_prefill(const ContextStore& store, const std::string& id) {
        const Manifest m = store.read_manifest(id);
        const auto ids = store.read_tokens(m);
        const auto& c = model_->config();
        // With the attention settings the context was ingested with (the CLI's default is sparse).
        Engine local(*model_,
                     {.n_ctx = static_cast<int64_t>(ids.size()),
                      .n_threads = 1,
                      .sparse = m.sparse ? from_manifest(*m.sparse) : SparseAttentionOptions{}});
        local.prefill(ids, 0);
        codec::Decoder decoder;
        for (const auto& chunk : m.chunks) {
            const codec::UnitShape shape{static_cast<uint32_t>(chunk.n_tokens),
                                         static_cast<uint16_t>(c.n_kv_head),
                                         static_cast<uint16_t>(c.head_dim)};
            std::vector<uint16_t> k(shape.elements()), v(k.size()), k_ref(k.size()),
                v_ref(k.size());
            for (int l = 0; l < c.n_layer; ++l) {
                decoder.decode(store.read_unit(m, "fp16", chunk.index, l),
                               {model_->fingerprint(), static_cast<uint32_t>(chunk.index),
                                static_cast<uint32_t>(l)},
                               shape, codec::contiguous(k.data(), shape),
                               codec::contiguous(v.data(), shape));
                local.export_kv(l, chunk.first_token, chunk.n_tokens, k_ref.data(), v_ref.data());
                ASSERT_EQ(k, k_ref) << id << " unit (" << chunk.index << ", " << l << ")";
                ASSERT_EQ(v, v_ref) << id << " unit (" << chunk.index << ", " << l << ")";
            }
        }
    }

    // Streams every unit of the context at `level` with the device client; returns them.
    std::map<std::pair<int, int>, std::vector<uint8_t>> stream_all(
        ClientConfig config, const std::string& id, const std::string& level,
        std::vector<UnitFailure>& failed) {
        UnitClient client(std::move(config));
        const Manifest& m = client.fetch_manifest(id);
        auto schedule = std::make_shared<FetchSchedule>();
        for (const auto& u : m.units) schedule->add({u.t, u.l, level});
        schedule->close();
        std::map<std::pair<int, int>, std::vector<uint8_t>> units;
        std::mutex mutex;
        ClientCallbacks cb;
        cb.on_unit = [&](ReceivedUnit&& u) {
            std::lock_guard lock(mutex);
            units[{u.unit.t, u.unit.l}] = std::move(u.bytes);
        };
        cb.on_failure = [&](const UnitFailure& f) {
            std::lock_guard lock(mutex);
            failed.push_back(f);
        };
        client.start(schedule, cb);
        client.wait();
        return units;
    }

    // Runs `sparkv` with the cluster's S3 settings; stdout and stderr go to files in the temp dir.
    pid_t spawn_sparkv(const GarageCluster& garage, const std::vector<std::string>& args,
                       const std::string& name) {
        std::vector<std::string> env = garage.environment();
        for (char** e = environ; *e; ++e) {
            const std::string entry = *e;
            if (!entry.starts_with("AWS_")) env.push_back(entry);
        }
        const std::string out = dir_.file(name + ".out"), err = dir_.file(name + ".err");
        const pid_t pid = fork();
        if (pid == 0) {
            ::prctl(PR_SET_PDEATHSIG, SIGKILL);
            const int fo = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
            const int fe = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
            ::dup2(fo, 1);
            ::dup2(fe, 2);
            std::vector<char*> argv{const_cast<char*>(SPARKV_BINARY)}, envp;
            for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
            argv.push_back(nullptr);
            for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
            envp.push_back(nullptr);
            ::execve(SPARKV_BINARY, argv.data(), envp.data());
            _exit(127);
        }
        return pid;
    }

    std::string slurp(const std::string& name) const {
        std::ifstream f(dir_.file(name));
        std::ostringstream s;
        s << f.rdbuf();
        return s.str();
    }

    // A text the random model's byte-level tokenizer turns into a few hundred tokens.
    std::string document(int seed, int words) const {
        std::string text;
        for (int i = 0; i < words; ++i)
            text += fmt::format("w{}x{} ", (i * 7919 + seed) % 997, seed);
        return text;
    }

    testing::TempDir dir_;
    std::string model_path_;
    std::unique_ptr<Model> model_;
    IngestOptions options_;
};

TEST_F(S3Ingest, GarageHoldsBitIdenticalUnitsAndDevicesStreamThem) {
    SPARKV_REQUIRE_GARAGE(garage, 1);
    garage->allow_website();
    ContextStore fs_store(std::make_shared<FilesystemBackend>(dir_.path() / "fs"));
    auto s3 = std::make_shared<S3Backend>(garage->s3_config(), "e2e/kv");
    ContextStore s3_store(s3);
    const auto ids = tokens(70, 1);
    const IngestResult on_fs = ingest_context(*model_, fs_store, ids, options_);
    const IngestResult on_s3 = ingest_context(*model_, s3_store, ids, options_);
    ASSERT_EQ(on_fs.context_id, on_s3.context_id);
    EXPECT_EQ(on_fs.bytes_per_level, on_s3.bytes_per_level);
    EXPECT_TRUE(ingest_context(*model_, s3_store, ids, options_).already_present);
    const std::string id = on_s3.context_id;
    ASSERT_TRUE(s3_store.is_complete(id, ContextStore::Check::checksums));
    expect_kv_of_a_local_prefill(s3_store, id);
    const Manifest fm = fs_store.read_manifest(id), sm = s3_store.read_manifest(id);
    for (const auto& u : sm.units)
        for (const auto& level : sm.levels)
            ASSERT_EQ(s3_store.read_unit(sm, level, u.t, u.l),
                      fs_store.read_unit(fm, level, u.t, u.l));

    // A device reads the bucket's website endpoint directly (public-read bucket, Host-selected).
    ClientConfig direct;
    direct.port = garage->web_port();
    direct.path_prefix = "/e2e/kv";
    direct.host_header = garage->web_host();
    // ... or goes through `sparkv serve` fronting the bucket.
    ServerConfig server_config;
    UnitServer server(s3, server_config);
    ClientConfig fronted;
    fronted.port = server.start();
    for (const auto& config : {direct, fronted}) {
        for (const auto& level : sm.levels) {
            std::vector<UnitFailure> failed;
            const auto units = stream_all(config, id, level, failed);
            EXPECT_TRUE(failed.empty()) << failed.front().reason;
            ASSERT_EQ(units.size(), sm.units.size());
            for (const auto& [tl, bytes] : units)
                ASSERT_EQ(bytes, fs_store.read_unit(fm, level, tl.first, tl.second));
        }
        UnitClient client(config);
        client.fetch_manifest(id);
        EXPECT_EQ(client.fetch_tokens(), ids);
    }
    // An unknown context answers 404 both ways, with the store's words.
    const std::string unknown(64, 'e');
    try {
        UnitClient(direct).fetch_manifest(unknown);
        FAIL() << "a missing manifest was fetched";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("404"), std::string::npos) << e.what();
    }
    EXPECT_THROW(UnitClient(fronted).fetch_manifest(unknown), Error);
}

TEST_F(S3Ingest, ConcurrentWorkersLeaveOnlyCompleteContexts) {
    SPARKV_REQUIRE_GARAGE(garage, 1);
    // 4 workers; each has 2 documents of its own, and all 4 start with the same shared document
    // (no waiting for each other: --busy-window 0), so they race on its manifest.
    const int workers = 4;
    std::ofstream(dir_.file("shared.txt")) << document(999, 40);
    for (int w = 0; w < workers; ++w) {
        std::ofstream list(dir_.file(fmt::format("list{}.txt", w)));
        list << dir_.file("shared.txt") << "\n";
        for (int d = 0; d < 2; ++d) {
            const std::string path = dir_.file(fmt::format("doc{}_{}.txt", w, d));
            std::ofstream(path) << document(w * 10 + d, 20 + 10 * d);
            list << path << "\n";
        }
    }
    std::vector<pid_t> pids;
    for (int w = 0; w < workers; ++w)
        pids.push_back(
            spawn_sparkv(*garage,
                         {"ingest", "--store", "s3://" + garage->bucket() + "/conc", "--model",
                          model_path_, "--docs-from", dir_.file(fmt::format("list{}.txt", w)),
                          "--format", "raw", "--chunk-tokens", "32", "--levels", "fp16,q5h",
                          "--threads", "1", "--busy-window", "0", "--json"},
                         fmt::format("worker{}", w)));
    std::map<std::string, int> ingested;  // context id -> workers that committed it
    std::set<std::string> ids;
    for (int w = 0; w < workers; ++w) {
        int status = 0;
        waitpid(pids[static_cast<size_t>(w)], &status, 0);
        ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
            << slurp(fmt::format("worker{}.err", w));
        const auto j = nlohmann::json::parse(slurp(fmt::format("worker{}.out", w)));
        EXPECT_EQ(j["failed"], 0);
        for (const auto& d : j["documents"]) {
            ids.insert(d["context_id"].get<std::string>());
            if (d["status"] == "ingested") ++ingested[d["context_id"].get<std::string>()];
        }
    }
    ASSERT_EQ(ids.size(), 9u);  // 8 documents of their own + the shared one

    ContextStore store(std::make_shared<S3Backend>(garage->s3_config(), "conc"));
    const auto listed = store.list_contexts();
    EXPECT_EQ(std::set<std::string>(listed.begin(), listed.end()), ids);  // nothing else visible
    for (const auto& id : ids) {
        ASSERT_TRUE(store.is_complete(id, ContextStore::Check::checksums)) << id;
        expect_kv_of_a_local_prefill(store, id);
        EXPECT_EQ(store.list_attempts(id).size(), static_cast<size_t>(std::max(1, ingested[id])));
    }
    // The attempts that lost the race on the shared document are the only garbage.
    const GcReport report = collect_garbage(store, {std::chrono::seconds(0), false});
    size_t losers = 0;
    for (const auto& [id, n] : ingested) losers += static_cast<size_t>(n - 1);
    EXPECT_EQ(report.removed.size(), losers);
    RecordProperty("attempts_that_lost_a_race", static_cast<int>(losers));
    for (const auto& r : report.removed) EXPECT_TRUE(r.committed_context);
    for (const auto& id : ids) {
        EXPECT_EQ(store.list_attempts(id).size(), 1u);
        EXPECT_TRUE(store.is_complete(id, ContextStore::Check::checksums));
    }
}

TEST_F(S3Ingest, KilledWorkerLeavesNoVisibleContext) {
    SPARKV_REQUIRE_GARAGE(garage, 1);
    const std::string doc = dir_.file("long.txt");
    std::ofstream(doc) << document(5, 450);
    const auto ids = context_tokens(*model_, document(5, 450), PromptFormat::raw);
    ASSERT_LT(ids.size(), 4096u);  // the random model's context
    // The id `sparkv ingest` gives it with its default (sparse) attention.
    const std::string id = context_id(
        sparse_kv_identity(hex64(model_->fingerprint()), {.tau = kernels::kDefaultSparseTau}), ids,
        32);
    ContextStore store(std::make_shared<S3Backend>(garage->s3_config(), "killed"));
    const pid_t pid =
        spawn_sparkv(*garage,
                     {"ingest", "--store", "s3://" + garage->bucket() + "/killed", "--model",
                      model_path_, "--doc", doc, "--format", "raw", "--chunk-tokens", "32",
                      "--levels", "fp16,int8,q5h,q3h", "--threads", "1"},
                     "killed");
    // Kill it as soon as its attempt holds objects (the token ids come first, then units).
    bool exited = false;
    ASSERT_TRUE(wait_for(
        [&] {
            exited = ::waitpid(pid, nullptr, WNOHANG) == pid;
            const auto attempts = store.list_attempts(id);
            return exited || (!attempts.empty() && attempts[0].objects >= 3);
        },
        30))
        << slurp("killed.err");
    ASSERT_FALSE(exited) << "the worker ended before it was killed: " << slurp("killed.err");
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    EXPECT_FALSE(store.has_manifest(id)) << "the worker finished before it was killed";
    EXPECT_TRUE(store.list_contexts().empty());
    EXPECT_FALSE(store.is_complete(id));
    // A server fronting the bucket does not serve it either.
    UnitServer server(std::make_shared<S3Backend>(garage->s3_config(), "killed"), {});
    ClientConfig config;
    config.port = server.start();
    EXPECT_THROW(UnitClient(config).fetch_manifest(id), Error);
    // The partial attempt is collected; a new ingest then completes the context.
    EXPECT_EQ(collect_garbage(store, {std::chrono::seconds(0), false}).removed.size(), 1u);
    EXPECT_TRUE(store.list_attempts(id).empty());
    options_.levels = {"q5h"};
    options_.sparse.tau = kernels::kDefaultSparseTau;  // as the killed CLI worker
    EXPECT_EQ(ingest_context(*model_, store, ids, options_).context_id, id);
    EXPECT_TRUE(store.is_complete(id, ContextStore::Check::checksums));
}

TEST_F(S3Ingest, ThreeNodeClusterServesEveryUnitWithOneNodeDown) {
    SPARKV_REQUIRE_GARAGE(garage, 3);
    garage->allow_website();
    ContextStore store(std::make_shared<S3Backend>(garage->s3_config(0), "ha"));
    const auto ids = tokens(100, 3);
    const std::string id = ingest_context(*model_, store, ids, options_).context_id;
    const Manifest m = store.read_manifest(id);
    garage->kill_node(2);
    for (int node : {0, 1}) {
        ContextStore reader(std::make_shared<S3Backend>(garage->s3_config(node), "ha"));
        EXPECT_TRUE(reader.is_complete(id, ContextStore::Check::checksums)) << "node " << node;
        ClientConfig direct;
        direct.port = garage->web_port(node);
        direct.path_prefix = "/ha";
        direct.host_header = garage->web_host();
        std::vector<UnitFailure> failed;
        const auto units = stream_all(direct, id, "q5h", failed);
        EXPECT_TRUE(failed.empty()) << failed.front().reason;
        ASSERT_EQ(units.size(), m.units.size()) << "node " << node;
        for (const auto& [tl, bytes] : units)
            EXPECT_EQ(bytes, store.read_unit(m, "q5h", tl.first, tl.second));
    }
    // Writes still reach a quorum (2 of 3): another context can be ingested meanwhile.
    ContextStore writer(std::make_shared<S3Backend>(garage->s3_config(1), "ha"));
    const std::string second = ingest_context(*model_, writer, tokens(40, 4), options_).context_id;
    EXPECT_TRUE(writer.is_complete(second, ContextStore::Check::checksums));
}

}  // namespace
}  // namespace sparkv
