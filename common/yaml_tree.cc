#include "common/yaml_tree.h"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/exceptions.h>
#include <yaml-cpp/mark.h>
#include <yaml-cpp/parser.h>

#include <algorithm>
#include <sstream>
#include <unordered_map>

#include "common/yaml_text.h"

namespace picoflow {
namespace {

constexpr const char* kNoAliases =
    "anchors and aliases (&name, *name) are not supported in workflow files; write the value out";

// Thrown by the event handler to stop yaml-cpp at the first fatal problem;
// caught in ParseYaml, never escapes this file.
struct StopParse {
  SourcePos pos;
  std::string message;
};

// Builds the tree from parser events. Open collections are kept as pointers:
// a node's parent vector never grows while the node is open, so they stay valid.
class TreeBuilder : public YAML::EventHandler {
 public:
  TreeBuilder(const TextPositions& positions, const YamlLimits& limits, const std::string& label)
      : positions_(positions), limits_(limits), label_(label) {}

  std::optional<YamlNode>& root() { return root_; }
  int documents() const { return documents_; }
  SourcePos ToPos(const YAML::Mark& mark) const {
    return positions_.FromMark(mark.line, mark.column, mark.pos);
  }

  void OnDocumentStart(const YAML::Mark& mark) override {
    if (++documents_ > 1) {
      throw StopParse{ToPos(mark),
                      "a workflow file holds one YAML document; found a second one here"};
    }
  }
  void OnDocumentEnd() override {}

  void OnNull(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    RefuseAnchor(mark, anchor);
    YamlNode node;
    node.pos = ToPos(mark);
    Add(std::move(node));
  }

  void OnAlias(const YAML::Mark& mark, YAML::anchor_t) override {
    throw StopParse{ToPos(mark), kNoAliases};
  }

  void OnAnchor(const YAML::Mark& mark, const std::string&) override {
    throw StopParse{ToPos(mark), kNoAliases};
  }

  void OnScalar(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                const std::string& value) override {
    RefuseAnchor(mark, anchor);
    CheckQuoteClosed(mark);
    YamlNode node;
    node.kind = YamlKind::kScalar;
    node.plain = CheckTag(mark, tag, true);
    node.pos = ToPos(mark);
    node.text = value;
    Add(std::move(node));
  }

  void OnSequenceStart(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    Open(mark, tag, anchor, YamlKind::kSequence);
  }
  void OnSequenceEnd() override { Close(); }

  void OnMapStart(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    Open(mark, tag, anchor, YamlKind::kMap);
  }
  void OnMapEnd() override {
    CheckDuplicateKeys(*open_.back());
    Close();
  }

  Diagnostics TakeDuplicates() { return std::move(duplicates_); }

 private:
  void RefuseAnchor(const YAML::Mark& mark, YAML::anchor_t anchor) {
    if (anchor != YAML::NullAnchor) throw StopParse{ToPos(mark), kNoAliases};
  }

  // True if the scalar is plain. Explicit tags other than !!str would change
  // how a value is typed behind the reader's back: refused.
  bool CheckTag(const YAML::Mark& mark, const std::string& tag, bool scalar) {
    if (tag == "?") return true;
    if (tag == "!" || (scalar && tag == "tag:yaml.org,2002:str")) return false;
    if (!scalar && (tag == "tag:yaml.org,2002:seq" || tag == "tag:yaml.org,2002:map")) return true;
    std::string shown = tag;
    if (shown.rfind("tag:yaml.org,2002:", 0) == 0) shown = "!!" + shown.substr(18);
    throw StopParse{ToPos(mark), "YAML tag '" + shown + "' is not supported in workflow files"};
  }

  // yaml-cpp 0.7 accepts a quoted scalar that runs into the end of the file
  // (swallowing every line after it); find its closing quote ourselves.
  // Each quoted scalar is scanned once, so this stays linear.
  void CheckQuoteClosed(const YAML::Mark& mark) {
    const std::string_view body = positions_.body();
    const auto start = static_cast<std::size_t>(mark.pos);
    if (mark.pos < 0 || start >= body.size()) return;
    const char quote = body[start];
    if (quote != '"' && quote != '\'') return;
    for (std::size_t i = start + 1; i < body.size(); ++i) {
      if (quote == '"' && body[i] == '\\') {
        ++i;  // skip the escaped character
      } else if (body[i] == quote) {
        if (quote == '"' || i + 1 == body.size() || body[i + 1] != '\'') return;
        ++i;  // '' is an escaped single quote
      }
    }
    throw StopParse{ToPos(mark),
                    std::string("this quoted string is never closed (no matching ") + quote + ")"};
  }

  void Open(const YAML::Mark& mark, const std::string& tag, YAML::anchor_t anchor, YamlKind kind) {
    RefuseAnchor(mark, anchor);
    CheckTag(mark, tag, false);
    if (static_cast<int>(open_.size()) >= limits_.max_depth) {
      throw StopParse{ToPos(mark), "nesting is too deep (more than " +
                                       std::to_string(limits_.max_depth) + " levels)"};
    }
    YamlNode node;
    node.kind = kind;
    node.pos = ToPos(mark);
    open_.push_back(Add(std::move(node)));
  }

  void Close() { open_.pop_back(); }

  // Attaches a finished or newly opened node to its parent; returns where it lives.
  YamlNode* Add(YamlNode node) {
    if (++nodes_ > limits_.max_nodes) {
      throw StopParse{node.pos,
                      "too many YAML nodes (more than " + std::to_string(limits_.max_nodes) + ")"};
    }
    if (open_.empty()) {
      root_ = std::move(node);
      return &*root_;
    }
    YamlNode& parent = *open_.back();
    if (parent.IsMap()) PlaceInMap(parent, node);
    parent.children.push_back(std::move(node));
    return &parent.children.back();
  }

  // Map events alternate key, value. Keys must be non-empty scalars; an empty
  // value takes its key's position when yaml-cpp marks it on a later line.
  void PlaceInMap(const YamlNode& map, YamlNode& node) {
    const bool is_key = map.children.size() % 2 == 0;
    if (is_key) {
      if (node.IsNull()) throw StopParse{node.pos, "empty map key"};
      if (!node.IsScalar()) {
        throw StopParse{node.pos, "map keys must be plain strings, not a list or a map"};
      }
      return;
    }
    const YamlNode& key = map.children.back();
    if (node.IsNull() && node.pos.line != key.pos.line) node.pos = key.pos;
  }

  void CheckDuplicateKeys(const YamlNode& map);

  const TextPositions& positions_;
  const YamlLimits& limits_;
  const std::string& label_;
  std::optional<YamlNode> root_;
  std::vector<YamlNode*> open_;
  std::size_t nodes_ = 0;
  int documents_ = 0;
  Diagnostics duplicates_;
};

void TreeBuilder::CheckDuplicateKeys(const YamlNode& map) {
  const std::size_t n = map.entry_count();
  auto report = [&](const YamlNode& first, const YamlNode& again) {
    duplicates_.push_back({label_, again.pos,
                           "duplicate key '" + again.text + "' (first defined at line " +
                               std::to_string(first.pos.line) + ")"});
  };
  if (n <= 16) {
    // Small maps (nearly all of them): pairwise is cheaper than hashing.
    for (std::size_t i = 1; i < n; ++i) {
      for (std::size_t j = 0; j < i; ++j) {
        if (map.key(j).text == map.key(i).text) {
          report(map.key(j), map.key(i));
          break;
        }
      }
    }
    return;
  }
  std::unordered_map<std::string_view, std::size_t> seen;
  seen.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    auto [it, inserted] = seen.emplace(map.key(i).text, i);
    if (!inserted) report(map.key(it->second), map.key(i));
  }
}

// yaml-cpp's terse messages, with the likely cause added.
std::string ExplainSyntaxError(const std::string& msg, std::string_view body, int error_line) {
  using namespace YAML::ErrorMsg;
  if (msg == UNKNOWN_ANCHOR || msg == ALIAS_NOT_FOUND || msg == ANCHOR_NOT_FOUND ||
      msg == CHAR_IN_ALIAS || msg == CHAR_IN_ANCHOR || msg == MULTIPLE_ANCHORS ||
      msg == MULTIPLE_ALIASES || msg == ALIAS_CONTENT) {
    return kNoAliases;
  }
  if (msg == BAD_FILE) return "nesting is too deep";
  std::string out = "YAML syntax error: " + msg;
  if (msg == MAP_VALUE) out += " (a value that contains ': ' must be quoted)";
  if (msg == END_OF_SEQ_FLOW) out += " (a '[' is not closed)";
  if (msg == END_OF_MAP_FLOW) out += " (a '{' is not closed)";
  if (msg == END_OF_MAP || msg == END_OF_SEQ) out += " (check the indentation)";
  // yaml-cpp rarely blames a tab used for indentation by name: look for one.
  int line = 1;
  for (std::size_t i = 0; i < body.size() && line <= error_line; ++i) {
    if (body[i] == '\t' && (i == 0 || body[i - 1] == '\n')) {
      return out + "; line " + std::to_string(line) +
             " is indented with a tab: YAML indents with spaces";
    }
    if (body[i] == '\n') ++line;
  }
  return out;
}

// RFC 8259 number grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
bool IsJsonNumber(std::string_view s) {
  std::size_t i = 0;
  const auto digits = [&] {
    const std::size_t start = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    return i - start;
  };
  if (i < s.size() && s[i] == '-') ++i;
  if (i < s.size() && s[i] == '0') {
    ++i;
  } else if (digits() == 0) {
    return false;
  }
  if (i < s.size() && s[i] == '.' && (++i, digits() == 0)) return false;
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    if (digits() == 0) return false;
  }
  return i == s.size();
}

void AppendJsonString(std::string_view s, std::string& out) {
  static constexpr char kHex[] = "0123456789abcdef";
  out += '"';
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out += kHex[c >> 4];
          out += kHex[c & 0xF];
        } else {
          out += ch;  // UTF-8 passes through unchanged
        }
    }
  }
  out += '"';
}

void AppendJson(const YamlNode& node, std::string& out) {
  switch (node.kind) {
    case YamlKind::kNull: out += "null"; return;
    case YamlKind::kScalar: {
      const std::string& t = node.text;
      if (node.plain && (t == "true" || t == "True" || t == "TRUE")) {
        out += "true";
      } else if (node.plain && (t == "false" || t == "False" || t == "FALSE")) {
        out += "false";
      } else if (node.plain && IsJsonNumber(t)) {
        out += t;
      } else {
        AppendJsonString(t, out);
      }
      return;
    }
    case YamlKind::kSequence:
      out += '[';
      for (std::size_t i = 0; i < node.children.size(); ++i) {
        if (i) out += ',';
        AppendJson(node.children[i], out);
      }
      out += ']';
      return;
    case YamlKind::kMap:
      out += '{';
      for (std::size_t i = 0; i < node.entry_count(); ++i) {
        if (i) out += ',';
        AppendJsonString(node.key(i).text, out);
        out += ':';
        AppendJson(node.value(i), out);
      }
      out += '}';
      return;
  }
}

YamlParse Fatal(const std::string& label, SourcePos pos, std::string message) {
  YamlParse out;
  out.diagnostics.push_back({label, pos, std::move(message)});
  return out;
}

}  // namespace

const YamlNode* YamlNode::Find(std::string_view wanted) const {
  for (std::size_t i = 0; i < entry_count(); ++i) {
    if (key(i).text == wanted) return &value(i);
  }
  return nullptr;
}

YamlParse ParseYaml(std::string_view text, const std::string& label, const YamlLimits& limits) {
  if (text.size() > limits.max_bytes) {
    return Fatal(label, {},
                 "file is too large (" + std::to_string(text.size()) + " bytes; the limit is " +
                     std::to_string(limits.max_bytes) + ")");
  }
  TextPositions positions;
  if (std::optional<TextProblem> problem = CheckYamlText(text, positions)) {
    return Fatal(label, problem->pos, problem->message);
  }
  TreeBuilder builder(positions, limits, label);
  try {
    // The BOM is skipped so that yaml-cpp's byte offsets match positions'.
    std::istringstream in{std::string(positions.body())};
    YAML::Parser parser(in);
    while (parser.HandleNextDocument(builder)) {
    }
  } catch (const StopParse& stop) {
    return Fatal(label, stop.pos, stop.message);
  } catch (const YAML::Exception& e) {
    if (!e.mark.is_null()) {
      // yaml-cpp says "end of map not found" for `"grep "foo" x"`: say what happened.
      if (auto quote = ExplainTextAfterQuote(positions, e.mark.line, e.mark.column, e.mark.pos)) {
        return Fatal(label, quote->pos, "YAML syntax error: " + quote->message);
      }
    }
    const SourcePos pos = e.mark.is_null() ? SourcePos{} : builder.ToPos(e.mark);
    return Fatal(label, pos, ExplainSyntaxError(e.msg, positions.body(), pos.line));
  } catch (const std::exception& e) {
    return Fatal(label, {}, std::string("cannot parse YAML: ") + e.what());
  }
  if (builder.documents() == 0) {
    return Fatal(label, {}, "empty file: no YAML content, only comments");
  }
  YamlParse out;
  out.root = std::move(builder.root());
  if (!out.root) out.root.emplace();  // `---` alone: a null document
  out.diagnostics = builder.TakeDuplicates();
  return out;
}

std::string DescribeYamlNode(const YamlNode& node) {
  switch (node.kind) {
    case YamlKind::kNull: return "no value";
    case YamlKind::kSequence: return "a list";
    case YamlKind::kMap: return "a map";
    case YamlKind::kScalar: break;
  }
  constexpr std::size_t kMax = 40;
  std::size_t cut = std::min(node.text.size(), kMax);
  // Never cut inside a UTF-8 sequence.
  while (cut < node.text.size() && (static_cast<unsigned char>(node.text[cut]) & 0xC0) == 0x80)
    --cut;
  std::string shown = node.text.substr(0, cut);
  if (cut < node.text.size()) shown += "...";
  for (char& c : shown) {
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  }
  return (node.plain ? "'" : "the quoted string '") + shown + "'";
}

std::string YamlToJson(const YamlNode& node) {
  std::string out;
  AppendJson(node, out);  // depth is bounded by YamlLimits::max_depth
  return out;
}

}  // namespace picoflow
