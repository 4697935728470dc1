#include "picoflowd/store/store_backlog.h"

#include <algorithm>
#include <type_traits>

namespace picoflow {
namespace {

std::int64_t AttemptId(AttemptKey key) { return key.run_id * (std::int64_t{1} << 24) + key.seq; }

std::pair<std::int64_t, int> StreamOf(const OutputWrite& w) {
  return {AttemptId(w.key), w.stream == OutputStream::kStdout ? 0 : 1};
}

// The run as CreateRun stores it (Store::CreateRun's SQL, read back).
RunDetail Created(const CreateRunWrite& w) {
  RunDetail d;
  d.run.id = w.run_id;
  d.run.workflow = w.run.workflow;
  d.run.status = w.run.status;
  d.run.trigger = w.run.trigger;
  d.run.scheduled_at = w.run.scheduled_at;
  d.run.created_at = w.run.created_at;
  if (w.run.status == RunStatus::kRunning) d.run.started_at = w.run.created_at;
  if (IsFinal(w.run.status)) d.run.ended_at = w.run.created_at;
  d.run.reason = w.run.reason;
  d.run.params = w.run.params;
  d.run.retry_of = w.run.retry_of;
  d.run.only = w.run.only;
  for (const std::string& name : w.run.tasks) {
    TaskRecord t;
    t.name = name;
    d.tasks.push_back(std::move(t));
  }
  return d;
}

void Apply(const RunStatusWrite& w, RunRecord& run) {
  run.status = w.status;
  if (w.status == RunStatus::kRunning && !run.started_at) run.started_at = w.at;
  if (IsFinal(w.status)) {
    run.ended_at = w.at;
  } else {
    run.ended_at.reset();
  }
  run.error = w.error;
}

void ReplaceTask(std::vector<TaskRecord>& tasks, const TaskRecord& task) {
  for (TaskRecord& t : tasks) {
    if (t.name == task.name) t = task;
  }
}

AttemptRecord* FindAttempt(RunDetail& d, AttemptKey key) {
  for (AttemptRecord& a : d.attempts) {
    if (a.seq == key.seq) return &a;
  }
  return nullptr;
}

// One kept write applied to its run, as Store's SQL would apply it.
class Overlayer {
 public:
  explicit Overlayer(RunDetail& d) : d_(d) {}

  void operator()(const CreateRunWrite&) {}
  void operator()(const RunStatusWrite& w) { Apply(w, d_.run); }
  void operator()(const TaskStatusWrite& w) { ReplaceTask(d_.tasks, w.task); }
  void operator()(const BeginAttemptWrite& w) {
    for (TaskRecord& t : d_.tasks) {
      if (t.name != w.task) continue;
      t.status = TaskStatus::kRunning;
      t.attempts = w.number;
      if (!t.started_at) t.started_at = w.at;
      t.ended_at.reset();
      t.exit_code.reset();
      t.error.clear();
    }
    AttemptRecord a;
    a.run_id = w.key.run_id;
    a.seq = w.key.seq;
    a.task = w.task;
    a.number = w.number;
    a.started_at = w.at;
    a.process = w.process;
    d_.attempts.push_back(std::move(a));
  }
  void operator()(const AttemptStartedWrite& w) {
    if (AttemptRecord* a = FindAttempt(d_, w.key)) a->process = w.process;
  }
  void operator()(const FinishAttemptWrite& w) {
    if (AttemptRecord* a = FindAttempt(d_, w.key)) {
      a->status = w.result.status;
      a->ended_at = w.at;
      a->exit_code = w.result.exit_code;
      a->signal = w.result.signal;
      a->error = w.result.error;
      a->counts = lost_.With(w.key, w.counts);
    }
    for (const TaskRecord& t : w.tasks) ReplaceTask(d_.tasks, t);
  }
  void operator()(const OutputWrite& w) { lost_.Add(w); }

 private:
  RunDetail& d_;
  LostOutput lost_;
};

}  // namespace

std::int64_t RunOf(const RunWrite& write) {
  return std::visit(
      [](const auto& w) -> std::int64_t {
        using W = std::decay_t<decltype(w)>;
        if constexpr (std::is_same_v<W, CreateRunWrite> || std::is_same_v<W, RunStatusWrite> ||
                      std::is_same_v<W, TaskStatusWrite>) {
          return w.run_id;
        } else {
          return w.key.run_id;
        }
      },
      write);
}

std::string LostOutputMarker(std::uint64_t bytes) {
  return "\n[picoflow: " + std::to_string(bytes) + " bytes of output lost: the disk was full]\n";
}

void LostOutput::Add(const OutputWrite& write) {
  if (write.lost == 0) return;
  auto& [out, err] = bytes_[{write.key.run_id, write.key.seq}];
  (write.stream == OutputStream::kStdout ? out : err) += write.lost;
}

OutputCounts LostOutput::With(AttemptKey attempt, OutputCounts counts) const {
  auto it = bytes_.find({attempt.run_id, attempt.seq});
  if (it == bytes_.end()) return counts;
  counts.stdout_dropped += it->second.first;
  counts.stderr_dropped += it->second.second;
  return counts;
}

void StoreBacklog::Push(RunWrite write) {
  if (auto* out = std::get_if<OutputWrite>(&write)) {
    if (output_bytes_ + out->data.size() > kMaxOutputBytes) {
      out->lost += out->data.size();
      out->data.clear();
    }
    output_bytes_ += out->data.size();
    lost_bytes_ += out->lost;
    if (out->data.empty()) {
      if (out->lost == 0) return;
      // Lost bytes of one attempt's stream need one marker, not one a flush.
      auto [at, fresh] = lost_at_.emplace(StreamOf(*out), writes_.size());
      if (!fresh) {
        std::get<OutputWrite>(writes_[at->second]).lost += out->lost;
        return;
      }
    }
  }
  writes_.push_back(std::move(write));
}

std::size_t StoreBacklog::GroupLost() {
  const std::size_t lost = group_.size();
  std::deque<RunWrite> later;
  later.swap(writes_);
  Clear();
  for (RunWrite& w : group_) Push(std::move(w));
  for (RunWrite& w : later) Push(std::move(w));
  group_.clear();
  return lost;
}

void StoreBacklog::Clear() {
  writes_.clear();
  output_bytes_ = 0;
  lost_bytes_ = 0;
  lost_at_.clear();
}

int StoreBacklog::NextSeq(std::int64_t run_id, int stored_seq) const {
  int last = stored_seq;
  for (const RunWrite& w : writes_) {
    if (const auto* begin = std::get_if<BeginAttemptWrite>(&w); begin && RunOf(w) == run_id) {
      last = std::max(last, begin->key.seq);
    }
  }
  return last + 1;
}

void StoreBacklog::Overlay(RunDetail& detail) const {
  Overlayer apply(detail);
  for (const RunWrite& w : writes_) {
    if (RunOf(w) == detail.run.id) std::visit(apply, w);
  }
}

void StoreBacklog::Overlay(RunRecord& run) const {
  for (const RunWrite& w : writes_) {
    if (const auto* s = std::get_if<RunStatusWrite>(&w); s && s->run_id == run.id) Apply(*s, run);
  }
}

std::optional<RunDetail> StoreBacklog::KeptRun(std::int64_t run_id) const {
  for (const RunWrite& w : writes_) {
    if (const auto* c = std::get_if<CreateRunWrite>(&w); c && c->run_id == run_id) {
      RunDetail d = Created(*c);
      Overlay(d);
      return d;
    }
  }
  return std::nullopt;
}

std::vector<RunRecord> StoreBacklog::KeptRuns() const {
  std::vector<RunRecord> runs;
  for (const RunWrite& w : writes_) {
    if (const auto* c = std::get_if<CreateRunWrite>(&w)) {
      RunRecord r = Created(*c).run;
      Overlay(r);
      runs.push_back(std::move(r));
    }
  }
  return runs;
}

}  // namespace picoflow
