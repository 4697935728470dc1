#include "picoflowd/rpc/rpc_server.h"

#include <fmt/format.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <utility>

#include "picoflowd/rpc/rpc_dispatch.h"
#include "picoflowd/rpc/rpc_socket.h"
#include "picoflowd/util/callback_guard.h"
#include "picoflowd/util/logging.h"
#include "protocol/unix_socket.h"

namespace picoflow {
namespace {

std::string UvText(const char* what, int rc) { return std::string(what) + ": " + uv_strerror(rc); }

// libuv writes with write(2): a client that vanished mid-answer would raise
// SIGPIPE and kill the daemon. EPIPE as an error is what we want.
void IgnoreSigpipe() {
  struct sigaction current {};
  if (::sigaction(SIGPIPE, nullptr, &current) == 0 && current.sa_handler == SIG_DFL) {
    ::signal(SIGPIPE, SIG_IGN);
  }
}

bool SockOptIs(int fd, int option, int expected) {
  int value = 0;
  socklen_t len = sizeof value;
  return ::getsockopt(fd, SOL_SOCKET, option, &value, &len) == 0 && value == expected;
}

}  // namespace

RpcServer::RpcServer(uv_loop_t* loop, RpcServerOptions options, Dispatcher& dispatcher)
    : loop_(loop),
      options_(std::move(options)),
      dispatcher_(dispatcher),
      policy_{::geteuid(), options_.group} {}

RpcServer::~RpcServer() { Close(); }

Status RpcServer::MakeListener() {
  IgnoreSigpipe();
  listener_ = std::make_unique<UvHandle<uv_pipe_t>>(this);
  if (int rc = uv_pipe_init(loop_, listener_->get(), 0); rc != 0) {
    listener_.reset();
    return Err(ErrorCode::kIo, UvText("uv_pipe_init", rc));
  }
  listener_->MarkInitialized();
  turns_ = std::make_unique<RpcTurns>(loop_, options_.turn_budget, options_.turn_share);
  return {};
}

Status RpcServer::Listen() {
  if (listening()) return Err(ErrorCode::kConflict, "the control socket is already listening");
  const std::string& path = options_.socket_path;
  if (auto ok = CheckSocketPathLength(path); !ok) return ok;
  if (auto ok = PrepareSocketDir(path, options_.group); !ok) return ok;
  if (auto ok = ClearStaleSocket(path); !ok) return ok;
  if (auto ok = MakeListener(); !ok) return ok;
  if (int rc = uv_pipe_bind(listener_->get(), path.c_str()); rc != 0) {
    listener_.reset();
    return Err(ErrorCode::kIo, "cannot bind the control socket " + path + ": " + uv_strerror(rc));
  }
  struct stat st {};
  if (::lstat(path.c_str(), &st) == 0) bound_file_ = std::make_pair(st.st_dev, st.st_ino);
  Status ready = SecureSocketFile(path, options_.group);
  if (ready) ready = StartListening(listener_->get());
  if (!ready) {
    Close();
    return ready;
  }
  LogInfo(LogEvent("rpc.server"), fmt::format("listening on {}", path));
  return {};
}

Status RpcServer::Adopt(int fd) {
  if (listening()) return Err(ErrorCode::kConflict, "the control socket is already listening");
  if (!SockOptIs(fd, SO_DOMAIN, AF_UNIX) || !SockOptIs(fd, SO_TYPE, SOCK_STREAM) ||
      !SockOptIs(fd, SO_ACCEPTCONN, 1)) {
    return Err(ErrorCode::kInvalid,
               "fd " + std::to_string(fd) + " is not a listening Unix stream socket");
  }
  if (auto ok = MakeListener(); !ok) return ok;
  if (int rc = uv_pipe_open(listener_->get(), fd); rc != 0) {
    listener_.reset();
    return Err(ErrorCode::kIo, UvText("uv_pipe_open on the inherited socket", rc));
  }
  if (auto ok = StartListening(listener_->get()); !ok) {
    Close();
    return ok;
  }
  LogInfo(LogEvent("rpc.server"), fmt::format("listening on inherited socket fd {}", fd));
  return {};
}

Status RpcServer::StartListening(uv_pipe_t* pipe) {
  int rc = uv_listen(reinterpret_cast<uv_stream_t*>(pipe), options_.backlog, OnConnection);
  if (rc != 0) return Err(ErrorCode::kIo, UvText("listen on the control socket", rc));
  return {};
}

void RpcServer::OnConnection(uv_stream_t* server, int status) noexcept {
  auto* self = OwnerOf<RpcServer>(server);
  if (self == nullptr) return;
  if (status < 0) {
    LogWarn(LogEvent("rpc.server"), std::string("control socket: ") + uv_strerror(status));
    return;
  }
  GuardCallback("control socket: accepting a connection", [self] { self->AcceptOne(); });
}

void RpcServer::AcceptOne() {
  RpcConnection::Limits limits;
  limits.max_line = options_.max_line;
  limits.max_pending_output = options_.max_pending_output;
  limits.idle_timeout = options_.idle_timeout;
  limits.read_ahead_lines = options_.read_ahead_lines;
  limits.read_ahead_bytes = options_.read_ahead_bytes;
  auto conn = std::make_shared<RpcConnection>(
      dispatcher_, limits, [this](RpcConnection* c, CloseReason reason) { Forget(c, reason); },
      [this](RpcConnection* c) {
        if (turns_) turns_->Add(c->weak_from_this());
      },
      options_.before_send);
  Entry& entry = connections_[conn.get()];
  entry.connection = conn;
  ++stats_.accepted;
  Status ok = conn->Accept(loop_, listener_->stream());
  if (ok) ok = conn->Identify(policy_);
  if (!ok) {
    LogWarn(LogEvent("rpc.server"), fmt::format("control socket: {}", ok.error().message));
    conn->Close(CloseReason::kError, ok.error().message);
    return;
  }
  if (std::string refusal = Refusal(conn->peer()); !refusal.empty()) {
    // Answer rather than reset, so the client can say why.
    ++stats_.refused_busy;
    LogDebug(LogEvent("rpc.server"),
             fmt::format("rpc: refused {}: {}", conn->peer().ToString(), refusal));
    conn->Send(ErrorLine(nullptr, RpcErr(RpcCode::kUnavailable, refusal)));
    conn->CloseAfterFlush();
    return;
  }
  entry.admitted = true;
  ++by_uid_[conn->peer().uid];
  if (conn->peer().access != Access::kWrite) ++others_;
  if (ok = conn->StartReading(); !ok) {
    LogWarn(LogEvent("rpc.server"), fmt::format("control socket: {}", ok.error().message));
    conn->Close(CloseReason::kError, ok.error().message);
  }
}

// Each uid has a cap of its own; the uids with write access (root and the
// daemon's) are never refused for what the others hold.
std::string RpcServer::Refusal(const Peer& peer) const {
  const auto mine = by_uid_.find(peer.uid);
  if (mine != by_uid_.end() && mine->second >= options_.max_connections_per_uid) {
    return "picoflowd is serving its maximum of " +
           std::to_string(options_.max_connections_per_uid) + " connections of uid " +
           std::to_string(peer.uid) + "; try again later";
  }
  if (peer.access != Access::kWrite && others_ >= options_.max_connections) {
    return "picoflowd is serving its maximum of " + std::to_string(options_.max_connections) +
           " connections; try again later";
  }
  return "";
}

void RpcServer::Forget(RpcConnection* connection, CloseReason reason) {
  if (reason == CloseReason::kSlowReader) {
    ++stats_.closed_slow_reader;
    LogWarn(LogEvent("rpc.server"),
            fmt::format("rpc: closed the connection of {}: it does not read its answers",
                        connection->peer().ToString()));
  }
  if (reason == CloseReason::kOverlongLine) ++stats_.closed_overlong;
  if (reason == CloseReason::kIdle) ++stats_.closed_idle;
  stats_.read_pauses += connection->read_pauses();
  if (const std::size_t dropped = connection->requests_waiting(); dropped > 0) {
    stats_.requests_dropped += dropped;
    LogInfo(LogEvent("rpc.server"),
            fmt::format("rpc: dropped {} request{} of {}: its connection closed before {} served",
                        dropped, dropped == 1 ? "" : "s", connection->peer().ToString(),
                        dropped == 1 ? "it was" : "they were"));
  }
  const auto it = connections_.find(connection);
  if (it == connections_.end()) return;  // Close() has taken them all
  if (it->second.admitted) {
    const Peer& peer = connection->peer();
    if (--by_uid_[peer.uid] == 0) by_uid_.erase(peer.uid);
    if (peer.access != Access::kWrite) --others_;
  }
  connections_.erase(it);
}

void RpcServer::RemoveSocketFile() {
  if (!bound_file_) return;
  // Only the file we bound: a newer daemon may have replaced it meanwhile.
  struct stat st {};
  const std::string& path = options_.socket_path;
  if (::lstat(path.c_str(), &st) == 0 && std::make_pair(st.st_dev, st.st_ino) == *bound_file_) {
    ::unlink(path.c_str());
  }
  bound_file_.reset();
}

void RpcServer::Close() {
  listener_.reset();  // UvHandle closes it; freed in its close callback
  turns_.reset();
  RemoveSocketFile();
  auto all = std::exchange(connections_, {});
  by_uid_.clear();
  others_ = 0;
  for (auto& [raw, entry] : all)
    entry.connection->Close(CloseReason::kNormal, "the server is closing");
}

}  // namespace picoflow
