#include "common/workflow_secrets.h"

#include <doctest/doctest.h>
#include <sys/stat.h>

#include <cstdlib>

#include "common/secrets.h"
#include "tests/test_util.h"
#include "tests/workflow_test_util.h"

namespace picoflow {
namespace {

using namespace picoflow::test;

// name: source text, for comparing whole lists.
Lines Sources(const std::vector<Secret>& secrets) {
  Lines out;
  for (const Secret& s : secrets) out.push_back(s.name + ": " + SecretSourceText(s));
  return out;
}

TEST_CASE("workflow secrets reach every task; a task's own replace them by name") {
  LoadedWorkflow loaded = LoadWorkflowText(Text(R"(
name: w
secrets:
  DB_PASSWORD: {file: secrets/db}
  API_TOKEN: {env: PICO_TEST_TOKEN}
tasks:
  - name: a
    type: shell
    config: {command: "true"}
  - name: b
    type: shell
    secrets:
      API_TOKEN: {credential: api}
      EXTRA: {file: /etc/picoflow/extra}
    config: {command: "true"}
handlers:
  on_failure:
    type: shell
    config: {command: "true"}
)"),
                                           "wf.yaml", PathBase{"/srv/wf", "/home/u"});
  for (const Diagnostic& d : loaded.diagnostics) MESSAGE(d.ToString());
  REQUIRE(loaded.ok());
  const Workflow& w = *loaded.workflow;
  CHECK(Sources(w.secrets) ==
        Lines{"DB_PASSWORD: file /srv/wf/secrets/db", "API_TOKEN: env PICO_TEST_TOKEN"});
  CHECK(Sources(w.tasks[0].secrets) == Sources(w.secrets));
  CHECK(Sources(w.tasks[1].secrets) == Lines{"DB_PASSWORD: file /srv/wf/secrets/db",
                                             "API_TOKEN: credential api",
                                             "EXTRA: file /etc/picoflow/extra"});
  CHECK(Sources(w.tasks[2].secrets) == Sources(w.secrets));  // the handler
}

TEST_CASE("a secret's name and source are checked at their line and column") {
  CHECK(Errors(R"(
name: w
secrets:
  PICOFLOW_X: {env: X}
  1BAD: {env: X}
  NONE: {}
  TWO: {file: /a, env: B}
  WRONG: {path: /a}
  LIST: [a]
  BADENV: {env: "not a name"}
  BADCRED: {credential: "../x"}
  EMPTY: {file: ""}
tasks:
  - name: t
    type: shell
    secrets: "nope"
    config: {command: "true"}
)") == Lines{
           "wf.yaml:3:3: secret 'PICOFLOW_X': names starting with PICOFLOW_ are picoflow's own "
           "variables",
           "wf.yaml:4:3: secret '1BAD': a secret's name must be an environment variable name "
           "(letters, digits and '_', not starting with a digit)",
           "wf.yaml:5:9: secret 'NONE': must be {file: PATH}, {env: VARIABLE} or {credential: "
           "NAME}",
           "wf.yaml:6:24: secret 'TWO': set only one of 'file', 'env' and 'credential'",
           "wf.yaml:7:10: secret 'WRONG': must be {file: PATH}, {env: VARIABLE} or "
           "{credential: NAME}",
           "wf.yaml:7:11: secret 'WRONG': unknown key 'path'",
           "wf.yaml:8:9: secret 'LIST': must be {file: PATH}, {env: VARIABLE} or {credential: "
           "NAME}, got a list",
           "wf.yaml:9:17: secret 'BADENV': 'env' must be an environment variable name, got 'not "
           "a name'",
           "wf.yaml:10:25: secret 'BADCRED': 'credential' must be the name of a systemd "
           "credential (LoadCredential=NAME:PATH), without '/', got '../x'",
           "wf.yaml:11:17: secret 'EMPTY': 'file' must not be empty",
           "wf.yaml:15:14: task 't': 'secrets' must be a map of names to {file: PATH}, {env: "
           "VARIABLE} or {credential: NAME}, got the quoted string 'nope'",
       });
}

TEST_CASE("${secret:NAME} is expanded in http url and headers and ssh env values only") {
  auto w = Valid(R"(
name: w
secrets:
  TOKEN: {env: T}
tasks:
  - name: call
    type: http
    config:
      url: "https://example.com/ping/${secret:TOKEN}"
      headers: {Authorization: "Bearer ${secret:TOKEN}"}
  - name: remote
    type: ssh
    secrets: {PGPASS: {file: /etc/pg}}
    config: {host: h, user: u, command: c, env: {PGPASSWORD: "${secret:PGPASS}"}}
)");
  CHECK(std::get<HttpConfig>(w->tasks[0].config).url == "https://example.com/ping/${secret:TOKEN}");
  CHECK(Errors(R"(
name: w
secrets:
  TOKEN: {env: T}
tasks:
  - name: sh
    type: shell
    config: {command: "echo ${secret:TOKEN}", env: {X: "${secret:TOKEN}"}}
  - name: call
    type: http
    config:
      url: "https://example.com/"
      headers: {A: "${secret:TOKN}", B: "${secret:bad name}"}
      body: "${secret:TOKEN}"
)") == Lines{
           "wf.yaml:7:23: '${secret:TOKEN}' is not expanded here: ${secret:NAME} is expanded "
           "only in an http task's 'url' and 'headers' values, in an ssh task's 'env' values "
           "and in a notify target's webhook 'url' and 'headers' values and ping URL; a "
           "shell or ssh task gets each of its secrets as the environment variable of its "
           "name",
           "wf.yaml:7:56: '${secret:TOKEN}' is not expanded here: ${secret:NAME} is expanded "
           "only in an http task's 'url' and 'headers' values, in an ssh task's 'env' values "
           "and in a notify target's webhook 'url' and 'headers' values and ping URL; a "
           "shell or ssh task gets each of its secrets as the environment variable of its "
           "name",
           "wf.yaml:12:20: '${secret:TOKN}': the task has no secret 'TOKN' (did you mean "
           "'TOKEN'?) (declare it under the task's or the workflow's 'secrets:')",
           "wf.yaml:12:41: '${secret:bad name}' is not a secret reference: write "
           "${secret:NAME}, NAME one of the task's secrets",
           "wf.yaml:13:13: '${secret:TOKEN}' is not expanded here: ${secret:NAME} is expanded "
           "only in an http task's 'url' and 'headers' values, in an ssh task's 'env' values "
           "and in a notify target's webhook 'url' and 'headers' values and ping URL; a "
           "shell or ssh task gets each of its secrets as the environment variable of its "
           "name",
       });
}

TEST_CASE("${secret:NAME} in notify targets names the workflow's secrets") {
  auto w = Valid(R"(
name: w
secrets:
  SLACK: {env: SLACK_URL}
  HC: {file: /etc/picoflow/hc}
tasks:
  - name: a
    type: shell
    config: {command: "true"}
notify:
  - webhook:
      url: "${secret:SLACK}"
      headers: {X-Key: "k ${secret:HC}"}
  - ping: "https://hc-ping.com/${secret:HC}"
)");
  REQUIRE(w->notify);
  CHECK((*w->notify)[0].url == "${secret:SLACK}");  // expanded only when sent
  CHECK((*w->notify)[1].url == "https://hc-ping.com/${secret:HC}");
  CHECK(Errors(R"(
name: w
secrets:
  SLACK: {env: SLACK_URL}
tasks:
  - name: a
    type: shell
    secrets: {OWN: {env: OWN}}
    config: {command: "true"}
notify:
  - webhook: {url: "https://x/${secret:OWN}"}
  - email: {smtp: "smtp://${secret:SLACK}", from: a@b, to: c@d}
  - webhook: {url: "ftp://x/"}
)") == Lines{
           "wf.yaml:10:20: '${secret:OWN}': the workflow has no secret 'OWN' (declare it under "
           "the workflow's top-level 'secrets:')",
           "wf.yaml:11:19: '${secret:SLACK}' is not expanded here: ${secret:NAME} is expanded "
           "only in an http task's 'url' and 'headers' values, in an ssh task's 'env' values "
           "and in a notify target's webhook 'url' and 'headers' values and ping URL; a "
           "shell or ssh task gets each of its secrets as the environment variable of its "
           "name",
           "wf.yaml:12:20: notify 'webhook-3': webhook: 'url' must start with http:// or "
           "https://, got 'ftp://x/'",
       });
}

TEST_CASE("a task's env may not set a variable that is one of its secrets") {
  CHECK(Errors(R"(
name: w
secrets:
  TOKEN: {env: T}
tasks:
  - name: sh
    type: shell
    config: {command: "true", env: {TOKEN: x}}
)") == Lines{"wf.yaml:7:37: 'env' sets 'TOKEN', which is also a secret (line 3): the secret is "
             "that variable already; rename one of them"});
}

TEST_CASE("a relative secret file of a workflow sent without its file is warned about") {
  CHECK(Warnings(OneShellTask("    secrets: {S: {file: rel/s}}\n")) ==
        Lines{"wf.yaml:6:25: warning: task 't': secret 'S': 'file' 'rel/s' is relative and the "
              "workflow's file is not known (it came without an absolute path): it resolves "
              "against the daemon's working directory"});
}

TEST_CASE("secret references are found and expanded; unknown ones stay as written") {
  const EnvList values{{"A", "alpha"}, {"B", "b$b"}};
  CHECK(ExpandSecretRefs("x${secret:A}y${secret:B}${secret:C}${secret:A", values) ==
        "xalphayb$b${secret:C}${secret:A");
  CHECK(ExpandSecretRefs("no refs ${A}", values) == "no refs ${A}");
  auto ref = FindSecretRef("ab${secret:X_1}c");
  REQUIRE(ref);
  CHECK(ref->pos == 2);
  CHECK(ref->size == 13);
  CHECK(ref->name == "X_1");
}

Secret Of(SecretSource source, std::string from) {
  return Secret{"S", source, std::move(from), {}};
}

TEST_CASE("secrets are read from a private file, the environment and systemd credentials") {
  TempDir dir;
  const std::string file = dir.Write("db", "pa55word\n");
  REQUIRE(::chmod(file.c_str(), 0600) == 0);
  CHECK(*ReadSecret(Of(SecretSource::kFile, file)) == "pa55word");

  REQUIRE(::setenv("PICO_SECRET_TEST", "from-env", 1) == 0);
  CHECK(*ReadSecret(Of(SecretSource::kEnv, "PICO_SECRET_TEST")) == "from-env");
  ::unsetenv("PICO_SECRET_TEST");
  auto unset = ReadSecret(Of(SecretSource::kEnv, "PICO_SECRET_TEST"));
  REQUIRE_FALSE(unset.ok());
  CHECK(unset.error().message ==
        "secret 'S' (env PICO_SECRET_TEST): PICO_SECRET_TEST is not set in picoflowd's "
        "environment (set it where the daemon starts, e.g. Environment= or EnvironmentFile= in "
        "its systemd unit, or use a 'file:' or 'credential:' secret)");

  ::unsetenv(kCredentialsDirectoryVar);
  auto no_dir = ReadSecret(Of(SecretSource::kCredential, "db"));
  REQUIRE_FALSE(no_dir.ok());
  CHECK(Contains(no_dir.error().message, "$CREDENTIALS_DIRECTORY is not set"));
  CHECK(Contains(no_dir.error().message, "LoadCredential=db:"));
  REQUIRE(::setenv(kCredentialsDirectoryVar, dir.path().c_str(), 1) == 0);
  CHECK(*ReadSecret(Of(SecretSource::kCredential, "db")) == "pa55word");
  auto missing = ReadSecret(Of(SecretSource::kCredential, "other"));
  REQUIRE_FALSE(missing.ok());
  CHECK(Contains(missing.error().message,
                 "secret 'S' (credential other): cannot read " + dir.File("other")));
  CHECK(Contains(missing.error().message, "add LoadCredential=other:"));
  ::unsetenv(kCredentialsDirectoryVar);
}

TEST_CASE("a secret file group or others may read is refused with the fix, never its value") {
  TempDir dir;
  const std::string file = dir.Write("db", "pa55word");
  REQUIRE(::chmod(file.c_str(), 0640) == 0);
  auto r = ReadSecrets({Secret{"DB", SecretSource::kFile, file, {}}});
  REQUIRE_FALSE(r.ok());
  CHECK(Contains(r.error().message, "secret 'DB' (file " + file + "): "));
  CHECK(Contains(r.error().message, "chmod 600 " + file));
  CHECK_FALSE(Contains(r.error().message, "pa55word"));
  auto missing = ReadSecrets({Secret{"DB", SecretSource::kFile, dir.File("none"), {}}});
  REQUIRE_FALSE(missing.ok());
  CHECK(Contains(missing.error().message, "create it, readable by picoflowd's user only"));
}

}  // namespace
}  // namespace picoflow
