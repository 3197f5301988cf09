// Tests that involve whole processes: a server process killed mid-transfer, and the `sparkv
// serve` command's start-up and signal handling.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <mutex>
#include <thread>

#include "common/timer.h"
#include "net/unit_client.h"
#include "net_fixture.h"

namespace sparkv {
namespace {

using testing::TestStore;

// Reads one line from fd (blocking), without stdio buffering.
std::string read_line(int fd) {
    std::string line;
    char c;
    while (::read(fd, &c, 1) == 1 && c != '\n') line.push_back(c);
    return line;
}

TEST(ServerProcess, ClientReportsFailuresWhenTheServerIsKilled) {
    TestStore store(2, 4, {"fp16"}, 100'000);
    int fds[2];
    ASSERT_EQ(pipe(fds), 0);
    // The test process has no other threads here, so the child may run a server after fork().
    const pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
        close(fds[0]);
        testing::close_inherited_fds(fds[1]);
        ServerConfig config;
        config.link.rate_mbps = 8;  // 0.1 s per unit
        UnitServer server(store.backend, config);
        const std::string port = std::to_string(server.start()) + "\n";
        if (write(fds[1], port.data(), port.size()) < 0) _exit(1);
        for (;;) pause();
    }
    close(fds[1]);
    const int port = std::stoi(read_line(fds[0]));
    close(fds[0]);

    ClientConfig config;
    config.port = port;
    UnitClient client(config);
    client.fetch_manifest(store.manifest.context_id);
    auto schedule = std::make_shared<FetchSchedule>();
    for (const auto& u : store.manifest.units) schedule->add({u.t, u.l, "fp16"});
    schedule->close();
    std::mutex mutex;
    std::atomic<int> received{0};
    std::vector<UnitFailure> failures;
    ClientCallbacks callbacks;
    callbacks.on_unit = [&](ReceivedUnit&&) { ++received; };
    callbacks.on_failure = [&](const UnitFailure& f) {
        std::lock_guard lock(mutex);
        failures.push_back(f);
    };
    client.start(schedule, callbacks);
    const bool started = testing::wait_for([&] { return received >= 2; });
    if (!started) kill(child, SIGKILL);
    ASSERT_TRUE(started);
    std::this_thread::sleep_for(std::chrono::milliseconds(40));  // mid-unit
    kill(child, SIGKILL);
    waitpid(child, nullptr, 0);
    const double killed = now_seconds();
    client.wait();
    EXPECT_LT(now_seconds() - killed, 1.0);
    ASSERT_EQ(received + failures.size(), 8u);
    ASSERT_GE(failures.size(), 5u);
    EXPECT_EQ(failures[0].kind, FailureKind::connection_lost) << failures[0].reason;
    // A reconnect racing the dying process's teardown may still be accepted and then reset;
    // once connecting fails, every remaining unit is failed as unreachable (the other
    // connection's cut unit may be reported after those).
    for (const auto& f : failures)
        EXPECT_TRUE(f.kind == FailureKind::connection_lost || f.kind == FailureKind::unreachable)
            << f.reason;
    EXPECT_TRUE(std::any_of(failures.begin(), failures.end(),
                            [](const auto& f) { return f.kind == FailureKind::unreachable; }));
}

TEST(ServeCommand, PrintsWhatItServesAndStopsOnSignals) {
    TestStore store(1, 2, {"q5h"}, 2000);
    for (int signal_number : {SIGTERM, SIGINT}) {
        int fds[2];
        ASSERT_EQ(pipe(fds), 0);
        const std::string store_dir = store.backend->root().string();
        const pid_t child = fork();
        ASSERT_GE(child, 0);
        if (child == 0) {
            dup2(fds[1], STDOUT_FILENO);
            testing::close_inherited_fds();
            execl(SPARKV_BINARY, SPARKV_BINARY, "serve", "--store", store_dir.c_str(), "--listen",
                  "127.0.0.1:0", "--rate-mbps", "50", "--rtt-ms", "5", nullptr);
            _exit(127);
        }
        close(fds[1]);
        std::string output, line;
        int port = -1;
        while (port < 0 && !(line = read_line(fds[0])).empty()) {
            output += line + "\n";
            const auto at = line.find("http://127.0.0.1:");
            if (at != std::string::npos) port = std::stoi(line.substr(at + 17));
        }
        ASSERT_GT(port, 0) << output;
        EXPECT_NE(output.find(store.manifest.context_id), std::string::npos) << output;
        EXPECT_NE(output.find("fixed rate 50 Mbit/s, base RTT 5 ms"), std::string::npos) << output;
        {
            httplib::Client http("127.0.0.1", port);
            auto res = http.Get(fmt::format("/{}", manifest_key(store.manifest.context_id)));
            ASSERT_TRUE(res);
            EXPECT_EQ(res->status, 200);
        }  // the connection closes here, so shutdown need not wait for its keep-alive
        const double start = now_seconds();
        kill(child, signal_number);
        int status = 0;
        waitpid(child, &status, 0);
        EXPECT_LT(now_seconds() - start, 2.0);
        EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
        std::string rest;
        while (!(line = read_line(fds[0])).empty()) rest += line + "\n";
        close(fds[0]);
        EXPECT_NE(rest.find("served 1 requests"), std::string::npos) << rest;
    }
}

}  // namespace
}  // namespace sparkv
