# envgym workspace restorer: one root bash per Docker sandbox, started by the host over its own exec socket.
#
# Why: reset() must leave the workspace exactly equal to the pristine copy whatever the agent did, at a cost
# proportional to what the episode changed, not to the size of the tree. Its ground truth is the inode change
# time (ctime), which the kernel sets on every change to an inode (write, truncate, chmod, utimes, link count,
# rename) and which no unprivileged process can set back (mtime can be forged, ctime cannot). Invariant: when a
# restore ends, the workspace equals the pristine copy and `stamp` is newer than every inode in it, and the
# clock has moved past `stamp` before any agent process can run again. So at the next restore an inode whose
# ctime is not newer than `stamp` is unchanged and at the path it had (a rename changes the moved inode's
# ctime); only its ancestors can have moved, which `dirs` (the inode of every pristine directory, by path)
# catches. What is flagged is put back: a directory that is still the same inode has its entries compared by
# name with the pristine one (extra ones removed, missing ones copied back); anything else is removed and
# copied back whole. One stat walk, then one removal (by a resident `find -delete`, see below) and one
# `tar | tar` for whatever changed, each only if needed.
# A flagged directory's names are compared as one merge of two sorted lists (the pristine one listed once and
# kept), 16 names at a time where they agree.
#
# The stamp: `stamp` is written after the restore's last change, then `probe` is rewritten until its time is
# newer than the stamp's. Timestamps are monotonic across inodes (a coarse clock tick, and on Linux >= 6.13 a
# floor at the last fine-grained time handed out), so every later change, the agent's included, gets a time
# >= the probe's > the stamp's: `-newercm stamp` cannot miss it. Multigrain timestamps (6.13+) hand a fine-grained
# time to an inode whose time was read since its last change, so the second probe (rewritten at once after the
# -nt test read it) is newer without waiting for the next tick; older kernels nap until the tick moves.
#
# The walkers: `find -files0-from -` processes kept running (root's, never the agent's; two when the container has
# two cores or more, the workspace's entries dealt round them, one otherwise) walk the workspace each time they
# are sent its paths, then an end marker, so an unchanged reset costs the stat walk but no fork or exec, and the
# stats of two halves overlap on two cores. A walker reads the stamp's time when it starts, so they are restarted
# after every new stamp, once the host has its answer and before the next request is read (a walker with an
# older reference would only flag more, never less). Anything one says on stderr but the end marker, or no
# answer, means the walk is not trusted: a plain `find` redoes it and the walkers are given up for this sandbox
# (the same if stdbuf, mkfifo or `-files0-from` is missing). Walker 0 is also given the agent's $HOME (pruned:
# only stat'ed), first: when it is a real directory whose ctime is not after the stamp, it is as the last restore
# left it (a chmod or a new inode there moves the ctime; the agent cannot chown), and the clean-up skips the
# `find` that checks its mode and owner.
#
# The deleter: one more resident root `find -P -files0-from - -depth ... -delete`, started once (it holds no
# time reference), is sent the paths to remove and an end marker: no fork or exec for the removal. It deletes
# depth first and never follows a symlink (a link is removed, not its target). Anything on its stderr but the
# marker (a path it could not remove, or it died) and `rm -rf` redoes the whole list; the deleter is given up.
#
# Trust: this process is root and the agent's uid cannot signal it or open its fds; it acts only after it
# has itself killed every process of the agent's uid but the framer (which the host says is idle), so nothing
# can swap a path under it. It never follows a symlink in the workspace (find -P, find -P -delete, rm, globs of
# directories find saw as directories, tar entries recreated parents-first). Its state (the pristine copy, stamp, dirs, the
# walkers' fifos and output) lives in a root-only directory.
#
# Args: $1 workspace  $2 agent uid  $3 state dir (root-only: ws/ the pristine copy, stamp, dirs)  $4 the agent's $HOME  $5 ready token
# Host -> restorer: "<nonce> <framer pid>\n"; restorer -> host: "<nonce> DONE <rc> <paths put back> <note>\n".
# rc 0: restored; anything else: the reason is in <note> (the host raises).
set +e +u
export LC_ALL=C  # byte order for globs and [[ < ]] alike, plain messages
W=$1 U=$2 S=$3 H=$4
P=$S/ws  # an exact copy of the workspace, inside a root-only directory (a tmpfs of its own)
[[ -d $S/ws.disk && ! -L $S/ws.disk ]] && P=$S/ws.disk  # setup's copy on disk: the workspace did not fit the tmpfs
shopt -s nullglob dotglob
declare -A dino=()   # "./rel/dir" -> inode of that pristine directory in the workspace
declare -A plist=()  # "./rel/dir" -> the names in its pristine copy, sorted, joined by '/' (the copy never changes)
exec {nap}<> <(:)    # a pipe nobody writes: `read -t` on it sleeps without a fork

load_dirs() {
  local rec
  dino=()
  while IFS= read -r -d '' rec; do dino[${rec#* }]=${rec%% *}; done < "$S/dirs"
}

save_dirs() {
  local k
  for k in "${!dino[@]}"; do printf '%s %s\0' "${dino[$k]}" "$k"; done > "$S/dirs"
}

stamp() {  # a new stamp, then make sure the clock has moved past it (see the header)
  local i
  : > "$S/stamp" && : > "$S/probe" || return 1
  for i in {1..400}; do
    [[ $S/probe -nt $S/stamp ]] && return 0
    (( i > 2 )) && read -r -t 0.001 -u "$nap" _
    : > "$S/probe"
  done
  return 1
}

# -- the walkers -----------------------------------------------------------------------------------------
declare -a walker=() wfd_in=() wfd_out=()
nwalkers=0 use_walker=1
cores=$(nproc 2>/dev/null) || cores=1
(( cores >= 2 )) && want_walkers=2 || want_walkers=1

stop_walkers() {
  local k t
  for (( k = 0; k < nwalkers; k++ )); do
    t=${wfd_out[k]}
    exec {t}<&-
    kill -9 "${walker[k]}" 2>/dev/null
    wait "${walker[k]}" 2>/dev/null
  done
  nwalkers=0
}

start_walkers() {  # after every new stamp: a walker reads the stamp's time once, when it starts
  local k t
  stop_walkers
  [[ -n $use_walker ]] || return 0
  for (( k = 0; k < want_walkers; k++ )); do
    if [[ -z ${wfd_in[k]} ]]; then  # its input: a fifo this process holds open read-write (cannot block)
      if ! command -v stdbuf > /dev/null 2>&1 || ! : > "$S/end" || ! rm -f -- "$S/walk.$$.$k" ||
        ! mkfifo -m 600 -- "$S/walk.$$.$k" || ! exec {t}<> "$S/walk.$$.$k"; then
        use_walker=
        stop_walkers
        return 0
      fi
      wfd_in[k]=$t
    fi
    # Each start point is walked (the workspace itself, known by its inode, only stat'ed: pruned); stdout, the
    # records, goes to changed.<pid>.<k> (this restorer's own: one that timed out may still be winding down),
    # unbuffered; stderr, the end marker or why it failed, is the pipe this process reads, whose end of file
    # says the walker is gone. It keeps none of the fifos' write ends: when this process exits, the walkers
    # read end of file and exit.
    exec {t}< <(for t in "${wfd_in[@]}" ${dfd_in:+"$dfd_in"} "$nap"; do exec {t}>&-; done
      exec stdbuf -o0 find -P -files0-from - \( -path "$S/end" -fprintf /dev/stderr 'END\0' \) -o \
        \( \( -samefile "$W" -o -path "$H" \) -prune -o -true \) -newercm "$S/stamp" -printf '%i %y %p\0' \
        < "$S/walk.$$.$k" 2>&1 >> "$S/changed.$$.$k")
    walker[k]=$! wfd_out[k]=$t
    nwalkers=$(( k + 1 ))
  done
}

# -- the deleter: a resident `find -delete`, root's, fed what to remove (no fork, no exec per reset) --------
deleter= dfd_in= dfd_out=

start_deleter() {
  local t
  [[ -n $use_walker ]] || return 0
  if ! : > "$S/end" || ! rm -f -- "$S/del.$$" || ! mkfifo -m 600 -- "$S/del.$$" || ! exec {t}<> "$S/del.$$"; then
    return 0
  fi
  dfd_in=$t
  # -P and -depth: what is in a directory goes before it, no symlink followed (a link is removed, not its
  # target); the end marker is printed, never deleted. Anything else on stderr means it failed somewhere.
  exec {t}< <(for t in "${wfd_in[@]}" "$dfd_in" "$nap"; do exec {t}>&-; done
    exec stdbuf -o0 find -P -files0-from - -depth \( -path "$S/end" -fprintf /dev/stderr 'END\0' \) -o -delete \
      < "$S/del.$$" 2>&1 > /dev/null)
  deleter=$! dfd_out=$t
}

stop_deleter() {
  [[ -n $deleter ]] || return 0
  exec {dfd_out}<&- {dfd_in}>&-
  kill -9 "$deleter" 2>/dev/null
  wait "$deleter" 2>/dev/null
  deleter=
}

delete() {  # remove[] (relative to the workspace, the current directory), whole trees; rm if the deleter fails
  local p got
  if [[ -n $deleter ]]; then
    local -a abs=()
    for p in "${remove[@]}"; do abs+=("$W/${p#./}"); done
    got=
    printf '%s\0' "${abs[@]}" "$S/end" >&"$dfd_in" &&
      IFS= read -r -d '' -t 600 -u "$dfd_out" got
    [[ $got == END ]] && return 0
    stop_deleter  # not trusted again; rm redoes it all (removing what is gone already is no error for rm -f)
  fi
  if (( ${#remove[@]} > 1000 )); then
    printf '%s\0' "${remove[@]}" | xargs -0 rm -rf --
  else
    rm -rf -- "${remove[@]}"
  fi
}

walk() {  # flagged: "<inode> <type> <path>" of every entry of the workspace whose ctime is after the stamp,
  # each directory before what is in it; home_check=0 when the walker saw that $HOME, a real directory, has not
  # changed since the stamp (its mode, owner and inode as the last restore left them: see clean_tmp)
  local k i got ok=1 home=
  local -a top=("$W"/*) mine
  flagged=() home_check=1
  [[ -d $H && ! -L $H ]] && home=$H  # nothing of the agent's runs now: it cannot change before the walker sees it
  if (( nwalkers )); then
    for (( k = 0; k < nwalkers; k++ )); do  # the workspace's entries dealt round the walkers
      : > "$S/changed.$$.$k" || ok=
      mine=()
      (( k == 0 )) && mine=(${home:+"$home"} "$W")  # $HOME first: its record, if any, comes first
      for (( i = k; i < ${#top[@]}; i += nwalkers )); do mine+=("${top[i]}"); done
      printf '%s\0' "${mine[@]}" "$S/end" >&"${wfd_in[k]}" || ok=
    done
    for (( k = 0; k < nwalkers; k++ )); do
      got=
      IFS= read -r -d '' -t 600 -u "${wfd_out[k]}" got
      [[ $got == END ]] || ok=
    done
    if [[ -n $ok ]]; then
      for (( k = 0; k < nwalkers; k++ )); do
        mapfile -t -d '' -O "${#flagged[@]}" flagged < "$S/changed.$$.$k" || return 1
      done
      if [[ -n $home ]]; then
        if [[ ${flagged[0]#* * } == "$home" ]]; then unset -v 'flagged[0]'; else home_check=0; fi
      fi
      return 0
    fi
    use_walker=  # one failed or said something: not trusted again
    stop_walkers
    flagged=()
  fi
  find -P "$W" -newercm "$S/stamp" -printf '%i %y %p\0' > "$S/changed" || return 1
  mapfile -t -d '' flagged < "$S/changed"
}

# -- the clean-up around the workspace -------------------------------------------------------------------
kill_agent() {  # $1 framer pid: SIGKILL every other process of the agent's uid, until none is left
  # The framer's own direct children are spared: between commands that is only a child it may have forked
  # for the next command, which has run no agent code (a command's processes are gone after the framer's
  # kill; what they forked is re-parented to init, never to the framer).
  local round p k v found st uid ppid
  for round in {1..100}; do
    found=0
    for p in /proc/[1-9]*; do
      p=${p#/proc/}
      [[ $p == "$1" || $p == "$$" || $p == "$BASHPID" || " ${walker[*]:0:nwalkers} " == *" $p "* ]] && continue
      st= uid= ppid=
      { while read -r k v _; do
          case $k in State:) st=$v ;; PPid:) ppid=$v ;; Uid:) uid=$v; break ;; esac
        done < "/proc/$p/status"; } 2>/dev/null
      [[ $uid == "$U" && $st != Z && $ppid != "$1" ]] || continue
      kill -9 "$p" 2>/dev/null
      found=1
    done
    (( found )) || return 0
    read -r -t 0.02 -u "$nap" _
  done
  return 1
}

clean_tmp() {  # the agent's files in the shared temp dirs (its $HOME emptied); a glob first, to skip the fork
  local f junk=0
  # Its mode and owner too (one find: root's own [[ -r ]] tests cannot tell): a chmod 000 by the last episode
  # would otherwise leave the next one a $HOME it cannot use.
  # Only when it changed since the stamp (home_check, from the walk): a chmod, or a new inode in its place,
  # moves its ctime, and the agent cannot chown.
  # After a check, a new stamp (see the main loop), so that the next resets can skip it.
  (( home_check )) && newstamp=1
  if [[ -L $H || ! -d $H ]] ||
    { (( home_check )) && [[ -z $(find "$H" -maxdepth 0 -user "$U" -group "$U" -perm 755 2>/dev/null) ]]; }; then
    rm -rf -- "$H"
    mkdir -m 755 -p -- "$H" && chown "$U:$U" -- "$H"
  fi
  for f in /tmp/* /var/tmp/* /dev/shm/* "$H"/*; do
    [[ $f == "$H" ]] || { junk=1; break; }
  done
  (( junk )) || return 0
  find /tmp /var/tmp /dev/shm -mindepth 1 -maxdepth 1 -user "$U" ! -path "$H" -exec rm -rf -- {} + 2>/dev/null
  find "$H" -mindepth 1 -maxdepth 1 -exec rm -rf -- {} + 2>/dev/null
  return 0
}

full_restore() {  # the slow path: everything removed and copied back (setup state unknown or a step failed)
  find "$W" -mindepth 1 -maxdepth 1 -exec rm -rf -- {} + || return 1
  cp -a -- "$P/." "$W/" || return 1
  ( cd "$W" && find . -type d -printf '%i %p\0' ) > "$S/dirs" || return 1
  load_dirs
  stamp || return 1
  restart=1
}

# -- the incremental restore -----------------------------------------------------------------------------
restored=0 note= restart= newstamp=
declare -a flagged=() remove=() back=() hl=() tl=()
declare -A skip=() fix=()

pristine_names() {  # $1 ./dir -> plist[$1] (once: the pristine copy never changes)
  local IFS=/
  local -a names=("$P/$1"/*)
  names=("${names[@]#"$P/$1/"}")
  plist["$1"]="${names[*]}"
}

compare_dir() {  # $1 ./dir, the same inode as the pristine one: extra names removed, missing ones copied back
  local IFS=/ x y
  local -i i=0 j=0 nh nt c=16
  hl=("$1"/*)
  hl=("${hl[@]#"$1/"}")
  [[ -n ${plist["$1"]+set} ]] || pristine_names "$1"
  # Both lists are sorted alike and no name holds a '/', so equal joined lists are equal lists (the usual
  # case: a file in it was replaced, or its mode or times changed).
  [[ ${hl[*]} == "${plist["$1"]}" ]] && return 0
  set -f
  tl=(${plist["$1"]})  # split on '/' only (IFS), no globbing: the names exactly
  set +f
  nh=${#hl[@]} nt=${#tl[@]}
  while (( i < nh && j < nt )); do  # a merge of the two sorted lists, 16 names at a time where they agree
    if (( i + c <= nh && j + c <= nt )) && [[ ${hl[*]:i:c} == "${tl[*]:j:c}" ]]; then
      i+=c j+=c
      continue
    fi
    x=${hl[i]} y=${tl[j]}
    if [[ $x == "$y" ]]; then
      i+=1 j+=1
    elif [[ $x < $y ]]; then
      remove+=("$1/$x"); skip["$1/$x"]=1; i+=1
    else
      back+=("$1/$y"); skip["$1/$y"]=1; j+=1
    fi
  done
  for (( ; i < nh; i++ )); do x=${hl[i]}; remove+=("$1/$x"); skip["$1/$x"]=1; done
  for (( ; j < nt; j++ )); do y=${tl[j]}; back+=("$1/$y"); skip["$1/$y"]=1; done
  return 0
}

restore() {  # the incremental path; returns non-zero when it could not (then the caller does a full restore)
  local rec ino typ path rest n a
  local -a attrs=() backdirs=()
  remove=() back=() skip=() fix=()  # flagged: from walk, just before
  restored=0
  (( walked )) || return 2
  (( ${#flagged[@]} )) || return 0
  builtin cd -- "$W" || return 1
  for rec in "${flagged[@]}"; do  # pre-order: a directory comes before what is in it
    ino=${rec%% *} rest=${rec#* }
    typ=${rest%% *} path=${rest#* }
    [[ $path == "$W" ]] && path=. || path=./${path#"$W"/}
    if (( ${#skip[@]} )); then  # already removed or copied back whole, or inside such a path
      a=$path
      [[ -n ${skip["$a"]} ]] && continue
      while [[ $a == */* ]]; do
        a=${a%/*}
        [[ -n ${skip["$a"]} ]] && continue 2
      done
    fi
    if [[ $typ == d && ${dino["$path"]} == "$ino" ]]; then
      fix["$path"]=1
      compare_dir "$path"
    elif [[ $path == . ]]; then
      return 3  # the workspace itself is not the directory it was: no incremental answer
    else
      remove+=("$path")
      skip["$path"]=1
      [[ -e $P/$path || -L $P/$path ]] && back+=("$path")
      fix["${path%/*}"]=1
    fi
  done
  if (( ${#remove[@]} )); then
    delete || return 4
  fi
  for a in "${!fix[@]}"; do [[ -n ${skip["$a"]} ]] || attrs+=("$a"); done
  # Copy back what was removed or missing (recursively), then the mode, owner and times of the directories
  # whose entries changed: last, so that nothing extracted after them moves their mtime again.
  if (( ${#back[@]} + ${#attrs[@]} )); then
    if (( ${#attrs[@]} )); then printf '%s\0' "${attrs[@]}"; fi > "$S/attrs"
    if (( ${#back[@]} )); then printf '%s\0' "${back[@]}"; fi > "$S/back"
    tar -C "$P" -cf - --null -T "$S/back" --no-recursion -T "$S/attrs" |
      tar -xpf - --numeric-owner --same-owner -C "$W" || return 5
  fi
  for n in "${back[@]}"; do [[ -d $n && ! -L $n ]] && backdirs+=("$n"); done
  if (( ${#backdirs[@]} )); then  # directories copied back are new inodes
    for a in "${!dino[@]}"; do
      for n in "${backdirs[@]}"; do
        [[ $a == "$n" || $a == "$n"/* ]] && { unset -v 'dino[$a]'; break; }
      done
    done
    find "${backdirs[@]}" -type d -printf '%i %p\0' > "$S/changed" || return 7
    while IFS= read -r -d '' rec; do dino[${rec#* }]=${rec%% *}; done < "$S/changed"
    save_dirs
  fi
  restored=$(( ${#remove[@]} + ${#back[@]} ))
  stamp || return 6
  restart=1
}

load_dirs
start_walkers
start_deleter
builtin printf '%s READY\n' "$5"
while IFS=' ' read -r nonce framer; do
  if ! kill_agent "$framer"; then
    builtin printf '%s DONE 2 0 processes of the agent uid kept appearing\n' "$nonce"
    continue
  fi
  walk && walked=1 || walked=0
  clean_tmp
  restore
  rc=$?
  # $HOME was checked but the workspace needed no new stamp: take one anyway (the workspace equals the pristine
  # copy now, so a stamp is as valid as after any restore), or $HOME would be checked at every reset.
  if (( rc == 0 )) && [[ -n $newstamp && -z $restart ]]; then
    stamp && restart=1 || rc=6
  fi
  newstamp=
  if (( rc )); then
    note="incremental restore failed (step $rc): full copy"
    full_restore && rc=0 restored=-1 || rc=1 note="restoring the workspace from the pristine copy failed"
  else
    note=ok
  fi
  builtin cd /
  builtin printf '%s DONE %d %d %s\n' "$nonce" "$rc" "$restored" "$note"
  if [[ -n $restart ]]; then  # after the answer: a new walker for the new stamp, while the agent works
    restart=
    start_walkers
  fi
done
stop_walkers
stop_deleter
rm -f -- "$S"/walk.$$.* "$S"/changed.$$.* "$S/del.$$"
