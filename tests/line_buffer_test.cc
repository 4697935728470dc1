#include "protocol/line_buffer.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

namespace picoflow {
namespace {

// Every event Next() yields until kNeedMore: lines as themselves, an
// over-long line as "<too long>".
std::vector<std::string> Drain(LineBuffer& buffer) {
  std::vector<std::string> out;
  std::string line;
  for (;;) {
    switch (buffer.Next(line)) {
      case LineBuffer::Status::kLine: out.push_back(line); break;
      case LineBuffer::Status::kTooLong: out.push_back("<too long>"); break;
      case LineBuffer::Status::kNeedMore: return out;
    }
  }
}

std::vector<std::string> Feed(LineBuffer& buffer, const std::vector<std::string>& chunks) {
  std::vector<std::string> out;
  for (const std::string& chunk : chunks) {
    buffer.Append(chunk);
    for (std::string& l : Drain(buffer)) out.push_back(std::move(l));
  }
  return out;
}

using Lines = std::vector<std::string>;

TEST_CASE("lines split across reads come out whole, several per read, CR LF stripped") {
  LineBuffer b(100);
  CHECK(Feed(b, {"ab", "c\nde", "f\n\ng\r\nh"}) == Lines{"abc", "def", "", "g"});
  CHECK(b.buffered() == 1);
  CHECK(Feed(b, {"\n"}) == Lines{"h"});
  CHECK(b.buffered() == 0);
}

TEST_CASE("feeding one byte at a time yields the same lines") {
  const std::string text = "{\"a\":1}\n{\"b\":2}\nlast\n";
  std::vector<std::string> chunks;
  for (char c : text) chunks.emplace_back(1, c);
  LineBuffer b(100);
  CHECK(Feed(b, chunks) == Lines{"{\"a\":1}", "{\"b\":2}", "last"});
}

TEST_CASE("a line of exactly the maximum passes and one byte more does not") {
  LineBuffer b(10);
  CHECK(Feed(b, {std::string(10, 'x') + "\n" + std::string(11, 'y') + "\nok\n"}) ==
        Lines{std::string(10, 'x'), "<too long>", "ok"});
}

TEST_CASE("an over-long line without its end is reported once and its rest discarded") {
  LineBuffer b(10);
  CHECK(Feed(b, {std::string(8, 'a'), std::string(8, 'a')}) == Lines{"<too long>"});
  CHECK(b.discarding());
  CHECK(b.buffered() == 0);
  CHECK(Feed(b, {std::string(50, 'a'), std::string(50, 'a')}) == Lines{});
  CHECK(Feed(b, {"aaa\nnext\n"}) == Lines{"next"});
  CHECK_FALSE(b.discarding());
}

TEST_CASE("memory stays bounded while a client streams a huge line") {
  LineBuffer b(1000);
  const std::string chunk(300, 'z');
  std::size_t most = 0;
  int reports = 0;
  for (int i = 0; i < 1000; ++i) {
    b.Append(chunk);
    for (const std::string& e : Drain(b)) reports += e == "<too long>";
    most = std::max(most, b.buffered());
  }
  CHECK(reports == 1);
  CHECK(most <= 1000 + chunk.size());
}

TEST_CASE("lines taken one at a time between appends come out in order and are counted") {
  LineBuffer b(100);
  std::string line;
  b.Append("a\nb\nc");
  CHECK(b.lines() == 2);
  REQUIRE(b.Next(line) == LineBuffer::Status::kLine);
  CHECK(line == "a");
  CHECK(b.lines() == 1);
  b.Append("\nd\n\ne");  // "b" still waits
  CHECK(b.lines() == 4);
  std::vector<std::string> rest = Drain(b);
  CHECK(rest == Lines{"b", "c", "d", ""});
  CHECK(b.lines() == 0);
  CHECK(b.buffered() == 1);
}

TEST_CASE("a buffer whose lines are taken one per append holds only what was not taken") {
  // A connection served in turns takes one line while more arrive; what it
  // took must not stay in memory.
  LineBuffer b(100);
  const std::string chunk = "0123456789012345678\n";  // 20 bytes, one line
  std::string line;
  std::size_t most = 0;
  b.Append(chunk);
  b.Append(chunk);
  for (int i = 0; i < 10000; ++i) {
    b.Append(chunk);
    REQUIRE(b.Next(line) == LineBuffer::Status::kLine);
    most = std::max(most, b.held());
  }
  CHECK(b.lines() == 2);
  CHECK(most == 3 * chunk.size());
  CHECK(Drain(b).size() == 2);
}

}  // namespace
}  // namespace picoflow
