#pragma once
// Where a workflow's relative paths point: a shell task's `workdir` and a
// program run without a shell (`command` with `args`) are resolved when the
// workflow is loaded, against the directory of its file, as docker compose
// resolves paths against its file (docs/workflow-format.md, "Paths").

#include <string>
#include <string_view>

#include "common/result.h"

namespace picoflow {

/// What relative paths of one workflow resolve against.
struct PathBase {
  /// The absolute directory of the workflow's file; empty if the file is
  /// not known (YAML sent over RPC without an absolute `file`): relative
  /// paths then stay relative, i.e. to the daemon's working directory.
  std::string dir;
  /// What a leading `~` means; empty: HomeDir() (common/paths.h) of this process.
  std::string home;
};

/// `dir/path` with `.`, `..` and repeated slashes resolved lexically, as
/// `cd` in a shell and docker compose do (`..` of a symbolic link is the
/// directory the link is in, not the parent of its target). `dir` must be
/// absolute; `path` relative. `..` above `/` stays at `/`.
std::string JoinPath(std::string_view dir, std::string_view path);

/// The absolute directory of `file`, a path relative to this process's
/// working directory or absolute: "/srv/wf/backup.yaml" -> "/srv/wf".
std::string FileDirectory(std::string_view file);

/// `file` made absolute against this process's working directory, then
/// normalized as JoinPath does.
std::string AbsolutePath(std::string_view file);

/// Resolves a workdir or program path: `~` and `~/x` under the home
/// directory, an absolute path as it is, a relative one under `base` (as it
/// is if `base` is empty). Returns an Error (kInvalid) for `~user`, which is
/// not supported.
Result<std::string> ResolvePath(std::string_view path, std::string_view base,
                                const PathBase& paths);

}  // namespace picoflow
