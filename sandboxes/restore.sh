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
# copied back whole. One `find` walk (stat only), then one `rm` and one `tar | tar` for whatever changed.
#
# Trust: this process is root and the agent's uid cannot signal it or open its fds; it acts only after it
# has itself killed every process of the agent's uid but the framer (which the host says is idle), so nothing
# can swap a path under it. It never follows a symlink in the workspace (find -P, rm, tar entries recreated
# parents-first). Its state (the pristine copy, stamp, dirs) lives in a root-only directory.
#
# Args: $1 workspace  $2 agent uid  $3 state dir (root-only: ws/ the pristine copy, stamp, dirs)  $4 the agent's $HOME  $5 ready token
# Host -> restorer: "<nonce> <framer pid>\n"; restorer -> host: "<nonce> DONE <rc> <paths put back> <note>\n".
# rc 0: restored; anything else: the reason is in <note> (the host raises).
set +e +u
export LC_ALL=C  # byte order for globs, plain messages
W=$1 U=$2 S=$3 H=$4
P=$S/ws  # an exact copy of the workspace, inside a root-only directory
shopt -s nullglob dotglob
declare -A dino=()   # "./rel/dir" -> inode of that pristine directory in the workspace
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

stamp() {  # a new stamp, then wait until the clock has moved past it (timestamps can be one tick coarse)
  local i
  : > "$S/stamp" && : > "$S/probe" || return 1
  for i in {1..200}; do
    [[ $S/probe -nt $S/stamp ]] && return 0
    read -r -t 0.001 -u "$nap" _
    : > "$S/probe"
  done
  return 1
}

kill_agent() {  # $1 framer pid: SIGKILL every other process of the agent's uid, until none is left
  # The framer's own direct children are spared: between commands that is only a child it may have forked
  # for the next command, which has run no agent code (a command's processes are gone after the framer's
  # kill; what they forked is re-parented to init, never to the framer).
  local round p k v found st uid ppid
  for round in {1..100}; do
    found=0
    for p in /proc/[1-9]*; do
      p=${p#/proc/}
      [[ $p == "$1" || $p == "$$" || $p == "$BASHPID" ]] && continue
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
  if [[ -L $H || ! -d $H ]]; then
    rm -rf -- "$H"
    mkdir -m 755 -p -- "$H" && chown "$U:$U" -- "$H"
  fi
  for f in /tmp/* /var/tmp/* /dev/shm/* "$H"/*; do
    case $f in /tmp/.envgym | /dev/shm/.envgym | "$H") ;; *) junk=1; break ;; esac
  done
  (( junk )) || return 0
  find /tmp /var/tmp /dev/shm -mindepth 1 -maxdepth 1 -user "$U" ! -name .envgym ! -path "$H" -exec rm -rf -- {} + 2>/dev/null
  find "$H" -mindepth 1 -maxdepth 1 -exec rm -rf -- {} + 2>/dev/null
  return 0
}

full_restore() {  # the slow path: everything removed and copied back (setup state unknown or a step failed)
  find "$W" -mindepth 1 -maxdepth 1 -exec rm -rf -- {} + || return 1
  cp -a -- "$P/." "$W/" || return 1
  ( cd "$W" && find . -type d -printf '%i %p\0' ) > "$S/dirs" || return 1
  load_dirs
  stamp
}

restored=0 note=

restore() {  # the incremental path; returns non-zero when it could not (then the caller does a full restore)
  local rec ino typ path rest n e a hs ts
  local -a flagged=() remove=() back=() attrs=()
  local -A skip=() fix=()
  restored=0
  builtin cd -- "$W" || return 1
  find . -newercm "$S/stamp" -printf '%i %y %p\0' > "$S/changed" || return 2
  mapfile -t -d '' flagged < "$S/changed"
  (( ${#flagged[@]} )) || return 0
  for rec in "${flagged[@]}"; do  # pre-order: a directory comes before what is in it
    ino=${rec%% *} rest=${rec#* }
    typ=${rest%% *} path=${rest#* }
    a=$path
    [[ -n ${skip["$a"]} ]] && continue  # already removed or copied back whole, or inside such a path
    while [[ $a == */* ]]; do
      a=${a%/*}
      [[ -n ${skip["$a"]} ]] && continue 2
    done
    if [[ $typ == d && ${dino["$path"]} == "$ino" ]]; then
      # The same directory as at the last restore: compare its entries by name with the pristine one. Both
      # globs sort alike and no name holds a '/', so equal joined lists are equal sets (the usual case: only
      # files in it were edited); else one pass each way.
      fix["$path"]=1
      local -a hl=("$path"/*) tl=("$P/$path"/*)
      hl=("${hl[@]##*/}") tl=("${tl[@]##*/}")
      printf -v hs '%s/' "${hl[@]}"
      printf -v ts '%s/' "${tl[@]}"
      [[ $hs == "$ts" ]] && continue
      local -A here=() there=()
      for e in "${hl[@]}"; do here["/$e"]=1; done
      for n in "${tl[@]}"; do
        there["/$n"]=1
        [[ -n ${here["/$n"]} ]] || { back+=("$path/$n"); skip["$path/$n"]=1; }
      done
      for n in "${!here[@]}"; do
        [[ -n ${there["$n"]} ]] || { remove+=("$path$n"); skip["$path$n"]=1; }
      done
      unset here there
    elif [[ $path == . ]]; then
      return 3  # the workspace itself is not the directory it was: no incremental answer
    else
      remove+=("$path")
      skip["$path"]=1
      [[ -e $P/$path || -L $P/$path ]] && back+=("$path")
      fix["${path%/*}"]=1
    fi
  done
  if (( ${#remove[@]} > 1000 )); then
    printf '%s\0' "${remove[@]}" | xargs -0 rm -rf -- || return 4
  elif (( ${#remove[@]} )); then
    rm -rf -- "${remove[@]}" || return 4
  fi
  for a in "${!fix[@]}"; do [[ -n ${skip["$a"]} ]] || attrs+=("$a"); done
  # Copy back what was removed or missing (recursively), then the mode, owner and times of the directories
  # whose entries changed: last, so that nothing extracted after them moves their mtime again.
  if (( ${#attrs[@]} )); then printf '%s\0' "${attrs[@]}"; fi > "$S/attrs"
  if (( ${#back[@]} )); then printf '%s\0' "${back[@]}"; fi > "$S/back"
  tar -C "$P" -cf - --null -T "$S/back" --no-recursion -T "$S/attrs" |
    tar -xpf - --numeric-owner --same-owner -C "$W" || return 5
  local -a backdirs=()
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
}

load_dirs
builtin printf '%s READY\n' "$5"
while IFS=' ' read -r nonce framer; do
  if ! kill_agent "$framer"; then
    builtin printf '%s DONE 2 0 processes of the agent uid kept appearing\n' "$nonce"
    continue
  fi
  clean_tmp
  restore
  rc=$?
  if (( rc )); then
    note="incremental restore failed (step $rc): full copy"
    full_restore && rc=0 restored=-1 || rc=1 note="restoring the workspace from the pristine copy failed"
  else
    note=ok
  fi
  builtin cd / 
  builtin printf '%s DONE %d %d %s\n' "$nonce" "$rc" "$restored" "$note"
done
