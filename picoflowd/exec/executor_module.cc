#include "picoflowd/exec/executor_module.h"

#include <dlfcn.h>
#include <unistd.h>

#include <cstdlib>
#include <exception>
#include <filesystem>
#include <system_error>

#include "picoflowd/exec/executor_module_abi.h"
#include "picoflowd/exec/executor_unavailable.h"
#include "picoflowd/exec/module_paths.h"
#include "picoflowd/util/logging.h"

namespace picoflow {
namespace {

// The log_error of the host table: the daemon's log (which never throws).
void HostLogError(const char* message) noexcept { LogError({}, message); }

// The directory of the running executable, or "" if unknown.
std::string ExecutableDir() {
  std::error_code ec;
  const std::filesystem::path exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string() : exe.parent_path().string();
}

}  // namespace

std::string ModulePath(std::string_view module_file) {
  const std::string file(module_file);
  if (const char* env = std::getenv("PICOFLOW_MODULE_DIR"); env != nullptr && *env != '\0') {
    return std::string(env) + "/" + file;
  }
  // An installed daemon never looks into a build tree, which may be writable
  // by someone who is not root.
  if (ExecutableDir() == PICOFLOW_DAEMON_BUILD_DIR) {
    for (const ExecutorModuleSpec& m : kExecutorModules) {
      if (module_file == m.file) {
        return std::string(PICOFLOW_MODULE_BUILD_ROOT) + "/" + TaskTypeName(m.type) + "/" + file;
      }
    }
  }
  return std::string(PICOFLOW_MODULE_INSTALL_DIR) + "/" + file;
}

LazyExecutor::LazyExecutor(uv_loop_t* loop, std::string module_file, std::string factory_symbol)
    : loop_(loop),
      module_file_(std::move(module_file)),
      factory_symbol_(std::move(factory_symbol)) {}

LazyExecutor::~LazyExecutor() = default;

std::unique_ptr<Attempt> LazyExecutor::Start(const AttemptSpec& spec, AttemptSink& sink) {
  std::string error;
  try {
    if (inner_ == nullptr) error = Load();
    if (inner_ != nullptr) return inner_->Start(spec, sink);
  } catch (const std::exception& e) {
    error = e.what();
  }
  return UnavailableExecutor(loop_, error).Start(spec, sink);
}

void* LoadModuleSymbol(const std::string& module_file, const std::string& symbol,
                       std::string_view what, std::string& error) {
  const std::string path = ModulePath(module_file);
  const std::string prefix = "cannot load " + std::string(what) + " " + path + ": ";
  // RTLD_LOCAL: the module's libcurl stays out of the global namespace.
  // Loading it again (the executor and the sender of one module) gives the
  // same handle.
  void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    const char* err = ::dlerror();
    std::string why = err != nullptr ? err : "unknown dlopen error";
    if (why.rfind(path + ": ", 0) == 0) why.erase(0, path.size() + 2);  // glibc repeats the path
    error = prefix + why + " (set PICOFLOW_MODULE_DIR to its directory)";
    return nullptr;
  }
  void* found = ::dlsym(handle, symbol.c_str());
  if (found == nullptr) {
    ::dlclose(handle);
    error = prefix + "no symbol " + symbol;
  }
  return found;
}

std::string LazyExecutor::Load() {
  std::string error;
  auto factory = reinterpret_cast<PicoflowExecutorFactory>(
      LoadModuleSymbol(module_file_, factory_symbol_, "executor module", error));
  if (factory == nullptr) return error;
  const PicoflowModuleHost host = MakeModuleHost(&HostLogError);
  char why[512] = "the factory failed";
  Executor* executor = factory(&host, loop_, why, sizeof why);
  // On failure the module stays loaded: it made nothing that could call
  // back into it, and the next attempt tries again.
  if (executor == nullptr)
    return "cannot load executor module " + ModulePath(module_file_) + ": " + why;
  inner_.reset(executor);
  LogInfo({}, "loaded executor module " + ModulePath(module_file_));
  return {};
}

LazyRequestSender::LazyRequestSender(uv_loop_t* loop) : loop_(loop) {}

LazyRequestSender::~LazyRequestSender() = default;

void LazyRequestSender::Send(OutboundRequest request, Done done) {
  std::string error;
  try {
    if (inner_ == nullptr) {
      auto factory = reinterpret_cast<PicoflowSenderFactory>(
          LoadModuleSymbol(kHttpModuleFile, kHttpSenderSymbol, "module", error));
      if (factory != nullptr) {
        const PicoflowModuleHost host = MakeModuleHost(&HostLogError);
        char why[512] = "the factory failed";
        inner_.reset(factory(&host, loop_, why, sizeof why));
        if (inner_ == nullptr)
          error = "cannot load module " + ModulePath(kHttpModuleFile) + ": " + why;
        if (inner_ != nullptr)
          LogInfo({}, "loaded the sender of module " + ModulePath(kHttpModuleFile));
      }
    }
    if (inner_ != nullptr) return inner_->Send(std::move(request), std::move(done));
  } catch (const std::exception& e) {
    error = e.what();
  }
  RequestOutcome outcome;
  outcome.error = error;
  done(outcome);
}

}  // namespace picoflow
