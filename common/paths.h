#pragma once
// Default locations of the socket, the state directory and the workflows
// directory, in system mode (a service) and user mode (a login session).

#include <string>

namespace picoflow {

/// Where picoflowd keeps its things; every path can be overridden by a flag.
struct Paths {
  std::string socket;         ///< the control socket
  std::string state_dir;      ///< holds picoflow.db
  std::string workflows_dir;  ///< *.yaml loaded at start and on reload
};

/// System mode: /run/picoflow/picoflowd.sock, /var/lib/picoflow,
/// /etc/picoflow/workflows.
Paths SystemPaths();

/// User mode: $XDG_RUNTIME_DIR/picoflow/picoflowd.sock (else
/// /tmp/picoflow-UID/picoflowd.sock), $XDG_STATE_HOME/picoflow (else
/// ~/.local/state/picoflow), $XDG_CONFIG_HOME/picoflow/workflows (else
/// ~/.config/picoflow/workflows).
Paths UserPaths();

/// $HOME, else the home directory of the user this process runs as, else "/".
std::string HomeDir();

/// The socket picoflowctl talks to when --socket is not given: $PICOFLOW_SOCKET
/// if set, else the user-mode socket if it exists, else the system socket.
std::string DefaultClientSocket();

}  // namespace picoflow
