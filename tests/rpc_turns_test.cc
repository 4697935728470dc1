// RpcTurns on a real uv loop with a fake clock: round-robin order, the budget
// of a turn, a newcomer's place, turns sat out for time owed, and no active
// handle while nothing waits.
// Each uv_run(UV_RUN_NOWAIT) is one loop iteration: one turn.

#include "picoflowd/rpc/rpc_turns.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

namespace picoflow {
namespace {

using namespace std::chrono_literals;

// A connection with `requests` waiting, each costing `cost` ns of the fake clock.
class FakeTaker : public RpcTurnTaker {
 public:
  FakeTaker(std::string name, int requests, std::uint64_t cost, std::uint64_t& now,
            std::vector<std::string>& served)
      : name_(std::move(name)), left_(requests), cost_(cost), now_(now), served_(served) {}
  bool TakeTurn() noexcept override {
    served_.push_back(name_);
    now_ += cost_;
    return --left_ > 0;
  }

 private:
  std::string name_;
  int left_;
  std::uint64_t cost_;
  std::uint64_t& now_;
  std::vector<std::string>& served_;
};

// A loop, a fake clock and what was served, in order.
struct Fixture {
  Fixture() { uv_loop_init(&loop); }
  ~Fixture() {
    turns.reset();
    uv_run(&loop, UV_RUN_DEFAULT);  // the idle handle's close callback
    CHECK(uv_loop_close(&loop) == 0);
  }
  void Make(std::chrono::nanoseconds budget, std::chrono::nanoseconds share = 1ms) {
    turns = std::make_unique<RpcTurns>(&loop, budget, share, [this] { return now; });
  }
  std::shared_ptr<FakeTaker> Taker(const std::string& name, int requests, std::uint64_t cost) {
    auto t = std::make_shared<FakeTaker>(name, requests, cost, now, served);
    turns->Add(t);
    return t;
  }
  // One loop iteration; returns what it served.
  std::vector<std::string> Iterate() {
    served.clear();
    uv_run(&loop, UV_RUN_NOWAIT);
    return served;
  }

  uv_loop_t loop{};
  std::uint64_t now = 0;
  std::vector<std::string> served;
  std::unique_ptr<RpcTurns> turns;
};

using Names = std::vector<std::string>;

TEST_CASE("connections with requests waiting are served round-robin, one request each per turn") {
  Fixture f;
  f.Make(1s);
  auto a = f.Taker("a", 3, 0);
  auto b = f.Taker("b", 1, 0);
  auto c = f.Taker("c", 2, 0);
  CHECK(f.Iterate() == Names{"a", "b", "c", "a", "c", "a"});
  CHECK(f.turns->turns() == 1);
  CHECK_FALSE(f.turns->active());
}

TEST_CASE("a turn ends once its budget is spent, and the next loop iteration goes on in order") {
  Fixture f;
  f.Make(2ms);
  auto a = f.Taker("a", 3, 1'000'000);
  auto b = f.Taker("b", 3, 1'000'000);
  CHECK(f.Iterate() == Names{"a", "b"});
  CHECK(f.turns->active());
  CHECK(f.Iterate() == Names{"a", "b"});
  CHECK(f.Iterate() == Names{"a", "b"});
  CHECK_FALSE(f.turns->active());
  CHECK(f.Iterate() == Names{});
  CHECK(f.turns->turns() == 3);
}

TEST_CASE("a request longer than the budget is not cut, and ends its turn") {
  Fixture f;
  f.Make(2ms);
  auto slow = f.Taker("slow", 2, 5'000'000);
  auto quick = f.Taker("quick", 1, 1'000);
  CHECK(f.Iterate() == Names{"slow"});
  CHECK(f.Iterate() == Names{"quick", "slow"});
  CHECK_FALSE(f.turns->active());
}

TEST_CASE("a connection that starts waiting goes behind those already waiting, one round away") {
  Fixture f;
  f.Make(1ms);
  const std::uint64_t ms = 1'000'000;
  auto a = f.Taker("a", 100, ms);
  auto b = f.Taker("b", 100, ms);
  CHECK(f.Iterate() == Names{"a"});
  auto c = f.Taker("c", 1, ms);  // arrives while a and b wait
  CHECK(f.Iterate() == Names{"b"});
  CHECK(f.Iterate() == Names{"a"});
  CHECK(f.Iterate() == Names{"c"});
  CHECK(f.Iterate() == Names{"b"});
}

TEST_CASE("a connection whose requests take more than their share sits out a turn per share owed") {
  Fixture f;
  f.Make(1s, 1ms);
  const std::uint64_t us = 1'000;
  auto slow = f.Taker("slow", 3, 3'000 * us);  // owes 2 ms after each
  auto quick = f.Taker("quick", 6, 500 * us);  // owes nothing
  CHECK(f.Iterate() ==
        Names{"slow", "quick", "quick", "quick", "slow", "quick", "quick", "quick", "slow"});
}

TEST_CASE("a cheap request waits for about one slow request, not one of each slow connection") {
  Fixture f;
  f.Make(1ms, 1ms);  // each iteration serves one request
  const std::uint64_t ms = 1'000'000;
  std::vector<std::shared_ptr<FakeTaker>> slow;
  for (int i = 0; i < 10; ++i) slow.push_back(f.Taker("slow", 100, 50 * ms));
  std::vector<std::string> before;
  for (int i = 0; i < 10; ++i) {  // every slow connection has been served once, owes 49 ms
    auto s = f.Iterate();
    before.insert(before.end(), s.begin(), s.end());
  }
  CHECK(before == Names(10, "slow"));
  auto quick = f.Taker("quick", 1, ms / 10);  // arrives behind all ten
  std::vector<std::string> after;
  while (std::find(after.begin(), after.end(), "quick") == after.end()) {
    auto s = f.Iterate();
    REQUIRE_FALSE(s.empty());
    after.insert(after.end(), s.begin(), s.end());
  }
  // Without the time owed it would come after one request of each of the ten.
  CHECK(std::find(after.begin(), after.end(), "quick") - after.begin() <= 1);
}

TEST_CASE("time owed is written off at once when nobody else waits") {
  Fixture f;
  f.Make(1s, 1ms);
  auto alone = f.Taker("alone", 3, 100'000'000);           // owes 99 ms after each
  CHECK(f.Iterate() == Names{"alone", "alone", "alone"});  // 300 ms, in the 1 s budget
  CHECK_FALSE(f.turns->active());
}

TEST_CASE("a connection gone before its turn is skipped, and nothing stays active") {
  Fixture f;
  f.Make(1s);
  f.Taker("gone", 5, 0);  // the only reference is the queue's weak one
  CHECK(f.turns->active());
  CHECK(f.Iterate() == Names{});
  CHECK(f.turns->turns() == 0);
  CHECK_FALSE(f.turns->active());
  // Nothing of the turns keeps the loop awake.
  CHECK(uv_loop_alive(&f.loop) == 0);
}

}  // namespace
}  // namespace picoflow
