#include "common/workflow_task_config.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <span>

#include "common/env_expand.h"
#include "common/workflow_fields.h"
#include "common/yaml_tree.h"

namespace picoflow {
namespace {

using namespace std::chrono_literals;

constexpr std::string_view kShellKeys[] = {"command", "args", "workdir", "env"};
constexpr std::string_view kSshKeys[] = {"host",
                                         "user",
                                         "command",
                                         "port",
                                         "key_path",
                                         "passphrase_file",
                                         "passphrase_env",
                                         "verify_host_key",
                                         "known_hosts",
                                         "connect_timeout",
                                         "env"};
constexpr std::string_view kHttpKeys[] = {"url",
                                          "method",
                                          "headers",
                                          "body",
                                          "timeout",
                                          "expect_status",
                                          "follow_redirects",
                                          "ca_file",
                                          "allow_private_ips",
                                          "output_body"};
constexpr std::string_view kMethods[] = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"};

bool Contains(std::span<const std::string_view> list, std::string_view key) {
  return std::find(list.begin(), list.end(), key) != list.end();
}

// Explains keys that users put in `config:` by mistake; empty for the rest.
std::string ExplainConfigKey(TaskType type, std::string_view key) {
  const std::string k(key);
  if (key != "config" && Contains(kTaskKeys, key)) {
    const char* article = type == TaskType::kShell ? "a " : "an ";
    return "'" + k + "' is not " + article + TaskTypeName(type) +
           " config key; set it on the task itself (task-level '" + k + ":')";
  }
  if (type == TaskType::kSsh && (key == "password" || key == "passphrase")) {
    return "'" + k +
           "' is not supported: secrets do not belong in workflow files; "
           "use 'passphrase_file' or 'passphrase_env' for a key passphrase, or an ssh agent";
  }
  return "";
}

bool IsBlankText(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isspace(c); });
}

bool IsEnvName(std::string_view name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0]))) return false;
  return std::all_of(name.begin(), name.end(),
                     [](unsigned char c) { return std::isalnum(c) || c == '_'; });
}

// Shared by the three types: a required non-blank string.
std::string RequiredText(FieldReader& r, const YamlNode& config, std::string_view key,
                         SourcePos config_key, const std::string& prefix) {
  const YamlNode* v = config.Find(key);
  if (!r.Require(v, {prefix, key}, config_key)) return "";
  std::optional<std::string> text = r.Text(*v, {prefix, key});
  if (text && IsBlankText(*text))
    r.Report(v->pos, prefix + "'" + std::string(key) + "' must not be empty");
  return text.value_or("");
}

std::string OptionalText(FieldReader& r, const YamlNode& config, std::string_view key,
                         const std::string& prefix) {
  const YamlNode* v = config.Find(key);
  return v ? r.Text(*v, {prefix, key}).value_or("") : "";
}

constexpr const char* kOnlyShellEnv = " (only the 'env' values of shell tasks expand variables)";
constexpr const char* kOnlyShellEnvOrHome =
    " (only the 'env' values of shell tasks expand variables; a leading ~ is the daemon user's "
    "home)";

// A `$NAME` / `${NAME}` where nothing expands it is a warning, not an error:
// the value is valid as written, just most likely not what was meant.
void WarnUnexpanded(FieldReader& r, const YamlNode* v, const std::string& value,
                    const std::string& prefix, std::string_view key, bool braces_only = false,
                    const char* why = kOnlyShellEnv) {
  if (!v) return;
  if (std::optional<EnvReference> ref = FindEnvReference(value, braces_only)) {
    r.Warn(v->pos, prefix + "'" + std::string(key) + "': '" + std::string(ref->text) +
                       "' is not expanded" + why);
  }
}

// Resolves `value` in place (task_paths.h); an unknown file leaves a
// relative path relative, to the daemon's working directory: a warning.
void ResolveInPlace(FieldReader& r, const YamlNode& v, std::string& value, std::string_view base,
                    const PathBase& paths, const std::string& prefix, std::string_view key) {
  Result<std::string> resolved = ResolvePath(value, base, paths);
  if (!resolved.ok()) {
    r.Report(v.pos, prefix + "'" + std::string(key) + "': " + resolved.error().message);
    return;
  }
  // A path with a variable in it was warned about already.
  if (!resolved->empty() && resolved->front() != '/' && !FindEnvReference(value)) {
    r.Warn(v.pos, prefix + "'" + std::string(key) + "' '" + value +
                      "' is relative and the workflow's file is not known (it came without an "
                      "absolute path): it resolves against the daemon's working directory");
  }
  value = std::move(*resolved);
}

// docs/workflow-format.md, "Paths": the workdir against the file's
// directory; a program named by a path (not looked up in PATH) against the
// workdir if there is one, as exec after the chdir would, else the same.
// A `/bin/sh -c` command is the shell's business.
void ResolveShellPaths(FieldReader& r, const YamlNode& config, ShellConfig& shell,
                       const PathBase& paths, const std::string& prefix) {
  if (const YamlNode* v = config.Find("workdir"); v && !shell.workdir.empty()) {
    ResolveInPlace(r, *v, shell.workdir, paths.dir, paths, prefix, "workdir");
  }
  const YamlNode* command = config.Find("command");
  if (!command || !shell.args || shell.command.find('/') == std::string::npos) return;
  if (shell.workdir.empty()) {
    ResolveInPlace(r, *command, shell.command, paths.dir, paths, prefix, "command");
  } else if (Result<std::string> program = ResolvePath(
                 shell.command, shell.workdir.front() == '/' ? shell.workdir : "", paths);
             program.ok()) {
    shell.command = std::move(*program);  // a relative workdir was warned about
  } else {
    r.Report(command->pos, prefix + "'command': " + program.error().message);
  }
}

// Shell tasks expand their env values when an attempt starts (env_expand.h):
// a malformed `${` is an error. An ssh task sends its values as written.
EnvList ReadEnv(FieldReader& r, const YamlNode& config, const std::string& prefix, TaskType type) {
  EnvList env;
  const YamlNode* v = config.Find("env");
  std::vector<SourcePos> positions;
  if (!v || !r.TextMap(*v, {prefix, "env"}, env, &positions)) return env;
  for (std::size_t i = 0; i < env.size(); ++i) {
    const auto& [name, value] = env[i];
    if (!IsEnvName(name)) {
      r.Report(positions[i],
               prefix + "'env': '" + name +
                   "' is not a valid environment variable name (letters, digits, '_')");
    }
    const std::string of = prefix + "'env': the value of '" + name + "'";
    if (value.find("${secret:") != std::string::npos) {
      // CheckSecretUse (workflow_secrets.h) says where those go, or checks them.
    } else if (type == TaskType::kShell) {
      if (std::string why = CheckEnvSyntax(value); !why.empty()) {
        r.Report(positions[i], of + ": " + why);
      }
    } else if (std::optional<EnvReference> ref = FindEnvReference(value)) {
      r.Warn(positions[i], of + " is sent as written: '" + std::string(ref->text) +
                               "' is expanded neither by picoflow nor by the remote shell (to "
                               "extend a remote variable, do it in 'command': export " +
                               name + "=...; ...)");
    }
  }
  return env;
}

template <class T>
void ReadBool(FieldReader& r, const YamlNode& config, std::string_view key,
              const std::string& prefix, T& out) {
  if (const YamlNode* v = config.Find(key)) out = r.Bool(*v, {prefix, key}).value_or(out);
}

ShellConfig LoadShell(FieldReader& r, const YamlNode& config, SourcePos at,
                      const std::string& prefix, const PathBase& paths) {
  ShellConfig shell;
  shell.command = RequiredText(r, config, "command", at, prefix);
  if (const YamlNode* v = config.Find("args"); v && !v->IsNull()) {
    std::vector<std::string> args;
    if (r.TextList(*v, {prefix, "args"}, false, args)) shell.args = std::move(args);
  }
  shell.workdir = OptionalText(r, config, "workdir", prefix);
  WarnUnexpanded(r, config.Find("workdir"), shell.workdir, prefix, "workdir", false,
                 kOnlyShellEnvOrHome);
  if (shell.args) {
    // Without a shell nothing expands the program's path.
    WarnUnexpanded(r, config.Find("command"), shell.command, prefix, "command", false,
                   kOnlyShellEnvOrHome);
  }
  ResolveShellPaths(r, config, shell, paths, prefix);
  shell.env = ReadEnv(r, config, prefix, TaskType::kShell);
  return shell;
}

void CheckPassphrase(FieldReader& r, const YamlNode& config, const SshConfig& ssh,
                     const std::string& prefix) {
  const YamlNode* env = config.Find("passphrase_env");
  if (env && !ssh.passphrase_env.empty() && !IsEnvName(ssh.passphrase_env)) {
    r.Report(env->pos, prefix + "'passphrase_env' must be an environment variable name, got '" +
                           ssh.passphrase_env + "'");
  }
  if (env && !ssh.passphrase_env.empty() && !ssh.passphrase_file.empty()) {
    r.Report(env->pos, prefix + "set only one of 'passphrase_file' and 'passphrase_env'");
  }
}

void CheckSshTarget(FieldReader& r, const YamlNode& config, SshConfig& ssh,
                    const std::string& prefix) {
  if (const YamlNode* v = config.Find("host"); v && !ssh.host.empty()) {
    if (std::string why = CheckHostSyntax(ssh.host); !why.empty()) {
      r.Report(v->pos, prefix + "'host' must be a hostname, an IPv4 or an IPv6 address, got '" +
                           ssh.host + "': " + why);
    } else if (ssh.host.front() == '[') {
      ssh.host = ssh.host.substr(1, ssh.host.size() - 2);
    }
  }
  const YamlNode* user = config.Find("user");
  if (user && std::any_of(ssh.user.begin(), ssh.user.end(),
                          [](unsigned char c) { return std::isspace(c) || c == '@'; })) {
    r.Report(user->pos,
             prefix + "'user' must be a user name without spaces or '@', got '" + ssh.user + "'");
  } else {
    WarnUnexpanded(r, user, ssh.user, prefix, "user");
  }
}

SshConfig LoadSsh(FieldReader& r, const YamlNode& config, SourcePos at, const std::string& prefix) {
  SshConfig ssh;
  ssh.host = RequiredText(r, config, "host", at, prefix);
  ssh.user = RequiredText(r, config, "user", at, prefix);
  ssh.command = RequiredText(r, config, "command", at, prefix);
  CheckSshTarget(r, config, ssh, prefix);
  if (const YamlNode* v = config.Find("port")) {
    ssh.port = static_cast<int>(r.Int(*v, {prefix, "port"}, 1, 65535).value_or(ssh.port));
  }
  ssh.key_path = OptionalText(r, config, "key_path", prefix);
  ssh.passphrase_file = OptionalText(r, config, "passphrase_file", prefix);
  ssh.passphrase_env = OptionalText(r, config, "passphrase_env", prefix);
  WarnUnexpanded(r, config.Find("key_path"), ssh.key_path, prefix, "key_path");
  WarnUnexpanded(r, config.Find("passphrase_file"), ssh.passphrase_file, prefix, "passphrase_file");
  CheckPassphrase(r, config, ssh, prefix);
  ReadBool(r, config, "verify_host_key", prefix, ssh.verify_host_key);
  ssh.known_hosts = OptionalText(r, config, "known_hosts", prefix);
  WarnUnexpanded(r, config.Find("known_hosts"), ssh.known_hosts, prefix, "known_hosts");
  if (const YamlNode* v = config.Find("connect_timeout")) {
    ssh.connect_timeout =
        r.Duration(*v, {prefix, "connect_timeout"}, 1s).value_or(ssh.connect_timeout);
  }
  ssh.env = ReadEnv(r, config, prefix, TaskType::kSsh);
  return ssh;
}

void ReadHeaders(FieldReader& r, const YamlNode& config, HttpConfig& http,
                 const std::string& prefix) {
  const YamlNode* v = config.Find("headers");
  std::vector<SourcePos> positions;
  if (!v || !r.TextMap(*v, {prefix, "headers"}, http.headers, &positions)) return;
  for (std::size_t i = 0; i < http.headers.size(); ++i) {
    const auto& [name, value] = http.headers[i];
    if (!IsHeaderName(name)) {
      r.Report(positions[i], prefix + "'headers': '" + name + "' is not a valid HTTP header name");
    } else if (value.find_first_of("\r\n") != std::string::npos) {
      r.Report(positions[i], prefix + "'headers': the value of '" + name + "' must be one line");
    } else if (std::optional<EnvReference> ref = FindEnvReference(value, true)) {
      // `$` alone is common in header values; `${NAME}` is a template.
      r.Warn(positions[i], prefix + "'headers': the value of '" + name + "': '" +
                               std::string(ref->text) + "' is not expanded" + kOnlyShellEnv);
    }
  }
}

void ReadUrl(FieldReader& r, const YamlNode& config, SourcePos at, HttpConfig& http,
             const std::string& prefix) {
  http.url = RequiredText(r, config, "url", at, prefix);
  const YamlNode* v = config.Find("url");
  if (!v || http.url.empty() || IsBlankText(http.url)) return;
  const std::string why = HttpUrlProblem(http.url);
  if (why.empty()) {
    // `$filter` and the like are at home in a URL; `${NAME}` is a template.
    WarnUnexpanded(r, v, http.url, prefix, "url", true);
    return;
  }
  const bool has_var = FindEnvReference(http.url, true).has_value();
  r.Report(v->pos, prefix + "'url' " + why + ", got '" + http.url + "'" +
                       (has_var ? " (${...} is not expanded in a url)" : ""));
}

void ReadMethod(FieldReader& r, const YamlNode& config, HttpConfig& http,
                const std::string& prefix) {
  const YamlNode* v = config.Find("method");
  if (!v) return;
  std::optional<std::string> method = r.Text(*v, {prefix, "method"});
  if (!method) return;
  std::transform(method->begin(), method->end(), method->begin(),
                 [](unsigned char c) { return std::toupper(c); });
  if (!Contains(kMethods, *method)) {
    r.Report(v->pos, prefix + "'method' must be one of GET, POST, PUT, PATCH, DELETE, HEAD, got '" +
                         v->text + "'" + DidYouMean(ClosestMatch(*method, kMethods)));
    return;
  }
  http.method = *method;
}

// One `expect_status` entry: 204, "200-299" or "2xx".
std::optional<StatusRange> ParseStatus(std::string_view text) {
  const auto code = [](std::string_view s) -> int {
    if (s.size() != 3 ||
        !std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); })) {
      return -1;
    }
    const int value = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
    return value >= 100 && value <= 599 ? value : -1;
  };
  if (text.size() == 3 && (text[1] == 'x' || text[1] == 'X') &&
      (text[2] == 'x' || text[2] == 'X')) {
    if (text[0] < '1' || text[0] > '5') return std::nullopt;
    const int lo = (text[0] - '0') * 100;
    return StatusRange{lo, lo + 99};
  }
  if (const std::size_t dash = text.find('-'); dash != std::string_view::npos) {
    const int lo = code(text.substr(0, dash));
    const int hi = code(text.substr(dash + 1));
    if (lo < 0 || hi < 0 || lo > hi) return std::nullopt;
    return StatusRange{lo, hi};
  }
  const int single = code(text);
  if (single < 0) return std::nullopt;
  return StatusRange{single, single};
}

void ReadExpectStatus(FieldReader& r, const YamlNode& config, HttpConfig& http,
                      const std::string& prefix) {
  const YamlNode* v = config.Find("expect_status");
  if (!v || v->IsNull()) return;
  std::vector<std::string> items;
  std::vector<SourcePos> positions;
  if (!r.TextList(*v, {prefix, "expect_status"}, true, items, &positions)) return;
  if (items.empty()) {
    r.Report(v->pos, prefix + "'expect_status' must not be an empty list");
    return;
  }
  http.expect_status.clear();
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (std::optional<StatusRange> range = ParseStatus(items[i])) {
      http.expect_status.push_back(*range);
      continue;
    }
    r.Report(positions[i], prefix +
                               "'expect_status' entries must be a status code 100-599, a range "
                               "like 200-299 or a class like 2xx, got '" +
                               items[i] + "'");
  }
}

void ReadBody(const YamlNode& config, HttpConfig& http) {
  const YamlNode* v = config.Find("body");
  if (!v || v->IsNull()) return;
  if (v->IsScalar()) {
    http.body = v->text;
    return;
  }
  http.body = YamlToJson(*v);
  http.body_is_json = true;
}

HttpConfig LoadHttp(FieldReader& r, const YamlNode& config, SourcePos at,
                    const std::string& prefix) {
  HttpConfig http;
  ReadUrl(r, config, at, http, prefix);
  ReadMethod(r, config, http, prefix);
  ReadHeaders(r, config, http, prefix);
  ReadBody(config, http);
  if (const YamlNode* v = config.Find("timeout")) {
    if (auto t = r.Duration(*v, {prefix, "timeout"}, 1s)) http.timeout = *t;
  }
  ReadExpectStatus(r, config, http, prefix);
  ReadBool(r, config, "follow_redirects", prefix, http.follow_redirects);
  http.ca_file = OptionalText(r, config, "ca_file", prefix);
  WarnUnexpanded(r, config.Find("ca_file"), http.ca_file, prefix, "ca_file");
  ReadBool(r, config, "allow_private_ips", prefix, http.allow_private_ips);
  ReadBool(r, config, "output_body", prefix, http.output_body);
  return http;
}

bool IsHostLabel(std::string_view label) {
  if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-')
    return false;
  return std::all_of(label.begin(), label.end(),
                     [](unsigned char c) { return std::isalnum(c) || c == '-' || c == '_'; });
}

bool IsHostname(std::string_view host) {
  if (!host.empty() && host.back() == '.') host.remove_suffix(1);  // fully qualified
  if (host.empty() || host.size() > 253) return false;
  for (std::size_t start = 0;;) {
    const std::size_t dot = host.find('.', start);
    if (!IsHostLabel(host.substr(start, dot - start))) return false;
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

bool IsIp(int family, std::string_view text) {
  unsigned char buf[16];
  return inet_pton(family, std::string(text).c_str(), buf) == 1;
}

}  // namespace

bool IsHeaderName(std::string_view name) {
  static constexpr std::string_view kExtra = "!#$%&'*+-.^_`|~";
  return !name.empty() && std::all_of(name.begin(), name.end(), [](unsigned char c) {
    return std::isalnum(c) || kExtra.find(static_cast<char>(c)) != std::string_view::npos;
  });
}

std::string HttpUrlProblem(std::string_view url) {
  std::string lower(url.substr(0, 8));
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](unsigned char c) { return std::tolower(c); });
  const std::size_t scheme = lower.rfind("https://", 0) == 0  ? 8
                             : lower.rfind("http://", 0) == 0 ? 7
                                                              : 0;
  if (scheme == 0) return "must start with http:// or https://";
  if (url.size() == scheme || url[scheme] == '/') return "has no host";
  if (std::any_of(url.begin(), url.end(), [](unsigned char c) { return c <= 0x20 || c == 0x7F; })) {
    return "must not contain spaces or control characters (percent-encode them)";
  }
  return "";
}

TaskConfig LoadTaskConfig(FieldReader& r, TaskType type, const YamlNode& config,
                          SourcePos config_key, const std::string& prefix, const PathBase& paths) {
  auto explain = [type](std::string_view key) { return ExplainConfigKey(type, key); };
  const std::string noun = std::string(TaskTypeName(type)) + " config key";
  switch (type) {
    case TaskType::kShell:
      r.CheckKeys(config, kShellKeys, prefix, noun, explain);
      return LoadShell(r, config, config_key, prefix, paths);
    case TaskType::kSsh:
      r.CheckKeys(config, kSshKeys, prefix, noun, explain);
      return LoadSsh(r, config, config_key, prefix);
    case TaskType::kHttp:
      r.CheckKeys(config, kHttpKeys, prefix, noun, explain);
      return LoadHttp(r, config, config_key, prefix);
  }
  return ShellConfig{};
}

bool IsTaskConfigKey(TaskType type, std::string_view key) {
  switch (type) {
    case TaskType::kShell: return Contains(kShellKeys, key);
    case TaskType::kSsh: return Contains(kSshKeys, key);
    case TaskType::kHttp: return Contains(kHttpKeys, key);
  }
  return false;
}

std::string CheckHostSyntax(std::string_view host) {
  if (FindEnvReference(host).has_value()) return "$VAR and ${VAR} are not expanded in 'host'";
  if (host.find('@') != std::string_view::npos) return "put the user name in 'user:'";
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    return IsIp(AF_INET6, host.substr(1, host.size() - 2)) ? "" : "not a valid IPv6 address";
  }
  if (host.find(':') != std::string_view::npos) {
    if (IsIp(AF_INET6, host)) return "";
    return host.find(':') == host.rfind(':') ? "put the port in 'port:'"
                                             : "not a valid IPv6 address";
  }
  const bool numeric = std::all_of(host.begin(), host.end(),
                                   [](unsigned char c) { return std::isdigit(c) || c == '.'; });
  if (numeric) return IsIp(AF_INET, host) ? "" : "not a valid IPv4 address";
  return IsHostname(host) ? "" : "not a valid hostname";
}

}  // namespace picoflow
