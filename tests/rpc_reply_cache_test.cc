// ReplyCache: found by owner and variant, shared not copied, never outliving
// its owner, bounded by bytes (least recently used out first), empty until used.

#include "picoflowd/rpc/rpc_reply_cache.h"

#include <doctest/doctest.h>

#include <memory>
#include <string>

namespace picoflow {
namespace {

struct Owner {
  int n = 0;
};

TEST_CASE("a stored result is found for its owner and variant, shared rather than copied") {
  ReplyCache cache(1000);
  CHECK(cache.size() == 0);
  CHECK(cache.bytes() == 0);
  auto owner = std::make_shared<const Owner>();
  auto stored = cache.Put(owner, 0, "{\"a\":1}");
  REQUIRE(stored != nullptr);
  CHECK(*stored == "{\"a\":1}");
  CHECK(cache.Find(owner, 0) == stored);  // the same string
  CHECK(cache.Find(owner, 1) == nullptr);
  CHECK(cache.Find(std::make_shared<const Owner>(), 0) == nullptr);
  CHECK(cache.bytes() == 7);
  cache.Put(owner, 1, "{\"a\":2}");
  CHECK(*cache.Find(owner, 1) == "{\"a\":2}");
  CHECK(cache.size() == 2);
}

TEST_CASE("an entry does not outlive its owner") {
  ReplyCache cache(1000);
  auto owner = std::make_shared<const Owner>();
  const void* address = owner.get();
  cache.Put(owner, 0, std::string(100, 'x'));
  owner.reset();
  // Whatever is made at the same address later is another object.
  auto again = std::make_shared<const Owner>();
  if (again.get() == address) MESSAGE("a new owner took the old one's address");
  CHECK(cache.Find(again, 0) == nullptr);
  // Gone owners' entries are dropped at the next Put, whatever room it needs.
  auto other = std::make_shared<const Owner>();
  auto dead = std::make_shared<const Owner>();
  cache.Put(dead, 0, std::string(100, 'd'));
  dead.reset();
  cache.Put(other, 0, "y");
  CHECK(cache.size() == 1);
  CHECK(cache.bytes() == 1);
}

TEST_CASE("the least recently used results go first when a new one needs room") {
  ReplyCache cache(100);
  auto a = std::make_shared<const Owner>();
  auto b = std::make_shared<const Owner>();
  auto c = std::make_shared<const Owner>();
  cache.Put(a, 0, std::string(40, 'a'));
  cache.Put(b, 0, std::string(40, 'b'));
  CHECK(cache.Find(a, 0) != nullptr);  // a is now the most recently used
  cache.Put(c, 0, std::string(40, 'c'));
  CHECK(cache.Find(b, 0) == nullptr);
  CHECK(cache.Find(a, 0) != nullptr);
  CHECK(cache.Find(c, 0) != nullptr);
  CHECK(cache.bytes() == 80);
}

TEST_CASE("a result larger than the bound is returned but not kept, and a replaced one is freed") {
  ReplyCache cache(100);
  auto owner = std::make_shared<const Owner>();
  cache.Put(owner, 0, std::string(60, 'a'));
  auto huge = cache.Put(owner, 0, std::string(101, 'h'));
  CHECK(huge->size() == 101);
  CHECK(cache.Find(owner, 0) == nullptr);  // the old one is replaced, the new one not kept
  CHECK(cache.size() == 0);
  CHECK(cache.bytes() == 0);
  cache.Put(owner, 0, std::string(60, 'a'));
  cache.Put(owner, 0, std::string(70, 'b'));
  CHECK(cache.bytes() == 70);
  CHECK(*cache.Find(owner, 0) == std::string(70, 'b'));
}

}  // namespace
}  // namespace picoflow
