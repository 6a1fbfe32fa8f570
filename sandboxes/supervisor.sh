# envgym sandbox supervisor: one long-lived bash per sandbox, driven over stdin/stdout by shell.py.
#
# Args: $1 ready-sentinel  $2 control dir  $3 workspace  $4 output cap (bytes)  $5 kill mode (all|none)
#       $6 restore snippet (run by reset)  $7 limits snippet (run once at start)  $8 pending sentinel
#       $9 state dir: small files rewritten per command; keep it on tmpfs (an ext4 rewrite costs ~4 ms)
# Host -> shell, one header line each:
#   R <sentinel> <nbytes>\n<command bytes>   run a command in this shell (so cd/export persist)
#   Z <sentinel>                              kill all else, restore the workspace, forget cwd/env
#   P <sentinel>                              answers "<s> PONG"
# Shell -> host: "<ready> READY <pid>" once, then per command
#   "\n<s> BEGIN <n>\n" <n bytes of capped output> "<s> END <rc> <truncated>\n"
# A command runs with stdin from /dev/null and its output appended to a file, so the host never holds
# more than the cap. No fork per command: a builtin round trip costs microseconds. Timeouts are enforced
# from outside (the host kills every process but this shell). If a command ends this shell (exit,
# set -e, exec, kill -9 $$), the host starts a new one with $8 set: it restores cwd/env saved before
# that command and answers for it with the output so far and the exit code the EXIT trap recorded.
__eg_ready=$1 __eg_dir=$2 __eg_ws=$3 __eg_cap=$4 __eg_killmode=$5 __eg_restore=$6 __eg_limits=$7
__eg_pending=$8 __eg_st=$9
__eg_half=$(( __eg_cap / 2 ))
__eg_s= __eg_running=
set +e +u
set -m 2>/dev/null
trap : TERM INT HUP QUIT USR1 USR2 ALRM
eval "$__eg_limits"
[ -d "$__eg_dir" ] || mkdir -p -- "$__eg_dir" || exit 98
[ -d "$__eg_st" ] || mkdir -p -- "$__eg_st" || exit 98
if [ ! -e "$__eg_st/env0" ]; then
  builtin cd -- "$__eg_ws" || exit 97
  builtin export -p > "$__eg_st/env0"
fi

__eg_save() {
  {
    builtin printf 'builtin cd -- %q 2>/dev/null\n' "$PWD"
    builtin export -p
  } > "$__eg_st/state" 2>/dev/null
}

__eg_load() {  # replace the exported variables and cwd by those saved in $1
  builtin compgen -e > "$__eg_st/names" 2>/dev/null
  mapfile -t __eg_names < "$__eg_st/names"
  builtin unset -v "${__eg_names[@]}" 2>/dev/null
  declare() { builtin declare -g "$@"; }
  . "$1" 2>/dev/null
  builtin unset -f declare
}

__eg_emit() {  # $1 sentinel, $2 exit code; prints the capped output file as one frame
  local LC_ALL=C PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin buf= total marker
  IFS= builtin read -r -d '' -N $(( __eg_cap + 1 )) buf < "$__eg_dir/out"
  if (( ${#buf} <= __eg_cap )); then
    builtin printf '\n%s BEGIN %d\n%s%s END %d 0\n' "$1" "${#buf}" "$buf" "$1" "$2"
    return 0
  fi
  total=$(stat -c %s -- "$__eg_dir/out" 2>/dev/null || echo "?")
  builtin printf -v marker '\n\n[... output truncated: %s bytes in total, showing the first %d and last %d ...]\n\n' \
    "$total" "$__eg_half" "$__eg_half"
  builtin printf '\n%s BEGIN %d\n' "$1" $(( 2 * __eg_half + ${#marker} ))
  head -c "$__eg_half" -- "$__eg_dir/out"
  builtin printf '%s' "$marker"
  tail -c "$__eg_half" -- "$__eg_dir/out"
  builtin printf '%s END %d 1\n' "$1" "$2"
}

__eg_read_cmd() {  # $1 bytes (not characters: hence the C locale)
  local LC_ALL=C
  IFS= builtin read -r -d '' -N "$1" __eg_cmd
}

__eg_on_exit() {  # a command ended this shell: leave its exit code for the next shell to report
  local rc=$?
  [ -n "$__eg_running" ] && builtin printf '%s %d\n' "$__eg_s" "$rc" > "$__eg_st/died"
}
trap __eg_on_exit EXIT

__eg_killall() {
  [ "$__eg_killmode" = all ] || return 0
  local i
  for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
    builtin kill -9 -1 2>/dev/null || break
    wait 2>/dev/null
  done
  wait 2>/dev/null
}

builtin printf '%s READY %d\n' "$__eg_ready" "$$"
if [ -n "$__eg_pending" ]; then
  __eg_rc=-1
  if [ -s "$__eg_st/died" ]; then
    IFS=' ' builtin read -r __eg_ds __eg_drc < "$__eg_st/died"
    [ "$__eg_ds" = "$__eg_pending" ] && __eg_rc=$__eg_drc
  fi
  : > "$__eg_st/died"
  [ -e "$__eg_dir/out" ] || : > "$__eg_dir/out"
  __eg_emit "$__eg_pending" "$__eg_rc"
fi
if [ -e "$__eg_st/state" ]; then __eg_load "$__eg_st/state"; else builtin cd -- "$__eg_ws"; fi

while IFS=' ' builtin read -r __eg_op __eg_s __eg_n; do
  case $__eg_op in
    R)
      __eg_read_cmd "$__eg_n"
      __eg_save
      : > "$__eg_dir/out"
      __eg_running=1
      {
        eval "$__eg_cmd"
      } >> "$__eg_dir/out" 2>&1 < /dev/null
      __eg_rc=$?
      __eg_running=
      set +e +u
      __eg_emit "$__eg_s" "$__eg_rc"
      ;;
    Z)
      __eg_killall
      builtin cd -- "$__eg_ws"
      ( eval "$__eg_restore" ) > "$__eg_dir/out" 2>&1 < /dev/null
      __eg_rc=$?
      __eg_load "$__eg_st/env0"
      rm -f -- "$__eg_st/state"
      builtin cd -- "$__eg_ws"
      __eg_emit "$__eg_s" "$__eg_rc"
      ;;
    P)
      builtin printf '%s PONG\n' "$__eg_s"
      ;;
  esac
done
