// The floor for a chain of shell tasks: N times posix_spawn of `/bin/sh -c
// true` and waitpid, one after the other. Prints the wall time in seconds.

#include <spawn.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>

extern char** environ;

int main(int argc, char** argv) {
  const int n = argc > 1 ? std::atoi(argv[1]) : 1000;
  char sh[] = "/bin/sh", c[] = "-c", cmd[] = "true";
  char* args[] = {sh, c, cmd, nullptr};
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < n; ++i) {
    pid_t pid;
    int status = 0;
    if (::posix_spawn(&pid, sh, nullptr, nullptr, args, environ) != 0 ||
        ::waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      std::fprintf(stderr, "spawn_loop: task %d failed\n", i);
      return 1;
    }
  }
  std::printf("%.4f\n",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  return 0;
}
