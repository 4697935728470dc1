#include "picoflowctl/source_arg.h"

#include <cstdio>
#include <iterator>
#include <string_view>

#include "common/task_paths.h"
#include "common/workflow.h"
#include "common/workflow_load.h"

namespace picoflow::ctl {

std::string SourceLabel(const std::string& arg) { return IsStdinArg(arg) ? "<stdin>" : arg; }

std::string SourceFileParam(const std::string& arg) {
  return IsStdinArg(arg) ? SourceLabel(arg) : AbsolutePath(arg);
}

Result<std::string> ReadSourceArg(const std::string& arg) {
  if (IsStdinArg(arg)) {
    std::string text;
    char buf[65536];
    for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, stdin)) > 0;) {
      text.append(buf, n);
      if (text.size() > kMaxWorkflowFileBytes) {
        return Err(ErrorCode::kInvalid, "<stdin>: more than " +
                                            std::to_string(kMaxWorkflowFileBytes) +
                                            " bytes, the limit of a workflow file");
      }
    }
    if (std::ferror(stdin)) return Err(ErrorCode::kIo, "<stdin>: cannot read");
    return text;
  }
  auto text = ReadWorkflowFile(arg);
  if (text.ok()) return text;
  if (text.error().code == ErrorCode::kNotFound) {
    return Err(ErrorCode::kNotFound, "file '" + arg + "' does not exist");
  }
  return Err(text.error().code, arg + ": " + text.error().message);
}

}  // namespace picoflow::ctl
