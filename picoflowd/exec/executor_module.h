#pragma once
// LazyExecutor: stands in for an executor that lives in a shared module
// (picoflow-http.so) and loads it with dlopen() on the first attempt, so the
// daemon maps libcurl only once a task needs it.

#include <uv.h>

#include <memory>
#include <string>
#include <string_view>

#include "picoflowd/exec/executor.h"
#include "picoflowd/exec/request_sender.h"

namespace picoflow {

/// Where the module file `module_file` is loaded from: $PICOFLOW_MODULE_DIR
/// if set and not empty; else, when the running executable is the picoflowd
/// of a build tree, that tree's exec/<type>/ folder of the module (so a build
/// tree runs its own modules); else the install directory (LIBDIR/picoflow).
std::string ModulePath(std::string_view module_file);

/// Loads the module `module_file` from ModulePath() and finds `symbol` in
/// it; returns null with `error` set if it cannot (`cannot load WHAT PATH:
/// why`).
void* LoadModuleSymbol(const std::string& module_file, const std::string& symbol,
                       std::string_view what, std::string& error);

/// Forwards attempts to the executor made by `factory_symbol` of the module
/// `module_file`, loading it from ModulePath() on the first Start.
///
/// If the module cannot be loaded (missing file, dlerror, missing symbol,
/// ABI mismatch, factory failure), that attempt fails on a later loop
/// iteration with an error naming the path and the reason; the next attempt
/// tries again, so installing the module needs no daemon restart.
///
/// A loaded module is never dlclose()d: its code runs the close callbacks of
/// the handles it owned, which fire after the executor is destroyed.
class LazyExecutor final : public Executor {
 public:
  /// `loop` must outlive this executor and every attempt it started.
  LazyExecutor(uv_loop_t* loop, std::string module_file, std::string factory_symbol);
  ~LazyExecutor() override;
  LazyExecutor(const LazyExecutor&) = delete;
  LazyExecutor& operator=(const LazyExecutor&) = delete;

  /// Loads the module if needed, then starts the attempt with it. Never throws.
  std::unique_ptr<Attempt> Start(const AttemptSpec& spec, AttemptSink& sink) override;

  /// True once the module is loaded and its executor made.
  bool loaded() const { return inner_ != nullptr; }

 private:
  /// Loads the module; returns "" or why it could not.
  std::string Load();

  uv_loop_t* loop_;
  std::string module_file_;
  std::string factory_symbol_;
  std::unique_ptr<Executor> inner_;
};

/// Forwards requests to the sender of the http module, loaded on the first
/// Send: a daemon that sends nothing never maps libcurl. If the module cannot
/// be loaded, `done` is told so at once, and the next Send tries again.
class LazyRequestSender final : public RequestSender {
 public:
  /// `loop` must outlive this sender.
  explicit LazyRequestSender(uv_loop_t* loop);
  ~LazyRequestSender() override;
  LazyRequestSender(const LazyRequestSender&) = delete;
  LazyRequestSender& operator=(const LazyRequestSender&) = delete;

  void Send(OutboundRequest request, Done done) override;
  bool loaded() const { return inner_ != nullptr; }

 private:
  uv_loop_t* loop_;
  std::unique_ptr<RequestSender> inner_;
};

}  // namespace picoflow
