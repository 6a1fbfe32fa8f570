# envgym sandbox framer: one long-lived bash per sandbox, driven over stdin/stdout by shell.py.
#
# Why two levels: the framer never runs agent code. Each command runs in a child forked for it; the
# framer reads that child's exit status from the kernel (wait) and writes the frame itself, so nothing
# the agent defines (functions, traps, variables, `enable -n`, fds) can reach the framing or the
# channel to the host. The framer should be an execute-only copy of bash (the backends arrange this):
# the kernel then marks it and its children non-dumpable, so the agent's processes cannot read their
# memory (the sentinel) or open their fds (/proc/PID/fd: the host channel) even with the same uid.
# What persists between commands is data, not code: the cwd and the scalar variables (exported or
# not), saved by the child on exit as NUL-separated records, read and checked by the framer after it
# answered, and applied by the next child with `cd`/`declare`/`export` before any agent code runs in it. A forged state file can set variables,
# nothing else. Functions, aliases, traps, shell options and arrays do not persist (they would be code).
# Pre-fork: the child for the next command is forked right after a command is answered; it applies the
# state and blocks reading its command from a pipe only the framer holds (a fresh one per child, created
# with it, so a process left behind by an earlier command never holds it; the framer closes it after the
# command, so the child reads to end of file, in whatever locale the agent chose), so the fork and the
# state application are off the critical path while the agent thinks. It never sees a sentinel. A child
# that finds its variables and cwd as they were before its command (a `declare -p` before and after)
# writes no state: the last one holds. A command that cannot change them skips both snapshots: the framer
# tells the child so (one byte before the command) when the command (at most 4096 bytes) is one or more
# pipelines of plain words (no quotes, `$`, backquote, backslash, parentheses or braces) whose every
# command name is a program or one of `echo true false test [ : exit`, never another builtin, a keyword,
# an assignment, a redirection, a glob or a name of ours (__eg_*) (only builtins, keywords, assignments
# and parameter, command or arithmetic expansions can change a shell's variables or cwd, and none of
# those characters means none of these expansions; no function or alias of the agent's persists into a
# child). If a pre-forked child was killed before it got its command, a fresh one runs it.
#
# The framer counts bytes (`read -N`, `${#buf}`): it runs with LC_CTYPE=C (LC_ALL=C when LC_ALL is set, which
# would override it); each child puts that one variable back as it was before applying the state. Only the
# character type changes: resetting LC_ALL in every child reloaded every locale category (~0.05 ms of CPU and 15
# page faults per command). The framer's patterns use character classes, not letter ranges: with LC_CTYPE=C,
# [[:alpha:]] and [[:alnum:]] are exactly ASCII whatever the collation (LC_COLLATE stays the sandbox's).
# Args: $1 ready-sentinel  $2 control dir (output file)  $3 workspace  $4 output cap (bytes)
#       $5 kill mode (all|none)  $6 restore snippet (run by reset)  $7 limits snippet (run once at start)
#       $8 pending sentinel  $9 state dir: small files rewritten per command; keep it on tmpfs
# Host -> framer, one fixed-size header each (<sentinel> is 32 hex digits, <n> 10 decimal digits):
#   R <sentinel> <n>\n<n command bytes>   run a command (cd and variables persist)
#   Z <sentinel> 0000000000\n            kill all else, restore the workspace, forget the state
#   P <sentinel> 0000000000\n            answers "<s> PONG"
# Framer -> host: "<ready> READY <pid>" once, then per command
#   "\n<s> BEGIN <n>\n" <n bytes of capped output> "<s> END <rc> <truncated>\n"
# A command runs with stdin from /dev/null and its output written to a file, so the host never holds
# more than the cap. When a command ends, its output closes: processes it left behind that still hold
# that output are killed (a terminal hangup nobody can ignore), so they cannot write into the output of
# later commands (the /proc scan runs only when a process was created since the last check: the last
# PID of the sandbox's PID namespace, in /proc/loadavg, moved); programs whose output was redirected elsewhere (`server > log 2>&1 &`) keep running.
# Background subshells (`( loop ) &`, no program run) are forks of the non-dumpable framer whose fds
# we cannot inspect: they are killed at the end of their command whatever their output.
# If the framer itself is killed, the host starts a new one with $8 set: it answers for that command
# with the output so far and exit code -1; the state saved by the last finished command still holds.
__eg_ready=$1 __eg_dir=$2 __eg_ws=$3 __eg_cap=$4 __eg_killmode=$5 __eg_restore=$6 __eg_limits=$7
__eg_pending=$8 __eg_st=$9
__eg_out=$__eg_dir/out __eg_state=$__eg_st/state __eg_next=$__eg_st/next
__eg_half=$(( __eg_cap / 2 ))
__eg_s= __eg_cmd= __eg_rc=0 __eg_lc=() __eg_lcx= __eg_lv=LC_CTYPE
[[ -v LC_ALL ]] && __eg_lv=LC_ALL
[[ -v $__eg_lv ]] && __eg_lc=("${!__eg_lv}") && [[ ${!__eg_lv@a} == *x* ]] && __eg_lcx=1
set +e +u
# Ignored, not caught: a caught signal cuts `wait` (and `read`) short, and a child reaped meanwhile could
# lose its exit status (`wait` then answered -1). Each child puts them back to their defaults (`trap -`)
# before any agent code runs, so the command and what it starts see the defaults. PIPE: writing to a
# pre-forked child that was killed fails instead of killing the framer.
trap '' TERM INT HUP QUIT USR1 USR2 ALRM PIPE
eval "$__eg_limits"
[ -d "$__eg_dir" ] || mkdir -p -- "$__eg_dir" || exit 98
[ -d "$__eg_st" ] || mkdir -p -- "$__eg_st" || exit 98
builtin cd -- "$__eg_ws" || exit 97
# Never saved nor restored: bash's own dynamic and read-only variables, and the framer's (extglob).
__eg_unsaved='@(BASH|BASH_*|BASHPID|BASHOPTS|SHELLOPTS|EUID|UID|PPID|FUNCNAME|GROUPS|HISTCMD|LINENO|PIPESTATUS|PWD|RANDOM|SRANDOM|SECONDS|EPOCHREALTIME|EPOCHSECONDS|DIRSTACK|COMP_WORDBREAKS|SHLVL|OPTIND|_|__eg_*)'
# The variables a command starts with when no state was saved yet (and which a saved state replaces).
builtin compgen -v > "$__eg_st/names" 2>/dev/null
mapfile -t __eg_names < "$__eg_st/names"
__eg_initial=()
for __eg_v in "${__eg_names[@]}"; do  # bash's dynamic ones ($RANDOM...) must never be unset: they would stop working
  [[ $__eg_v == $__eg_unsaved ]] || __eg_initial+=("$__eg_v")
done
unset -v __eg_v __eg_names
# Command names after which a command may change the shell's variables or cwd: every builtin and keyword
# but the few that set nothing (see __eg_pure).
builtin compgen -b -k > "$__eg_st/names" 2>/dev/null
mapfile -t __eg_names < "$__eg_st/names"
__eg_impure=" ${__eg_names[*]} "  # one string, space-delimited: one lookup, and one free in each child
for __eg_v in echo true false test '[' : exit; do __eg_impure=${__eg_impure/" $__eg_v "/ }; done
unset -v __eg_v __eg_names
builtin declare -- "$__eg_lv=C"  # the framer counts bytes; the child puts the original back (__eg_lc)
__eg_seen= __eg_lp= __eg_pid= __eg_p= __eg_go= __eg_was_reset= __eg_mode=
exec {__eg_nap}<> <(:)  # a pipe nobody writes: `read -t` on it is a sleep without a fork
# bash keeps each process substitution it started (every pre-forked child is one) in a list that it prunes only
# once it has a job table: without one the list grew by one entry per command, and every later fork, `wait` and
# child walked and freed it (the framer's CPU per command went from 1.1 to 2.9 ms over 6,000 commands). One
# background job, at start, gives it that table.
: & builtin wait "$!"

__eg_save() {  # EXIT trap of a command's child (after `declare -p > end`): cwd, then (name, attributes, value) of each scalar variable
  local __eg_names __eg_a __eg_s0=() __eg_s1=()
  builtin mapfile -d '' __eg_s0 < "$__eg_st/start"  # one element each: `declare -p` writes no NUL
  builtin mapfile -d '' __eg_s1 < "$__eg_st/end"
  [[ -n ${__eg_s0[0]} && ${__eg_s0[0]} == "${__eg_s1[0]}" ]] && return 0  # nothing changed (the usual case): the last state holds
  builtin shopt -s extglob
  builtin compgen -v -X "$__eg_unsaved" > "$__eg_st/names" 2>/dev/null
  mapfile -t __eg_names < "$__eg_st/names"
  {
    builtin printf '%s\0' "$PWD"
    for __eg_a in "${__eg_names[@]}"; do
      [[ ${!__eg_a@a} == *[aA]* ]] || builtin printf '%s\0%s\0%s\0' "$__eg_a" "${!__eg_a@a}" "${!__eg_a}"
    done
    builtin printf '%s\0' __eg_end  # the last record: a reader can tell a whole state from a torn one
  } > "$__eg_next" 2>/dev/null
}

__eg_parse_state() {  # $1: the state file to read as data, once, after the frame went out
  local rec=() i k
  # The child's EXIT trap writes `next` (only when its state changed); only the framer writes `state`,
  # between commands, so a framer respawned because a command killed the old one reads the last finished
  # command's whole state, never a file that a dying child is still writing. A state without its end record
  # is no state. A `next` read once is emptied, so an unchanged command costs the framer one stat.
  __eg_changed=
  [ -s "$1" ] || return 0
  builtin mapfile -d '' rec < "$1"
  [[ $1 == "$__eg_next" ]] && : > "$1"
  (( ${#rec[@]} )) && [[ ${rec[-1]} == __eg_end ]] || return 0  # torn: the last whole state holds
  __eg_have_state= __eg_cwd= __eg_assign=() __eg_exported=() __eg_changed=1 __eg_rec=("${rec[@]}")
  __eg_have_state=1 __eg_cwd=${rec[0]}
  for (( i = 1; i + 2 < ${#rec[@]}; i += 3 )); do
    k=${rec[i]}  # a name (letters, digits, _; not a digit first), and not one of bash's or ours
    [[ $k == [[:alpha:]_]*([[:alnum:]_]) && $k != $__eg_unsaved ]] || continue
    __eg_assign+=("$k=${rec[i+2]}")
    [[ ${rec[i+1]} == *x* ]] && __eg_exported+=("$k")
  done
}

__eg_emit() {  # $1 sentinel, $2 exit code; prints the capped output file as one frame
  local buf= total marker
  IFS= builtin read -r -d '' -N $(( __eg_cap + 1 )) buf < "$__eg_out"
  if (( ${#buf} <= __eg_cap )); then  # one write: the host wakes up once
    builtin printf -v buf '\n%s BEGIN %d\n%s%s END %d 0\n' "$1" "${#buf}" "$buf" "$1" "$2"
    builtin printf '%s' "$buf"
    return 0
  fi
  local PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
  total=$(stat -c %s -- "$__eg_out" 2>/dev/null || echo "?")
  builtin printf -v marker '\n\n[... output truncated: %s bytes in total, showing the first %d and last %d ...]\n\n' \
    "$total" "$__eg_half" "$__eg_half"
  builtin printf '\n%s BEGIN %d\n' "$1" $(( 2 * __eg_half + ${#marker} ))
  head -c "$__eg_half" -- "$__eg_out"
  builtin printf '%s' "$marker"
  tail -c "$__eg_half" -- "$__eg_out"
  builtin printf '%s END %d 1\n' "$1" "$2"
}

__eg_pure() {  # true if the command in __eg_cmd cannot change the shell's variables or cwd (see the header)
  (( ${#__eg_cmd} <= 4096 )) || return 1  # bounded work for the framer: a long command just takes the snapshots
  [[ $__eg_cmd != *[\$\`\'\"\\\(\)\{\}]* ]] || return 1
  local rest=${__eg_cmd//[;&|$'\n']/;}\; word  # separators made one; each segment's first word checked
  while [[ -n $rest ]]; do
    word=${rest%%;*} rest=${rest#*;}
    word=${word#"${word%%[![:space:]]*}"}
    word=${word%%[[:space:]]*}
    [[ -z $word || ( ( $word == +([[:alnum:]_./:+,~-]) || $word == '[' ) && $__eg_impure != *" $word "* &&
      $word != __eg_* ) ]] || return 1
  done
}

__eg_holds() {  # kill process $1 if it holds the last command's output; true if newly killed (__eg_live: it lives on)
  local f
  for f in /proc/"$1"/fd/*; do
    if [[ $f -ef $__eg_out ]]; then
      builtin kill -9 "$1" 2>/dev/null
      [[ -z ${__eg_killed[$1]} ]] || return 1  # killed before, not dead yet
      __eg_killed[$1]=1
      return 0
    fi
  done
  [[ -L $f ]] && __eg_live=1  # it has fds: a live program (a process that is exiting has closed them)
  return 1
}

__eg_lastpid() {  # __eg_now_lp: the last PID this PID namespace handed out (every fork moves it)
  local la
  builtin read -r la < /proc/loadavg
  __eg_now_lp=${la##* }
}

__eg_hangup() {  # kill what the last command left holding its output; a process factory gets kill -1
  local now p round looks before found hidden still wait __eg_live  # $1: the process list of the last clean check ("" to scan)
  __eg_lastpid
  [[ $__eg_now_lp == "$__eg_lp" && -n $__eg_lp ]] && return 0  # no process was created since the last check
  now=(/proc/[1-9]*)
  if [[ -n $1 && "${now[*]}" == "$1" ]]; then __eg_lp=$__eg_now_lp; return 0; fi  # and none of them is left
  declare -A __eg_killed=()
  # A scan sees only the processes that existed when its list was taken: one created later by a process that has
  # exited since (a fork bomb's pipeline members fork and exit at once) is not in it. So a scan that found nothing
  # ends the check only if no process was created while it ran (the last PID did not move); otherwise it looks
  # again (up to 16 scans in all), and only scans that found something count as one of the 4 rounds. A scan
  # during which processes were created but that saw none alive that could have created them counts as finding
  # something: a chain of forks each gone before we look at it (`f() { f & }; f`) is caught by kill -1, while a
  # program of the agent's that keeps starting others (`make > log &`) is seen alive, and left alone.
  round=0 looks=0
  while (( round < 4 && looks++ < 16 )); do
    found=0 hidden=() __eg_live=0
    __eg_lastpid
    before=$__eg_now_lp
    for p in /proc/[1-9]*; do
      p=${p#/proc/}
      [[ $p == "$$" || $p == 1 || $p == "$__eg_pid" ]] && continue  # __eg_pid: the pre-forked child
      builtin kill -0 "$p" 2>/dev/null || continue  # not ours to signal (root's, or gone)
      if [[ -r /proc/$p/fd ]]; then __eg_holds "$p" && found=1; else hidden+=("$p"); fi
    done
    # A process whose fds we cannot see is a fork of this non-dumpable framer: either about to run a
    # program (it becomes inspectable at exec) or a background subshell of the command. Give the first
    # kind up to a second; what is still hidden then is a subshell and goes, whatever it holds.
    for wait in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do
      (( ${#hidden[@]} )) || break
      builtin read -r -t 0.05 -u "$__eg_nap" _
      still=()
      for p in "${hidden[@]}"; do
        builtin kill -0 "$p" 2>/dev/null || continue
        if [[ -r /proc/$p/fd ]]; then __eg_holds "$p" && found=1; else still+=("$p"); fi
      done
      hidden=("${still[@]}")
    done
    for p in "${hidden[@]}"; do
      builtin kill -9 "$p" 2>/dev/null
      [[ -n ${__eg_killed[$p]} ]] || { __eg_killed[$p]=1; found=1; }
    done
    if (( found )); then (( ++round )); continue; fi
    __eg_lastpid
    [[ $__eg_now_lp == "$before" ]] && break  # a whole scan, nothing created meanwhile, nothing found: none is left
    (( __eg_live )) || { found=1; (( ++round )); }
  done
  if (( found )) && [ "$__eg_killmode" = all ]; then
    __eg_killall
    builtin printf '\n[envgym: processes this command left behind kept multiplying; every background process was killed]\n' >> "$__eg_out"
  fi
  __eg_lastpid
  __eg_lp=$__eg_now_lp
  [[ -n $1 ]] || return 0  # a check with the pre-forked child alive: its list is not the clean one
  now=(/proc/[1-9]*)
  __eg_seen="${now[*]}"
}

__eg_killall() {  # kill every process but this framer, and wait (up to ~5 s) until they are gone
  [ "$__eg_killmode" = all ] || return 0
  local i p left
  for i in {1..100}; do
    builtin kill -9 -1 2>/dev/null
    left=0
    for p in /proc/[1-9]*; do
      p=${p#/proc/}
      [[ $p == "$$" || $p == 1 ]] && continue
      # ours, alive or a zombie not yet reaped (zombies still hold their slot under the pids limit)
      builtin kill -0 "$p" 2>/dev/null && { left=1; break; }
    done
    (( left )) || return 0
    builtin read -r -t 0.05 -u "$__eg_nap" _
  done
}

__eg_tidy() {  # at reset, with no other agent process left: the framer's own files emptied, anything else the agent
  # put in their directories removed, and the directories usable again, so nothing carries over to the next episode
  local d f junk=() PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
  for d in "$__eg_dir" "$__eg_st"; do  # `chmod 000` by the agent: the framer (its uid) puts the mode back
    [[ -r $d && -w $d && -x $d && -d $d && ! -L $d ]] || chmod 700 -- "$d" 2>/dev/null
  done
  builtin shopt -s dotglob nullglob
  for f in "$__eg_dir"/* "$__eg_st"/*; do
    case ${f##*/} in
      out | state | next | start | end | names)  # ours (shell.FRAMER_FILES): emptied, readable and writable again
        [[ -f $f && ! -L $f ]] && { [[ -r $f && -w $f ]] || chmod 600 -- "$f" 2>/dev/null; : > "$f"; continue; } ;;
    esac
    junk+=("$f")
  done
  builtin shopt -u dotglob nullglob
  (( ${#junk[@]} )) || return 0  # forks only when the agent left something there
  rm -rf -- "${junk[@]}" 2>/dev/null && return 0
  for f in "${junk[@]}"; do  # a directory it made unreadable: its modes back first (never through a link)
    [[ -d $f && ! -L $f ]] && chmod -R u+rwx -- "$f" 2>/dev/null
  done
  rm -rf -- "${junk[@]}" 2>/dev/null
  return 0
}

builtin printf '%s READY %d\n' "$__eg_ready" "$$"
if [ -n "$__eg_pending" ]; then
  [ -e "$__eg_out" ] || : > "$__eg_out"
  __eg_hangup none
  __eg_emit "$__eg_pending" -1
fi
__eg_parse_state "$__eg_state"  # a respawned framer picks up the state the last finished command saved

__eg_child() {  # the pre-forked child, before its command: forget the framer's secrets, apply the saved state
  # as data (no agent code has run in this process yet, so these builtins are the real ones), read the command
  # (the framer closes the pipe after it) and its mode: s (may change the state) or p (cannot). The framer's
  # helper functions stay defined in the child: they hold no secret, act with the agent's own rights there, and
  # freeing them cost ~0.3 ms of CPU per command (copy-on-write faults of the memory they free).
  builtin unset -v __eg_h __eg_s __eg_n __eg_op __eg_ready __eg_pending __eg_restore __eg_rec __eg_changed \
    __eg_p __eg_pid __eg_seen __eg_lp __eg_now_lp __eg_go __eg_rc __eg_tries __eg_now __eg_was_reset __eg_impure \
    __eg_la
  exec {__eg_nap}<&- > /dev/null 2>&1
  trap - TERM INT HUP QUIT USR1 USR2 ALRM PIPE
  if (( ${#__eg_lc[@]} )); then
    builtin declare -g -- "$__eg_lv=${__eg_lc[0]}"
    [[ -n $__eg_lcx ]] || builtin export -n -- "$__eg_lv"
  else
    builtin unset -v -- "$__eg_lv"
  fi
  if [ -n "$__eg_have_state" ]; then  # validated by the framer: names, values, export flags
    builtin unset -v "${__eg_initial[@]}"  # the saved state says which of these remain
    builtin cd -- "$__eg_cwd"
    (( ${#__eg_assign[@]} )) && builtin declare -g -- "${__eg_assign[@]}"
    (( ${#__eg_exported[@]} )) && builtin export -- "${__eg_exported[@]}"
  fi
  builtin unset -v __eg_assign __eg_exported __eg_cwd __eg_have_state __eg_lc __eg_lcx __eg_lv BASH_EXECUTION_STRING
  __eg_cmd=
  TMOUT= IFS= builtin read -r -N 2147483647 __eg_cmd  # to end of file: bytes, whatever the locale
  __eg_mode=${__eg_cmd:0:1}
  [[ $__eg_mode == [sp] ]] || builtin exit 0  # no command: the framer dropped us
  __eg_cmd=${__eg_cmd:1}
}

__eg_drop_child() {  # the pre-forked child goes (reset, end of input): its pipe closed, killed, reaped
  [[ -n $__eg_pid ]] || return 0
  exec {__eg_p}>&-
  builtin kill -9 "$__eg_pid" 2>/dev/null
  builtin wait "$__eg_pid" 2>/dev/null
  __eg_pid=
}

while :; do
  # After a reset no child waits (the root restorer checks that no agent process is left): the next command forks.
  if [[ -z $__eg_pid && ( -z $__eg_was_reset || -n $__eg_go ) ]]; then
    __eg_was_reset=
    # The next command's child (at the top level of the script, as a command used to run: no function frame):
    # forget the framer's secrets and helpers, apply the saved state as data (no agent code has run in this
    # process yet, so these builtins are the real ones), note the variables, then wait for the command.
    # The body is one brace group: bash parses it whole before running any of it (not line by line after the
    # command arrived). The snapshots are taken here, at the top level, where the EXIT trap takes the second.
    exec {__eg_p}> >({
      __eg_child
      builtin unset -f __eg_child
      if [[ $__eg_mode == s ]]; then : x; builtin declare -p > "$__eg_st/start"; fi
      exec < /dev/null > "$__eg_out" 2>&1
      [[ $__eg_mode == s ]] && trap -- ': x; builtin declare -p > "$__eg_st/end"; __eg_save' EXIT
      builtin eval "$__eg_cmd"
    })
    __eg_pid=$!
    builtin read -r __eg_la < /proc/loadavg  # __eg_lastpid, inline: no function call on the hot path
    __eg_lp=${__eg_la##* }  # the pre-forked child is the last process created
  fi
  if [[ -n $__eg_go ]]; then  # hand the command over; a child that was killed while waiting is replaced
    __eg_go=
    if ! builtin printf '%s%s' "$__eg_mode" "$__eg_cmd" >&"$__eg_p" 2>/dev/null; then
      exec {__eg_p}>&-
      builtin wait "$__eg_pid" 2>/dev/null
      __eg_pid=
      (( __eg_tries++ < 3 )) && { __eg_go=1; continue; }
      builtin printf '[envgym: the command could not be started]\n' > "$__eg_out"
      __eg_emit "$__eg_s" 126
      continue
    fi
    exec {__eg_p}>&-
    builtin wait "$__eg_pid"; __eg_rc=$?  # the signals are ignored: nothing cuts it short
    __eg_pid=
    # The hot path inlines the cheap checks: no process created since the pre-fork, no state saved.
    builtin read -r __eg_la < /proc/loadavg
    [[ ${__eg_la##* } == "$__eg_lp" ]] || __eg_hangup "${__eg_seen:-none}"
    __eg_emit "$__eg_s" "$__eg_rc"
    if [[ -s $__eg_next ]]; then
      __eg_parse_state "$__eg_next"
      [[ -n $__eg_changed ]] && builtin printf '%s\0' "${__eg_rec[@]}" > "$__eg_state" 2>/dev/null
    fi
    continue
  fi
  # A header is 46 bytes, "<op> <32 hex sentinel> <10-digit length>\n": one read() instead of one per byte.
  IFS= builtin read -r -N 46 __eg_h  # short only at end of input (signals are ignored)
  (( ${#__eg_h} == 46 )) || break  # end of input
  __eg_op=${__eg_h:0:1} __eg_s=${__eg_h:2:32} __eg_n=${__eg_h:35:10}
  [[ ${__eg_h:34:1}${__eg_h:45:1} == " "$'\n' && $__eg_n == +([0-9]) ]] || exit 96  # out of step with the host
  __eg_n=$(( 10#$__eg_n ))
  case $__eg_op in
    R)
      __eg_cmd=
      (( __eg_n )) && IFS= builtin read -r -N "$__eg_n" __eg_cmd  # $__eg_n bytes: the C locale; the host drops NULs
      builtin read -r __eg_la < /proc/loadavg  # again: anything created since the pre-fork (usually nothing)
      [[ ${__eg_la##* } == "$__eg_lp" ]] || __eg_hangup ""
      # A command of the agent's may have taken its output file's modes away (`chmod 000`): back, or it loses its output.
      [[ -r $__eg_out && -w $__eg_out ]] || PATH=/usr/bin:/bin chmod 600 -- "$__eg_out" 2>/dev/null
      __eg_mode=s
      __eg_pure && __eg_mode=p
      __eg_go=1 __eg_tries=0
      ;;
    Z)
      __eg_drop_child  # it applied the state that is about to be forgotten
      __eg_was_reset=1
      __eg_killall
      __eg_tidy
      if [[ $__eg_restore == true ]]; then  # nothing to run as the agent (Docker: root restores): no fork
        : > "$__eg_out"; __eg_rc=0
      else
        ( builtin cd -- "$__eg_ws" && eval "$__eg_restore" ) > "$__eg_out" 2>&1 < /dev/null
        __eg_rc=$?
      fi
      : > "$__eg_state"; : > "$__eg_next"
      __eg_have_state= __eg_cwd= __eg_assign=() __eg_exported=() __eg_rec=()
      __eg_emit "$__eg_s" "$__eg_rc"
      __eg_now=(/proc/[1-9]*)
      __eg_seen="${__eg_now[*]}"
      __eg_lastpid
      __eg_lp=$__eg_now_lp
      ;;
    P)
      builtin printf '%s PONG\n' "$__eg_s"
      ;;
  esac
done
__eg_drop_child
