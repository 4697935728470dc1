// RPC benchmark: N clients, each on its own connection and thread, call
// daemon.status back to back for a fixed time. Prints one line:
//   clients calls seconds calls_per_s p50_us p99_us
// Raw sockets and a substring check of the answer keep the client's own cost
// low: on a 2-core machine the clients share the CPU with the daemon.

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

int Connect(const char* path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path);
  if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    std::perror("rpc_bench: connect");
    std::exit(1);
  }
  return fd;
}

// One client: calls until `stop`, appending each latency in nanoseconds.
void Client(const char* path, const std::atomic<bool>& go, const std::atomic<bool>& stop,
            std::vector<std::int64_t>& latencies, std::atomic<bool>& failed) {
  const int fd = Connect(path);
  std::string buffer;
  char chunk[8192];
  while (!go.load()) std::this_thread::yield();
  for (std::uint64_t id = 1; !stop.load(std::memory_order_relaxed); ++id) {
    const std::string request = R"({"jsonrpc":"2.0","id":)" + std::to_string(id) +
                                R"(,"method":"daemon.status"})"
                                "\n";
    const auto t0 = Clock::now();
    if (::write(fd, request.data(), request.size()) != static_cast<ssize_t>(request.size())) {
      failed = true;
      break;
    }
    std::size_t eol;
    while ((eol = buffer.find('\n')) == std::string::npos) {
      const ssize_t n = ::read(fd, chunk, sizeof chunk);
      if (n <= 0) {
        failed = true;
        ::close(fd);
        return;
      }
      buffer.append(chunk, static_cast<std::size_t>(n));
    }
    const auto t1 = Clock::now();
    if (std::string_view(buffer.data(), eol).find("\"result\"") == std::string_view::npos) {
      failed = true;  // an error answer
    }
    buffer.erase(0, eol + 1);
    latencies.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count());
  }
  ::close(fd);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: rpc_bench SOCKET CLIENTS SECONDS\n");
    return 2;
  }
  const char* path = argv[1];
  const int clients = std::max(1, std::atoi(argv[2]));
  const double seconds = std::atof(argv[3]);
  std::atomic<bool> go{false}, stop{false}, failed{false};
  std::vector<std::vector<std::int64_t>> latencies(clients);
  std::vector<std::thread> threads;
  for (int i = 0; i < clients; ++i) {
    latencies[i].reserve(1 << 16);
    threads.emplace_back(Client, path, std::cref(go), std::cref(stop), std::ref(latencies[i]),
                         std::ref(failed));
  }
  const auto t0 = Clock::now();
  go = true;
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (std::thread& t : threads) t.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
  std::vector<std::int64_t> all;
  for (const auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  if (failed || all.empty()) {
    std::fprintf(stderr, "rpc_bench: a call failed or none completed\n");
    return 1;
  }
  std::sort(all.begin(), all.end());
  auto pct = [&](double p) {
    return static_cast<double>(
               all[std::min(all.size() - 1, static_cast<std::size_t>(p * all.size()))]) /
           1000.0;
  };
  std::printf("%d %zu %.3f %.0f %.1f %.1f\n", clients, all.size(), elapsed,
              static_cast<double>(all.size()) / elapsed, pct(0.50), pct(0.99));
  return 0;
}
