#pragma once
// ReplyCache: results of expensive read methods, serialised once and shared
// by every reply that shows them. An entry is keyed by the immutable object
// it shows (a stored workflow version) and a variant of the view, and lives
// no longer than that object; the least recently used go first, so that the
// entries hold at most max_bytes. It holds nothing until the first Put.
// Loop thread only.

#include <cstddef>
#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <string>
#include <utility>

namespace picoflow {

class ReplyCache {
 public:
  /// The entries' results together never hold more than `max_bytes`.
  explicit ReplyCache(std::size_t max_bytes);
  ReplyCache(const ReplyCache&) = delete;
  ReplyCache& operator=(const ReplyCache&) = delete;

  /// The result stored for `variant` of `owner`, or null if there is none
  /// (or it was stored for an earlier object that lived at the same address).
  std::shared_ptr<const std::string> Find(const std::shared_ptr<const void>& owner,
                                          std::uint32_t variant);

  /// Stores `result` for `variant` of `owner` and returns it, shared.
  /// Entries whose owner is gone are dropped, then the least recently used
  /// until it fits. A result larger than max_bytes is returned but not kept.
  std::shared_ptr<const std::string> Put(const std::shared_ptr<const void>& owner,
                                         std::uint32_t variant, std::string result);

  /// Bytes of the results held.
  std::size_t bytes() const { return bytes_; }
  /// Entries held.
  std::size_t size() const { return entries_.size(); }

 private:
  using Key = std::pair<const void*, std::uint32_t>;
  struct Entry {
    Key key;
    std::weak_ptr<const void> owner;
    std::shared_ptr<const std::string> result;
  };
  using List = std::list<Entry>;  // most recently used first

  void Erase(List::iterator it);
  /// Drops every entry whose owner is gone, then the least recently used
  /// ones until `room` more bytes fit.
  void MakeRoom(std::size_t room);

  std::size_t max_bytes_;
  std::size_t bytes_ = 0;
  List entries_;
  std::map<Key, List::iterator> index_;
};

}  // namespace picoflow
