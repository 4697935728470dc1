#include "common/paths.h"

#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>

namespace picoflow {
namespace {

std::string Env(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr ? value : "";
}

// An XDG base directory: the variable if it holds an absolute path, else the
// fallback under $HOME (the spec says relative values are to be ignored).
std::string XdgDir(const char* variable, const char* fallback_under_home) {
  std::string value = Env(variable);
  if (!value.empty() && value[0] == '/') return value;
  return HomeDir() + "/" + fallback_under_home;
}

}  // namespace

std::string HomeDir() {
  std::string home = Env("HOME");
  if (!home.empty()) return home;
  if (const passwd* pw = getpwuid(getuid()); pw != nullptr && pw->pw_dir != nullptr) {
    return pw->pw_dir;
  }
  return "/";
}

Paths SystemPaths() {
  return {"/run/picoflow/picoflowd.sock", "/var/lib/picoflow", "/etc/picoflow/workflows"};
}

Paths UserPaths() {
  Paths paths;
  std::string runtime = Env("XDG_RUNTIME_DIR");
  if (!runtime.empty() && runtime[0] == '/') {
    paths.socket = runtime + "/picoflow/picoflowd.sock";
  } else {
    paths.socket = "/tmp/picoflow-" + std::to_string(getuid()) + "/picoflowd.sock";
  }
  paths.state_dir = XdgDir("XDG_STATE_HOME", ".local/state") + "/picoflow";
  paths.workflows_dir = XdgDir("XDG_CONFIG_HOME", ".config") + "/picoflow/workflows";
  return paths;
}

std::string DefaultClientSocket() {
  std::string env = Env("PICOFLOW_SOCKET");
  if (!env.empty()) return env;
  const std::string user = UserPaths().socket;
  struct stat st {};
  if (stat(user.c_str(), &st) == 0) return user;
  return SystemPaths().socket;
}

}  // namespace picoflow
