#include "common/workflow_secrets.h"

#include <unordered_map>

#include "common/env_expand.h"
#include "common/secrets.h"
#include "common/workflow_fields.h"
#include "common/yaml_tree.h"

namespace picoflow {
namespace {

constexpr char kReserved[] = "PICOFLOW_";

const char* const kWhereRefs =
    "${secret:NAME} is expanded only in an http task's 'url' and 'headers' values, in an ssh "
    "task's 'env' values and in a notify target's webhook 'url' and 'headers' values and ping "
    "URL; a shell or ssh task gets each of its secrets as the environment variable of its name";

std::string Shape() { return "{file: PATH}, {env: VARIABLE} or {credential: NAME}"; }

// `name: {file: PATH}` and the like; nullopt after reporting a problem.
std::optional<Secret> LoadSecret(FieldReader& r, const YamlNode& key, const YamlNode& value,
                                 const std::string& prefix, const PathBase& paths) {
  Secret secret;
  secret.name = key.text;
  secret.pos = key.pos;
  const std::string p = prefix + "secret '" + key.text + "': ";
  bool ok = true;
  if (!IsVariableName(secret.name)) {
    r.Report(key.pos, p + "a secret's name must be an environment variable name (letters, "
                          "digits and '_', not starting with a digit)");
    ok = false;
  } else if (secret.name.rfind(kReserved, 0) == 0) {
    r.Report(key.pos, p + "names starting with PICOFLOW_ are picoflow's own variables");
    ok = false;
  }
  if (!value.IsMap()) {
    r.Report(value.pos, p + "must be " + Shape() + ", got " + DescribeYamlNode(value));
    return std::nullopt;
  }
  r.CheckKeys(value, kSecretSourceNames, p, "key");
  const YamlNode* source = nullptr;
  for (std::size_t i = 0; i < std::size(kSecretSourceNames); ++i) {
    const YamlNode* v = value.Find(kSecretSourceNames[i]);
    if (!v) continue;
    if (source) {
      r.Report(v->pos, p + "set only one of 'file', 'env' and 'credential'");
      return std::nullopt;
    }
    source = v;
    secret.source = static_cast<SecretSource>(i);
  }
  if (!source) {
    r.Report(value.pos, p + "must be " + Shape());
    return std::nullopt;
  }
  const std::string_view source_key = kSecretSourceNames[static_cast<std::size_t>(secret.source)];
  std::optional<std::string> from = r.Text(*source, {p, source_key});
  if (!from) {  // a list or a map was reported; a null was not
    if (source->IsNull()) {
      r.Report(source->pos, p + "'" + std::string(source_key) + "' must not be empty");
    }
    return std::nullopt;
  }
  secret.from = std::move(*from);
  switch (secret.source) {
    case SecretSource::kFile: {
      if (secret.from.empty()) {
        r.Report(source->pos, p + "'file' must not be empty");
        return std::nullopt;
      }
      Result<std::string> path = ResolvePath(secret.from, paths.dir, paths);
      if (!path.ok()) {
        r.Report(source->pos, p + "'file': " + path.error().message);
        return std::nullopt;
      }
      if (path->front() != '/') {
        r.Warn(source->pos, p + "'file' '" + secret.from +
                                "' is relative and the workflow's file is not known (it came "
                                "without an absolute path): it resolves against the daemon's "
                                "working directory");
      }
      secret.from = std::move(*path);
      break;
    }
    case SecretSource::kEnv:
      if (!IsVariableName(secret.from)) {
        r.Report(source->pos,
                 p + "'env' must be an environment variable name, got '" + secret.from + "'");
        return std::nullopt;
      }
      break;
    case SecretSource::kCredential:
      if (secret.from.empty() || secret.from == "." || secret.from == ".." ||
          secret.from.find('/') != std::string::npos) {
        r.Report(source->pos, p +
                                  "'credential' must be the name of a systemd credential "
                                  "(LoadCredential=NAME:PATH), without '/', got '" +
                                  secret.from + "'");
        return std::nullopt;
      }
      break;
  }
  if (!ok) return std::nullopt;
  return secret;
}

// The task a `tasks:` item or a handler is, by its name; null if none.
const Task* TaskNamed(const Workflow& w, const YamlNode* name) {
  if (!name || !name->IsScalar()) return nullptr;
  const int i = w.FindTask(name->text);
  return i >= 0 ? &w.tasks[i] : nullptr;
}

// The secrets a `${secret:NAME}` may name where it is written: a task's (its
// own and the workflow's) or, in `notify:`, the workflow's alone.
struct RefScope {
  const std::vector<Secret>* secrets = nullptr;
  bool workflow_only = false;
};
// Where `${secret:` may be written, and whose secrets it names.
using Allowed = std::unordered_map<const YamlNode*, RefScope>;

// The `env` keys of a shell or ssh task that are also its secrets.
void CheckEnvNames(FieldReader& r, const YamlNode& env, const std::vector<Secret>& secrets) {
  for (std::size_t i = 0; i < env.entry_count(); ++i) {
    for (const Secret& s : secrets) {
      if (s.name != env.key(i).text) continue;
      r.Report(env.key(i).pos, "'env' sets '" + s.name + "', which is also a secret (line " +
                                   std::to_string(s.pos.line) +
                                   "): the secret is that variable already; rename one of them");
    }
  }
}

// Notes the nodes of one task item where references are expanded.
void NoteTask(FieldReader& r, const YamlNode& item, const Task* task, const Workflow& w,
              Allowed& allowed) {
  if (!item.IsMap()) return;
  const std::vector<Secret>* secrets = task ? &task->secrets : &w.secrets;
  const YamlNode* type = item.Find("type");
  const YamlNode* config = item.Find("config");
  if (!type || !type->IsScalar() || !config || !config->IsMap()) return;
  const YamlNode* env = config->Find("env");
  if (type->text == "http") {
    if (const YamlNode* url = config->Find("url")) allowed[url] = {secrets};
    if (const YamlNode* headers = config->Find("headers"); headers && headers->IsMap()) {
      for (std::size_t i = 0; i < headers->entry_count(); ++i) {
        allowed[&headers->value(i)] = {secrets};
      }
    }
  } else if (type->text == "ssh" && env && env->IsMap()) {
    for (std::size_t i = 0; i < env->entry_count(); ++i) allowed[&env->value(i)] = {secrets};
  }
  if ((type->text == "shell" || type->text == "ssh") && env && env->IsMap()) {
    CheckEnvNames(r, *env, *secrets);
  }
}

// Notes the nodes of `notify:` where references are expanded: a target's
// webhook url and header values and its ping URL, naming the workflow's
// own secrets (docs/notifications.md, "Secrets in targets").
void NoteNotify(const YamlNode& notify, const Workflow& w, Allowed& allowed) {
  if (!notify.IsSequence()) return;
  for (const YamlNode& target : notify.children) {
    if (!target.IsMap()) continue;
    if (const YamlNode* ping = target.Find("ping")) allowed[ping] = {&w.secrets, true};
    const YamlNode* webhook = target.Find("webhook");
    if (!webhook || !webhook->IsMap()) continue;
    if (const YamlNode* url = webhook->Find("url")) allowed[url] = {&w.secrets, true};
    if (const YamlNode* headers = webhook->Find("headers"); headers && headers->IsMap()) {
      for (std::size_t i = 0; i < headers->entry_count(); ++i) {
        allowed[&headers->value(i)] = {&w.secrets, true};
      }
    }
  }
}

void CheckRefs(FieldReader& r, const YamlNode& node, const RefScope* scope) {
  const char* whose = scope && scope->workflow_only ? "the workflow" : "the task";
  std::size_t from = 0;
  while (std::optional<SecretRef> ref = FindSecretRef(node.text, from)) {
    from = ref->pos + ref->size;
    const std::string written = node.text.substr(ref->pos, ref->size);
    if (!scope) {
      r.Report(node.pos, "'" + written + "' is not expanded here: " + kWhereRefs);
    } else if (ref->name.empty()) {
      r.Report(node.pos, "'" + written +
                             "' is not a secret reference: write ${secret:NAME}, NAME one of " +
                             whose + "'s secrets");
    } else {
      std::vector<std::string_view> names;
      for (const Secret& s : *scope->secrets) names.push_back(s.name);
      bool known = false;
      for (std::string_view n : names) known = known || n == ref->name;
      if (!known) {
        r.Report(
            node.pos,
            "'" + written + "': " + whose + " has no secret '" + std::string(ref->name) + "'" +
                DidYouMean(ClosestMatch(ref->name, names)) +
                (scope->workflow_only ? " (declare it under the workflow's top-level 'secrets:')"
                                      : " (declare it under the task's or the workflow's "
                                        "'secrets:')"));
      }
    }
  }
}

void Walk(FieldReader& r, const YamlNode& node, const Allowed& allowed) {
  if (node.IsScalar()) {
    if (node.text.find("${secret:") == std::string::npos) return;
    auto it = allowed.find(&node);
    CheckRefs(r, node, it == allowed.end() ? nullptr : &it->second);
    return;
  }
  for (const YamlNode& child : node.children) Walk(r, child, allowed);
}

}  // namespace

std::vector<Secret> LoadSecrets(FieldReader& r, const YamlNode* v, const std::string& prefix,
                                const PathBase& paths) {
  std::vector<Secret> secrets;
  if (!v || v->IsNull()) return secrets;
  if (!v->IsMap()) {
    r.Report(v->pos, prefix + "'secrets' must be a map of names to " + Shape() + ", got " +
                         DescribeYamlNode(*v));
    return secrets;
  }
  for (std::size_t i = 0; i < v->entry_count(); ++i) {
    if (auto secret = LoadSecret(r, v->key(i), v->value(i), prefix, paths)) {
      secrets.push_back(std::move(*secret));
    }
  }
  return secrets;
}

std::vector<Secret> MergeSecrets(const std::vector<Secret>& workflow,
                                 const std::vector<Secret>& task) {
  std::vector<Secret> out = workflow;
  for (const Secret& s : task) {
    bool replaced = false;
    for (Secret& o : out) {
      if (o.name != s.name) continue;
      o = s;
      replaced = true;
    }
    if (!replaced) out.push_back(s);
  }
  return out;
}

void CheckSecretUse(FieldReader& r, const YamlNode& root, const Workflow& w) {
  Allowed allowed;
  if (const YamlNode* tasks = root.Find("tasks"); tasks && tasks->IsSequence()) {
    for (const YamlNode& item : tasks->children) {
      NoteTask(r, item, TaskNamed(w, item.Find("name")), w, allowed);
    }
  }
  if (const YamlNode* handlers = root.Find("handlers"); handlers && handlers->IsMap()) {
    for (std::size_t i = 0; i < handlers->entry_count(); ++i) {
      NoteTask(r, handlers->value(i), TaskNamed(w, &handlers->key(i)), w, allowed);
    }
  }
  if (const YamlNode* notify = root.Find("notify")) NoteNotify(*notify, w, allowed);
  Walk(r, root, allowed);
}

}  // namespace picoflow
