#!/bin/bash
# Random-timing kill storm: runs the OS with the suite under `enhanced` while
# `ankh ctl kill` strikes a random server, at a random moment and of a random kind,
# every 0-90 ms; then checks the disk with e2fsck. The suite runs SUITE_RUNS times in
# a row in each system (`suite --runs`), so that the storm lasts: one run of the
# suite takes well under a second, less than the storm needs to get going. One line
# per system: the exit status, the disk check, the kills that struck, the
# recoveries, each suite run's result (`passed/failed`, and how many of the failures
# came after an ERESTART, which error virtualization explains) and the reason of a
# controlled shutdown. A soak, not a test (its outcomes depend on timing).
#
#   tools/kill-storm.sh [RUNS]   (ANKH=path/to/ankh, SUBSTRATE=kvm|process, SUITE_RUNS=1..99)
#
# On processes the suite is fast enough that 9 runs can end after a handful of kills:
# use SUITE_RUNS=30 or more there.
set -u
ANKH=${ANKH:-target/release/ankh}
RUNS=${1:-10}
SUBSTRATE=${SUBSTRATE:-kvm}
SUITE_RUNS=${SUITE_RUNS:-5}
command -v e2fsck >/dev/null || { echo "kill-storm: e2fsck not found (install e2fsprogs)"; exit 2; }
[ -x "$ANKH" ] || { echo "kill-storm: $ANKH not found (cargo build --release, or set ANKH)"; exit 2; }
for run in $(seq 1 "$RUNS"); do
  dir=$(mktemp -d)
  sock=$dir/ctl.sock
  timeout 300 "$ANKH" up --substrate "$SUBSTRATE" --policy enhanced --run "suite --runs $SUITE_RUNS" \
    --control "$sock" --disk "$dir/disk.img" >"$dir/out.txt" 2>"$dir/err.txt" &
  pid=$!
  for _ in $(seq 1 200); do [ -S "$sock" ] && break; sleep 0.02; done
  kills=0
  while kill -0 "$pid" 2>/dev/null; do
    sleep "0.0$((RANDOM % 10))"
    server=$(shuf -n1 -e pm vfs ds mm blk)
    when=$(shuf -n1 -e now idle mid-request window-closed)
    kind=$(shuf -n1 -e crash hang corrupt)
    timeout 10 "$ANKH" ctl --control "$sock" kill --when "$when" --kind "$kind" "$server" \
      >>"$dir/kills.txt" 2>&1 && kills=$((kills + 1))
  done
  wait "$pid"; status=$?
  e2fsck -fn "$dir/disk.img" >/dev/null 2>&1; fsck=$?
  suite=$(grep -Eo "[0-9]+ passed, [0-9]+ failed" "$dir/out.txt" | sed -E 's/ passed, /\//; s/ failed//' | tr '\n' ' ')
  after=$(grep -Eo "[0-9]+ of them after ERESTART" "$dir/out.txt" | grep -Eo "^[0-9]+" | tr '\n' ' ')
  recoveries=$(grep -c "^recovery:" "$dir/out.txt")
  reason=$(grep -o "controlled shutdown: .*" "$dir/out.txt" | head -1)
  echo "run $run: exit $status, e2fsck $fsck, kills $kills, recoveries $recoveries, suite runs '${suite% }' (after ERESTART: ${after% }) $reason (logs: $dir)"
done
