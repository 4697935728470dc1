#pragma once
// SshExecutor: runs `type: ssh` tasks as libssh2 sessions in non-blocking mode,
// stepped by the daemon's loop (uv_getaddrinfo, a non-blocking connect, then
// one uv_poll on the socket in the direction libssh2 asks for). Built only
// into the picoflow-ssh.so module, so picoflowd itself never links libssh2.

#include <uv.h>

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/workflow.h"
#include "picoflowd/exec/executor.h"

namespace picoflow {

/// Starts ssh-task attempts on one loop; one TCP connection and one libssh2
/// session per attempt.
///
/// Each attempt: resolve `host` (name, IPv4 or IPv6 literal), connect to each
/// address in turn, handshake, check the host key against `known_hosts`
/// (unless `verify_host_key: false`), authenticate as `user` (first every
/// ssh-agent identity from $SSH_AUTH_SOCK, then `key_path` or, without it,
/// ~/.ssh/id_ed25519, id_ecdsa, id_rsa; passphrase from `passphrase_file` or
/// `passphrase_env`; a key readable by group or others is refused), open a
/// session channel and exec the command under a small POSIX-sh wrapper that
/// exports `env`, gives the command /dev/null as stdin, and kills the
/// command's process group (SIGHUP) when the session ends: when the
/// connection goes away, or when the command exits (leftover background
/// processes die with it, as with shell tasks).
/// `connect_timeout` bounds everything up to a successful authentication.
///
/// Outputs (docs/workflow-format.md, "Outputs"): the command gets
/// PICOFLOW_OUTPUT, a file in a fresh remote directory (SshRemoteCommand).
/// When the command has ended, a second channel on the same session runs
/// SshOutputsCommand: after a success it reads the file back (bounded) and
/// parses it with ParseTaskOutputs into AttemptResult::outputs, failing the
/// attempt with the shell executor's errors; after a failure it only removes
/// the directory. After a timeout or cancel the remote watcher removes it.
///
/// Events: no OnStarted (the process is remote); OnOutput with each chunk of
/// stdout and stderr as it arrives; OnFinished exactly once, never from
/// inside Start.
///
/// Results: remote exit status 0 -> kSucceeded, else kFailed with exit_code;
/// killed by a signal -> kFailed with signal. spec.timeout -> kTimeout,
/// Cancel() -> kCancelled: both drop the connection at once, which makes the
/// wrapper kill the remote command. Resolve, connect, host key and auth
/// failures -> kFailed with a message saying how to fix them. The agent
/// socket is a local Unix socket and libssh2 talks to it blocking.
///
/// The executor must outlive every attempt it started; the loop must outlive
/// the executor and see its close callbacks run.
class SshExecutor final : public Executor {
 public:
  using LogFn = void (*)(const char* message);

  SshExecutor(uv_loop_t* loop, LogFn log_error);
  ~SshExecutor() override;
  SshExecutor(const SshExecutor&) = delete;
  SshExecutor& operator=(const SshExecutor&) = delete;

  /// Starts one attempt of spec.task, which must be an ssh task. Never
  /// throws; failures are reported through sink.OnFinished on a later iteration.
  std::unique_ptr<Attempt> Start(const AttemptSpec& spec, AttemptSink& sink) override;

 private:
  uv_loop_t* loop_;
  LogFn log_error_;
};

/// The remote command line the executor runs for `command` with `env`: the
/// outputs directory ${TMPDIR:-/tmp}/picoflow-output.OUTPUTS_ID (TMPDIR as
/// the login has it) named, exported variables (`env` without any
/// PICOFLOW_OUTPUT), the directory made (mkdir -m 700) and PICOFLOW_OUTPUT
/// exported as its file `output` (unset, with a line on stderr, when it
/// cannot be made), a watcher that SIGHUPs the process group when the
/// channel's stdin reaches EOF (the session ended) and removes the directory
/// if the command was still running then (the session was dropped), then the
/// command exec'd as `${SHELL:-/bin/sh} -c COMMAND` with stdin from
/// /dev/null. Throws std::invalid_argument for an env name that is not a
/// shell identifier.
///
/// `secrets` (name, value pairs; docs/workflow-format.md, "Secrets"): their
/// values are not in the line, which only holds their lengths. The wrapper
/// reads them first from the channel's stdin, where the executor writes
/// them (SshSecretsInput), and exports each under its name; a
/// `${secret:NAME}` in an `env` value becomes a reference to that variable.
/// No value is ever in the remote command line, which other users of the
/// remote host may see (ps).
std::string SshRemoteCommand(const std::string& command, const EnvList& env,
                             const std::string& outputs_id, const EnvList& secrets = {});

/// What the executor writes to the command's channel stdin for
/// SshRemoteCommand's `secrets`: their values, one after the other.
std::string SshSecretsInput(const EnvList& secrets);

/// The line the outputs reader prints before the file, so that what the
/// login's startup files print is never taken for outputs.
std::string SshOutputsMarker(const std::string& outputs_id);

/// The remote command run after SshRemoteCommand's command ended, on a second
/// channel of the same session: with `read`, prints SshOutputsMarker's line
/// and then at most kMaxTaskOutputBytes + 1 bytes of the outputs file (none
/// if the task wrote none), or a reason on stderr and exits 1 when the file is
/// not a regular file or cannot be read; in both modes removes the directory
/// if it is one of the account's own, not a symlink.
std::string SshOutputsCommand(const std::string& outputs_id, bool read);

}  // namespace picoflow
