#pragma once
// FileTriggers: the `file:` triggers of every workflow (docs/triggers.md).
// One inotify instance, read under a uv_poll, watches each trigger's
// directory — or, while it does not exist, its nearest existing ancestor —
// and a file is reported once nothing happened to it for the trigger's
// `settle`: a camera writing a 5 MB file in pieces starts one run.
//
// inotify directly, not uv_fs_event: libuv folds a file's creation, its
// deletion and a rename into one UV_RENAME event, and the triggers tell
// `created` from `moved_in`, and a file that left from one that arrived.

#include <uv.h>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/result.h"
#include "common/workflow_triggers.h"
#include "picoflowd/util/uv_handle.h"

namespace picoflow {

class FileTriggers {
 public:
  /// A settled file of a trigger of `workflow`: its absolute path.
  using OnFile = std::function<void(const std::string& workflow, const std::string& file)>;
  /// A problem met while watching (a directory removed and not watchable,
  /// lost events), for the log.
  using OnProblem = std::function<void(const std::string& workflow, const std::string& message)>;

  FileTriggers(uv_loop_t* loop, OnFile on_file, OnProblem on_problem);
  ~FileTriggers();
  FileTriggers(const FileTriggers&) = delete;
  FileTriggers& operator=(const FileTriggers&) = delete;

  /// Replaces the file triggers of `workflow` (an empty list: stops watching
  /// for it). Files already in a directory are not reported; what arrives
  /// from now on is. Returns an Error naming the first directory that cannot
  /// be watched and why (the inotify watch limit with the sysctl to raise
  /// it); the other triggers are set anyway, and one whose directory cannot
  /// be watched yet is tried again when its parent changes.
  Status Set(const std::string& workflow, const std::vector<FileTrigger>& triggers);
  /// The number of triggers set.
  std::size_t size() const { return watches_.size(); }
  /// Files waiting to settle, over every trigger.
  std::size_t pending() const;
  /// Stops watching and closes the handles.
  void Close();

 private:
  struct Watch;
  Status Open();
  /// Watches `w`'s directory or, while it is missing, its nearest existing
  /// ancestor. `appeared`: the directory was just made; what it holds
  /// already counts as created.
  Status Rewatch(Watch& w, bool appeared);
  void Unwatch(Watch& w);
  void OnReadable();
  void OnEvent(int wd, std::uint32_t mask, const std::string& name);
  void Touch(Watch& w, const std::string& name);
  void Arm(std::uint64_t deadline_ms);
  void OnTimer();

  uv_loop_t* loop_;
  OnFile on_file_;
  OnProblem on_problem_;
  int fd_ = -1;
  UvHandle<uv_poll_t> poll_;
  UvHandle<uv_timer_t> timer_;
  std::uint64_t armed_at_ = 0;  ///< the timer's deadline (uv_now ms); 0: not armed
  std::vector<std::unique_ptr<Watch>> watches_;
  std::multimap<int, Watch*> by_wd_;  ///< inotify gives one wd per directory
};

}  // namespace picoflow
