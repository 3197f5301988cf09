// attack_client: a bounded, self-stopping attack on `sparkv serve` over loopback, measuring what
// honest devices notice. It starts the server itself (the `sparkv` binary, so the server's memory
// is its own process's), on a synthetic store of reference-model-shaped contexts, and then:
//
//   1. honest clients alone: --honest devices each stream a whole context (--rounds times);
//   2. the same while attackers run: --idle connections that never send a byte (reopened when
//      the server closes them), --slowloris clients that trickle a request header one byte every
//      --slowloris-interval-ms (reopened after their 408), and a request flood from one address
//      (--flood-connections pipelined connections at --flood-rps requests per second in all,
//      0 = as fast as they go), all for as long as the honest clients run.
//
// It reports the honest clients' time alone and under attack (median over rounds, and the
// ratio), their errors, what each attack achieved, and the server's RSS (sampled every 50 ms) and
// thread count. Every attacker has a fixed socket budget and the whole run stops by itself.
// Addresses: honest 127.0.0.11.., idle 127.0.1.x, slowloris 127.0.2.x, flood 127.0.3.1.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>
#include <vector>

#include "common/error.h"
#include "common/timer.h"
#include "net/unit_client.h"
#include "store/content_id.h"
#include "store/context_store.h"
#include "store/fs_backend.h"

namespace fs = std::filesystem;
using namespace sparkv;

namespace {

struct Options {
    std::string sparkv = "build/sparkv";
    std::string store_dir;
    int honest = 8;
    int rounds = 3;
    int idle = 1000;
    int slowloris = 100;
    int slowloris_interval_ms = 1000;
    int flood_connections = 8;
    double flood_rps = 0;
    double rate_mbps = 50;
    int chunks = 8;
    int layers = 30;
    size_t unit_bytes = 174'763;  // as bench/link_load.cpp: ~4.5x compressed fp16 units
    double max_seconds = 300;     // hard stop for the whole run
    bool json = false;
};

// ---- the store and the server process -------------------------------------------------------

std::vector<std::string> build_store(const Options& opt, const std::string& dir) {
    ContextStore store(std::make_shared<FilesystemBackend>(dir));
    std::vector<std::string> ids;
    for (int c = 0; c < opt.honest; ++c) {
        std::vector<int32_t> tokens(static_cast<size_t>(opt.chunks) * 1024);
        for (size_t i = 0; i < tokens.size(); ++i)
            tokens[i] = static_cast<int32_t>((i * 31 + static_cast<size_t>(c)) % 49152);
        const ModelInfo model{"synthetic-smollm2-135m-q4_1", "synthetic", opt.layers, 3, 64};
        const std::string id = context_id(model.fingerprint, tokens, 1024);
        ids.push_back(id);
        if (store.is_complete(id)) continue;
        ContextWriter writer(
            store, make_manifest(id, model, static_cast<int64_t>(tokens.size()), 1024, {"q5h"}));
        writer.put_tokens(tokens);
        std::mt19937_64 rng(static_cast<uint64_t>(c) + 1);
        std::vector<uint8_t> bytes;
        for (int t = 0; t < opt.chunks; ++t)
            for (int l = 0; l < opt.layers; ++l) {
                bytes.resize(opt.unit_bytes * (90 + rng() % 21) / 100);
                for (size_t i = 0; i + 8 <= bytes.size(); i += 8) {
                    const uint64_t v = rng();
                    std::memcpy(bytes.data() + i, &v, 8);
                }
                writer.put_unit(t, l, "q5h", bytes);
            }
        writer.commit();
    }
    return ids;
}

struct ServerProcess {
    pid_t pid = -1;
    int port = -1;
};

ServerProcess start_server(const Options& opt, const std::string& store_dir) {
    int fds[2];
    if (pipe(fds) != 0) fail("pipe: {}", std::strerror(errno));
    const pid_t pid = fork();
    if (pid < 0) fail("fork: {}", std::strerror(errno));
    if (pid == 0) {
        dup2(fds[1], STDOUT_FILENO);
        ::close_range(3, ~0U, 0);
        const std::string rate = fmt::format("{}", opt.rate_mbps);
        execl(opt.sparkv.c_str(), opt.sparkv.c_str(), "serve", "--store", store_dir.c_str(),
              "--listen", "127.0.0.1:0", "--rate-mbps", rate.c_str(), nullptr);
        _exit(127);
    }
    close(fds[1]);
    ServerProcess server{pid, -1};
    std::string line;
    for (char c; server.port < 0 && ::read(fds[0], &c, 1) == 1;) {
        if (c != '\n') {
            line.push_back(c);
            continue;
        }
        if (const auto at = line.find("http://127.0.0.1:"); at != std::string::npos)
            server.port = std::stoi(line.substr(at + 17));
        if (opt.json)
            line.clear();
        else
            std::fprintf(stderr, "  %s\n", line.c_str()), line.clear();
    }
    close(fds[0]);
    if (server.port < 0) fail("{} serve did not start", opt.sparkv);
    return server;
}

long status_value(pid_t pid, const char* field) {
    std::ifstream in(fmt::format("/proc/{}/status", pid));
    std::string line;
    while (std::getline(in, line))
        if (line.rfind(field, 0) == 0)
            return std::strtol(line.c_str() + std::strlen(field) + 1, nullptr, 10);
    return -1;
}

// ---- honest devices -------------------------------------------------------------------------

struct HonestRun {
    std::vector<double> seconds;  // per client
    int errors = 0;
    std::string first_error;
};

HonestRun run_honest(const Options& opt, int port, const std::vector<std::string>& ids) {
    HonestRun run;
    std::mutex mutex;
    std::vector<std::thread> threads;
    for (int c = 0; c < opt.honest; ++c) {
        threads.emplace_back([&, c] {
            const double start = now_seconds();
            int received = 0, expected = 0;
            std::string error;
            try {
                ClientConfig config;
                config.port = port;
                config.read_timeout_s = 30;
                config.source_address = fmt::format("127.0.0.{}", 11 + c);
                UnitClient client(config);
                const Manifest& m = client.fetch_manifest(ids[static_cast<size_t>(c)]);
                auto schedule = std::make_shared<FetchSchedule>();
                for (const auto& u : m.units) schedule->add({u.t, u.l, "q5h"});
                schedule->close();
                expected = static_cast<int>(m.units.size());
                ClientCallbacks callbacks;
                callbacks.on_unit = [&](ReceivedUnit&&) { ++received; };
                callbacks.on_failure = [&](const UnitFailure& f) {
                    if (error.empty()) error = f.reason;
                };
                client.start(schedule, callbacks);
                client.wait();
            } catch (const std::exception& e) {
                error = e.what();
            }
            const double seconds = now_seconds() - start;
            std::lock_guard lock(mutex);
            run.seconds.push_back(seconds);
            run.errors += (expected == 0 ? 1 : expected - received);
            if (run.first_error.empty()) run.first_error = error;
        });
    }
    for (auto& t : threads) t.join();
    return run;
}

double mean(const std::vector<double>& v) {
    double s = 0;
    for (double x : v) s += x;
    return v.empty() ? 0 : s / static_cast<double>(v.size());
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[v.size() / 2];
}

// ---- attackers ------------------------------------------------------------------------------

struct AttackStats {
    uint64_t idle_opened = 0, idle_closed_by_server = 0;
    uint64_t slowloris_opened = 0, slowloris_bytes = 0, slowloris_408 = 0, slowloris_other = 0;
    uint64_t flood_connections = 0, flood_sent = 0, flood_200 = 0, flood_429 = 0, flood_503 = 0,
             flood_other = 0;
    uint64_t connect_failures = 0;
    double idle_open_mean = 0;  // idle connections open, averaged over samples
};

class Attack {
  public:
    Attack(const Options& opt, int port) : opt_(opt), port_(port) {}

    void start() {
        thread_ = std::thread([this] { run(); });
    }
    void stop() {
        stop_ = true;
        if (thread_.joinable()) thread_.join();
    }
    AttackStats stats() const { return stats_; }

  private:
    enum class Kind { idle, slowloris, flood };
    struct Socket {
        Kind kind;
        int index;  // which attacker of its kind (its address)
        int fd{-1};
        double next_send{0};
        size_t header_sent{0};
        std::string tail{};  // the last bytes received, to find status lines across reads
    };

    int open_socket(const std::string& source) {
        const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) return -1;
        sockaddr_in local{};
        local.sin_family = AF_INET;
        ::inet_pton(AF_INET, source.c_str(), &local.sin_addr);
        ::bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof(local));
        const int one = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(static_cast<uint16_t>(port_));
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 &&
            errno != EINPROGRESS) {
            ::close(fd);
            ++stats_.connect_failures;
            return -1;
        }
        return fd;
    }

    std::string source_of(const Socket& s) const {
        switch (s.kind) {
            case Kind::idle:
                return fmt::format("127.0.1.{}", s.index % 200 + 1);
            case Kind::slowloris:
                return fmt::format("127.0.2.{}", s.index % 200 + 1);
            case Kind::flood:
                break;
        }
        return "127.0.3.1";
    }

    void reopen(Socket& s) {
        if (s.fd >= 0) {
            ::epoll_ctl(epoll_, EPOLL_CTL_DEL, s.fd, nullptr);
            ::close(s.fd);
        }
        s.fd = open_socket(source_of(s));
        s.header_sent = 0;
        s.tail.clear();
        s.next_send = now_seconds();
        if (s.fd < 0) return;
        switch (s.kind) {
            case Kind::idle:
                ++stats_.idle_opened;
                break;
            case Kind::slowloris:
                ++stats_.slowloris_opened;
                break;
            case Kind::flood:
                ++stats_.flood_connections;
                break;
        }
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLRDHUP;
        ev.data.ptr = &s;
        ::epoll_ctl(epoll_, EPOLL_CTL_ADD, s.fd, &ev);
    }

    void count_statuses(Socket& s, const char* data, size_t n) {
        s.tail.append(data, n);
        size_t at = 0;
        while ((at = s.tail.find("HTTP/1.1 ", at)) != std::string::npos &&
               at + 12 <= s.tail.size()) {
            const std::string code = s.tail.substr(at + 9, 3);
            if (s.kind == Kind::slowloris) {
                (code == "408" ? stats_.slowloris_408 : stats_.slowloris_other)++;
            } else {
                (code == "200"   ? stats_.flood_200
                 : code == "429" ? stats_.flood_429
                 : code == "503" ? stats_.flood_503
                                 : stats_.flood_other)++;
            }
            at += 12;
        }
        s.tail.erase(0, std::min(s.tail.size(), at == std::string::npos
                                                    ? (s.tail.size() > 11 ? s.tail.size() - 11 : 0)
                                                    : at));
    }

    void on_readable(Socket& s) {
        char buffer[16384];
        for (;;) {
            const ssize_t n = ::recv(s.fd, buffer, sizeof(buffer), 0);
            if (n > 0) {
                if (s.kind != Kind::idle) count_statuses(s, buffer, static_cast<size_t>(n));
                continue;
            }
            if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
            if (s.kind == Kind::idle) ++stats_.idle_closed_by_server;
            return reopen(s);  // closed by the server: come back
        }
    }

    void run() {
        epoll_ = ::epoll_create1(EPOLL_CLOEXEC);
        std::vector<Socket> sockets;
        sockets.reserve(static_cast<size_t>(opt_.idle + opt_.slowloris + opt_.flood_connections));
        for (int i = 0; i < opt_.idle; ++i) sockets.push_back({Kind::idle, i});
        for (int i = 0; i < opt_.slowloris; ++i) sockets.push_back({Kind::slowloris, i});
        for (int i = 0; i < opt_.flood_connections; ++i) sockets.push_back({Kind::flood, i});
        for (auto& s : sockets) reopen(s);

        const std::string header = "GET /health HTTP/1.1\r\nHost: victim\r\nX-Slow: ";
        const std::string request = "GET /health HTTP/1.1\r\nHost: victim\r\n\r\n";
        std::string batch;
        for (int i = 0; i < 32; ++i) batch += request;
        const double start = now_seconds();
        double flood_credit = 0, last = start, samples = 0, idle_sum = 0;
        std::vector<epoll_event> events(512);
        while (!stop_ && now_seconds() - start < opt_.max_seconds) {
            const int n = ::epoll_wait(epoll_, events.data(), static_cast<int>(events.size()), 5);
            for (int i = 0; i < n; ++i) on_readable(*static_cast<Socket*>(events[i].data.ptr));
            const double now = now_seconds();
            flood_credit += opt_.flood_rps > 0 ? (now - last) * opt_.flood_rps : 1e9;
            flood_credit = std::min(flood_credit, opt_.flood_rps > 0 ? opt_.flood_rps : 1e9);
            last = now;
            size_t idle_open = 0;
            for (auto& s : sockets) {
                if (s.fd < 0) {
                    reopen(s);
                    continue;
                }
                if (s.kind == Kind::idle) {
                    ++idle_open;
                } else if (s.kind == Kind::slowloris && now >= s.next_send) {
                    const char byte = s.header_sent < header.size() ? header[s.header_sent] : 'x';
                    if (::send(s.fd, &byte, 1, MSG_NOSIGNAL) == 1) {
                        ++s.header_sent;
                        ++stats_.slowloris_bytes;
                    }
                    s.next_send = now + opt_.slowloris_interval_ms / 1000.0;
                } else if (s.kind == Kind::flood && flood_credit >= 1) {
                    const size_t want = std::min<size_t>(32, static_cast<size_t>(flood_credit));
                    const ssize_t sent = ::send(s.fd, batch.data(), want * request.size(),
                                                MSG_NOSIGNAL | MSG_DONTWAIT);
                    if (sent > 0) {
                        const size_t requests = static_cast<size_t>(sent) / request.size();
                        stats_.flood_sent += requests;
                        flood_credit -= static_cast<double>(requests);
                        if (static_cast<size_t>(sent) % request.size() != 0) reopen(s);
                    }
                }
            }
            idle_sum += static_cast<double>(idle_open);
            ++samples;
        }
        stats_.idle_open_mean = samples > 0 ? idle_sum / samples : 0;
        for (auto& s : sockets)
            if (s.fd >= 0) ::close(s.fd);
        ::close(epoll_);
    }

    const Options& opt_;
    int port_;
    int epoll_ = -1;
    std::atomic<bool> stop_{false};
    std::thread thread_;
    AttackStats stats_;
};

// Samples the server's RSS while a phase runs.
class RssSampler {
  public:
    explicit RssSampler(pid_t pid) : pid_(pid) {
        thread_ = std::thread([this] {
            while (!stop_) {
                peak_kb_ = std::max(peak_kb_.load(), status_value(pid_, "VmRSS:"));
                peak_threads_ = std::max(peak_threads_.load(), status_value(pid_, "Threads:"));
                std::this_thread::sleep_for(std::chrono::milliseconds(50));
            }
        });
    }
    ~RssSampler() { stop(); }
    void stop() {
        stop_ = true;
        if (thread_.joinable()) thread_.join();
    }
    long peak_kb() const { return peak_kb_; }
    long peak_threads() const { return peak_threads_; }

  private:
    pid_t pid_;
    std::atomic<bool> stop_{false};
    std::atomic<long> peak_kb_{0}, peak_threads_{0};
    std::thread thread_;
};

}  // namespace

int main(int argc, char** argv) {
    Options opt;
    CLI::App app{
        "Bounded attack on `sparkv serve`: idle, slowloris and flood clients vs honest ones"};
    app.add_option("--sparkv", opt.sparkv, "The sparkv binary")->capture_default_str();
    app.add_option("--store", opt.store_dir, "Store directory (default: a temp dir)");
    app.add_option("--honest", opt.honest, "Honest clients (one context each)")
        ->capture_default_str();
    app.add_option("--rounds", opt.rounds, "Repeats of each phase")->capture_default_str();
    app.add_option("--idle", opt.idle, "Idle connections")->capture_default_str();
    app.add_option("--slowloris", opt.slowloris, "Slowloris clients")->capture_default_str();
    app.add_option("--slowloris-interval-ms", opt.slowloris_interval_ms,
                   "Milliseconds between a slowloris client's header bytes")
        ->capture_default_str();
    app.add_option("--flood-connections", opt.flood_connections,
                   "Connections of the request flood (one address)")
        ->capture_default_str();
    app.add_option("--flood-rps", opt.flood_rps, "Flood requests per second (0: unbounded)")
        ->capture_default_str();
    app.add_option("--rate-mbps", opt.rate_mbps, "Server link rate per connection (0: unpaced)")
        ->capture_default_str();
    app.add_option("--chunks", opt.chunks, "Chunks per context")->capture_default_str();
    app.add_option("--max-seconds", opt.max_seconds, "Hard stop for the whole run")
        ->capture_default_str();
    app.add_flag("--json", opt.json, "Print a JSON result");
    CLI11_PARSE(app, argc, argv);

    try {
        rlimit rl{};
        ::getrlimit(RLIMIT_NOFILE, &rl);
        rl.rlim_cur = rl.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &rl);
        std::string store_dir = opt.store_dir;
        std::unique_ptr<fs::path> temp;
        if (store_dir.empty()) {
            temp = std::make_unique<fs::path>(fs::temp_directory_path() /
                                              fmt::format("sparkv-attack-{}", getpid()));
            store_dir = temp->string();
        }
        std::fprintf(stderr, "attack_client: store %s\n", store_dir.c_str());
        const auto ids = build_store(opt, store_dir);
        const ServerProcess server = start_server(opt, store_dir);
        const long rss_start_kb = status_value(server.pid, "VmRSS:");

        std::vector<double> alone, attacked;
        int alone_errors = 0, attacked_errors = 0;
        std::string first_error;
        long alone_peak_kb = 0, attacked_peak_kb = 0, attacked_threads = 0;
        AttackStats attack_stats;
        for (int round = 0; round < opt.rounds; ++round) {
            {
                RssSampler rss(server.pid);
                const HonestRun r = run_honest(opt, server.port, ids);
                rss.stop();
                alone.push_back(mean(r.seconds));
                alone_errors += r.errors;
                if (first_error.empty()) first_error = r.first_error;
                alone_peak_kb = std::max(alone_peak_kb, rss.peak_kb());
            }
            {
                RssSampler rss(server.pid);
                Attack attack(opt, server.port);
                attack.start();
                std::this_thread::sleep_for(std::chrono::seconds(2));  // let the attack build up
                const HonestRun r = run_honest(opt, server.port, ids);
                attack.stop();
                rss.stop();
                attacked.push_back(mean(r.seconds));
                attacked_errors += r.errors;
                if (first_error.empty()) first_error = r.first_error;
                attacked_peak_kb = std::max(attacked_peak_kb, rss.peak_kb());
                attacked_threads = std::max(attacked_threads, rss.peak_threads());
                attack_stats = attack.stats();
            }
            std::fprintf(stderr, "round %d: honest mean %.2f s alone, %.2f s under attack\n",
                         round + 1, alone.back(), attacked.back());
        }
        const long hwm_kb = status_value(server.pid, "VmHWM:");
        kill(server.pid, SIGTERM);
        waitpid(server.pid, nullptr, 0);
        if (temp) fs::remove_all(*temp);

        const double alone_s = median(alone), attacked_s = median(attacked);
        const AttackStats& a = attack_stats;
        if (opt.json) {
            nlohmann::json j;
            j["honest_clients"] = opt.honest;
            j["rounds"] = opt.rounds;
            j["rate_mbps"] = opt.rate_mbps;
            j["honest_seconds_alone"] = alone_s;
            j["honest_seconds_attacked"] = attacked_s;
            j["slowdown"] = attacked_s / alone_s;
            j["honest_errors_alone"] = alone_errors;
            j["honest_errors_attacked"] = attacked_errors;
            j["first_error"] = first_error;
            j["server_rss_start_mb"] = rss_start_kb / 1024.0;
            j["server_rss_peak_alone_mb"] = alone_peak_kb / 1024.0;
            j["server_rss_peak_attacked_mb"] = attacked_peak_kb / 1024.0;
            j["server_vm_hwm_mb"] = hwm_kb / 1024.0;
            j["server_threads_peak"] = attacked_threads;
            j["attack"] = {{"idle", opt.idle},
                           {"idle_open_mean", a.idle_open_mean},
                           {"idle_opened", a.idle_opened},
                           {"idle_closed_by_server", a.idle_closed_by_server},
                           {"slowloris", opt.slowloris},
                           {"slowloris_opened", a.slowloris_opened},
                           {"slowloris_408", a.slowloris_408},
                           {"flood_connections", a.flood_connections},
                           {"flood_rps_target", opt.flood_rps},
                           {"flood_sent", a.flood_sent},
                           {"flood_200", a.flood_200},
                           {"flood_429", a.flood_429},
                           {"flood_503", a.flood_503},
                           {"connect_failures", a.connect_failures}};
            std::printf("%s\n", j.dump(2).c_str());
        } else {
            std::printf(
                "honest clients (%d, one context of %d units each, link %.0f Mbit/s): %.2f s "
                "alone, %.2f s under attack (x%.3f), errors %d / %d\n",
                opt.honest, opt.chunks * opt.layers, opt.rate_mbps, alone_s, attacked_s,
                attacked_s / alone_s, alone_errors, attacked_errors);
            std::printf(
                "attack (last round): %.0f idle connections held on average (%llu opened, %llu "
                "closed by the server); %d slowloris (%llu opened, %llu answered 408); flood %llu "
                "requests on %llu connections: %llu x 200, %llu x 429, %llu x 503\n",
                a.idle_open_mean, static_cast<unsigned long long>(a.idle_opened),
                static_cast<unsigned long long>(a.idle_closed_by_server), opt.slowloris,
                static_cast<unsigned long long>(a.slowloris_opened),
                static_cast<unsigned long long>(a.slowloris_408),
                static_cast<unsigned long long>(a.flood_sent),
                static_cast<unsigned long long>(a.flood_connections),
                static_cast<unsigned long long>(a.flood_200),
                static_cast<unsigned long long>(a.flood_429),
                static_cast<unsigned long long>(a.flood_503));
            std::printf(
                "server RSS: %.1f MB at start, peak %.1f MB alone, %.1f MB under attack (VmHWM "
                "%.1f MB), %ld threads\n",
                rss_start_kb / 1024.0, alone_peak_kb / 1024.0, attacked_peak_kb / 1024.0,
                hwm_kb / 1024.0, attacked_threads);
            if (!first_error.empty()) std::printf("first error: %s\n", first_error.c_str());
        }
        return alone_errors + attacked_errors == 0 ? 0 : 3;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "attack_client: %s\n", e.what());
        return 1;
    }
}
