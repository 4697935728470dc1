// Heavy-read benchmark (issue 14, finding 3): while CONNECTIONS clients each
// pipeline REQUESTS calls of METHOD with PARAMS (a JSON object, or @FILE
// holding one), e.g. `workflow.get` of a large workflow, one more client calls
// `daemon.status` back to back; prints that client's latencies. Mode `close`:
// the heavy clients close their connections right after sending (they never
// read); mode `read`: they read every answer. The status client starts before
// the attack and stops SECONDS after the attack ended (all sent and closed, or
// all answers read), so a daemon that is still busy with the attack shows in
// its latencies. It means to call every 1 ms; a call that takes longer also
// counts, for each 1 ms it held up, a call that waited from when it was due
// until that answer (a stall of 30 s is 30,000 late calls, not one sample
// among thousands of quick ones). Prints one line:
//   samples p50_us p99_us max_us attack_seconds heavy_answers
// Raw sockets, as in rpc_bench.cc.

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
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
    std::perror("heavy_read_bench: connect");
    std::exit(1);
  }
  return fd;
}

bool WriteAll(int fd, const std::string& data) {
  std::size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

constexpr std::int64_t kIntervalNs = 1'000'000;  // a call is due every 1 ms

// Calls daemon.status until `stop`, appending each latency in nanoseconds
// (with the calls a slow one held up, see above).
void StatusClient(const char* path, const std::atomic<bool>& stop,
                  std::vector<std::int64_t>& latencies, std::atomic<bool>& failed) {
  const int fd = Connect(path);
  std::string buffer;
  std::vector<char> chunk(1 << 16);
  for (std::uint64_t id = 1; !stop.load(); ++id) {
    const std::string request = R"({"jsonrpc":"2.0","id":)" + std::to_string(id) +
                                R"(,"method":"daemon.status"})"
                                "\n";
    const auto t0 = Clock::now();
    if (!WriteAll(fd, request)) {
      failed = true;
      break;
    }
    std::size_t eol;
    while ((eol = buffer.find('\n')) == std::string::npos) {
      const ssize_t n = ::read(fd, chunk.data(), chunk.size());
      if (n <= 0) {
        failed = true;
        ::close(fd);
        return;
      }
      buffer.append(chunk.data(), static_cast<std::size_t>(n));
    }
    const auto t1 = Clock::now();
    if (std::string_view(buffer.data(), eol).find("\"result\"") == std::string_view::npos) {
      failed = true;
    }
    buffer.erase(0, eol + 1);
    const std::int64_t took = std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count();
    for (std::int64_t late = took; late > 0; late -= kIntervalNs) latencies.push_back(late);
    // A client polling the daemon, not a load generator of its own.
    std::this_thread::sleep_until(t0 + std::chrono::nanoseconds(kIntervalNs));
  }
  ::close(fd);
}

// Reads every connection until each has `answers` lines or is closed;
// returns the answers read.
long ReadAnswers(std::vector<int>& fds, int answers) {
  std::vector<int> left(fds.size(), answers);
  std::vector<char> chunk(1 << 16);
  long total = 0;
  std::size_t open = fds.size();
  while (open > 0) {
    std::vector<pollfd> pfds;
    std::vector<std::size_t> which;
    for (std::size_t i = 0; i < fds.size(); ++i) {
      if (fds[i] < 0) continue;
      pfds.push_back({fds[i], POLLIN, 0});
      which.push_back(i);
    }
    if (::poll(pfds.data(), pfds.size(), 60000) <= 0) break;  // a hang: give up
    for (std::size_t k = 0; k < pfds.size(); ++k) {
      if (pfds[k].revents == 0) continue;
      const std::size_t i = which[k];
      const ssize_t n = ::read(fds[i], chunk.data(), chunk.size());
      if (n > 0) {
        const int lines = static_cast<int>(std::count(chunk.data(), chunk.data() + n, '\n'));
        left[i] -= lines;
        total += lines;
      }
      if (n <= 0 || left[i] <= 0) {
        ::close(fds[i]);
        fds[i] = -1;
        --open;
      }
    }
  }
  return total;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 8) {
    std::fprintf(stderr,
                 "usage: heavy_read_bench SOCKET CONNECTIONS REQUESTS METHOD PARAMS|@FILE "
                 "close|read SECONDS\n");
    return 2;
  }
  const char* path = argv[1];
  const int connections = std::max(1, std::atoi(argv[2]));
  const int requests = std::max(1, std::atoi(argv[3]));
  const std::string method = argv[4];
  std::string params = argv[5];
  if (!params.empty() && params[0] == '@') {
    std::ifstream file(params.substr(1));
    std::stringstream text;
    text << file.rdbuf();
    params = text.str();
    while (!params.empty() && params.back() == '\n') params.pop_back();
  }
  const bool read_answers = std::string_view(argv[6]) == "read";
  const double after = std::atof(argv[7]);

  std::atomic<bool> stop{false}, failed{false};
  std::vector<std::int64_t> latencies;
  latencies.reserve(1 << 16);
  std::thread status(StatusClient, path, std::cref(stop), std::ref(latencies), std::ref(failed));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // a few calls before

  std::string batch;
  for (int i = 1; i <= requests; ++i) {
    batch += R"({"jsonrpc":"2.0","id":)" + std::to_string(i) + R"(,"method":")" + method +
             R"(","params":)" + params + "}\n";
  }
  const auto t0 = Clock::now();
  std::vector<int> fds;
  for (int c = 0; c < connections; ++c) {
    const int fd = Connect(path);
    if (!WriteAll(fd, batch)) {
      std::fprintf(stderr, "heavy_read_bench: a heavy client could not send\n");
      return 1;
    }
    if (read_answers) {
      fds.push_back(fd);
    } else {
      ::close(fd);
    }
  }
  const long answers = read_answers ? ReadAnswers(fds, requests) : 0;
  const double attack = std::chrono::duration<double>(Clock::now() - t0).count();
  std::this_thread::sleep_for(std::chrono::duration<double>(after));
  stop = true;
  status.join();
  if (failed || latencies.empty()) {
    std::fprintf(stderr, "heavy_read_bench: a status call failed or none completed\n");
    return 1;
  }
  std::sort(latencies.begin(), latencies.end());
  auto pct = [&](double p) {
    return static_cast<double>(latencies[std::min(
               latencies.size() - 1, static_cast<std::size_t>(p * latencies.size()))]) /
           1000.0;
  };
  std::printf("%zu %.1f %.1f %.1f %.3f %ld\n", latencies.size(), pct(0.50), pct(0.99),
              static_cast<double>(latencies.back()) / 1000.0, attack, answers);
  return 0;
}
