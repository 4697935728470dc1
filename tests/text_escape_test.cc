#include "common/text_escape.h"

#include <doctest/doctest.h>

#include <string>

namespace picoflow {
namespace {

TEST_CASE("control characters are written out; everything else is kept as it is") {
  CHECK(EscapeControls("a\nb") == "a\\nb");
  CHECK(EscapeControls("line\r\nnext\tcol") == "line\\r\\nnext\\tcol");
  CHECK(EscapeControls(std::string("nul\0bell\a", 9)) == "nul\\x00bell\\x07");
  CHECK(EscapeControls("\x1b[31mred\x7f") == "\\x1b[31mred\\x7f");
  CHECK(EscapeControls("next\xc2\x85line \xc2\x9b") == "next\\u0085line \\u009b");
  CHECK(EscapeControls("caf\xc3\xa9 \xc2\xa0 \xe2\x80\xa8") == "caf\xc3\xa9 \xc2\xa0 \xe2\x80\xa8");
  CHECK(EscapeControls("C:\\dir\\new 'quoted' \"too\"") == "C:\\dir\\new 'quoted' \"too\"");
  CHECK(EscapeControls("") == "");
  CHECK(EscapeControls("trailing \xc2") == "trailing \xc2");  // not a C1: kept, as invalid UTF-8
}

TEST_CASE("escaping an escaped text changes nothing") {
  const std::string once = EscapeControls("a\nb\x01\xc2\x80");
  CHECK(EscapeControls(once) == once);
}

}  // namespace
}  // namespace picoflow
