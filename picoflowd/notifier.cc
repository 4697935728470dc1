#include "picoflowd/notifier.h"

#include <strings.h>
#include <unistd.h>

#include <algorithm>

#include "common/duration.h"
#include "common/private_file.h"
#include "common/run_status.h"
#include "common/secret_masker.h"
#include "common/secrets.h"
#include "common/workflow_task_config.h"
#include "picoflowd/store/store.h"
#include "picoflowd/util/logging.h"

namespace picoflow {
namespace {

std::string HostName() {
  char name[256] = "";
  if (::gethostname(name, sizeof name - 1) != 0) return "";
  return name;
}

std::string KeyOf(std::optional<std::int64_t> run_id, std::uint64_t test,
                  const std::string& target) {
  return (run_id ? "run " + std::to_string(*run_id) : "test " + std::to_string(test)) + "\n" +
         target;
}

// The secrets of `secrets` that the url or a header value of `target` names.
std::vector<Secret> SecretsUsed(const NotifyTarget& target, const std::vector<Secret>& secrets) {
  std::vector<Secret> used;
  const auto names = [&](std::string_view text, std::string_view name) {
    for (auto ref = FindSecretRef(text); ref; ref = FindSecretRef(text, ref->pos + ref->size)) {
      if (ref->name == name) return true;
    }
    return false;
  };
  for (const Secret& s : secrets) {
    bool named = names(target.url, s.name);
    for (const auto& [_, value] : target.headers) named = named || names(value, s.name);
    if (named) used.push_back(s);
  }
  return used;
}

bool Failed(TaskStatus s) { return s == TaskStatus::kFailed || s == TaskStatus::kTimedOut; }

}  // namespace

Notifier::Notifier(uv_loop_t* loop, Store& store, std::unique_ptr<RequestSender> sender,
                   NotifyTargets defaults, CountFn count)
    : loop_(loop),
      store_(store),
      defaults_(std::move(defaults)),
      count_(std::move(count)),
      host_(HostName()),
      sender_(std::move(sender)) {}

Notifier::~Notifier() = default;

std::size_t Notifier::pending() const {
  std::size_t n = 0;
  for (const auto& [key, queue] : queues_) n += queue.size();
  return n;
}

Notifier::Setup Notifier::SetupOf(const Workflow& workflow) const {
  if (workflow.notify) return {*workflow.notify, workflow.secrets};
  return {defaults_, {}};
}

void Notifier::OnRunStarted(std::int64_t run_id, const Workflow& workflow, bool resumed) {
  Setup own = SetupOf(workflow);
  if (own.targets.empty()) return;
  const std::string& name = workflow.name;
  RunTargets& run = runs_[run_id] = RunTargets{name, std::move(own)};
  const Setup& setup = run.setup;
  if (resumed) return;  // its /start was sent by the daemon that started it
  NotifyMessage m;
  m.workflow = name;
  m.run_id = run_id;
  m.event = "start";
  m.status = "running";
  m.host = host_;
  for (const NotifyTarget& t : setup.targets) {
    if (!PingWantsStart(t)) continue;
    Enqueue(KeyOf(run_id, 0, t.name), Make(run_id, name, setup, t, "start", m));
  }
}

void Notifier::OnTaskEvent(const TaskEvent& e) {
  if (e.event != TaskEventKind::kRetrying) return;
  const auto run = runs_.find(e.run_id);
  if (run == runs_.end()) return;
  NotifyMessage m;
  m.workflow = run->second.workflow;
  m.run_id = e.run_id;
  m.event = "retry";
  m.status = "running";
  m.host = host_;
  m.detail = "task " + std::string(e.task) + " attempt " + std::to_string(e.attempt) + " " +
             std::string(e.status) + (e.error.empty() ? "" : ": " + std::string(e.error)) +
             "; it is tried again";
  if (e.retry_in) {
    m.detail +=
        " in " + FormatDuration(std::chrono::duration_cast<std::chrono::seconds>(*e.retry_in));
  }
  Notify(e.run_id, run->second.workflow, run->second.setup, NotifyEvent::kRetry, m);
}

void Notifier::OnRunFinished(std::int64_t run_id, RunStatus status) {
  const auto run = runs_.find(run_id);
  if (run == runs_.end()) return;
  const RunTargets targets = std::move(run->second);
  const std::string& workflow = targets.workflow;
  runs_.erase(run);
  if (status != RunStatus::kSucceeded && status != RunStatus::kFailed) return;
  std::optional<NotifyMessage> m = RunMessage(run_id, "");
  if (!m) return;
  bool previous_failed = false;
  if (status == RunStatus::kSucceeded) {
    auto previous = store_.PreviousEnd(workflow, run_id);
    previous_failed = previous.ok() && *previous == RunStatus::kFailed;
  }
  bool timed_out = false;
  for (const NotifyFailedTask& t : m->failed) timed_out = timed_out || t.status == "timed_out";
  const std::optional<NotifyEvent> event = RunEndEvent(
      status == RunStatus::kSucceeded, status == RunStatus::kFailed, timed_out, previous_failed);
  if (!event) return;
  m->event = std::string(NotifyEventName(*event));
  Notify(run_id, workflow, targets.setup, *event, *m);
}

void Notifier::OnSkippedFire(const Workflow& workflow, std::int64_t run_id,
                             const std::string& reason) {
  NotifyMessage m;
  m.workflow = workflow.name;
  m.run_id = run_id;
  m.event = "skipped_fire";
  m.status = "skipped";
  m.host = host_;
  m.detail = "reason: " + reason;
  Notify(run_id, workflow.name, SetupOf(workflow), NotifyEvent::kSkippedFire, m);
}

void Notifier::Notify(std::int64_t run_id, const std::string& workflow, const Setup& setup,
                      NotifyEvent event, const NotifyMessage& message) {
  const std::string name(NotifyEventName(event));
  for (const NotifyTarget& t : setup.targets) {
    if (!TargetWants(t, event)) continue;
    Enqueue(KeyOf(run_id, 0, t.name), Make(run_id, workflow, setup, t, name, message));
  }
}

std::optional<NotifyMessage> Notifier::RunMessage(std::int64_t run_id, std::string_view event) {
  auto detail = store_.GetRun(run_id);
  if (!detail.ok()) {
    LogError({}, "notifications of run " + std::to_string(run_id) + ": " + detail.error().message);
    return std::nullopt;
  }
  NotifyMessage m;
  m.workflow = detail->run.workflow;
  m.run_id = run_id;
  m.event = std::string(event);
  m.status = RunStatusName(detail->run.status);
  m.host = host_;
  if (detail->run.started_at && detail->run.ended_at) {
    m.duration = std::chrono::duration_cast<std::chrono::milliseconds>(*detail->run.ended_at -
                                                                       *detail->run.started_at);
  }
  if (!detail->run.error.empty()) m.detail = "error: " + detail->run.error;
  for (const TaskRecord& t : detail->tasks) {
    if (!Failed(t.status)) continue;
    m.failed.push_back(
        {t.name, TaskStatusName(t.status), t.error, TaskTail(run_id, t.name, t.attempts)});
  }
  return m;
}

// The last lines of what the task's last attempt wrote (both streams, in
// the order stored), read page by page keeping only the end.
std::string Notifier::TaskTail(std::int64_t run_id, const std::string& task, int attempt) {
  constexpr std::size_t kKeep = 4 * kNotifyTailBytes;
  std::string tail;
  OutputQuery q;
  q.run_id = run_id;
  q.task = task;
  for (int pages = 0; pages < 1000; ++pages) {
    auto chunks = store_.ReadOutput(q);
    if (!chunks.ok() || chunks->empty()) break;
    for (const OutputChunk& c : *chunks) {
      if (c.attempt == attempt) tail += c.data;
      q.after_seq = c.seq;
    }
    if (tail.size() > 2 * kKeep) tail.erase(0, tail.size() - kKeep);
  }
  return LastLines(tail);
}

OutboundRequest Notifier::Request(const NotifyTarget& t, std::string_view event,
                                  const NotifyMessage& m) const {
  OutboundRequest r;
  r.timeout = kNotifyTimeout;
  switch (t.kind) {
    case NotifyKind::kWebhook:
      r.url = t.url;
      r.method = t.method;
      r.headers = t.headers;
      r.body = WebhookBody(m, t.format);
      if (std::none_of(r.headers.begin(), r.headers.end(), [](const auto& h) {
            return strcasecmp(h.first.c_str(), "Content-Type") == 0;
          })) {
        r.headers.emplace_back("Content-Type", "application/json");
      }
      break;
    case NotifyKind::kPing:
      r.url = t.url;
      if (event == "start") {
        r.url += "/start";
      } else if (event == "failure" || event == "timeout") {
        r.url += "/fail";
        r.body = PingBody(m);
      }
      r.headers.emplace_back("Content-Type", "text/plain; charset=utf-8");
      break;
    case NotifyKind::kEmail:
      r.url = t.smtp;
      r.mail_from = t.from;
      r.mail_to = t.to;
      r.username = t.username;
      r.body = MailMessage(m, t, std::chrono::system_clock::now());
      break;
  }
  return r;
}

Notifier::Delivery Notifier::Make(std::optional<std::int64_t> run_id, const std::string& workflow,
                                  const Setup& setup, const NotifyTarget& target, std::string event,
                                  const NotifyMessage& message) const {
  Delivery d;
  d.run_id = run_id;
  d.workflow = workflow;
  d.target = target;
  d.secrets = SecretsUsed(target, setup.secrets);
  d.request = Request(target, event, message);
  d.event = std::move(event);
  return d;
}

void Notifier::Test(const Workflow& w, std::function<void(std::vector<NotifyTestOutcome>)> done) {
  const Setup setup = SetupOf(w);
  const NotifyTargets& targets = setup.targets;
  const std::string& workflow = w.name;
  struct Collect {
    std::vector<NotifyTestOutcome> outcomes;
    std::size_t left = 0;
    std::function<void(std::vector<NotifyTestOutcome>)> done;
  };
  auto collect = std::make_shared<Collect>();
  collect->done = std::move(done);
  collect->left = targets.size();
  if (targets.empty()) return collect->done({});
  NotifyMessage m;
  m.workflow = workflow;
  m.event = "test";
  m.host = host_;
  m.detail = "This is a test notification (picoflowctl notify-test).";
  const std::uint64_t test = ++tests_;
  for (std::size_t i = 0; i < targets.size(); ++i) {
    const NotifyTarget& t = targets[i];
    collect->outcomes.push_back({t.name, std::string(NotifyKindName(t.kind)), false, ""});
    Delivery d = Make(std::nullopt, workflow, setup, t, "test", m);
    d.retries = false;
    d.on_end = [collect, i](const RequestOutcome& o) {
      collect->outcomes[i].sent = o.ok;
      collect->outcomes[i].error = o.error;
      if (--collect->left == 0) collect->done(std::move(collect->outcomes));
    };
    Enqueue(KeyOf(std::nullopt, test, t.name), std::move(d));
  }
}

void Notifier::Drain(bool retries, std::function<void()> done) {
  drained_ = std::move(done);
  drain_retries_ = retries;
  drain_timer_ = std::make_unique<UvHandle<uv_timer_t>>(this);
  uv_timer_init(loop_, drain_timer_->get());  // cannot fail
  drain_timer_->MarkInitialized();
  if (!retries) {
    std::vector<Key> waiting;
    for (const auto& [key, queue] : queues_) {
      if (!queue.front().in_flight) waiting.push_back(key);
    }
    if (timer_) uv_timer_stop(timer_->get());
    for (const Key& key : waiting) Start(key);
  }
  CheckDrained();
}

void Notifier::CheckDrained() {
  if (drained_ && pending() == 0 &&
      uv_is_active(reinterpret_cast<uv_handle_t*>(drain_timer_->get())) == 0) {
    StartOneShot<Notifier, &Notifier::OnDrained>(*drain_timer_, 0);
  }
}

void Notifier::OnDrained() {
  if (!drained_ || pending() != 0) return;  // a delivery was made meanwhile
  std::function<void()> done = std::move(drained_);
  drained_ = nullptr;
  done();
}

void Notifier::Close() {
  closed_ = true;
  drained_ = nullptr;
  drain_timer_.reset();
  sender_.reset();  // aborts its transfers without calling back
  queues_.clear();
  timer_.reset();
}

void Notifier::Enqueue(const Key& key, Delivery delivery) {
  if (closed_) return;
  std::deque<Delivery>& queue = queues_[key];
  queue.push_back(std::move(delivery));
  if (queue.size() == 1) Start(key);
}

void Notifier::Start(const Key& key) {
  const auto it = queues_.find(key);
  if (it == queues_.end() || it->second.empty()) return;
  Delivery& d = it->second.front();
  if (d.in_flight) return;
  d.in_flight = true;
  ++d.attempt;
  OutboundRequest request = d.request;
  // An attempt that fails before it is sent (`d` is gone after it).
  const auto fail = [this, &key](std::string error) {
    RequestOutcome failed;
    failed.error = std::move(error);
    Finished(key, failed);
  };
  if (!d.target.password_file.empty()) {
    // Read at each send: a changed password needs no reload, and it is
    // kept nowhere else.
    Result<std::string> password = ReadPrivateFile(d.target.password_file);
    if (!password.ok()) {
      return fail("password_file " + d.target.password_file + ": " + password.error().message);
    }
    request.password = std::move(*password);
  }
  if (d.secrets.empty()) {
    sender_->Send(std::move(request), [this, key](const RequestOutcome& o) { Finished(key, o); });
    return;
  }
  // Its secrets are read at each send too (docs/notifications.md, "Secrets
  // in targets"), and masked in what is recorded and logged of the outcome.
  Result<EnvList> values = ReadSecrets(d.secrets);
  if (!values.ok()) return fail(values.error().message);
  request.url = ExpandSecretRefs(request.url, *values);
  for (auto& [_, value] : request.headers) value = ExpandSecretRefs(value, *values);
  // As the loader checks a url written whole (never quoting it: it holds a secret).
  if (const std::string why = HttpUrlProblem(request.url); !why.empty()) {
    return fail("its url, once its secrets are put in, " + why);
  }
  std::vector<std::string> masked;
  for (auto& [_, value] : *values) masked.push_back(std::move(value));
  auto mask = std::make_shared<const SecretMasker>(masked);
  sender_->Send(std::move(request), [this, key, mask](const RequestOutcome& o) {
    RequestOutcome outcome = o;
    outcome.error = mask->MaskAll(o.error);
    Finished(key, outcome);
  });
}

void Notifier::Finished(const Key& key, const RequestOutcome& outcome) {
  const auto it = queues_.find(key);
  if (it == queues_.end() || it->second.empty() || !it->second.front().in_flight) return;
  Delivery& d = it->second.front();
  d.in_flight = false;
  Record(d, outcome);
  const bool again =
      !outcome.ok && d.retries && d.attempt <= kNotifyRetries && (!drained_ || drain_retries_);
  if (!outcome.ok && logged_.insert(key).second) {
    LogFields f;
    f.event = "notify.failed";
    f.workflow = d.workflow;
    if (d.run_id) f.run = *d.run_id;
    LogWarn(f, "notification '" + d.event + "' to " + d.target.name + " failed: " + outcome.error +
                   (again ? " (it is tried up to " + std::to_string(kNotifyRetries) +
                                " more times: picoflowctl notifications shows each attempt)"
                          : ""));
  }
  if (again) {
    d.due = std::chrono::steady_clock::now() + NotifyRetryDelay(d.attempt + 1);
    ArmTimer();
    return;
  }
  std::function<void(const RequestOutcome&)> on_end = std::move(d.on_end);
  it->second.pop_front();
  if (it->second.empty()) {
    queues_.erase(it);
    logged_.erase(key);
  } else {
    Start(key);
  }
  if (on_end) on_end(outcome);
  CheckDrained();
}

void Notifier::Record(const Delivery& d, const RequestOutcome& outcome) {
  DeliveryRecord r;
  r.run_id = d.run_id;
  r.workflow = d.workflow;
  r.target = d.target.name;
  r.kind = std::string(NotifyKindName(d.target.kind));
  r.event = d.event;
  r.attempt = d.attempt;
  r.sent = outcome.ok;
  r.error = outcome.error;
  r.at = std::chrono::system_clock::now();
  if (Status s = store_.RecordDelivery(r); !s.ok()) {
    LogWarn({}, "cannot record a notification delivery: " + s.error().message);
  }
  if (count_) count_(d.workflow, d.target.name, outcome.ok);
}

void Notifier::ArmTimer() {
  if (!timer_) {
    timer_ = std::make_unique<UvHandle<uv_timer_t>>(this);
    uv_timer_init(loop_, timer_->get());  // cannot fail
    timer_->MarkInitialized();
  }
  std::optional<std::chrono::steady_clock::time_point> next;
  for (const auto& [key, queue] : queues_) {
    const Delivery& d = queue.front();
    if (!d.in_flight && d.attempt > 0 && (!next || d.due < *next)) next = d.due;
  }
  if (!next) {
    uv_timer_stop(timer_->get());
    return;
  }
  const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(
      *next - std::chrono::steady_clock::now());
  StartOneShot<Notifier, &Notifier::OnTimer>(
      *timer_, static_cast<std::uint64_t>(std::max<long long>(0, wait.count())));
}

void Notifier::OnTimer() {
  const auto now = std::chrono::steady_clock::now();
  std::vector<Key> due;
  for (const auto& [key, queue] : queues_) {
    const Delivery& d = queue.front();
    if (!d.in_flight && d.attempt > 0 && d.due <= now) due.push_back(key);
  }
  for (const Key& key : due) Start(key);
  ArmTimer();
}

}  // namespace picoflow
