// The store's record of notification deliveries (docs/notifications.md).

#include "picoflowd/store/sqlite_db.h"
#include "picoflowd/store/store.h"

namespace picoflow {

Status Store::RecordDelivery(const DeliveryRecord& d) {
  auto q = db_->Prepare("record delivery",
                        "INSERT INTO notifications (run_id, workflow, target, kind, event, attempt,"
                        " outcome, error, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)");
  if (!q) return q.error();
  q->Bind(1, d.run_id).Bind(2, d.workflow).Bind(3, d.target).Bind(4, d.kind).Bind(5, d.event);
  q->Bind(6, d.attempt).Bind(7, d.sent ? "sent" : "failed").Bind(8, d.error).Bind(9, d.at);
  if (Status s = q->Run(); !s) return s;
  if (d.run_id) return {};
  auto trim = db_->Prepare("trim test deliveries",
                           "DELETE FROM notifications WHERE run_id IS NULL AND id <= "
                           "(SELECT id FROM notifications WHERE run_id IS NULL"
                           " ORDER BY id DESC LIMIT 1 OFFSET ?1)");
  if (!trim) return trim.error();
  trim->Bind(1, kMaxTestDeliveries);
  return trim->Run();
}

Result<std::vector<DeliveryRecord>> Store::ListDeliveries(std::optional<std::int64_t> run_id,
                                                          int limit) {
  constexpr const char* kColumns =
      "SELECT id, run_id, workflow, target, kind, event, attempt, outcome, error, at"
      " FROM notifications";
  auto q =
      run_id ? db_->Prepare("deliveries of a run",
                            std::string(kColumns) + " WHERE run_id = ?1 ORDER BY id DESC LIMIT ?2")
             : db_->Prepare("deliveries", std::string(kColumns) + " ORDER BY id DESC LIMIT ?2");
  if (!q) return q.error();
  if (run_id) q->Bind(1, *run_id);
  q->Bind(2, limit);
  std::vector<DeliveryRecord> out;
  for (;;) {
    auto row = q->Step();
    if (!row) return row.error();
    if (!*row) break;
    DeliveryRecord d;
    d.id = q->Int64(0);
    d.run_id = q->OptionalInt64(1);
    d.workflow = q->Text(2);
    d.target = q->Text(3);
    d.kind = q->Text(4);
    d.event = q->Text(5);
    d.attempt = q->Int(6);
    d.sent = q->Text(7) == "sent";
    d.error = q->Text(8);
    d.at = q->Time(9);
    out.push_back(std::move(d));
  }
  return out;
}

Result<std::optional<RunStatus>> Store::PreviousEnd(const std::string& workflow,
                                                    std::int64_t run_id) {
  auto q = db_->Prepare("previous end",
                        "SELECT status FROM runs WHERE workflow = ?1 AND id < ?2"
                        " AND status IN ('succeeded', 'failed') ORDER BY id DESC LIMIT 1");
  if (!q) return q.error();
  q->Bind(1, workflow).Bind(2, run_id);
  auto row = q->Step();
  if (!row) return row.error();
  if (!*row) return std::optional<RunStatus>();
  return std::optional<RunStatus>(q->Text(0) == "failed" ? RunStatus::kFailed
                                                         : RunStatus::kSucceeded);
}

}  // namespace picoflow
