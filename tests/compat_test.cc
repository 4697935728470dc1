// The original PicoFlow's own example files (../shared/compat/picoflow-examples,
// path from meson as COMPAT_DIR) must get the verdicts its README lists.

#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/workflow_load.h"

#ifndef COMPAT_DIR
#error "meson passes COMPAT_DIR"
#endif

namespace picoflow {
namespace {

namespace fs = std::filesystem;

const std::string kDir = COMPAT_DIR;

// A `timeout:` written inside a shell/ssh `config:`: its line and task.
struct MisplacedTimeout {
  int line;
  std::string task;
};

LoadedWorkflow LoadCompat(const std::string& name) { return LoadWorkflowFile(kDir + "/" + name); }

std::string AllDiagnostics(const LoadedWorkflow& loaded) {
  std::string out;
  for (const Diagnostic& d : loaded.diagnostics) out += d.ToString() + "\n";
  return out;
}

// Checks that every misplaced timeout has its own diagnostic at its line that
// names the task and the key and says where timeout belongs, and that no other
// line got such a diagnostic (not the http timeouts, not the task-level ones).
void CheckMisplacedTimeouts(const std::string& file,
                            const std::vector<MisplacedTimeout>& expected) {
  LoadedWorkflow loaded = LoadCompat(file);
  INFO(file << ":\n" << AllDiagnostics(loaded));
  CHECK_FALSE(loaded.ok());
  std::set<int> reported;
  for (const Diagnostic& d : loaded.diagnostics) {
    if (d.message.find("'timeout'") != std::string::npos) reported.insert(d.pos.line);
  }
  std::set<int> wanted;
  for (const MisplacedTimeout& t : expected) {
    wanted.insert(t.line);
    const std::string message = "task '" + t.task + "': 'timeout' is not a";
    auto it = std::find_if(loaded.diagnostics.begin(), loaded.diagnostics.end(),
                           [&](const Diagnostic& d) {
                             return d.pos.line == t.line && d.message.rfind(message, 0) == 0;
                           });
    INFO("line " << t.line << ", task " << t.task);
    REQUIRE(it != loaded.diagnostics.end());
    CHECK(it->file == kDir + "/" + file);
    CHECK(it->pos.col == 7);
    CHECK(it->message.find("set it on the task itself (task-level 'timeout:')") !=
          std::string::npos);
  }
  CHECK(reported == wanted);
}

TEST_CASE("every file of the compat corpus has an expected verdict here") {
  const std::set<std::string> known = {"demos-pipeline.yaml",
                                       "http_workflow.yaml",
                                       "parallel.yaml",
                                       "parallel_10.yaml",
                                       "workflows-parallel.yaml",
                                       "scheduled_workflow.yaml",
                                       "test_cron.yaml",
                                       "workflows-simple.yaml",
                                       "workflows-health-check.yaml",
                                       "workflows-backup.yaml",
                                       "workflows-backup-comprehensive.yaml",
                                       "workflows-data-pipeline.yaml",
                                       "workflows-deployment.yaml"};
  std::set<std::string> found;
  REQUIRE(fs::is_directory(kDir));
  for (const auto& entry : fs::directory_iterator(kDir)) {
    if (entry.path().extension() == ".yaml") found.insert(entry.path().filename().string());
  }
  CHECK(found == known);
}

TEST_CASE("the original's valid examples load without a single diagnostic") {
  const std::map<std::string, std::size_t> tasks = {
      {"demos-pipeline.yaml", 5},
      {"http_workflow.yaml", 5},
      {"parallel.yaml", 6},
      {"parallel_10.yaml", 12},
      {"workflows-parallel.yaml", 6},
      {"scheduled_workflow.yaml", 3},
      {"test_cron.yaml", 3},
      {"workflows-simple.yaml", 3},
      {"workflows-health-check.yaml", 7},
  };
  for (const auto& entry : tasks) {
    // Not a structured binding: clang 14 cannot capture one (INFO does).
    const std::string& file = entry.first;
    const std::size_t count = entry.second;
    LoadedWorkflow loaded = LoadCompat(file);
    INFO(file << ":\n" << AllDiagnostics(loaded));
    REQUIRE(loaded.ok());
    CHECK(loaded.diagnostics.empty());
    if (file != "workflows-health-check.yaml") CHECK(loaded.warnings.empty());
    CHECK(loaded.workflow->tasks.size() == count);
    CHECK(loaded.dag->size() == static_cast<int>(count));
  }
}

TEST_CASE(
    "workflows-health-check.yaml is valid, with a warning for each ${VAR} in a url or header") {
  // The original expanded no variable either: these hosts and tokens were
  // sent as written. A warning says so; the verdict stays "valid".
  LoadedWorkflow loaded = LoadCompat("workflows-health-check.yaml");
  INFO(AllDiagnostics(loaded));
  REQUIRE(loaded.ok());
  std::vector<int> lines;
  for (const Diagnostic& d : loaded.warnings) {
    CHECK(d.severity == Severity::kWarning);
    CHECK(d.message.find("' is not expanded (only the 'env' values of shell tasks expand "
                         "variables)") != std::string::npos);
    CHECK((d.message.find("'url': '${") != std::string::npos ||
           d.message.find("'headers': the value of '") != std::string::npos));
    lines.push_back(d.pos.line);
  }
  CHECK(lines == std::vector<int>{15, 18, 27, 30, 39, 49, 52, 72, 76, 93});
}

TEST_CASE("the 6-field cron schedules of the original load") {
  LoadedWorkflow loaded = LoadCompat("scheduled_workflow.yaml");
  REQUIRE(loaded.ok());
  CHECK(loaded.workflow->schedule == std::vector<std::string>{"0 */5 * * * *"});
  CHECK(loaded.workflow->config.timeout_default == std::chrono::seconds(30));
  CHECK(loaded.workflow->tasks[0].timeout == std::chrono::seconds(10));
}

TEST_CASE("argv-style shell tasks keep command and args apart") {
  LoadedWorkflow loaded = LoadCompat("demos-pipeline.yaml");
  REQUIRE(loaded.ok());
  const auto& fetch = std::get<ShellConfig>(loaded.workflow->tasks[0].config);
  CHECK(fetch.command == "/bin/echo");
  CHECK(fetch.args == std::vector<std::string>{"fetched 1,024 rows"});
}

TEST_CASE("http bodies of the original are sent as JSON") {
  LoadedWorkflow loaded = LoadCompat("http_workflow.yaml");
  REQUIRE(loaded.ok());
  const auto& post = std::get<HttpConfig>(loaded.workflow->tasks[1].config);
  CHECK(post.method == "POST");
  CHECK(post.body_is_json);
  CHECK(
      *post.body ==
      R"({"title":"Test Post from PicoFlow","body":"This is a test post created by PicoFlow HTTP executor","userId":1})");
  CHECK(post.timeout == std::chrono::seconds(15));
}

TEST_CASE("workflows-backup.yaml is refused for its ssh task without 'user', and only for that") {
  LoadedWorkflow loaded = LoadCompat("workflows-backup.yaml");
  CHECK_FALSE(loaded.ok());
  REQUIRE(loaded.diagnostics.size() == 1);
  CHECK(loaded.diagnostics[0].ToString() ==
        kDir +
            "/workflows-backup.yaml:40:5: task 'cleanup_old_backups': missing required key 'user'");
}

TEST_CASE("workflows-backup-comprehensive.yaml names each timeout inside an ssh or shell config") {
  CheckMisplacedTimeouts("workflows-backup-comprehensive.yaml",
                         {{41, "check_backup_storage"},
                          {60, "prepare_backup_directory"},
                          {90, "backup_postgres_database"},
                          {126, "compress_database_backup"},
                          {157, "transfer_backup_to_storage"},
                          {198, "verify_backup_integrity"},
                          {224, "test_backup_restore"},
                          {241, "cleanup_temp_files_db_server"},
                          {267, "cleanup_old_backups"},
                          {310, "generate_backup_report"}});
}

TEST_CASE("workflows-data-pipeline.yaml names each timeout inside an ssh or shell config") {
  CheckMisplacedTimeouts("workflows-data-pipeline.yaml", {{137, "upload_to_storage"},
                                                          {153, "transfer_file"},
                                                          {181, "verify_upload"},
                                                          {198, "cleanup_temp_files"}});
}

TEST_CASE("workflows-deployment.yaml names each timeout inside an ssh config") {
  CheckMisplacedTimeouts("workflows-deployment.yaml", {{34, "check_ssh_connectivity"},
                                                       {60, "backup_current_version"},
                                                       {89, "stop_application"},
                                                       {123, "pull_latest_code"},
                                                       {153, "install_dependencies"},
                                                       {182, "run_tests"},
                                                       {211, "build_application"},
                                                       {250, "deploy_new_version"},
                                                       {277, "start_application"},
                                                       {333, "run_smoke_tests"},
                                                       {358, "cleanup_old_backups"},
                                                       {428, "rollback_stop_application"},
                                                       {457, "rollback_restore_backup"},
                                                       {479, "rollback_start_application"}});
}

TEST_CASE("one diagnostic names the misplaced key, its line and where timeout belongs") {
  LoadedWorkflow loaded = LoadCompat("workflows-data-pipeline.yaml");
  std::vector<std::string> at_137;
  for (const Diagnostic& d : loaded.diagnostics) {
    if (d.pos.line == 137) at_137.push_back(d.ToString());
  }
  CHECK(at_137 ==
        std::vector<std::string>{
            kDir +
            "/workflows-data-pipeline.yaml:137:7: task 'upload_to_storage': 'timeout' is not an "
            "ssh config key; set it on the task itself (task-level 'timeout:')"});
}

}  // namespace
}  // namespace picoflow
