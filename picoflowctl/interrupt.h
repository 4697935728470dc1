#pragma once
// InterruptCatcher: while it lives, Ctrl-C (SIGINT) no longer kills
// picoflowctl but makes fd() readable, so that a blocking Client call
// watching it (Client::SetInterruptFd) returns and the command can say what
// goes on without it (a followed run keeps running in the daemon).

namespace picoflow::ctl {

class InterruptCatcher {
 public:
  /// Installs the SIGINT handler over a fresh self-pipe. If either cannot be
  /// made, or SIGINT is ignored, SIGINT keeps its disposition and fd() is -1.
  InterruptCatcher();
  /// Restores SIGINT's previous disposition and closes the pipe.
  ~InterruptCatcher();
  InterruptCatcher(const InterruptCatcher&) = delete;
  InterruptCatcher& operator=(const InterruptCatcher&) = delete;

  /// The pipe's read end: readable once SIGINT arrived; -1 if not catching.
  int fd() const { return read_fd_; }

 private:
  int read_fd_ = -1;
  int write_fd_ = -1;
  bool installed_ = false;
};

}  // namespace picoflow::ctl
