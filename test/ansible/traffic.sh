#!/usr/bin/env bash
# During a move: `send` sends numbered messages to an agent, on host 1 first and on host 2 when
# host 1 refuses it (exit 3: not there any more), and records where each one was accepted;
# `watch` samples, on both hosts, how many live runtimes hold this agent's lock or run in its
# folder. Both stop when DIR/stop exists.
#   traffic.sh send|watch DIR AGENT_ID
set -uo pipefail
mode=$1 dir=$2 id=$3
home=/home/animus/animus
on() {
  local n=$1; shift
  ssh -i "$dir/id_ed25519" -o BatchMode=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR \
    -o ControlMaster=auto -o "ControlPath=$dir/cm-%C" -o ControlPersist=30 "root@10.213.$n.2" "$@"
}
case "$mode" in
  send)
    n=0
    while [ ! -e "$dir/stop" ]; do
      n=$((n + 1)); text="move-msg-$n"
      until [ -e "$dir/stop-now" ]; do
        if on 1 "sudo -u animus -H ANIMUS_HOME=$home animus send $id $text >/dev/null 2>&1"; then echo "$text 1" >>"$dir/sent"; break; fi
        rc=$?; echo "$text refused-1 $rc" >>"$dir/refused"
        if on 2 "sudo -u animus -H ANIMUS_HOME=$home animus send $id $text >/dev/null 2>&1"; then echo "$text 2" >>"$dir/sent"; break; fi
        rc=$?; echo "$text refused-2 $rc" >>"$dir/refused"
        sleep 0.1
      done
    done
    ;;
  watch)
    # A runtime counts when a live process holds the agent's runtime.pid (pid, boot id, start time) anywhere under the home
    # (home, moving folder, trash), or when a node process's working directory is its folder.
    probe='pids=
      for f in $(find '"$home"' -path "*'"$id"'*" -name runtime.pid 2>/dev/null); do p=$(cut -d" " -f1 "$f" 2>/dev/null); [ -n "$p" ] && kill -0 "$p" 2>/dev/null && pids="$pids $p"; done
      for p in $(pgrep -x node 2>/dev/null); do case "$(readlink /proc/$p/cwd 2>/dev/null)" in *'"$id"'*) grep -q runtime /proc/$p/cmdline 2>/dev/null && pids="$pids $p";; esac; done
      echo $pids | tr " " "\n" | sort -u | grep -c . || true'
    while [ ! -e "$dir/stop" ]; do
      a=$(on 1 "$probe" 2>/dev/null) || a=x
      b=$(on 2 "$probe" 2>/dev/null) || b=x
      echo "$(date +%s.%N) $a $b" >>"$dir/samples"
      sleep 0.05
    done
    ;;
esac
