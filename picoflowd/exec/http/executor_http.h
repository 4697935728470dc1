#pragma once
// HttpExecutor: runs `type: http` tasks as libcurl transfers driven by the
// daemon's loop (curl multi socket interface: one uv_poll per socket, one
// uv_timer for curl's timeouts). Built only into the picoflow-http.so module,
// so picoflowd itself never links libcurl.

#include <uv.h>

#include <memory>

#include "picoflowd/exec/executor.h"

namespace picoflow {

class CurlMulti;

/// Starts http-task attempts on one loop; one CURLM per executor, so
/// connections (keep-alive), DNS and TLS sessions are reused across tasks and
/// runs.
///
/// Each attempt: `method` (HEAD asks for no body); `headers` as given; a JSON
/// body (`body_is_json`) gets `Content-Type: application/json` unless a
/// Content-Type header is given; a string body is sent as-is, without a
/// Content-Type unless given. TLS peer and host verification are always on;
/// `ca_file` replaces the system CA store. Redirects (http/https only, at most
/// 10) are followed only with `follow_redirects`. `allow_private_ips: false`
/// refuses to connect to (or reuse a connection to) loopback, private,
/// link-local, CGNAT and unspecified addresses.
///
/// Events: no OnStarted (there is no process); OnOutput(kStdout) with each
/// chunk of the response body as it arrives; OnOutput(kStderr) with the status
/// line of each response ("HTTP/1.1 200 OK"); OnFinished exactly once, never
/// from inside Start.
///
/// Results: a response whose status is in `expect_status` -> kSucceeded, else
/// kFailed; either way exit_code is the status. The shorter of the request
/// `timeout` and spec.timeout elapsed -> kTimeout. Cancel() -> the transfer is
/// aborted and kCancelled reported on a later iteration. Anything else
/// (resolve, connect, TLS, protocol errors) -> kFailed with curl's message.
/// Request header values and bodies are never logged.
///
/// The executor must outlive every attempt it started; the loop must outlive
/// the executor and see its close callbacks run.
class HttpExecutor final : public Executor {
 public:
  using LogFn = void (*)(const char* message);

  /// Throws std::runtime_error if curl cannot make a multi handle.
  HttpExecutor(uv_loop_t* loop, LogFn log_error);
  ~HttpExecutor() override;
  HttpExecutor(const HttpExecutor&) = delete;
  HttpExecutor& operator=(const HttpExecutor&) = delete;

  /// Starts one attempt of spec.task, which must be an http task. Never
  /// throws; failures are reported through sink.OnFinished on a later iteration.
  std::unique_ptr<Attempt> Start(const AttemptSpec& spec, AttemptSink& sink) override;

 private:
  std::unique_ptr<CurlMulti> multi_;
};

}  // namespace picoflow
