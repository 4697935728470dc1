#include "picoflowd/exec/containment.h"

#include <utility>

namespace picoflow {
namespace {

// Only the task's process group is killed: the executor does that itself.
class GroupOnly final : public Containment {
 public:
  explicit GroupOnly(std::string reason)
      : Containment(ContainmentMode::kProcessGroup, std::move(reason)) {}
  Result<std::unique_ptr<ContainedAttempt>> Enter(const AttemptMark&) override {
    return std::unique_ptr<ContainedAttempt>();
  }
};

}  // namespace

const char* ContainmentModeName(ContainmentMode mode) {
  switch (mode) {
    case ContainmentMode::kCgroup: return "cgroup";
    case ContainmentMode::kSubreaper: return "subreaper";
    case ContainmentMode::kProcessGroup: return "process-group";
  }
  return "process-group";
}

std::unique_ptr<Containment> ProcessGroupContainment(std::string reason) {
  return std::make_unique<GroupOnly>(std::move(reason));
}

std::unique_ptr<Containment> SetUpContainment(uv_loop_t* loop, std::string owner) {
  Result<std::string> cgroup = AdoptDelegatedCgroup();
  if (cgroup.ok()) {
    std::string reason = "cgroup " + *cgroup +
                         " is delegated to picoflowd: each attempt runs in a cgroup of its own "
                         "there, killed (cgroup.kill) when the attempt ends";
    return CgroupContainment(loop, *cgroup, std::move(reason));
  }
  return SubreaperContainment(std::move(owner), cgroup.error().message);
}

}  // namespace picoflow
