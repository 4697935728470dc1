#include "common/workflow_params.h"

#include <algorithm>
#include <cctype>
#include <optional>

#include "common/env_expand.h"
#include "common/workflow_fields.h"

namespace picoflow {
namespace {

constexpr std::string_view kParamKeys[] = {"default", "description", "required", "choices"};

// A shell identifier of at most kMaxNameLength characters: the name is part
// of an environment variable's.
bool IsParamName(std::string_view name) {
  return name.size() <= static_cast<std::size_t>(kMaxNameLength) && IsVariableName(name);
}

bool Contains(const std::vector<std::string>& list, const std::string& value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

// "a, b or c", each quoted.
std::string QuotedChoices(const std::vector<std::string>& choices) {
  std::vector<std::string> quoted;
  quoted.reserve(choices.size());
  for (const std::string& c : choices) quoted.push_back("'" + c + "'");
  std::vector<std::string_view> views(quoted.begin(), quoted.end());
  return JoinOr(views);
}

// The problem with one value of `param`, or "".
std::string CheckValue(const WorkflowParam& param, const std::string& value) {
  if (value.size() > kMaxParamValueBytes) {
    return "param '" + param.name + "' is too long (" + std::to_string(value.size()) +
           " bytes; the limit is " + std::to_string(kMaxParamValueBytes) + ")";
  }
  if (value.find('\0') != std::string::npos) {
    return "param '" + param.name + "' contains a NUL byte";
  }
  if (!param.choices.empty() && !Contains(param.choices, value)) {
    // Values of one or two characters are all a typo apart: no guess.
    std::vector<std::string_view> views(param.choices.begin(), param.choices.end());
    const std::string_view guess = value.size() > 2 ? ClosestMatch(value, views) : "";
    return "param '" + param.name + "' must be " + QuotedChoices(param.choices) + ", got '" +
           value + "'" + DidYouMean(guess);
  }
  return "";
}

void LoadParamMap(FieldReader& r, const YamlNode& v, const std::string& prefix,
                  WorkflowParam& param) {
  r.CheckKeys(v, kParamKeys, prefix, "key");
  const YamlNode* default_node = v.Find("default");
  if (default_node) param.default_value = r.Text(*default_node, {prefix, "default"}).value_or("");
  if (const YamlNode* d = v.Find("description")) {
    param.description = r.Text(*d, {prefix, "description"}).value_or("");
  }
  const YamlNode* required = v.Find("required");
  if (required) param.required = r.Bool(*required, {prefix, "required"}).value_or(false);
  if (const YamlNode* c = v.Find("choices")) {
    if (r.TextList(*c, {prefix, "choices"}, false, param.choices) && param.choices.empty()) {
      r.Report(c->pos, prefix + "'choices' must not be empty (leave it out to allow any value)");
    }
  }
  const bool has_default = default_node && !default_node->IsNull();
  if (param.required && has_default) {
    r.Report(required->pos, prefix +
                                "'required: true' and a 'default' contradict each other: a "
                                "required param must be given by every run");
  } else if (!param.choices.empty() && !param.required && !has_default) {
    r.Report(v.pos, prefix +
                        "a param with 'choices' needs a 'default' among them, or "
                        "'required: true'");
  } else if (has_default && !param.choices.empty() &&
             !Contains(param.choices, param.default_value)) {
    r.Report(default_node->pos,
             prefix + "'default' '" + param.default_value + "' is not one of its 'choices'");
  }
}

}  // namespace

std::string ParamEnvName(std::string_view name) {
  std::string env = "PICOFLOW_PARAM_";
  for (char c : name) env += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return env;
}

void LoadParams(FieldReader& r, const YamlNode* params, bool scheduled,
                std::vector<WorkflowParam>& out) {
  if (!params || params->IsNull()) return;
  if (!params->IsMap()) {
    r.Report(params->pos,
             "'params' must be a map of param names to defaults, got " + DescribeYamlNode(*params));
    return;
  }
  if (params->entry_count() > kMaxParams) {
    r.Report(params->pos, "too many params (" + std::to_string(params->entry_count()) +
                              "; the limit is " + std::to_string(kMaxParams) + ")");
    return;
  }
  for (std::size_t i = 0; i < params->entry_count(); ++i) {
    const YamlNode& key = params->key(i);
    const YamlNode& v = params->value(i);
    WorkflowParam param;
    param.name = key.text;
    param.pos = key.pos;
    const std::string prefix = "param '" + param.name + "': ";
    if (!IsParamName(param.name)) {
      r.Report(key.pos, "param name '" + param.name +
                            "' is not valid (1-64 letters, digits and '_', not starting with "
                            "a digit: it names the variable " +
                            ParamEnvName(param.name) + ")");
    }
    for (const WorkflowParam& other : out) {
      if (ParamEnvName(other.name) == ParamEnvName(param.name)) {
        r.Report(key.pos, "param '" + param.name + "' and param '" + other.name + "' (line " +
                              std::to_string(other.pos.line) + ") would both be " +
                              ParamEnvName(param.name));
      }
    }
    if (v.IsMap()) {
      LoadParamMap(r, v, prefix, param);
    } else if (!v.IsNull()) {
      param.default_value = r.Text(v, {prefix, "default"}).value_or("");
    }
    if (param.default_value.size() > kMaxParamValueBytes) {
      r.Report(v.pos, prefix + "'default' is too long (the limit is " +
                          std::to_string(kMaxParamValueBytes) + " bytes)");
    }
    if (param.required && scheduled) {
      r.Report(key.pos, prefix +
                            "a scheduled or triggered workflow cannot have a required param: "
                            "its fires and events run with the defaults (give it a 'default')");
    }
    out.push_back(std::move(param));
  }
}

Result<ParamValues> ResolveParams(const Workflow& workflow, const ParamValues& given) {
  std::vector<std::string> problems;
  std::vector<std::string_view> names;
  names.reserve(workflow.params.size());
  for (const WorkflowParam& p : workflow.params) names.push_back(p.name);
  for (std::size_t i = 0; i < given.size(); ++i) {
    const std::string& name = given[i].first;
    const bool known = std::find(names.begin(), names.end(), name) != names.end();
    if (!known && names.empty()) {
      problems.push_back("unknown param '" + name + "': workflow '" + workflow.name +
                         "' has no params");
    } else if (!known) {
      problems.push_back("unknown param '" + name + "'" + DidYouMean(ClosestMatch(name, names)));
    }
    for (std::size_t j = 0; j < i; ++j) {
      if (given[j].first == name) problems.push_back("param '" + name + "' is given twice");
    }
  }
  ParamValues values;
  values.reserve(workflow.params.size());
  for (const WorkflowParam& p : workflow.params) {
    auto it =
        std::find_if(given.begin(), given.end(), [&](const auto& g) { return g.first == p.name; });
    if (it == given.end()) {
      if (p.required) {
        problems.push_back("param '" + p.name + "' is required" +
                           (p.description.empty() ? "" : " (" + p.description + ")"));
      }
      values.emplace_back(p.name, p.default_value);
      continue;
    }
    if (std::string problem = CheckValue(p, it->second); !problem.empty()) {
      problems.push_back(std::move(problem));
    }
    values.emplace_back(p.name, it->second);
  }
  if (problems.empty()) return values;
  std::string message;
  for (const std::string& p : problems) message += (message.empty() ? "" : "; ") + p;
  return Err(ErrorCode::kInvalid, message);
}

}  // namespace picoflow
