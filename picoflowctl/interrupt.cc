#include "picoflowctl/interrupt.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>

namespace picoflow::ctl {
namespace {

// The write end of the live catcher's pipe, for the handler: one catcher
// at a time (a picoflowctl command waits on one call at a time).
volatile sig_atomic_t g_write_fd = -1;
struct sigaction g_previous {};

// Async-signal-safe: one write(2) to a non-blocking pipe, errno preserved.
// A full pipe already says that SIGINT arrived.
void OnInterrupt(int) {
  const int saved = errno;
  const char byte = 1;
  if (g_write_fd >= 0) (void)!::write(g_write_fd, &byte, 1);
  errno = saved;
}

}  // namespace

InterruptCatcher::InterruptCatcher() {
  // A SIGINT ignored from the start (nohup, the background of a script)
  // stays ignored.
  if (::sigaction(SIGINT, nullptr, &g_previous) != 0 || g_previous.sa_handler == SIG_IGN) return;
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) return;
  g_write_fd = fds[1];
  struct sigaction action {};
  action.sa_handler = OnInterrupt;
  sigemptyset(&action.sa_mask);
  // Other system calls (stdio writes) restart; poll(2) never does, and the
  // pipe is readable by then anyway.
  action.sa_flags = SA_RESTART;
  if (::sigaction(SIGINT, &action, &g_previous) != 0) {
    g_write_fd = -1;
    ::close(fds[0]);
    ::close(fds[1]);
    return;
  }
  installed_ = true;
  read_fd_ = fds[0];
  write_fd_ = fds[1];
}

InterruptCatcher::~InterruptCatcher() {
  if (installed_) ::sigaction(SIGINT, &g_previous, nullptr);
  g_write_fd = -1;
  if (read_fd_ >= 0) ::close(read_fd_);
  if (write_fd_ >= 0) ::close(write_fd_);
}

}  // namespace picoflow::ctl
