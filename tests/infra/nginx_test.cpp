// A store directory served by nginx as plain static files (no SparKV code on the server): the
// device client streams a context from it over one keep-alive connection, bit-identical to
// streaming it from `sparkv serve`, and byte ranges of a unit answer the same. nginx is started
// here on a loopback port with a generated configuration in a temporary directory, as the current
// user, and stopped at the end. Without nginx the test skips, and fails with
// SPARKV_REQUIRE_NGINX=1 (as in CI; scripts/install_deps.sh installs it).
#include <fcntl.h>
#include <grp.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <pwd.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <map>

#include "../net/net_fixture.h"
#include "net/unit_client.h"

namespace sparkv {
namespace {

using testing::TempDir;
using testing::TestStore;

const char* find_nginx() {
    for (const char* path : {"/usr/sbin/nginx", "/usr/bin/nginx"})
        if (::access(path, X_OK) == 0) return path;
    return nullptr;
}

// A port that was free a moment ago (nginx binds it next; a lost race fails the start).
int free_loopback_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    int port = 0;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0)
        port = ntohs(addr.sin_port);
    ::close(fd);
    return port;
}

// nginx as a child process: master + one worker, in the foreground, every path in `dir`.
class Nginx {
  public:
    Nginx(const char* binary, const std::filesystem::path& root) {
        port_ = free_loopback_port();
        const std::string d = dir_.path().string();
        std::string user;  // only a root master switches users; keep it the current one
        if (::geteuid() == 0)
            user = fmt::format("user {} {};\n", ::getpwuid(::geteuid())->pw_name,
                               ::getgrgid(::getegid())->gr_name);
        std::ofstream(dir_.file("nginx.conf")) << fmt::format(
            R"(daemon off;
{user}worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    types {{ application/json json; }}
    default_type application/octet-stream;
    keepalive_timeout 30s;
    keepalive_requests 100000;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        # What README "A store behind a CDN" recommends: units and token ids never change.
        location ~ (\.kvu|tokens\.i32)$ {{
            add_header Cache-Control "public, max-age=31536000, immutable";
        }}
        location ~ manifest\.json$ {{ add_header Cache-Control "no-cache"; }}
    }}
}}
)",
            fmt::arg("user", user), fmt::arg("d", d), fmt::arg("port", port_),
            fmt::arg("root", root.string()));
        pid_ = ::fork();
        if (pid_ == 0) {
            const int null = ::open("/dev/null", O_WRONLY);
            ::dup2(null, STDOUT_FILENO);
            ::dup2(null, STDERR_FILENO);
            const std::string conf = dir_.file("nginx.conf");
            const std::string error_log = dir_.file("startup.log");
            ::execl(binary, binary, "-p", d.c_str(), "-c", conf.c_str(), "-e", error_log.c_str(),
                    static_cast<char*>(nullptr));
            ::_exit(127);
        }
        httplib::Client probe("127.0.0.1", port_);
        up_ = testing::wait_for([&] {
            int status = 0;
            if (::waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = -1;
                return true;  // exited: not up
            }
            return static_cast<bool>(probe.Get("/"));
        });
        up_ = up_ && pid_ > 0;
    }
    ~Nginx() {
        if (pid_ <= 0) return;
        ::kill(pid_, SIGQUIT);  // graceful: the master stops its worker and removes its pid file
        int status = 0;
        ::waitpid(pid_, &status, 0);
    }
    bool up() const { return up_; }
    int port() const { return port_; }
    std::string log() const {
        std::ifstream f(dir_.file("error.log"));
        return {std::istreambuf_iterator<char>(f), {}};
    }

  private:
    TempDir dir_;
    int port_ = 0;
    pid_t pid_ = -1;
    bool up_ = false;
};

struct Streamed {
    std::map<std::pair<int32_t, int32_t>, std::vector<uint8_t>> units;
    std::vector<UnitFailure> failures;
    ClientStats stats;
};

Streamed stream_all(int port, const TestStore& store, const std::string& level) {
    UnitClient client(client_config_for_server(fmt::format("127.0.0.1:{}", port)));
    const Manifest manifest = client.fetch_manifest(store.manifest.context_id);
    EXPECT_EQ(manifest.context_id, store.manifest.context_id);
    auto schedule = std::make_shared<FetchSchedule>();
    for (const auto& u : manifest.units) schedule->add({u.t, u.l, level});
    schedule->close();
    Streamed out;
    std::mutex mutex;
    ClientCallbacks cb;
    cb.on_unit = [&](ReceivedUnit&& u) {
        std::lock_guard lock(mutex);
        out.units[{u.unit.t, u.unit.l}] = std::move(u.bytes);
    };
    cb.on_failure = [&](const UnitFailure& f) {
        std::lock_guard lock(mutex);
        out.failures.push_back(f);
    };
    client.start(schedule, cb);
    client.wait();
    out.stats = client.stats();
    return out;
}

TEST(Nginx, ServesAStoreAsStaticFilesBitIdenticalToServe) {
    const char* nginx = find_nginx();
    if (!nginx) {
        if (const char* req = std::getenv("SPARKV_REQUIRE_NGINX"); req && std::string(req) == "1")
            FAIL() << "nginx is not installed (scripts/install_deps.sh installs it)";
        GTEST_SKIP() << "nginx is not installed";
    }
    TestStore store(3, 4, {"fp16", "q5h"}, 20000);
    Nginx web(nginx, store.backend->root());
    ASSERT_TRUE(web.up()) << "nginx did not start:\n" << web.log();
    auto serve = testing::start_server(store);

    for (const std::string level : {"fp16", "q5h"}) {
        const Streamed from_nginx = stream_all(web.port(), store, level);
        const Streamed from_serve = stream_all(serve->port(), store, level);
        EXPECT_TRUE(from_nginx.failures.empty()) << from_nginx.failures.front().reason;
        EXPECT_TRUE(from_serve.failures.empty()) << from_serve.failures.front().reason;
        ASSERT_EQ(from_nginx.units.size(), 12u);
        EXPECT_EQ(from_nginx.units, from_serve.units) << level;
        // The manifest and all 12 units over the client's keep-alive connections (a connection
        // that found the schedule empty never opened).
        EXPECT_LE(from_nginx.stats.connections_opened,
                  static_cast<uint64_t>(ClientConfig{}.connections));
        EXPECT_EQ(from_nginx.stats.units_received, 12u);
    }

    // Byte ranges of one unit: nginx and serve give the same 206 part, and a CDN's cache headers.
    const std::string key = unit_key(store.manifest, "q5h", 1, 2);
    httplib::Client nginx_client("127.0.0.1", web.port());
    httplib::Client serve_client("127.0.0.1", serve->port());
    const httplib::Headers range{{"Range", "bytes=100-4195"}};
    const auto a = nginx_client.Get("/" + key, range);
    const auto b = serve_client.Get("/" + key, range);
    ASSERT_TRUE(a && b);
    EXPECT_EQ(a->status, 206);
    EXPECT_EQ(b->status, 206);
    EXPECT_EQ(a->body.size(), 4096u);
    EXPECT_EQ(a->body, b->body);
    EXPECT_EQ(a->get_header_value("Content-Range"), b->get_header_value("Content-Range"));
    const auto unit = store.unit("q5h", 1, 2);
    EXPECT_EQ(a->body, std::string(unit.begin() + 100, unit.begin() + 4196));
    EXPECT_NE(a->get_header_value("Cache-Control").find("immutable"), std::string::npos);
}

}  // namespace
}  // namespace sparkv
