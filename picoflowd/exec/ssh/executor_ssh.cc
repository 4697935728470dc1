#include "picoflowd/exec/ssh/executor_ssh.h"

#include <libssh2.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <memory>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <variant>
#include <vector>

#include "common/duration.h"
#include "common/secrets.h"
#include "common/task_outputs.h"
#include "common/workflow.h"
#include "picoflowd/util/callback_guard.h"
#include "picoflowd/util/uv_handle.h"

namespace picoflow {
namespace {

constexpr std::size_t kReadChunk = 32 * 1024;
// Output read in one go before other handles get their turn.
constexpr std::size_t kReadBudget = 1024 * 1024;
// What the outputs reader may send: its stdout (what the login's startup
// files print, the marker line, then at most kMaxTaskOutputBytes + 1 bytes of
// the file) and its stderr (a one-line reason). More is not our reader.
constexpr std::size_t kCollectOutLimit = 2 * kMaxTaskOutputBytes + 256;
constexpr std::size_t kCollectErrLimit = 4096;

// A fresh name for an attempt's outputs directory: 128 random bits.
std::string OutputsId() {
  std::random_device random;
  std::string id;
  char hex[9];
  for (int i = 0; i < 4; ++i) {
    std::snprintf(hex, sizeof hex, "%08x", static_cast<unsigned>(random()));
    id += hex;
  }
  return id;
}

// The remote directory of the outputs file, as a POSIX-sh word: in the login's
// TMPDIR (evaluated before the task's env is exported, so both remote
// commands of an attempt find the same one).
std::string OutputsDirWord(const std::string& outputs_id) {
  return "\"${TMPDIR:-/tmp}/picoflow-output." + outputs_id + "\"";
}

std::string HomeDir() {
  if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0') return home;
  const passwd* pw = ::getpwuid(::getuid());
  return pw != nullptr && pw->pw_dir != nullptr ? pw->pw_dir : "/";
}

std::string UserName() {
  const passwd* pw = ::getpwuid(::getuid());
  if (pw != nullptr && pw->pw_name != nullptr) return pw->pw_name;
  const char* user = std::getenv("USER");
  return user != nullptr ? user : "root";
}

// POSIX-sh single quoting: 'it'\''s'.
std::string Quote(const std::string& text) {
  std::string out = "'";
  for (char c : text) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// `value` as one POSIX-sh word, each `${secret:NAME}` of it (NAME one of
// `secrets`) a reference to the variable NAME, which the wrapper set from
// stdin: the value itself never appears.
std::string QuoteWithSecrets(const std::string& value, const EnvList& secrets) {
  std::string word;
  std::size_t from = 0;
  while (std::optional<SecretRef> ref = FindSecretRef(value, from)) {
    bool known = false;
    for (const auto& [name, _] : secrets)
      known = known || (!ref->name.empty() && name == ref->name);
    if (known) {
      word += Quote(value.substr(from, ref->pos - from)) + "\"${" + std::string(ref->name) + "}\"";
    } else {  // the loader refuses those; sent as written
      word += Quote(value.substr(from, ref->pos + ref->size - from));
    }
    from = ref->pos + ref->size;
  }
  return word + Quote(value.substr(from));
}

bool IsShellName(const std::string& name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0])) != 0) return false;
  for (char c : name) {
    if (std::isalnum(static_cast<unsigned char>(c)) == 0 && c != '_') return false;
  }
  return true;
}

int SignalNumber(const std::string& name) {
  static const std::pair<const char*, int> kSignals[] = {
      {"HUP", 1},   {"INT", 2},   {"QUIT", 3},  {"ILL", 4},   {"ABRT", 6},
      {"FPE", 8},   {"KILL", 9},  {"USR1", 10}, {"SEGV", 11}, {"USR2", 12},
      {"PIPE", 13}, {"ALRM", 14}, {"TERM", 15}};
  for (const auto& [text, number] : kSignals) {
    if (name == text) return number;
  }
  return 0;
}

int KnownHostKeyType(int hostkey_type) {
  switch (hostkey_type) {
    case LIBSSH2_HOSTKEY_TYPE_RSA: return LIBSSH2_KNOWNHOST_KEY_SSHRSA;
    case LIBSSH2_HOSTKEY_TYPE_DSS: return LIBSSH2_KNOWNHOST_KEY_SSHDSS;
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_256: return LIBSSH2_KNOWNHOST_KEY_ECDSA_256;
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_384: return LIBSSH2_KNOWNHOST_KEY_ECDSA_384;
    case LIBSSH2_HOSTKEY_TYPE_ECDSA_521: return LIBSSH2_KNOWNHOST_KEY_ECDSA_521;
    case LIBSSH2_HOSTKEY_TYPE_ED25519: return LIBSSH2_KNOWNHOST_KEY_ED25519;
    default: return LIBSSH2_KNOWNHOST_KEY_UNKNOWN;
  }
}

// One running ssh attempt: its resolve request, socket, poll handle, timers
// and libssh2 session. Each step either completes or asks to wait for the
// socket (libssh2's EAGAIN).
class SshAttempt final : public Attempt {
 public:
  SshAttempt(uv_loop_t* loop, SshExecutor::LogFn log, const AttemptSpec& spec, AttemptSink& sink)
      : loop_(loop),
        log_(log),
        sink_(sink),
        spec_(spec),
        report_(this),
        connect_timer_(this),
        task_timer_(this),
        resume_(this) {
    for (UvHandle<uv_timer_t>* t : {&report_, &connect_timer_, &task_timer_, &resume_}) {
      uv_timer_init(loop_, t->get());  // cannot fail
      t->MarkInitialized();
    }
  }
  ~SshAttempt() override {
    CancelResolve();
    Drop();
    if (addrs_ != nullptr) uv_freeaddrinfo(addrs_);
  }
  SshAttempt(const SshAttempt&) = delete;
  SshAttempt& operator=(const SshAttempt&) = delete;

  /// Validates the task and starts resolving. Throws only std::bad_alloc.
  void Begin();
  /// Reports `result` on a later loop iteration (never from inside Start
  /// or a sink callback).
  void FinishLater(AttemptResult result);
  void Cancel() override;
  /// Start has returned: failures are reported at once from now on.
  void Started() { starting_ = false; }

 private:
  enum class Phase {
    kResolve,
    kConnect,
    kHandshake,
    kAgent,
    kKeys,
    kChannel,
    kExec,
    kSend,
    kRead,
    kClose,
    kDone
  };
  enum class Step { kNext, kWait, kStop };

  static void ResolvedCb(uv_getaddrinfo_t* req, int status, addrinfo* res) noexcept;
  static void PollCb(uv_poll_t* poll, int status, int events) noexcept;
  void OnResolved(int status, addrinfo* res);
  void ConnectNext();
  void OnConnectReady();
  void Drive();
  Step Handshake();
  Step CheckHostKey();
  Step AgentAuth();
  Step KeyAuth();
  Step OpenChannel();
  Step Exec();
  Step Send();
  Step Read();
  Step Close();
  AttemptResult ChannelResult();
  void StartCollect();
  bool Collect(int stream, std::string_view data);
  void EndCollect(const AttemptResult& reader);
  void ReadOutputs(AttemptResult& result, const AttemptResult& reader) const;
  AttemptResult CollectFailed(const std::string& why) const;
  void WaitForSocket();
  std::string LastError() const;
  std::string Where() const { return cfg_->host + ":" + std::to_string(cfg_->port); }
  void Fail(std::string error, AttemptStatus status = AttemptStatus::kFailed);
  void Finish(const AttemptResult& result);
  void CancelResolve();
  void Drop();
  void OnConnectTimeout();
  void OnTaskTimeout();
  void OnReport();
  void OnResume();

  uv_loop_t* loop_;
  SshExecutor::LogFn log_;
  AttemptSink& sink_;
  AttemptSpec spec_;
  const SshConfig* cfg_ = nullptr;
  std::string user_, command_, passphrase_, known_hosts_;
  std::string outputs_id_;        // names the remote outputs directory
  std::string input_;             // the secrets for the command's stdin (SshSecretsInput)
  std::size_t sent_ = 0;          // bytes of input_ written
  bool collecting_ = false;       // the command ended: the second channel runs collect_command_
  AttemptResult command_result_;  // the command's result, while collecting
  std::string collect_command_, collect_out_, collect_err_;
  std::vector<std::string> keys_;
  std::size_t key_index_ = 0;
  std::vector<std::string> auth_notes_;
  Phase phase_ = Phase::kResolve;
  bool starting_ = true;
  bool finished_ = false;
  std::optional<AttemptResult> pending_;
  uv_getaddrinfo_t* resolve_ = nullptr;
  addrinfo* addrs_ = nullptr;
  addrinfo* next_addr_ = nullptr;
  std::string connect_error_;
  int fd_ = -1;
  std::unique_ptr<UvHandle<uv_poll_t>> poll_;
  LIBSSH2_SESSION* session_ = nullptr;
  LIBSSH2_AGENT* agent_ = nullptr;
  libssh2_agent_publickey* identity_ = nullptr;
  int agent_tried_ = 0;
  LIBSSH2_CHANNEL* channel_ = nullptr;
  UvHandle<uv_timer_t> report_, connect_timer_, task_timer_, resume_;
};

void SshAttempt::Begin() {
  cfg_ = spec_.task != nullptr ? std::get_if<SshConfig>(&spec_.task->config) : nullptr;
  if (cfg_ == nullptr) return Fail("cannot start: not an ssh task");
  if (cfg_->host.empty()) return Fail("cannot start: no host");
  user_ = cfg_->user.empty() ? UserName() : cfg_->user;
  try {
    auto env = cfg_->env;
    env.insert(env.end(), spec_.env.begin(), spec_.env.end());
    outputs_id_ = OutputsId();
    command_ = SshRemoteCommand(cfg_->command, env, outputs_id_, spec_.secrets);
    input_ = SshSecretsInput(spec_.secrets);
  } catch (const std::invalid_argument& e) {
    return Fail(std::string("cannot start: ") + e.what());
  }
  known_hosts_ = cfg_->known_hosts.empty() ? HomeDir() + "/.ssh/known_hosts" : cfg_->known_hosts;
  if (!cfg_->passphrase_file.empty()) {
    std::ifstream in(cfg_->passphrase_file);
    if (!in) return Fail("cannot start: cannot read passphrase_file " + cfg_->passphrase_file);
    std::getline(in, passphrase_);
  } else if (!cfg_->passphrase_env.empty()) {
    const char* value = std::getenv(cfg_->passphrase_env.c_str());
    if (value == nullptr)
      return Fail("cannot start: passphrase_env " + cfg_->passphrase_env + " is not set");
    passphrase_ = value;
  }
  if (!cfg_->key_path.empty()) {
    keys_.push_back(cfg_->key_path);
  } else {
    for (const char* name : {"id_ed25519", "id_ecdsa", "id_rsa"}) {
      const std::string path = HomeDir() + "/.ssh/" + name;
      if (::access(path.c_str(), F_OK) == 0) keys_.push_back(path);
    }
  }
  if (spec_.timeout.count() > 0) {
    StartOneShot<SshAttempt, &SshAttempt::OnTaskTimeout>(task_timer_, spec_.timeout.count());
  }
  const auto connect_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(cfg_->connect_timeout);
  if (connect_ms.count() > 0) {
    StartOneShot<SshAttempt, &SshAttempt::OnConnectTimeout>(connect_timer_, connect_ms.count());
  }

  resolve_ = new uv_getaddrinfo_t{};
  resolve_->data = this;
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;  // no AI_ADDRCONFIG: it hides ::1 on hosts without global IPv6
  const std::string port = std::to_string(cfg_->port);
  const int rc =
      uv_getaddrinfo(loop_, resolve_, &ResolvedCb, cfg_->host.c_str(), port.c_str(), &hints);
  if (rc != 0) {
    delete resolve_;
    resolve_ = nullptr;
    return Fail("cannot resolve " + cfg_->host + ": " + uv_strerror(rc));
  }
}

void SshAttempt::ResolvedCb(uv_getaddrinfo_t* req, int status, addrinfo* res) noexcept {
  auto* self = static_cast<SshAttempt*>(req->data);
  delete req;
  if (self == nullptr) {
    uv_freeaddrinfo(res);
    return;
  }
  self->resolve_ = nullptr;
  GuardCallback("ssh executor: resolving the host", [&] { self->OnResolved(status, res); });
}

void SshAttempt::OnResolved(int status, addrinfo* res) {
  addrs_ = res;
  next_addr_ = res;
  if (status != 0 || res == nullptr) {
    return Fail("cannot resolve " + cfg_->host + ": " + uv_strerror(status));
  }
  phase_ = Phase::kConnect;
  ConnectNext();
}

// Tries the next resolved address with a non-blocking connect.
void SshAttempt::ConnectNext() {
  while (next_addr_ != nullptr) {
    addrinfo* a = next_addr_;
    next_addr_ = a->ai_next;
    fd_ = ::socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
    if (fd_ < 0) {
      connect_error_ = std::strerror(errno);
      continue;
    }
    // Each ssh message is one write: without Nagle a small one (a channel
    // request after the server acknowledged nothing) is not held back for
    // the peer's delayed ACK, ~40 ms each time (measured on loopback: the
    // handshake took 125-165 ms, opening a channel after another 45 ms).
    const int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (::connect(fd_, a->ai_addr, a->ai_addrlen) == 0 || errno == EINPROGRESS) {
      poll_ = std::make_unique<UvHandle<uv_poll_t>>(this);
      if (uv_poll_init_socket(loop_, poll_->get(), fd_) == 0) {
        poll_->MarkInitialized();
        uv_poll_start(poll_->get(), UV_WRITABLE, &PollCb);
        return;
      }
      connect_error_ = "uv_poll_init_socket failed";
    } else {
      connect_error_ = std::strerror(errno);
    }
    Drop();
  }
  Fail("cannot connect to " + Where() + ": " + connect_error_);
}

void SshAttempt::OnConnectReady() {
  int err = 0;
  socklen_t len = sizeof err;
  if (::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
  if (err != 0) {
    connect_error_ = std::strerror(err);
    Drop();
    return ConnectNext();
  }
  session_ = libssh2_session_init_ex(nullptr, nullptr, nullptr, this);
  if (session_ == nullptr) return Fail("cannot start an ssh session (libssh2_session_init failed)");
  libssh2_session_set_blocking(session_, 0);
  phase_ = Phase::kHandshake;
  Drive();
}

void SshAttempt::PollCb(uv_poll_t* poll, int status, int) noexcept {
  auto* self = OwnerOf<SshAttempt>(poll);
  if (self == nullptr || self->finished_) return;
  GuardCallback("ssh executor: socket ready", [&] {
    if (self->phase_ == Phase::kConnect) {
      if (status < 0) self->connect_error_ = uv_strerror(status);
      self->OnConnectReady();
    } else {
      self->Drive();
    }
  });
}

// Steps the session as far as it goes without blocking.
void SshAttempt::Drive() {
  while (!finished_ && !pending_) {
    Step step = Step::kStop;
    switch (phase_) {
      case Phase::kHandshake: step = Handshake(); break;
      case Phase::kAgent: step = AgentAuth(); break;
      case Phase::kKeys: step = KeyAuth(); break;
      case Phase::kChannel: step = OpenChannel(); break;
      case Phase::kExec: step = Exec(); break;
      case Phase::kSend: step = Send(); break;
      case Phase::kRead: step = Read(); break;
      case Phase::kClose: step = Close(); break;
      default: return;
    }
    if (step == Step::kWait) return WaitForSocket();
    if (step == Step::kStop) return;
  }
}

void SshAttempt::WaitForSocket() {
  const int dirs = libssh2_session_block_directions(session_);
  int events = 0;
  if ((dirs & LIBSSH2_SESSION_BLOCK_INBOUND) != 0) events |= UV_READABLE;
  if ((dirs & LIBSSH2_SESSION_BLOCK_OUTBOUND) != 0) events |= UV_WRITABLE;
  if (events == 0) events = UV_READABLE;
  uv_poll_start(poll_->get(), events, &PollCb);
}

std::string SshAttempt::LastError() const {
  char* msg = nullptr;
  libssh2_session_last_error(session_, &msg, nullptr, 0);
  return msg != nullptr && *msg != '\0' ? msg : "unknown libssh2 error";
}

SshAttempt::Step SshAttempt::Handshake() {
  const int rc = libssh2_session_handshake(session_, fd_);
  if (rc == LIBSSH2_ERROR_EAGAIN) return Step::kWait;
  if (rc != 0) {
    Fail("ssh handshake with " + Where() + " failed: " + LastError());
    return Step::kStop;
  }
  if (cfg_->verify_host_key && CheckHostKey() == Step::kStop) return Step::kStop;
  phase_ = Phase::kAgent;
  return Step::kNext;
}

// known_hosts is a small local file: read synchronously, once per attempt.
SshAttempt::Step SshAttempt::CheckHostKey() {
  std::size_t key_len = 0;
  int key_type = 0;
  const char* key = libssh2_session_hostkey(session_, &key_len, &key_type);
  if (key == nullptr) {
    Fail("ssh to " + Where() + ": no host key from the server");
    return Step::kStop;
  }
  const std::string scan = "`ssh-keyscan -p " + std::to_string(cfg_->port) + " " + cfg_->host +
                           " >> " + known_hosts_ + "` (after checking its fingerprint)";
  LIBSSH2_KNOWNHOSTS* hosts = libssh2_knownhost_init(session_);
  if (hosts == nullptr) {
    Fail("ssh to " + Where() + ": cannot check the host key (libssh2_knownhost_init failed)");
    return Step::kStop;
  }
  int check = LIBSSH2_KNOWNHOST_CHECK_NOTFOUND;
  if (::access(known_hosts_.c_str(), F_OK) == 0) {
    if (libssh2_knownhost_readfile(hosts, known_hosts_.c_str(), LIBSSH2_KNOWNHOST_FILE_OPENSSH) <
        0) {
      const std::string why = LastError();
      libssh2_knownhost_free(hosts);
      Fail("cannot read known_hosts " + known_hosts_ + ": " + why);
      return Step::kStop;
    }
    libssh2_knownhost* found = nullptr;
    check = libssh2_knownhost_checkp(
        hosts, cfg_->host.c_str(), cfg_->port, key, key_len,
        LIBSSH2_KNOWNHOST_TYPE_PLAIN | LIBSSH2_KNOWNHOST_KEYENC_RAW | KnownHostKeyType(key_type),
        &found);
  }
  libssh2_knownhost_free(hosts);
  if (check == LIBSSH2_KNOWNHOST_CHECK_MATCH) return Step::kNext;
  if (check == LIBSSH2_KNOWNHOST_CHECK_MISMATCH) {
    const std::string entry =
        cfg_->port == 22 ? cfg_->host : "[" + cfg_->host + "]:" + std::to_string(cfg_->port);
    Fail("HOST KEY CHANGED for " + Where() +
         " (possible man-in-the-middle attack): it differs from the key in " + known_hosts_ +
         "; if the change is expected, remove the old entry with `ssh-keygen -R '" + entry +
         "' -f " + known_hosts_ + "` and add the new key with " + scan);
  } else {
    Fail("host key of " + Where() + " is not in " + known_hosts_ + "; add it with " + scan +
         ", or set verify_host_key: false");
  }
  return Step::kStop;
}

// Every agent identity in turn; the agent socket itself is talked to blocking.
SshAttempt::Step SshAttempt::AgentAuth() {
  if (agent_ == nullptr) {
    const char* sock = std::getenv("SSH_AUTH_SOCK");
    if (sock == nullptr || *sock == '\0') {
      phase_ = Phase::kKeys;
      return Step::kNext;
    }
    agent_ = libssh2_agent_init(session_);
    if (agent_ == nullptr || libssh2_agent_connect(agent_) != 0 ||
        libssh2_agent_list_identities(agent_) != 0 ||
        libssh2_agent_get_identity(agent_, &identity_, nullptr) != 0) {
      auth_notes_.push_back("ssh-agent at " + std::string(sock) + ": no usable identity");
      phase_ = Phase::kKeys;
      return Step::kNext;
    }
  }
  const int rc = libssh2_agent_userauth(agent_, user_.c_str(), identity_);
  if (rc == LIBSSH2_ERROR_EAGAIN) return Step::kWait;
  if (rc == 0) {
    phase_ = Phase::kChannel;
    return Step::kNext;
  }
  ++agent_tried_;
  libssh2_agent_publickey* prev = identity_;
  if (libssh2_agent_get_identity(agent_, &identity_, prev) != 0) {
    auth_notes_.push_back("ssh-agent: " + std::to_string(agent_tried_) + " identities refused");
    phase_ = Phase::kKeys;
  }
  return Step::kNext;
}

SshAttempt::Step SshAttempt::KeyAuth() {
  if (key_index_ >= keys_.size()) {
    std::string tried;
    for (const std::string& note : auth_notes_) tried += (tried.empty() ? "" : "; ") + note;
    if (tried.empty())
      tried = "no ssh-agent ($SSH_AUTH_SOCK unset) and no key in ~/.ssh; set key_path";
    Fail("authentication as " + user_ + " to " + Where() + " failed: " + tried);
    return Step::kStop;
  }
  const std::string& key = keys_[key_index_];
  struct stat st {};
  if (::stat(key.c_str(), &st) != 0) {
    auth_notes_.push_back("key " + key + ": " + std::strerror(errno));
    ++key_index_;
    return Step::kNext;
  }
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    auth_notes_.push_back(
        "key " + key + " refused: permissions " + mode +
        " are too open (it must not be accessible by group or others: chmod 600 " + key + ")");
    ++key_index_;
    return Step::kNext;
  }
  const int rc = libssh2_userauth_publickey_fromfile_ex(session_, user_.c_str(),
                                                        static_cast<unsigned>(user_.size()),
                                                        nullptr, key.c_str(), passphrase_.c_str());
  if (rc == LIBSSH2_ERROR_EAGAIN) return Step::kWait;
  if (rc == 0) {
    phase_ = Phase::kChannel;
    return Step::kNext;
  }
  auth_notes_.push_back(
      "key " + key + ": " +
      (rc == LIBSSH2_ERROR_FILE ? LastError() + " (wrong passphrase?)" : LastError()));
  ++key_index_;
  return Step::kNext;
}

SshAttempt::Step SshAttempt::OpenChannel() {
  uv_timer_stop(connect_timer_.get());  // authenticated: connect_timeout is over
  channel_ = libssh2_channel_open_session(session_);
  if (channel_ != nullptr) {
    phase_ = Phase::kExec;
    return Step::kNext;
  }
  if (libssh2_session_last_errno(session_) == LIBSSH2_ERROR_EAGAIN) return Step::kWait;
  Fail("ssh to " + Where() + ": cannot open a channel: " + LastError());
  return Step::kStop;
}

SshAttempt::Step SshAttempt::Exec() {
  const int rc =
      libssh2_channel_exec(channel_, (collecting_ ? collect_command_ : command_).c_str());
  if (rc == LIBSSH2_ERROR_EAGAIN) return Step::kWait;
  if (rc != 0) {
    Fail("ssh to " + Where() + ": cannot run the command: " + LastError());
    return Step::kStop;
  }
  phase_ = collecting_ || input_.empty() ? Phase::kRead : Phase::kSend;
  return Step::kNext;
}

// The secrets the wrapper reads first (SshRemoteCommand), then the output.
SshAttempt::Step SshAttempt::Send() {
  while (sent_ < input_.size()) {
    const ssize_t n = libssh2_channel_write(channel_, input_.data() + sent_, input_.size() - sent_);
    if (n == LIBSSH2_ERROR_EAGAIN) return Step::kWait;
    if (n < 0) {
      Fail("ssh to " + Where() + ": cannot send the task's secrets: " + LastError());
      return Step::kStop;
    }
    sent_ += static_cast<std::size_t>(n);
  }
  std::fill(input_.begin(), input_.end(), '\0');  // no copy left behind longer than needed
  input_.clear();
  phase_ = Phase::kRead;
  return Step::kNext;
}

// Both streams until each would block, or until the budget is spent: then
// the rest (maybe already buffered inside libssh2, where the poll cannot see
// it) is read on the next loop iteration. The sink may Cancel() from OnOutput.
// The outputs reader's streams are collected, not passed to the sink.
SshAttempt::Step SshAttempt::Read() {
  char buf[kReadChunk];
  std::size_t total = 0;
  for (bool progress = true; progress;) {
    progress = false;
    if (total >= kReadBudget) {
      StartOneShot<SshAttempt, &SshAttempt::OnResume>(resume_, 0);
      return Step::kStop;
    }
    for (int id : {0, SSH_EXTENDED_DATA_STDERR}) {
      const ssize_t n = libssh2_channel_read_ex(channel_, id, buf, sizeof buf);
      if (n > 0) {
        progress = true;
        total += static_cast<std::size_t>(n);
        const std::string_view data(buf, static_cast<std::size_t>(n));
        if (collecting_) {
          if (!Collect(id, data)) return Step::kStop;
          continue;
        }
        sink_.OnOutput(id == 0 ? OutputStream::kStdout : OutputStream::kStderr, data);
        if (finished_ || pending_) return Step::kStop;
      } else if (n < 0 && n != LIBSSH2_ERROR_EAGAIN) {
        Fail("ssh to " + Where() + ": reading output failed: " + LastError());
        return Step::kStop;
      }
    }
  }
  if (libssh2_channel_eof(channel_) == 0) return Step::kWait;
  phase_ = Phase::kClose;
  return Step::kNext;
}

// Waits for the server to close the channel before closing our side: sshd
// does once it has reaped the command and sent its exit status. Closing
// first (at EOF) would close the command's stdin before that, and the
// watcher, finding the command not yet reaped, would take it for a dropped
// session (SshRemoteCommand). It also lets a command that closed its stdout
// early run to its end, as a shell task does.
SshAttempt::Step SshAttempt::Close() {
  int rc = libssh2_channel_wait_closed(channel_);
  if (rc == 0) rc = libssh2_channel_close(channel_);
  if (rc == LIBSSH2_ERROR_EAGAIN) return Step::kWait;
  if (collecting_) {
    EndCollect(ChannelResult());
    return Step::kStop;
  }
  command_result_ = ChannelResult();
  StartCollect();
  return Step::kNext;
}

// The closed channel's exit status or signal.
AttemptResult SshAttempt::ChannelResult() {
  AttemptResult r;
  char* signal_name = nullptr;
  std::size_t signal_len = 0;
  libssh2_channel_get_exit_signal(channel_, &signal_name, &signal_len, nullptr, nullptr, nullptr,
                                  nullptr);
  if (signal_name != nullptr) {
    const std::string name(signal_name, signal_len);
    libssh2_free(session_, signal_name);
    r.signal = SignalNumber(name);
    r.error = "remote command killed by SIG" + name;
  } else {
    r.exit_code = libssh2_channel_get_exit_status(channel_);
    if (*r.exit_code == 0)
      r.status = AttemptStatus::kSucceeded;
    else
      r.error = "remote command exited with status " + std::to_string(*r.exit_code);
  }
  return r;
}

// The command ended (its channel is closed): a second channel reads back and
// removes its outputs, or only removes them after a failure. Costs one more
// channel (open, exec, close) and one more login shell on the remote.
void SshAttempt::StartCollect() {
  libssh2_channel_free(channel_);  // closed: frees without waiting
  channel_ = nullptr;
  collecting_ = true;
  collect_command_ =
      SshOutputsCommand(outputs_id_, command_result_.status == AttemptStatus::kSucceeded);
  phase_ = Phase::kChannel;
}

// Keeps what the reader sends, up to what our reader can send; past that,
// ends the attempt (false).
bool SshAttempt::Collect(int stream, std::string_view data) {
  std::string& into = stream == 0 ? collect_out_ : collect_err_;
  const std::size_t limit = stream == 0 ? kCollectOutLimit : kCollectErrLimit;
  if (data.size() <= limit - into.size()) {
    into.append(data);
    return true;
  }
  phase_ = Phase::kDone;
  Finish(CollectFailed("ssh to " + Where() + ": the outputs reader sent more than " +
                       std::to_string(limit) + " bytes on " + (stream == 0 ? "stdout" : "stderr")));
  return false;
}

void SshAttempt::EndCollect(const AttemptResult& reader) {
  phase_ = Phase::kDone;
  AttemptResult result = command_result_;
  if (result.status == AttemptStatus::kSucceeded) ReadOutputs(result, reader);
  Finish(result);
}

void SshAttempt::ReadOutputs(AttemptResult& result, const AttemptResult& reader) const {
  const auto fail = [&result](const std::string& why) {
    result.status = AttemptStatus::kFailed;
    result.error = "its outputs (PICOFLOW_OUTPUT): " + why;
  };
  std::string reason = collect_err_;
  while (!reason.empty() && std::isspace(static_cast<unsigned char>(reason.back())) != 0)
    reason.pop_back();
  if (reason.empty()) reason = reader.error;
  // Whatever precedes the marker comes from the login's startup files.
  const std::string marker = SshOutputsMarker(outputs_id_) + "\n";
  const std::size_t at = collect_out_.find(marker);
  if (at == std::string::npos) {
    if (reason.empty()) reason = "the remote command printed no answer";
    return fail("cannot read them back: ssh to " + Where() + ": " + reason);
  }
  if (reader.status != AttemptStatus::kSucceeded) return fail(reason);
  auto outputs = ParseTaskOutputs(std::string_view(collect_out_).substr(at + marker.size()));
  if (!outputs.ok()) return fail(outputs.error().message);
  result.outputs = std::move(*outputs);
}

// The result of an attempt whose outputs could not be collected: a succeeded
// command fails, a failed one keeps its own result.
AttemptResult SshAttempt::CollectFailed(const std::string& why) const {
  AttemptResult r = command_result_;
  if (r.status == AttemptStatus::kSucceeded) {
    r.status = AttemptStatus::kFailed;
    r.error = "its outputs (PICOFLOW_OUTPUT): cannot read them back: " + why;
  }
  return r;
}

void SshAttempt::Fail(std::string error, AttemptStatus status) {
  AttemptResult r;
  r.status = status;
  r.error = std::move(error);
  if (collecting_) r = CollectFailed(r.error);
  if (starting_) return FinishLater(std::move(r));  // never from inside Start
  Finish(r);
}

void SshAttempt::FinishLater(AttemptResult result) {
  if (finished_ || pending_) return;
  pending_ = std::move(result);
  StartOneShot<SshAttempt, &SshAttempt::OnReport>(report_, 0);
}

void SshAttempt::OnReport() {
  if (finished_ || !pending_) return;
  const AttemptResult result = *pending_;
  Finish(result);
}

void SshAttempt::OnResume() {
  if (!finished_ && !pending_) Drive();
}

void SshAttempt::Cancel() {
  if (finished_ || pending_) return;
  AttemptResult r;
  r.status = AttemptStatus::kCancelled;
  r.error = "cancelled";
  FinishLater(std::move(r));  // Cancel may come from inside OnOutput
}

void SshAttempt::OnConnectTimeout() {
  if (finished_ || pending_ || phase_ >= Phase::kChannel) return;
  Finish(FailedResult("ssh to " + Where() + ": connect_timeout (" +
                      FormatDuration(cfg_->connect_timeout) +
                      ") passed before authentication completed"));
}

void SshAttempt::OnTaskTimeout() {
  if (finished_ || pending_) return;
  // A failed command stays failed, whatever its clean-up takes.
  if (collecting_ && command_result_.status != AttemptStatus::kSucceeded)
    return Finish(command_result_);
  AttemptResult timeout = FailedResult("timed out after " + FormatDuration(spec_.timeout) +
                                       (collecting_ ? " (reading its outputs back)" : ""));
  timeout.status = AttemptStatus::kTimeout;
  Finish(timeout);
}

void SshAttempt::Finish(const AttemptResult& result) {
  finished_ = true;
  CancelResolve();
  Drop();  // before OnFinished: a timeout or cancel drops the connection, ending the command
  for (UvHandle<uv_timer_t>* t : {&report_, &connect_timer_, &task_timer_, &resume_})
    uv_timer_stop(t->get());
  sink_.OnFinished(result);  // last: the sink may destroy `this`
}

void SshAttempt::CancelResolve() {
  if (resolve_ != nullptr) {
    resolve_->data = nullptr;  // the callback frees it
    uv_cancel(reinterpret_cast<uv_req_t*>(resolve_));
    resolve_ = nullptr;
  }
}

// Drops the connection at once: sshd then closes the command's stdin, and the
// wrapper's watcher kills the command's process group.
void SshAttempt::Drop() {
  if (poll_ != nullptr) poll_.reset();
  if (fd_ >= 0) ::shutdown(fd_, SHUT_RDWR);  // no libssh2 call below can wait on the peer
  if (agent_ != nullptr) {
    libssh2_agent_disconnect(agent_);
    libssh2_agent_free(agent_);
    agent_ = nullptr;
  }
  if (channel_ != nullptr) {
    libssh2_channel_free(channel_);
    channel_ = nullptr;
  }
  if (session_ != nullptr) {
    libssh2_session_free(session_);
    session_ = nullptr;
  }
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
}

}  // namespace

std::string SshRemoteCommand(const std::string& command, const EnvList& env,
                             const std::string& outputs_id, const EnvList& secrets) {
  // PICOFLOW_OUTPUT's directory is named before the task's env is exported:
  // a TMPDIR in env moves neither it nor the outputs reader's.
  std::string line = "PICOFLOW_OUTPUT=" + OutputsDirWord(outputs_id) + "/output; ";
  // Each secret: exactly its length in bytes from stdin (dd bs=1 never
  // reads past it), kept whole with its trailing newlines (the `.`).
  for (const auto& [name, value] : secrets) {
    if (!IsShellName(name))
      throw std::invalid_argument("secret name '" + name + "' is not a shell identifier");
    line += name + "=$(dd bs=1 count=" + std::to_string(value.size()) + " 2>/dev/null; echo .); " +
            name + "=\"${" + name + "%.}\"; export " + name + "; ";
  }
  for (const auto& [name, value] : env) {
    if (!IsShellName(name))
      throw std::invalid_argument("env name '" + name + "' is not a shell identifier");
    if (name == "PICOFLOW_OUTPUT") continue;  // set by picoflow, last
    line += "export " + name + "=" + QuoteWithSecrets(value, secrets) + "; ";
  }
  // mkdir makes the directory or fails, never reusing one (as mktemp does);
  // without it the command still runs, told so on its stderr.
  line +=
      "if mkdir -m 700 \"${PICOFLOW_OUTPUT%/output}\"; then export PICOFLOW_OUTPUT; "
      "else unset PICOFLOW_OUTPUT; echo 'picoflow: PICOFLOW_OUTPUT is unset: this task cannot "
      "pass outputs on' >&2; fi; ";
  // fd 3 keeps the channel's stdin for the watcher only; the command gets
  // /dev/null. sshd made this shell a process-group leader (setsid), so
  // `kill -HUP 0` reaches everything the command started. The command is
  // exec'd, so sshd reports its own exit status or signal; the watcher sees
  // EOF when the session ends (normally or not) and then ends what is left
  // of the group, as the local executor does. When the command ended, sshd
  // has reaped it ($$ is gone) and the executor reads and removes the
  // outputs with SshOutputsCommand; when it is still running, the session
  // was dropped (timeout, cancel, a crash of picoflowd) and the watcher
  // removes them, ignoring the SIGHUP it sends.
  line +=
      "exec 3<&0 </dev/null; { read -r _ <&3; if [ -n \"${PICOFLOW_OUTPUT-}\" ] && kill -0 $$; "
      "then trap '' HUP; kill -HUP 0; rm -rf \"${PICOFLOW_OUTPUT%/output}\"; else kill -HUP 0; "
      "fi; } >/dev/null 2>&1 & exec 3<&-; exec \"${SHELL:-/bin/sh}\" -c " +
      Quote(command);
  return line;
}

std::string SshSecretsInput(const EnvList& secrets) {
  std::string input;
  for (const auto& [_, value] : secrets) input += value;
  return input;
}

std::string SshOutputsMarker(const std::string& outputs_id) {
  return "picoflow-outputs." + outputs_id;
}

std::string SshOutputsCommand(const std::string& outputs_id, bool read) {
  // Only a directory of this account, not a symlink: the one the wrapper made.
  std::string line = "d=" + OutputsDirWord(outputs_id) +
                     "; if [ -d \"$d\" ] && [ ! -L \"$d\" ] && [ -O \"$d\" ]; then ";
  if (!read) return line + "rm -rf \"$d\"; fi";
  // SIGPIPE ignored and the reason printed last: a connection dropped
  // meanwhile does not stop the removal. dd reads one byte past the limit,
  // which ParseTaskOutputs refuses with the shell executor's message.
  return "trap '' PIPE; printf '%s\\n' " + SshOutputsMarker(outputs_id) + "; e=; " + line +
         "f=\"$d/output\"; if [ -L \"$f\" ] || { [ -e \"$f\" ] && [ ! -f \"$f\" ]; }; "
         "then e='it is not a regular file'; elif [ -e \"$f\" ]; then dd if=\"$f\" bs=" +
         std::to_string(kMaxTaskOutputBytes + 1) +
         " count=1 2>/dev/null || e='cannot read it'; fi; rm -rf \"$d\"; fi; "
         "[ -z \"$e\" ] || { echo \"$e\" >&2; exit 1; }";
}

SshExecutor::SshExecutor(uv_loop_t* loop, LogFn log_error) : loop_(loop), log_error_(log_error) {}

SshExecutor::~SshExecutor() = default;

std::unique_ptr<Attempt> SshExecutor::Start(const AttemptSpec& spec, AttemptSink& sink) {
  auto attempt = std::make_unique<SshAttempt>(loop_, log_error_, spec, sink);
  try {
    attempt->Begin();
    attempt->Started();
  } catch (const std::exception& e) {
    attempt->FinishLater(FailedResult(std::string("cannot start: ") + e.what()));
    attempt->Started();
  }
  return attempt;
}

}  // namespace picoflow
