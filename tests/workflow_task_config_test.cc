// The shell, ssh and http config schemas, exercised through whole workflow files.

#include "common/workflow_task_config.h"

#include <doctest/doctest.h>

#include "tests/workflow_test_util.h"

namespace picoflow {
namespace {

using namespace picoflow::test;
using std::chrono::seconds;

TEST_CASE("shell config: command required, args as argv, workdir and env") {
  auto w = Valid(R"(
name: w
tasks:
  - name: t
    type: shell
    config:
      command: /bin/echo
      args: [-n, 42, "two words", true]
      workdir: /tmp
      env: {LANG: C, EMPTY: , N: 1}
)");
  const auto& c = std::get<ShellConfig>(w->tasks[0].config);
  CHECK(c.command == "/bin/echo");
  REQUIRE(c.args.has_value());
  CHECK(*c.args == std::vector<std::string>{"-n", "42", "two words", "true"});
  CHECK(c.workdir == "/tmp");
  CHECK(c.env == EnvList{{"LANG", "C"}, {"EMPTY", ""}, {"N", "1"}});

  CHECK(
      Errors(R"(
name: w
tasks:
  - name: t
    type: shell
    config:
      command: "  "
      args: "-n"
      env: {1BAD: x, OK: [1]}
      comand: x
)") ==
      Lines{
          "wf.yaml:6:16: task 't': 'command' must not be empty",
          "wf.yaml:7:13: task 't': 'args' must be a list of strings, got the quoted string '-n'",
          "wf.yaml:8:13: task 't': 'env': '1BAD' is not a valid environment variable name (letters, digits, '_')",
          "wf.yaml:8:26: task 't': 'env': the value of 'OK' must be a string, got a list",
          "wf.yaml:9:7: task 't': unknown shell config key 'comand' (did you mean 'command'?)",
      });
  CHECK(Errors(OneShellTask("").replace(OneShellTask("").find("{command"), 20, "{args: [x]}")) ==
        Lines{"wf.yaml:5:5: task 't': missing required key 'command'"});
}

TEST_CASE("timeout inside a shell or ssh config says it belongs at task level") {
  CHECK(Errors(R"(
name: w
tasks:
  - name: x
    type: shell
    config:
      command: "true"
      timeout: 30
  - name: y
    type: ssh
    config: {host: h, user: u, command: c, timeout: 10, retry: 2}
)") == Lines{
           "wf.yaml:7:7: task 'x': 'timeout' is not a shell config key; set it on the task itself "
           "(task-level 'timeout:')",
           "wf.yaml:10:44: task 'y': 'timeout' is not an ssh config key; set it on the task itself "
           "(task-level 'timeout:')",
           "wf.yaml:10:57: task 'y': 'retry' is not an ssh config key; set it on the task itself "
           "(task-level 'retry:')",
       });
}

TEST_CASE("ssh config: every key, defaults and host forms") {
  auto w = Valid(R"(
name: w
tasks:
  - name: a
    type: ssh
    config:
      host: db-1.example.com
      user: backup
      command: uptime
      port: 2222
      key_path: /etc/picoflow/id_ed25519
      passphrase_file: /etc/picoflow/pass
      verify_host_key: false
      known_hosts: /etc/picoflow/known_hosts
      connect_timeout: 30s
      env: {A: b}
  - {name: b, type: ssh, config: {host: 192.168.1.10, user: u, command: c}}
  - {name: c, type: ssh, config: {host: "::1", user: u, command: c, passphrase_env: SSH_PASS}}
  - {name: d, type: ssh, config: {host: "[fe80::1]", user: u, command: c}}
  - {name: e, type: ssh, config: {host: localhost., user: u, command: c}}
)");
  const auto& a = std::get<SshConfig>(w->tasks[0].config);
  CHECK(a.port == 2222);
  CHECK(a.key_path == "/etc/picoflow/id_ed25519");
  CHECK(a.passphrase_file == "/etc/picoflow/pass");
  CHECK_FALSE(a.verify_host_key);
  CHECK(a.known_hosts == "/etc/picoflow/known_hosts");
  CHECK(a.connect_timeout == seconds(30));
  CHECK(a.env == EnvList{{"A", "b"}});
  const auto& b = std::get<SshConfig>(w->tasks[1].config);
  CHECK(b.port == 22);
  CHECK(b.verify_host_key);
  CHECK(b.connect_timeout == seconds(10));
  CHECK(std::get<SshConfig>(w->tasks[2].config).passphrase_env == "SSH_PASS");
  CHECK(std::get<SshConfig>(w->tasks[3].config).host == "fe80::1");
}

TEST_CASE("ssh config: required keys, bad hosts, ports and inline secrets are errors") {
  CHECK(
      Errors(R"(
name: w
tasks:
  - name: a
    type: ssh
    config:
      host: db.example.com
      command: uptime
  - {name: b, type: ssh, config: {host: "bad host", user: "me@x", command: c, port: 0}}
  - {name: c, type: ssh, config: {host: 300.1.2.3, user: u, command: c, port: 65536}}
  - {name: d, type: ssh, config: {host: "db:2222", user: u, command: c, password: hunter2}}
  - {name: e, type: ssh, config: {host: "u@db", user: u, command: c, passphrase: x}}
  - {name: f, type: ssh, config: {host: "${HOST}", user: u, command: c}}
  - {name: g, type: ssh, config: {host: "-db", user: u, command: c, passphrase_env: "A B", passphrase_file: f}}
)") ==
      Lines{
          "wf.yaml:5:5: task 'a': missing required key 'user'",
          "wf.yaml:8:41: task 'b': 'host' must be a hostname, an IPv4 or an IPv6 address, got 'bad host': not "
          "a valid hostname",
          "wf.yaml:8:59: task 'b': 'user' must be a user name without spaces or '@', got 'me@x'",
          "wf.yaml:8:85: task 'b': 'port' must be an integer from 1 to 65535, got '0'",
          "wf.yaml:9:41: task 'c': 'host' must be a hostname, an IPv4 or an IPv6 address, got '300.1.2.3': not "
          "a valid IPv4 address",
          "wf.yaml:9:79: task 'c': 'port' must be an integer from 1 to 65535, got '65536'",
          "wf.yaml:10:41: task 'd': 'host' must be a hostname, an IPv4 or an IPv6 address, got 'db:2222': put "
          "the port in 'port:'",
          "wf.yaml:10:73: task 'd': 'password' is not supported: secrets do not belong in workflow files; use "
          "'passphrase_file' or 'passphrase_env' for a key passphrase, or an ssh agent",
          "wf.yaml:11:41: task 'e': 'host' must be a hostname, an IPv4 or an IPv6 address, got 'u@db': put the "
          "user name in 'user:'",
          "wf.yaml:11:70: task 'e': 'passphrase' is not supported: secrets do not belong in workflow files; use "
          "'passphrase_file' or 'passphrase_env' for a key passphrase, or an ssh agent",
          "wf.yaml:12:41: task 'f': 'host' must be a hostname, an IPv4 or an IPv6 address, got '${HOST}': "
          "$VAR and ${VAR} are not expanded in 'host'",
          "wf.yaml:13:41: task 'g': 'host' must be a hostname, an IPv4 or an IPv6 address, got '-db': not a "
          "valid hostname",
          "wf.yaml:13:85: task 'g': 'passphrase_env' must be an environment variable name, got 'A B'",
          "wf.yaml:13:85: task 'g': set only one of 'passphrase_file' and 'passphrase_env'",
      });
}

TEST_CASE("http config: every key, method case, JSON body and status forms") {
  auto w = Valid(R"(
name: w
tasks:
  - name: a
    type: http
    config:
      url: "https://api.example.com/items?x=1"
      method: post
      headers: {Content-Type: application/json, X-Token: "abc"}
      body:
        title: "Test"
        userId: 1
        tags: [a, b]
        draft: false
      timeout: 15
      expect_status: [200, "201-204", 3xx]
      follow_redirects: true
      ca_file: /etc/ssl/ca.pem
      allow_private_ips: false
  - {name: b, type: http, config: {url: "HTTP://host/", body: "raw text", expect_status: 204}}
  - {name: c, type: http, config: {url: "http://h/", method: HEAD}}
)");
  const auto& a = std::get<HttpConfig>(w->tasks[0].config);
  CHECK(a.url == "https://api.example.com/items?x=1");
  CHECK(a.method == "POST");
  CHECK(a.headers == EnvList{{"Content-Type", "application/json"}, {"X-Token", "abc"}});
  REQUIRE(a.body.has_value());
  CHECK(*a.body == R"({"title":"Test","userId":1,"tags":["a","b"],"draft":false})");
  CHECK(a.body_is_json);
  CHECK(a.timeout == seconds(15));
  REQUIRE(a.expect_status.size() == 3);
  CHECK((a.expect_status[0].lo == 200 && a.expect_status[0].hi == 200));
  CHECK((a.expect_status[1].lo == 201 && a.expect_status[1].hi == 204));
  CHECK((a.expect_status[2].lo == 300 && a.expect_status[2].hi == 399));
  CHECK(a.follow_redirects);
  CHECK(a.ca_file == "/etc/ssl/ca.pem");
  CHECK_FALSE(a.allow_private_ips);
  const auto& b = std::get<HttpConfig>(w->tasks[1].config);
  CHECK(b.method == "GET");
  CHECK(*b.body == "raw text");
  CHECK_FALSE(b.body_is_json);
  CHECK((b.expect_status.size() == 1 && b.expect_status[0].lo == 204 &&
         b.expect_status[0].hi == 204));
  const auto& c = std::get<HttpConfig>(w->tasks[2].config);
  CHECK_FALSE(c.body.has_value());
  CHECK((c.expect_status.size() == 1 && c.expect_status[0].lo == 200 &&
         c.expect_status[0].hi == 299));
  CHECK_FALSE(c.timeout.has_value());
}

TEST_CASE("http config: bad url, method, headers, status and timeout are errors") {
  CHECK(
      Errors(R"(
name: w
tasks:
  - {name: a, type: http, config: {method: GET}}
  - {name: b, type: http, config: {url: "ftp://x/", method: FETCH}}
  - {name: c, type: http, config: {url: "${HOOK_URL}", method: pots}}
  - {name: d, type: http, config: {url: "https://a b/", headers: {"Bad Name": x, X: [1]}}}
  - {name: e, type: http, config: {url: "https://", expect_status: [99, "2xx", "300-200", 6xx], timeout: 0}}
  - {name: f, type: http, config: {url: "http://h/", expect_status: [], follow_redirects: maybe}}
)") ==
      Lines{
          "wf.yaml:3:27: task 'a': missing required key 'url'",
          "wf.yaml:4:41: task 'b': 'url' must start with http:// or https://, got 'ftp://x/'",
          "wf.yaml:4:61: task 'b': 'method' must be one of GET, POST, PUT, PATCH, DELETE, HEAD, got 'FETCH' "
          "(did you mean 'PATCH'?)",
          "wf.yaml:5:41: task 'c': 'url' must start with http:// or https://, got '${HOOK_URL}' (${...} is "
          "not expanded in a url)",
          "wf.yaml:5:64: task 'c': 'method' must be one of GET, POST, PUT, PATCH, DELETE, HEAD, got 'pots' "
          "(did you mean 'POST'?)",
          "wf.yaml:6:41: task 'd': 'url' must not contain spaces or control characters (percent-encode them), "
          "got 'https://a b/'",
          "wf.yaml:6:67: task 'd': 'headers': 'Bad Name' is not a valid HTTP header name",
          "wf.yaml:6:85: task 'd': 'headers': the value of 'X' must be a string, got a list",
          "wf.yaml:7:41: task 'e': 'url' has no host, got 'https://'",
          "wf.yaml:7:69: task 'e': 'expect_status' entries must be a status code 100-599, a range like "
          "200-299 or a class like 2xx, got '99'",
          "wf.yaml:7:80: task 'e': 'expect_status' entries must be a status code 100-599, a range like "
          "200-299 or a class like 2xx, got '300-200'",
          "wf.yaml:7:91: task 'e': 'expect_status' entries must be a status code 100-599, a range like "
          "200-299 or a class like 2xx, got '6xx'",
          "wf.yaml:7:106: task 'e': 'timeout' must be at least 1s, got 0s",
          "wf.yaml:8:69: task 'f': 'expect_status' must not be an empty list",
          "wf.yaml:8:91: task 'f': 'follow_redirects' must be true or false, got 'maybe'",
      });
}

TEST_CASE("a header value spanning lines is refused") {
  CHECK(Errors(R"(
name: w
tasks:
  - name: a
    type: http
    config:
      url: http://h/
      headers:
        X-Multi: "a\r\nInjected: yes"
)") == Lines{"wf.yaml:8:9: task 'a': 'headers': the value of 'X-Multi' must be one line"});
}

TEST_CASE("CheckHostSyntax accepts names and addresses and says what is wrong with the rest") {
  for (const char* ok : {"db", "db.example.com", "db.example.com.", "my_host-1", "10.0.0.1", "::1",
                         "[::1]", "2001:db8::42"}) {
    INFO(ok);
    CHECK(CheckHostSyntax(ok).empty());
  }
  CHECK(CheckHostSyntax("").size() > 0);
  CHECK(CheckHostSyntax("a..b") == "not a valid hostname");
  CHECK(CheckHostSyntax(std::string(64, 'a')) == "not a valid hostname");
  CHECK(CheckHostSyntax("1.2.3") == "not a valid IPv4 address");
  CHECK(CheckHostSyntax("[1.2.3.4]") == "not a valid IPv6 address");
  CHECK(CheckHostSyntax("::g") == "not a valid IPv6 address");
  CHECK(CheckHostSyntax("db:22") == "put the port in 'port:'");
  CHECK(CheckHostSyntax("me@db") == "put the user name in 'user:'");
  CHECK(CheckHostSyntax("${DB}") == "$VAR and ${VAR} are not expanded in 'host'");
  CHECK(CheckHostSyntax("$DB") == "$VAR and ${VAR} are not expanded in 'host'");
}

TEST_CASE("shell env values may use ${NAME}; a malformed ${ is an error") {
  auto w = Valid(R"(
name: w
tasks:
  - name: t
    type: shell
    config:
      command: "echo $PATH"
      env: {PATH: "/opt/bin:${PATH}", PRICE: "$$5", HOME_CACHE: "$HOME/.cache"}
)");
  // Kept as written: the executor expands them when an attempt starts.
  CHECK(std::get<ShellConfig>(w->tasks[0].config).env ==
        EnvList{{"PATH", "/opt/bin:${PATH}"}, {"PRICE", "$$5"}, {"HOME_CACHE", "$HOME/.cache"}});
  CHECK(Warnings(R"(
name: w
tasks:
  - {name: t, type: shell, config: {command: "echo $HOME", env: {A: "${A}"}}}
)")
            .empty());
  CHECK(Errors(R"(
name: w
tasks:
  - name: t
    type: shell
    config:
      command: x
      env: {PATH: "/opt/bin:${PATH", HOME: "${HOME:-/root}"}
)") == Lines{
           "wf.yaml:7:13: task 't': 'env': the value of 'PATH': '${PATH' is not a variable "
           "reference: only ${NAME} and $NAME are expanded; write $$ for a literal $",
           "wf.yaml:7:38: task 't': 'env': the value of 'HOME': '${HOME:-/root}' is not a variable "
           "reference: only ${NAME} and $NAME are expanded; write $$ for a literal $",
       });
}

TEST_CASE("a variable where nothing expands it is a warning that names the key") {
  CHECK(Warnings(R"(
name: w
tasks:
  - name: s
    type: shell
    config:
      command: ${TOOLS}/run
      args: []
      workdir: $HOME/data
  - name: r
    type: ssh
    config:
      host: db
      user: ${BACKUP_USER}
      command: "echo $PATH"
      key_path: ${HOME}/.ssh/id
      env: {PATH: "/opt/bin:$PATH"}
  - name: h
    type: http
    config:
      url: https://${HOST}/health?$filter=x
      headers: {Authorization: "Bearer ${TOKEN}", X-Price: "$5 $USD"}
      ca_file: $CA
)") == Lines{
           "wf.yaml:6:16: warning: task 's': 'command': '${TOOLS}' is not expanded (only the "
           "'env' values of shell tasks expand variables; a leading ~ is the daemon user's home)",
           "wf.yaml:8:16: warning: task 's': 'workdir': '$HOME' is not expanded (only the 'env' "
           "values of shell tasks expand variables; a leading ~ is the daemon user's home)",
           "wf.yaml:13:13: warning: task 'r': 'user': '${BACKUP_USER}' is not expanded (only the "
           "'env' values of shell tasks expand variables)",
           "wf.yaml:15:17: warning: task 'r': 'key_path': '${HOME}' is not expanded (only the "
           "'env' values of shell tasks expand variables)",
           "wf.yaml:16:13: warning: task 'r': 'env': the value of 'PATH' is sent as written: "
           "'$PATH' is expanded neither by picoflow nor by the remote shell (to extend a remote "
           "variable, do it in 'command': export PATH=...; ...)",
           "wf.yaml:20:12: warning: task 'h': 'url': '${HOST}' is not expanded (only the 'env' "
           "values of shell tasks expand variables)",
           "wf.yaml:21:17: warning: task 'h': 'headers': the value of 'Authorization': '${TOKEN}' "
           "is not expanded (only the 'env' values of shell tasks expand variables)",
           "wf.yaml:22:16: warning: task 'h': 'ca_file': '$CA' is not expanded (only the 'env' "
           "values of shell tasks expand variables)",
       });
  // A shell command runs through /bin/sh, which expands it: no warning.
  CHECK(Warnings("name: w\ntasks:\n  - {name: t, type: shell, config: {command: 'cd $HOME'}}\n")
            .empty());
}

TEST_CASE(
    "a relative workdir and program path resolve against the file's directory, ~ to the home") {
  const PathBase paths{"/srv/wf", "/home/pf"};
  LoadedWorkflow loaded = LoadWorkflowText(Text(R"(
name: w
tasks:
  - {name: a, type: shell, config: {command: ./backup.sh, args: [], workdir: data}}
  - {name: b, type: shell, config: {command: bin/tool, args: [-v]}}
  - {name: c, type: shell, config: {command: ./run.sh, args: [], workdir: /opt/app}}
  - {name: d, type: shell, config: {command: tool, args: [], workdir: ~/backups}}
  - {name: e, type: shell, config: {command: ./in-sh.sh, workdir: "~"}}  # ~ alone is null
  - {name: f, type: shell, config: {command: /bin/true, args: [], workdir: ../shared}}
  - {name: g, type: shell, config: {command: ~/bin/x, args: []}}
)"),
                                           "wf.yaml", paths);
  REQUIRE(loaded.ok());
  CHECK(loaded.warnings.empty());
  Lines resolved;  // "command | workdir"
  for (const Task& t : loaded.workflow->tasks) {
    const auto& c = std::get<ShellConfig>(t.config);
    resolved.push_back(c.command + " | " + c.workdir);
  }
  CHECK(resolved == Lines{
                        "/srv/wf/data/backup.sh | /srv/wf/data",  // relative to the workdir
                        "/srv/wf/bin/tool | ",                    // the daemon's cwd stays
                        "/opt/app/run.sh | /opt/app",
                        "tool | /home/pf/backups",  // no '/': looked up in PATH
                        "./in-sh.sh | /home/pf",    // /bin/sh -c: the shell's business
                        "/bin/true | /srv/shared",
                        "/home/pf/bin/x | ",
                    });
}

TEST_CASE("without a known file, relative paths stay relative with a warning; ~user is an error") {
  CHECK(Warnings(R"(
name: w
tasks:
  - {name: a, type: shell, config: {command: ./backup.sh, args: [], workdir: data}}
  - {name: b, type: shell, config: {command: bin/tool, args: []}}
  - {name: c, type: shell, config: {command: "./x.sh", workdir: /tmp}}
)") == Lines{
           "wf.yaml:3:78: warning: task 'a': 'workdir' 'data' is relative and the workflow's file "
           "is not known (it came without an absolute path): it resolves against the daemon's "
           "working directory",
           "wf.yaml:4:46: warning: task 'b': 'command' 'bin/tool' is relative and the workflow's "
           "file is not known (it came without an absolute path): it resolves against the "
           "daemon's working directory",
       });
  CHECK(Errors(R"(
name: w
tasks:
  - {name: a, type: shell, config: {command: "true", workdir: ~backup/x}}
  - {name: b, type: shell, config: {command: ~root/bin/x, args: []}}
)") == Lines{
           "wf.yaml:3:63: task 'a': 'workdir': '~backup' is not supported: only ~ and ~/... (the "
           "daemon user's home) are; write the path out",
           "wf.yaml:4:46: task 'b': 'command': '~root' is not supported: only ~ and ~/... (the "
           "daemon user's home) are; write the path out",
       });
}

TEST_CASE("IsTaskConfigKey knows each type's keys") {
  CHECK(IsTaskConfigKey(TaskType::kShell, "args"));
  CHECK_FALSE(IsTaskConfigKey(TaskType::kShell, "url"));
  CHECK(IsTaskConfigKey(TaskType::kSsh, "known_hosts"));
  CHECK(IsTaskConfigKey(TaskType::kHttp, "timeout"));
  CHECK_FALSE(IsTaskConfigKey(TaskType::kSsh, "timeout"));
}

}  // namespace
}  // namespace picoflow
