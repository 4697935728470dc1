#include "picoflowd/rpc/run_feed.h"

#include <vector>

namespace picoflow {

std::uint64_t RunFeed::Subscribe(Subscriber subscriber) {
  const std::uint64_t token = next_token_++;
  subscribers_.emplace(token, std::move(subscriber));
  return token;
}

void RunFeed::Unsubscribe(std::uint64_t token) { subscribers_.erase(token); }

template <class F>
void RunFeed::ForRun(std::int64_t run_id, F&& f) {
  // A callback may unsubscribe itself or others: walk a snapshot of tokens.
  std::vector<std::uint64_t> tokens;
  for (const auto& [token, s] : subscribers_) {
    if (s.run_id == run_id) tokens.push_back(token);
  }
  for (std::uint64_t token : tokens) {
    auto it = subscribers_.find(token);
    if (it != subscribers_.end()) f(it->second);
  }
}

// Each callback is called through a copy: it may unsubscribe (and so
// destroy) its own Subscriber, directly or through a connection closing.
void RunFeed::OnTaskEvent(const TaskEvent& e) {
  ForRun(e.run_id, [&](Subscriber& s) {
    if (auto f = s.on_event) f(e);
  });
}

void RunFeed::OnOutput(const OutputEvent& e) {
  ForRun(e.run_id, [&](Subscriber& s) {
    if (auto f = s.on_output) f(e);
  });
}

void RunFeed::OnRunFinished(std::int64_t run_id, RunStatus status) {
  ForRun(run_id, [&](Subscriber& s) {
    if (auto f = s.on_finished) f(status);
  });
}

}  // namespace picoflow
