// Fuzz target: what a client writes on the control socket, through the
// connection's line framing (LineBuffer, cut and handled as RpcConnection
// does) into the Dispatcher and every method of RpcMethods, against a daemon
// core with a real store and engine and no socket (RpcFuzzHost). The input
// is the byte stream of one connection of a peer with write access; it
// arrives in reads of 1 to 61 bytes (the size follows the input's length),
// and its end is the end of the connection.
//
// Checked beyond "no crash, no leak, no undefined behaviour": everything
// the daemon sends is one JSON-RPC 2.0 object on one line (an answer with an
// id, or a notification), and the daemon stops cleanly after any input:
// store closed, every loop handle closed.

#include <spdlog/spdlog.h>
#include <stdlib.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "fuzz/fuzz_check.h"
#include "fuzz/rpc_fuzz_host.h"
#include "picoflowd/rpc/rpc_call.h"
#include "picoflowd/rpc/rpc_dispatch.h"
#include "picoflowd/rpc/rpc_methods.h"
#include "protocol/jsonrpc.h"
#include "protocol/line_buffer.h"

namespace picoflow::fuzz {
namespace {

// The framing's line limit here: the protocol's 1 MiB (kMaxLineBytes) made
// small enough for inputs of a few KiB to reach it.
constexpr std::size_t kFuzzMaxLine = 2048;

// A private directory for the store, made once per process (several fuzzing
// jobs each have their own) and removed at exit. Every input starts from a
// copy of one new, empty database: creating one per input (the schema, the
// page size) would take most of the time of an input.
class WorkDir {
 public:
  WorkDir() {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string(base && *base ? base : "/tmp") + "/pf-rpc-fuzz.XXXXXX";
    Require(::mkdtemp(pattern.data()) != nullptr, "a temporary directory can be made");
    root_ = pattern;
    const std::string empty = Clear(root_ + "/empty");
    { RpcFuzzHost made(empty); }  // creates the database and closes it cleanly
    template_ = empty + "/picoflow.db";
  }
  ~WorkDir() {
    std::error_code ignored;
    std::filesystem::remove_all(root_, ignored);
  }
  /// A state directory with an empty database: what the previous input left is gone.
  std::string Fresh() const {
    const std::string state = Clear(root_ + "/state");
    std::error_code ec;
    Require(std::filesystem::copy_file(template_, state + "/picoflow.db", ec),
            "the empty database can be copied");
    return state;
  }

 private:
  static std::string Clear(const std::string& dir) {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
    Require(std::filesystem::create_directory(dir, ec), "the state directory can be made");
    return dir;
  }

  std::string root_;
  std::string template_;
};

// The connection as the dispatcher sees it: checks each line sent and
// commits the store first, as RpcServerOptions::before_send does.
class FuzzChannel final : public RpcChannel {
 public:
  explicit FuzzChannel(RpcFuzzHost& host) : host_(host) {
    peer_.uid = 1000;
    peer_.pid = 4242;
    peer_.access = Access::kWrite;
  }
  const Peer& peer() const override { return peer_; }
  void Send(std::string line) override {
    if (!open_) return;
    host_.CommitNow();
    CheckLine(line);
  }
  void CloseAfterFlush() override { closing_ = true; }
  bool open() const override { return open_; }
  /// The client is gone: calls still held hear of it.
  void Close() {
    open_ = false;
    RunCloseHooks();
  }
  bool closing() const { return closing_; }

 private:
  static void CheckLine(const std::string& line) {
    Require(!line.empty() && line.back() == '\n', "a line sent ends with its newline");
    Require(line.find('\n') == line.size() - 1, "a line sent is one line");
    const json j = json::parse(line, nullptr, false);
    Require(j.is_object() && j.contains("jsonrpc") && j["jsonrpc"] == "2.0",
            "a line sent is JSON-RPC 2.0");
    const bool answer = j.contains("id") && (j.contains("result") != j.contains("error"));
    const bool notification = !j.contains("id") && j.contains("method");
    Require(answer || notification, "a line sent is an answer or a notification");
  }

  RpcFuzzHost& host_;
  Peer peer_;
  bool open_ = true;
  bool closing_ = false;
};

// Hands every complete line to the dispatcher, as RpcConnection::HandleLines
// does; false once the connection is to close (an over-long line, a refusal).
bool HandleLines(LineBuffer& input, Dispatcher& dispatcher,
                 const std::shared_ptr<FuzzChannel>& channel, RpcFuzzHost& host) {
  std::string line;
  while (!channel->closing()) {
    switch (input.Next(line)) {
      case LineBuffer::Status::kNeedMore: return true;
      case LineBuffer::Status::kLine:
        if (!line.empty()) dispatcher.HandleLine(channel, line);
        host.Turn();
        break;
      case LineBuffer::Status::kTooLong:
        channel->Send(ErrorLine(nullptr, RpcErr(RpcCode::kInvalidRequest, "request too long")));
        return false;
    }
  }
  return false;
}

void Serve(std::string_view stream, RpcFuzzHost& host) {
  Dispatcher dispatcher;
  RpcMethods methods(host);
  methods.Register(dispatcher);
  auto channel = std::make_shared<FuzzChannel>(host);
  LineBuffer input(kFuzzMaxLine);
  const std::size_t read_size = 1 + stream.size() % 61;
  bool open = true;
  for (std::size_t at = 0; open && at < stream.size(); at += read_size) {
    input.Append(stream.substr(at, read_size));
    open = HandleLines(input, dispatcher, channel, host);
  }
  // The end of the stream ends a last line sent without its newline.
  if (open && input.buffered() > 0) {
    input.Append("\n");
    HandleLines(input, dispatcher, channel, host);
  }
  host.Turn();
  channel->Close();
  host.Turn();
}

}  // namespace
}  // namespace picoflow::fuzz

extern "C" int LLVMFuzzerInitialize(int* /*argc*/, char*** /*argv*/) {
  spdlog::set_level(spdlog::level::off);  // a log line per request would be all one sees
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace picoflow::fuzz;
  static const WorkDir work;
  RpcFuzzHost host(work.Fresh());
  Serve(std::string_view(reinterpret_cast<const char*>(data), size), host);
  return 0;
}
