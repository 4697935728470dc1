// Fuzz target: the text of a daemon config file (picoflowd.yaml) through
// ParseDaemonConfigFile and ApplyDaemonConfigFile (picoflowd/daemon_config_file.h).
// The input is the file's text.
//
// Checked beyond "no crash, no leak, no undefined behaviour": a refused file
// says why; every setting a file sets shows a value that its command-line
// flag reads back as the same value (a flag takes what its key takes).

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz/fuzz_check.h"
#include "picoflowd/daemon_config.h"
#include "picoflowd/daemon_config_file.h"
#include "picoflowd/daemon_settings.h"

namespace picoflow::fuzz {
namespace {

void CheckRoundTrip(const DaemonSetting& setting, const DaemonConfig& config) {
  const std::string shown = setting.access.show(config);
  if (setting.type.kind == SettingKind::kBool || setting.type.kind == SettingKind::kFiles) return;
  auto again = ParseSettingFlag(setting, shown);
  Require(again.ok(), "a setting's flag reads the value its key set");
  DaemonConfig copy;
  setting.access.store(copy, *again);
  Require(setting.access.show(copy) == shown, "a setting's flag reads the same value back");
}

}  // namespace
}  // namespace picoflow::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace picoflow;
  using namespace picoflow::fuzz;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto file = ParseDaemonConfigFile(text, "picoflowd.yaml");
  if (!file.ok()) {
    Require(!file.error().message.empty(), "a refused file says why");
    return 0;
  }
  DaemonConfig config;
  ApplyDaemonConfigFile(
      *file, [](std::string_view flag) { return flag == "--state-dir"; }, config);
  for (const DaemonSetting* setting : file->set) {
    Require(file->Sets(setting->key), "Sets() knows what the file set");
    CheckRoundTrip(*setting, file->config);
  }
  return 0;
}
