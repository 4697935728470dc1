#include "protocol/client.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <thread>
#include <utility>

#include "protocol/methods.h"
#include "protocol/unix_socket.h"

namespace picoflow {
namespace {

std::string ErrnoText(int err) { return std::strerror(err); }

// Why connecting to `path` failed with errno `err`: kUnavailable when no
// daemon listens there, kInvalid when the path is no socket at all, kIo for
// the rest; access refused says how access is given.
Error ConnectError(const std::string& path, int err) {
  const std::string what = "cannot connect to picoflowd at " + path + ": ";
  struct stat st {};
  if (err == ECONNREFUSED && ::stat(path.c_str(), &st) == 0 && !S_ISSOCK(st.st_mode)) {
    if (S_ISDIR(st.st_mode)) {
      return Err(ErrorCode::kInvalid, what + "it is a directory, not a socket (the socket in it " +
                                          "is usually " + path + "/picoflowd.sock)");
    }
    return Err(ErrorCode::kInvalid, what + "it is not a socket");
  }
  if (err == EACCES || err == EPERM) {
    return Err(ErrorCode::kIo, what + ErrnoText(err) + "\n  " + kAccessAdvice);
  }
  if (err == ENOENT || err == ECONNREFUSED || err == EAGAIN) {
    return Err(ErrorCode::kUnavailable, what + ErrnoText(err));
  }
  return Err(ErrorCode::kIo, what + ErrnoText(err));
}

Error TimedOut() { return Err(ErrorCode::kUnavailable, "timed out waiting for picoflowd"); }

}  // namespace

Client::Client(std::size_t max_line) : inbox_(max_line), max_line_(max_line) {}

Client::~Client() { Close(); }

Client::Client(Client&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      path_(std::move(other.path_)),
      inbox_(std::move(other.inbox_)),
      max_line_(other.max_line_),
      next_id_(other.next_id_),
      notifications_(std::move(other.notifications_)),
      early_responses_(std::move(other.early_responses_)),
      last_rpc_error_(std::move(other.last_rpc_error_)),
      interrupt_fd_(other.interrupt_fd_),
      interrupted_(other.interrupted_) {}

Client& Client::operator=(Client&& other) noexcept {
  if (this != &other) {
    Close();
    fd_ = std::exchange(other.fd_, -1);
    path_ = std::move(other.path_);
    inbox_ = std::move(other.inbox_);
    max_line_ = other.max_line_;
    next_id_ = other.next_id_;
    notifications_ = std::move(other.notifications_);
    early_responses_ = std::move(other.early_responses_);
    last_rpc_error_ = std::move(other.last_rpc_error_);
    interrupt_fd_ = other.interrupt_fd_;
    interrupted_ = other.interrupted_;
  }
  return *this;
}

void Client::Close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

Status Client::Connect(const std::string& socket_path, std::chrono::milliseconds timeout) {
  Close();
  path_ = socket_path;
  inbox_ = LineBuffer(max_line_);
  notifications_.clear();
  early_responses_.clear();
  if (auto length = CheckSocketPathLength(socket_path); !length) return length;
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    int fd = ConnectUnixSocket(socket_path);
    if (fd >= 0) {
      fd_ = fd;
      return {};
    }
    // EAGAIN: the daemon is alive but its backlog is full; it drains fast.
    if (fd == -EAGAIN && Clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      continue;
    }
    return ConnectError(socket_path, -fd);
  }
}

Client::Deadline Client::DeadlineFrom(Timeout timeout) {
  if (!timeout) return std::nullopt;
  return Clock::now() + *timeout;
}

Error Client::Broken(std::string what) {
  Close();
  return Err(ErrorCode::kIo, std::move(what));
}

// Waits until the socket is ready for `events` or the deadline passes (a
// deadline already passed still gets one look), or the interrupt fd is
// readable: that wins over a ready socket, which a followed run keeps busy.
Status Client::WaitFor(short events, Deadline deadline) {
  for (;;) {
    int wait_ms = -1;
    if (deadline) {
      auto left = std::chrono::ceil<std::chrono::milliseconds>(*deadline - Clock::now());
      wait_ms = static_cast<int>(std::max<std::int64_t>(0, left.count()));
    }
    pollfd p[2] = {{fd_, events, 0}, {interrupt_fd_, POLLIN, 0}};
    int n = ::poll(p, interrupt_fd_ >= 0 ? 2 : 1, wait_ms);
    if (n > 0 && interrupt_fd_ >= 0 && (p[1].revents & POLLIN) != 0) {
      interrupted_ = true;
      return Err(ErrorCode::kIo, "interrupted while waiting for picoflowd");
    }
    if (n > 0) return {};
    if (n == 0 && deadline && Clock::now() >= *deadline) return TimedOut();
    if (n < 0 && errno != EINTR) return Broken("poll on the picoflowd socket: " + ErrnoText(errno));
  }
}

Status Client::WriteAll(std::string_view bytes, Deadline deadline) {
  if (fd_ < 0) return Err(ErrorCode::kIo, "not connected to picoflowd");
  while (!bytes.empty()) {
    ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n > 0) {
      bytes.remove_prefix(static_cast<std::size_t>(n));
    } else if (errno == EAGAIN || errno == EINTR) {
      if (auto ready = WaitFor(POLLOUT, deadline); !ready) return ready;
    } else {
      // Keep the socket: the daemon may have explained itself before closing
      // (an over-long line, a refused peer), and ReadLine can still get it.
      return Err(ErrorCode::kIo, "picoflowd closed the connection (" + ErrnoText(errno) + ")");
    }
  }
  return {};
}

// Reads whatever is available into the line buffer.
Status Client::Fill(Deadline deadline) {
  if (auto ready = WaitFor(POLLIN, deadline); !ready) return ready;
  char buf[65536];
  ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
  if (n > 0) {
    inbox_.Append(std::string_view(buf, static_cast<std::size_t>(n)));
    return {};
  }
  if (n == 0) return Broken("picoflowd closed the connection");
  if (errno == EAGAIN || errno == EINTR) return {};
  return Broken("reading from picoflowd: " + ErrnoText(errno));
}

Result<std::string> Client::ReadLineUntil(Deadline deadline) {
  std::string line;
  for (;;) {
    switch (inbox_.Next(line)) {
      case LineBuffer::Status::kLine: return line;
      case LineBuffer::Status::kTooLong:
        return Broken("picoflowd sent a line longer than " + std::to_string(max_line_) + " bytes");
      case LineBuffer::Status::kNeedMore: break;
    }
    if (fd_ < 0) return Err(ErrorCode::kIo, "not connected to picoflowd");
    if (auto filled = Fill(deadline); !filled) return filled.error();
  }
}

Status Client::SendRaw(std::string_view bytes, Timeout timeout) {
  return WriteAll(bytes, DeadlineFrom(timeout));
}

Status Client::ShutdownSending() {
  if (fd_ < 0) return Err(ErrorCode::kIo, "not connected to picoflowd");
  if (::shutdown(fd_, SHUT_WR) != 0) return Err(ErrorCode::kIo, "shutdown: " + ErrnoText(errno));
  return {};
}

Result<std::string> Client::ReadLine(Timeout timeout) {
  return ReadLineUntil(DeadlineFrom(timeout));
}

Result<std::int64_t> Client::Send(std::string_view method, const json& params, Timeout timeout) {
  std::int64_t id = next_id_++;
  if (auto sent = WriteAll(RequestLine(id, method, params), DeadlineFrom(timeout)); !sent) {
    return sent.error();
  }
  return id;
}

Status Client::Notify(std::string_view method, const json& params, Timeout timeout) {
  return WriteAll(ClientNotificationLine(method, params), DeadlineFrom(timeout));
}

// Reads messages until the response to `id`, routing everything else.
Result<Response> Client::NextResponse(std::int64_t id, const NotificationHandler& on_notification,
                                      Deadline deadline) {
  if (auto early = early_responses_.find(id); early != early_responses_.end()) {
    Response r = std::move(early->second);
    early_responses_.erase(early);
    return r;
  }
  for (;;) {
    auto line = ReadLineUntil(deadline);
    if (!line) return line.error();
    auto msg = ParseServerMessage(*line);
    if (!msg) return Broken(msg.error().message);
    if (auto* note = std::get_if<Notification>(&*msg)) {
      if (on_notification)
        on_notification(*note);
      else
        notifications_.push_back(std::move(*note));
      continue;
    }
    auto& resp = std::get<Response>(*msg);
    // An error without id is about the connection itself (too many clients,
    // an over-long line): it answers whatever we were waiting for.
    if (resp.id == id || (resp.id.is_null() && resp.error)) return std::move(resp);
    if (resp.id.is_number_integer()) early_responses_[resp.id.get<std::int64_t>()] = resp;
  }
}

Result<json> Client::Finish(Response response) {
  if (response.error) {
    last_rpc_error_ = response.error;
    return FromRpcError(*response.error);
  }
  return std::move(response.result);
}

Result<json> Client::Await(std::int64_t id, const NotificationHandler& on_notification,
                           Timeout timeout) {
  last_rpc_error_.reset();
  auto resp = NextResponse(id, on_notification, DeadlineFrom(timeout));
  if (!resp) return resp.error();
  return Finish(std::move(*resp));
}

Result<json> Client::Call(std::string_view method, const json& params, Timeout timeout) {
  return Call(method, params, NotificationHandler{}, timeout);
}

Result<json> Client::Call(std::string_view method, const json& params,
                          const NotificationHandler& on_notification, Timeout timeout) {
  last_rpc_error_.reset();
  const Deadline deadline = DeadlineFrom(timeout);
  std::int64_t id = next_id_++;
  if (auto sent = WriteAll(RequestLine(id, method, params), deadline); !sent) {
    if (sent.error().code != ErrorCode::kIo || fd_ < 0) return sent.error();
    // The daemon closed on us; it may have said why before it did.
    auto why = NextResponse(id, on_notification, Clock::now());
    return why ? Finish(std::move(*why)) : sent.error();
  }
  auto resp = NextResponse(id, on_notification, deadline);
  if (!resp) return resp.error();
  return Finish(std::move(*resp));
}

Result<Notification> Client::ReadNotification(Timeout timeout) {
  const Deadline deadline = DeadlineFrom(timeout);
  while (notifications_.empty()) {
    auto line = ReadLineUntil(deadline);
    if (!line) return line.error();
    auto msg = ParseServerMessage(*line);
    if (!msg) return Broken(msg.error().message);
    if (auto* note = std::get_if<Notification>(&*msg)) return std::move(*note);
    auto& resp = std::get<Response>(*msg);
    if (resp.id.is_number_integer()) early_responses_[resp.id.get<std::int64_t>()] = resp;
  }
  Notification note = std::move(notifications_.front());
  notifications_.pop_front();
  return note;
}

Result<json> Client::Handshake(Timeout timeout) {
  auto result = Call(method::kDaemonVersion, {{"protocol", kProtocolVersion}}, timeout);
  if (!result) return result;
  const json& r = *result;
  if (!r.is_object() || !r.contains("protocol") || !r["protocol"].is_number_integer()) {
    return Err(ErrorCode::kIo, "picoflowd at " + path_ + " sent a malformed daemon.version");
  }
  int theirs = r["protocol"].get<int>();
  if (theirs != kProtocolVersion) {
    return Err(ErrorCode::kConflict, ProtocolMismatchMessage(kProtocolVersion, theirs,
                                                             r.value("version", std::string("?"))) +
                                         " (" + path_ + ")");
  }
  return result;
}

}  // namespace picoflow
