# bash completion for picoflowctl: subcommands, their options, workflow names
# (asked of the daemon with `picoflowctl workflows --json`) and workflow files.
# meson installs it as DATADIR/bash-completion/completions/picoflowctl;
# tests/completion_test.py checks it against `picoflowctl --help`.
# Needs nothing of the bash-completion package.

# The names of the workflows the daemon has, or nothing if it is unreachable.
_picoflowctl_workflows() {
  local socket=()
  [[ -n $1 ]] && socket=(--socket "$1")
  command picoflowctl "${socket[@]}" workflows --json 2>/dev/null |
    sed -n 's/^ *"name": *"\([^"]*\)".*/\1/p'
}

# Workflow files: *.yaml, *.yml and directories.
_picoflowctl_files() {
  compgen -f -X '!*.yaml' -- "$1"
  compgen -f -X '!*.yml' -- "$1"
  compgen -d -S / -- "$1"
}

_picoflowctl() {
  local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
  local commands="validate cron submit run retry status history logs outputs cancel workflows show graph
    remove pause resume next daemon prune notifications notify-test web-token call fleet"
  local globals="--socket --json --no-color --utc --help -h --version"
  # The subcommand is the first word that is neither an option nor --socket's value.
  local i cmd="" socket=""
  for ((i = 1; i < COMP_CWORD; i++)); do
    case ${COMP_WORDS[i]} in
      --socket) socket=${COMP_WORDS[i + 1]}; ((i++)) ;;
      -*) ;;
      *) cmd=${COMP_WORDS[i]}; break ;;
    esac
  done
  compopt +o nospace 2>/dev/null
  case $prev in
    --socket | --params-file) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    -p | --param) return ;;  # KEY=VALUE to type
    --run | --task | --only | --since | --after | --tz | -n | --lines) return ;;  # a value to type
  esac
  if [[ -z $cmd ]]; then
    if [[ $cur == -* ]]; then
      COMPREPLY=($(compgen -W "$globals" -- "$cur"))
    else
      COMPREPLY=($(compgen -W "$commands" -- "$cur"))
    fi
    return
  fi
  local opts=""
  case $cmd in
    cron) opts="--tz --after -n" ;;
    run) opts="--wait --follow -f --param -p --params-file --only --downstream --upstream --force" ;;
    status) opts="--run --check" ;;
    history | next) opts="-n" ;;
    logs) opts="--run --task --follow -f --lines -n --since" ;;
    outputs) opts="--task" ;;
    retry) opts="--latest --wait --force" ;;
    graph) opts="--dot" ;;
    prune) opts="--dry-run" ;;
    notifications) opts="-n" ;;
    web-token) opts="--rotate" ;;
    fleet) opts="--broker --username --password-file --ca-file --cert-file --key-file --timeout
      --group --node --all --param --wait" ;;
  esac
  if [[ $cur == -* ]]; then
    COMPREPLY=($(compgen -W "$opts $globals" -- "$cur"))
    return
  fi
  if [[ $cmd == daemon ]]; then
    COMPREPLY=($(compgen -W "status reload version" -- "$cur"))
    return
  fi
  if [[ $cmd == fleet && $prev == fleet ]]; then
    COMPREPLY=($(compgen -W "status run" -- "$cur"))
    return
  fi
  local IFS=$'\n'  # file and workflow names may hold spaces
  case $cmd in
    validate | submit)
      COMPREPLY=($(_picoflowctl_files "$cur"))
      compopt -o nospace 2>/dev/null ;;
    run)
      COMPREPLY=($(compgen -W "$(_picoflowctl_workflows "$socket")" -- "$cur") $(_picoflowctl_files "$cur")) ;;
    status | history | logs | outputs | show | graph | remove | pause | resume | next | cancel | \
      notify-test)
      COMPREPLY=($(compgen -W "$(_picoflowctl_workflows "$socket")" -- "$cur")) ;;
  esac
}

complete -F _picoflowctl picoflowctl
