#include "picoflowd/rpc/rpc_reply_cache.h"

namespace picoflow {

ReplyCache::ReplyCache(std::size_t max_bytes) : max_bytes_(max_bytes) {}

std::shared_ptr<const std::string> ReplyCache::Find(const std::shared_ptr<const void>& owner,
                                                    std::uint32_t variant) {
  const auto found = index_.find(Key{owner.get(), variant});
  if (found == index_.end()) return nullptr;
  const List::iterator it = found->second;
  // A live weak owner at the same address is the same object: a dead one
  // never comes back, even if a new object is made where it was.
  if (it->owner.expired()) {
    Erase(it);
    return nullptr;
  }
  entries_.splice(entries_.begin(), entries_, it);
  return it->result;
}

std::shared_ptr<const std::string> ReplyCache::Put(const std::shared_ptr<const void>& owner,
                                                   std::uint32_t variant, std::string result) {
  auto shared = std::make_shared<const std::string>(std::move(result));
  const Key key{owner.get(), variant};
  if (const auto found = index_.find(key); found != index_.end()) Erase(found->second);
  if (shared->size() > max_bytes_) return shared;
  MakeRoom(shared->size());
  entries_.push_front(Entry{key, owner, shared});
  index_.emplace(key, entries_.begin());
  bytes_ += shared->size();
  return shared;
}

void ReplyCache::Erase(List::iterator it) {
  bytes_ -= it->result->size();
  index_.erase(it->key);
  entries_.erase(it);
}

void ReplyCache::MakeRoom(std::size_t room) {
  for (auto it = entries_.begin(); it != entries_.end();) {
    const auto next = std::next(it);
    if (it->owner.expired()) Erase(it);
    it = next;
  }
  while (!entries_.empty() && bytes_ + room > max_bytes_) Erase(std::prev(entries_.end()));
}

}  // namespace picoflow
