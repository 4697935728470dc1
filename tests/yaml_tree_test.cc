#include "common/yaml_tree.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <memory>
#include <string>

#include "tests/test_util.h"

namespace picoflow {
namespace {

// Raw-string inputs start with a newline for readability; line 1 is the next one.
std::string_view Text(std::string_view yaml) {
  if (!yaml.empty() && yaml[0] == '\n') yaml.remove_prefix(1);
  return yaml;
}

YamlParse Parse(std::string_view yaml) { return ParseYaml(Text(yaml), "f.yaml"); }

// The one fatal problem of a parse, as `FILE:LINE:COL: message`.
std::string FatalError(std::string_view yaml) {
  YamlParse p = ParseYaml(yaml, "f.yaml");
  REQUIRE_FALSE(p.root.has_value());
  REQUIRE(p.diagnostics.size() == 1);
  return p.diagnostics[0].ToString();
}

std::string Repeat(std::string_view s, std::size_t n) {
  std::string out;
  out.reserve(s.size() * n);
  for (std::size_t i = 0; i < n; ++i) out += s;
  return out;
}

TEST_CASE("a map keeps its entries in file order with their positions and quoting") {
  YamlParse p = Parse(R"(
name: demo
count: 3
quoted: "3"
block: |
  line one
list: [a, 'b']
)");
  REQUIRE(p.ok());
  const YamlNode& root = *p.root;
  REQUIRE(root.IsMap());
  REQUIRE(root.entry_count() == 5);
  CHECK(root.key(0).text == "name");
  CHECK(root.key(4).text == "list");
  CHECK(root.value(1).text == "3");
  CHECK(root.value(1).plain);
  CHECK_FALSE(root.value(2).plain);
  CHECK(root.value(3).text == "line one\n");
  CHECK_FALSE(root.value(3).plain);
  const YamlNode* list = root.Find("list");
  REQUIRE(list != nullptr);
  REQUIRE(list->IsSequence());
  CHECK(list->children.size() == 2);
  CHECK(list->children[1].text == "b");
  CHECK((list->children[1].pos.line == 6 && list->children[1].pos.col == 11));
  CHECK((root.key(2).pos.line == 3 && root.key(2).pos.col == 1));
  CHECK((root.value(2).pos.line == 3 && root.value(2).pos.col == 9));
  CHECK(root.Find("missing") == nullptr);
}

TEST_CASE("a key without a value is a null node at the key's position") {
  YamlParse p = Parse(R"(
a:
b: ~
)");
  REQUIRE(p.ok());
  CHECK(p.root->value(0).IsNull());
  CHECK((p.root->value(0).pos.line == 1 && p.root->value(0).pos.col == 1));
  CHECK(p.root->value(1).IsNull());
}

TEST_CASE("columns count characters, not bytes, after non-ASCII text") {
  YamlParse p = Parse("\"é€\": [x, y]\n");
  REQUIRE(p.ok());
  const YamlNode& list = p.root->value(0);
  CHECK(list.pos.col == 7);
  CHECK(list.children[1].pos.col == 11);
}

TEST_CASE("a UTF-8 byte order mark is skipped and positions stay right") {
  YamlParse p = Parse(
      "\xEF\xBB\xBF"
      "a: 1\nb: 2\n");
  REQUIRE(p.ok());
  CHECK(p.root->key(0).text == "a");
  CHECK((p.root->key(1).pos.line == 2 && p.root->key(1).pos.col == 1));
}

TEST_CASE("CRLF line ends are accepted") {
  YamlParse p = Parse("a: 1\r\nb: [x]\r\n");
  REQUIRE(p.ok());
  CHECK(p.root->value(1).children[0].text == "x");
  CHECK((p.root->value(1).pos.line == 2 && p.root->value(1).pos.col == 4));
}

TEST_CASE("a duplicate key is reported at the second one, naming the line of the first") {
  YamlParse p = Parse(R"(
tasks:
  - name: a
    retry: 1
    type: shell
    retry: 2
name: x
name: y
)");
  REQUIRE(p.root.has_value());
  REQUIRE(p.diagnostics.size() == 2);
  CHECK(p.diagnostics[0].ToString() ==
        "f.yaml:5:5: duplicate key 'retry' (first defined at line 3)");
  CHECK(p.diagnostics[1].ToString() ==
        "f.yaml:7:1: duplicate key 'name' (first defined at line 6)");
}

TEST_CASE("duplicate keys are found in big maps too") {
  std::string yaml;
  for (int i = 0; i < 100; ++i) yaml += "k" + std::to_string(i) + ": v\n";
  yaml += "k42: again\n";
  YamlParse p = Parse(yaml);
  REQUIRE(p.diagnostics.size() == 1);
  CHECK(p.diagnostics[0].ToString() ==
        "f.yaml:101:1: duplicate key 'k42' (first defined at line 43)");
}

TEST_CASE("empty, blank and comment-only files are refused") {
  CHECK(FatalError("") == "f.yaml: empty file");
  CHECK(FatalError(" \n\t\n") == "f.yaml: empty file");
  CHECK(FatalError("# nothing here\n") == "f.yaml: empty file: no YAML content, only comments");
}

TEST_CASE("a document of only '---' is a null root") {
  YamlParse p = Parse("---\n");
  REQUIRE(p.ok());
  CHECK(p.root->IsNull());
}

TEST_CASE("binary garbage is refused at the first bad byte") {
  CHECK(FatalError(std::string("a: 1\nb: \0\x01\x02", 11)) ==
        "f.yaml:2:4: NUL byte: this looks like a binary file, not YAML");
  CHECK(FatalError("a: \x07\n") ==
        "f.yaml:1:4: control character 0x07 is not allowed in YAML (is this a binary file?)");
  CHECK(FatalError("\xFF\xFEn\0a\0") ==
        "f.yaml:1:1: the file is UTF-16 or UTF-32; save it as UTF-8");
  CHECK(FatalError("\x7F"
                   "ELF\x02\x01\x01") ==
        "f.yaml:1:1: control character 0x7F is not allowed in YAML (is this a binary file?)");
}

TEST_CASE("invalid UTF-8 is refused at the line and column of the first bad byte") {
  CHECK(FatalError("a: ok\nb: é\xC3(\n") ==
        "f.yaml:2:5: invalid UTF-8 (byte 0xC3); save the file as UTF-8");
  CHECK(FatalError("a: \xC0\xAF\n") ==
        "f.yaml:1:4: invalid UTF-8 (byte 0xC0); save the file as UTF-8");
  CHECK(FatalError("a: \xED\xA0\x80\n") ==
        "f.yaml:1:4: invalid UTF-8 (byte 0xED); save the file as UTF-8");
  CHECK(FatalError("a: \xF4\x90\x80\x80\n") ==
        "f.yaml:1:4: invalid UTF-8 (byte 0xF4); save the file as UTF-8");
  CHECK(FatalError("a: \xE2\x82") ==
        "f.yaml:1:4: invalid UTF-8 (byte 0xE2); save the file as UTF-8");
}

TEST_CASE("a file over the size limit is refused before parsing") {
  const std::string big = "a: \"" + std::string(1024 * 1024, 'x') + "\"\n";
  CHECK(FatalError(big) == "f.yaml: file is too large (1048582 bytes; the limit is 1048576)");
}

TEST_CASE("syntax errors carry yaml-cpp's position and a hint") {
  CHECK(FatalError("a: [1, 2\nb: 3\n") ==
        "f.yaml:2:2: YAML syntax error: end of sequence flow not found (a '[' is not closed)");
  CHECK(
      FatalError("command: echo a: b\n") ==
      "f.yaml:1:16: YAML syntax error: illegal map value (a value that contains ': ' must be quoted)");
  CHECK(FatalError("a:\n\tb: 1\n") ==
        "f.yaml:2:3: YAML syntax error: illegal map value (a value that contains "
        "': ' must be quoted); line 2 is indented with a tab: YAML indents with spaces");
}

TEST_CASE("a quoted string that is never closed is an error, not the rest of the file") {
  CHECK(FatalError("a: \"unterminated\nb: 1\n") ==
        "f.yaml:1:4: this quoted string is never closed (no matching \")");
  CHECK(FatalError("a: 'it''s\n") ==
        "f.yaml:1:4: this quoted string is never closed (no matching ')");
  YamlParse p = Parse("a: \"x \\\" y\"\nb: 'it''s'\nc: \"multi\n  line\"\n");
  REQUIRE(p.ok());
  CHECK(p.root->value(0).text == "x \" y");
  CHECK(p.root->value(1).text == "it's");
  CHECK(p.root->value(2).text == "multi line");
}

TEST_CASE("a quoted value followed by more text is explained as a quoting mistake") {
  const std::string kDouble =
      "use single quotes around a value that contains double quotes, or escape them as \\\"";
  const std::string kSingle =
      "write a single quote inside single quotes as '', or use double quotes around the value";
  CHECK(FatalError("cmd:\n  command: \"grep \"foo\" /etc/passwd\"\n") ==
        "f.yaml:2:12: YAML syntax error: the quoted string ends at col 18, then `foo\" "
        "/etc/passwd\"` follows: " +
            kDouble);
  CHECK(FatalError("config: { command: \"grep \"foo\" /etc/passwd\" }\n") ==
        "f.yaml:1:20: YAML syntax error: the quoted string ends at col 26, then `foo\" "
        "/etc/passwd\" }` follows: " +
            kDouble);
  CHECK(
      FatalError("args: [\"a \"b\" c\"]\n") ==
      "f.yaml:1:8: YAML syntax error: the quoted string ends at col 11, then `b\" c\"]` follows: " +
          kDouble);
  CHECK(FatalError("- 'it's'\n") ==
        "f.yaml:1:3: YAML syntax error: the quoted string ends at col 6, then `s'` follows: " +
            kSingle);
  // Columns count characters; a long rest is shortened.
  CHECK(FatalError("é: \"ü \"" + std::string(60, 'x') + "\"\n") ==
        "f.yaml:1:4: YAML syntax error: the quoted string ends at col 7, then `" +
            std::string(40, 'x') + "...` follows: " + kDouble);
  // Quotes inside a plain value, and text after a comment, are no mistake.
  YamlParse p = Parse("a: grep \"foo\" x\nb: \"x\"  # \"y\" z\nc: [\"1\", '2']\n");
  REQUIRE(p.ok());
  CHECK(p.root->value(0).text == "grep \"foo\" x");
}

TEST_CASE("a syntax error on a last line that a closed quote ends reads nothing past the text") {
  // Found by fuzz_daemon_config_file: the check for `"x"#c` read the byte
  // after the line, past the end of a text without a final newline. An
  // exact-size copy, so that ASan (build-asan) sees any read past it.
  const std::string_view yaml = "k:\n\"\n\"\"";
  const auto exact = std::make_unique<char[]>(yaml.size());
  std::copy(yaml.begin(), yaml.end(), exact.get());
  CHECK(FatalError(std::string_view(exact.get(), yaml.size())) ==
        "f.yaml:3:2: YAML syntax error: end of map not found (check the indentation)");
}

TEST_CASE("anchors and aliases are refused, so an alias bomb costs nothing") {
  const std::string kMessage =
      "anchors and aliases (&name, *name) are not supported in workflow files; write the value out";
  std::string bomb =
      "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n";
  for (char c = 'b'; c <= 'j'; ++c) {
    bomb += std::string(1, c) + ": &" + c + " [" + Repeat(std::string("*") + char(c - 1) + ",", 8) +
            "*" + char(c - 1) + "]\n";
  }
  CHECK(FatalError(bomb) == "f.yaml:1:4: " + kMessage);
  CHECK(FatalError("x: &a [1, *a]\n") == "f.yaml:1:4: " + kMessage);
  CHECK(FatalError("x: *nowhere\n") == "f.yaml:1:4: " + kMessage);
  CHECK(FatalError("a: 1\nb: [*a]\n") == "f.yaml:2:5: " + kMessage);
}

TEST_CASE("nesting 100,000 levels deep is refused at the depth limit, for what a flat file costs") {
  const std::size_t n = 100'000;
  // The calibration: a harmless flat list about as long as the inputs below,
  // parsed in full. Refusing a deep one may cost about as much (the scanner
  // reads ahead), never a multiple of it, as recursing or backtracking would.
  const std::string flat = "a: [" + Repeat("1,", n) + "1]\n";
  bool flat_ok = false;
  const double flat_ms = test::FastestMs([&] { flat_ok = Parse(flat).ok(); });
  REQUIRE(flat_ok);
  for (const std::string& deep :
       {"a: " + Repeat("[", n) + Repeat("]", n) + "\n",
        "a: " + Repeat("{a: ", n) + Repeat("}", n) + "\n", Repeat("- ", n) + "x\n"}) {
    std::string error;
    const double ms = test::FastestMs([&] { error = FatalError(deep); });
    INFO(deep.size() << " bytes refused in " << ms << " ms; " << flat.size()
                     << " flat bytes parsed in " << flat_ms << " ms");
    CHECK(error.find("nesting is too deep") != std::string::npos);
    CHECK(ms < 10 * flat_ms);
  }
  CHECK(FatalError("a: " + Repeat("[", 65) + Repeat("]", 65) + "\n") ==
        "f.yaml:1:67: nesting is too deep (more than 64 levels)");
  CHECK(Parse("a: " + Repeat("[", 63) + Repeat("]", 63) + "\n").ok());
}

TEST_CASE("the node limit stops a huge flat list") {
  YamlLimits limits;
  limits.max_nodes = 1000;
  YamlParse p = ParseYaml("a: [" + Repeat("1,", 2000) + "1]\n", "f.yaml", limits);
  REQUIRE_FALSE(p.root.has_value());
  CHECK(p.diagnostics[0].message == "too many YAML nodes (more than 1000)");
  CHECK(Parse("a: [" + Repeat("1,", 2000) + "1]\n").ok());
}

TEST_CASE("a second document is refused at its start") {
  CHECK(FatalError("a: 1\n---\nb: 2\n") ==
        "f.yaml:2:1: a workflow file holds one YAML document; found a second one here");
}

TEST_CASE("non-scalar and empty map keys are refused") {
  CHECK(FatalError("? [a]\n: 1\n") ==
        "f.yaml:1:3: map keys must be plain strings, not a list or a map");
  CHECK(FatalError("{: 1}\n") == "f.yaml:1:2: empty map key");
}

TEST_CASE("the !!str tag makes a string and other tags are refused") {
  YamlParse p = Parse("a: !!str 5\n");
  REQUIRE(p.ok());
  CHECK_FALSE(p.root->value(0).plain);
  CHECK(FatalError("a: !!int 5\n") ==
        "f.yaml:1:4: YAML tag '!!int' is not supported in workflow files");
  CHECK(FatalError("a: !custom [1]\n") ==
        "f.yaml:1:4: YAML tag '!custom' is not supported in workflow files");
}

TEST_CASE("YamlToJson types plain scalars and quotes everything else") {
  YamlParse p = Parse(R"(
body:
  n: 1
  f: -2.5e3
  t: true
  s: "1"
  word: hello
  octal: 017
  nothing:
  list: [a, "say \"hi\"", {k: v}]
  text: "tab\there\u0001"
)");
  REQUIRE(p.ok());
  CHECK(YamlToJson(*p.root->Find("body")) ==
        R"({"n":1,"f":-2.5e3,"t":true,"s":"1","word":"hello","octal":"017","nothing":null,)"
        R"("list":["a","say \"hi\"",{"k":"v"}],"text":"tab\there\u0001"})");
}

TEST_CASE("DescribeYamlNode names kinds and quotes scalars for messages") {
  YamlParse p = Parse("a: [1]\nb: {}\nc:\nd: word\ne: \"q\"\n");
  REQUIRE(p.ok());
  CHECK(DescribeYamlNode(p.root->value(0)) == "a list");
  CHECK(DescribeYamlNode(p.root->value(1)) == "a map");
  CHECK(DescribeYamlNode(p.root->value(2)) == "no value");
  CHECK(DescribeYamlNode(p.root->value(3)) == "'word'");
  CHECK(DescribeYamlNode(p.root->value(4)) == "the quoted string 'q'");
  YamlNode long_text;
  long_text.kind = YamlKind::kScalar;
  long_text.text = std::string(39, 'x') + "é and more";
  CHECK(DescribeYamlNode(long_text) == "'" + std::string(39, 'x') + "...'");
}

}  // namespace
}  // namespace picoflow
