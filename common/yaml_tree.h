#pragma once
// YamlNode: a small, position-carrying tree of one YAML document, built from
// yaml-cpp's event parser. It refuses what workflow files never need and what
// makes YAML dangerous to walk (anchors/aliases, deep nesting, huge node
// counts, several documents), so every later walk is linear and bounded.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/diagnostic.h"

namespace picoflow {

/// What a node holds. kNull: a key or item with no value, `~` or `null`.
enum class YamlKind : std::uint8_t { kNull, kScalar, kSequence, kMap };

/// One node. Scalars keep their text exactly as YAML decoded it; YAML's
/// implicit typing is left to the reader (see `plain`).
struct YamlNode {
  YamlKind kind = YamlKind::kNull;
  /// A scalar written without quotes (and not as a `|`/`>` block): only such a
  /// scalar may be read as a number, a boolean or null.
  bool plain = true;
  /// 1-based line and column (columns count characters, not bytes).
  SourcePos pos;
  /// Scalar text; empty for other kinds.
  std::string text;
  /// Sequence: the items. Map: keys and values alternating (key0, value0,
  /// key1, value1, ...), in file order; keys are always scalars.
  std::vector<YamlNode> children;

  bool IsNull() const { return kind == YamlKind::kNull; }
  bool IsScalar() const { return kind == YamlKind::kScalar; }
  bool IsSequence() const { return kind == YamlKind::kSequence; }
  bool IsMap() const { return kind == YamlKind::kMap; }

  /// Number of map entries (0 for other kinds).
  std::size_t entry_count() const { return IsMap() ? children.size() / 2 : 0; }
  /// Key of map entry i (< entry_count()).
  const YamlNode& key(std::size_t i) const { return children[2 * i]; }
  /// Value of map entry i (< entry_count()).
  const YamlNode& value(std::size_t i) const { return children[2 * i + 1]; }

  /// The value of the first entry whose key text is `key`, or nullptr (also
  /// for non-maps). Linear: meant for the small maps of a workflow file.
  const YamlNode* Find(std::string_view key) const;
};

/// Bounds on what ParseYaml accepts.
struct YamlLimits {
  std::size_t max_bytes = 1024 * 1024;
  int max_depth = 64;               ///< nested sequences/maps
  std::size_t max_nodes = 200'000;  ///< keys, values and items together
};

/// The result of parsing: a tree, a fatal problem, or a tree with problems
/// that did not stop parsing (duplicate keys).
struct YamlParse {
  std::optional<YamlNode> root;  ///< absent if parsing stopped
  Diagnostics diagnostics;       ///< every problem found, each with its position

  bool ok() const { return root.has_value() && diagnostics.empty(); }
};

/// Parses one YAML document. `label` becomes Diagnostic::file. Never throws.
/// Fatal (root absent, one diagnostic): an empty file, a file over
/// `limits.max_bytes`, NUL bytes or other control characters, invalid UTF-8
/// (at the first bad byte), a YAML syntax error, an anchor or alias, an
/// explicit tag other than `!!str`, a non-scalar or empty map key, more than
/// one document, or exceeding the depth or node limits.
/// Not fatal (root present): each duplicate map key, at the second key,
/// naming the line of the first.
YamlParse ParseYaml(std::string_view text, const std::string& label, const YamlLimits& limits = {});

/// `a list`, `a map`, `no value` or `'text'` (quoted, shortened to 40
/// characters): for messages like "must be an integer, got a list".
std::string DescribeYamlNode(const YamlNode& node);

/// Compact JSON for a node: maps become objects (keys as strings), sequences
/// arrays, null null; a plain scalar that is `true`/`false` (any YAML 1.2
/// capitalisation) becomes a boolean, one that is a JSON number a number;
/// every other scalar, and every quoted one, a string.
std::string YamlToJson(const YamlNode& node);

}  // namespace picoflow
