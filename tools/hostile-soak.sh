#!/bin/bash
# Hostile-neighbour soak: boots the OS again and again with the conformance suite
# beside a random mix of hostile programs (2 to 4 of `hog` and `hostile`'s attacks,
# in a random order), optionally under a random-timing kill storm, and checks what
# outside testers check: the suite passes in full (with a storm: every failure
# explained by an ERESTART), the system is not shut down by the attacks alone, each
# `hostile` attack reports itself contained (without a storm), the run ends within
# 300 s, and the disk is clean for e2fsck. One line per system; a failed check
# prints FAIL and the logs' directory. A soak, not a test: its mixes and timings are random (the
# seed of each run is printed, and `SEED=N` replays one mix).
#
#   tools/hostile-soak.sh   (ANKH=path/to/ankh, RUNS=N, SUBSTRATE=kvm|process|both,
#                            STORM=0|1, SEED=N)
set -u
ANKH=${ANKH:-target/release/ankh}
RUNS=${RUNS:-10}
SUBSTRATE=${SUBSTRATE:-both}
STORM=${STORM:-0}
command -v e2fsck >/dev/null || { echo "hostile-soak: e2fsck not found (install e2fsprogs)"; exit 2; }
[ -x "$ANKH" ] || { echo "hostile-soak: $ANKH not found (cargo build --release, or set ANKH)"; exit 2; }

# Attacks that end by themselves whatever runs beside them. `hog` kinds watch the
# first job (the suite) and stop with it; `hostile` attacks check their own bound.
attacks=("hog spin" "hog exits" "hog calls" "hog replies" "hog inbox" "hog spawn-kill"
  "hostile ds" "hostile kill" "hostile orphans" "hostile pipe" "hostile hoard"
  "hostile files" "hostile memory" "hostile disk" "hostile inodes")
failures=0
for run in $(seq 1 "$RUNS"); do
  seed=${SEED:-$((RANDOM * 32768 + RANDOM))}
  RANDOM=$seed
  substrate=$SUBSTRATE
  [ "$substrate" = both ] && substrate=$( ((RANDOM % 2)) && echo process || echo kvm)
  picked=()
  # Distinct attacks: each resource attack takes its session's share (half of the
  # resource), so two of one kind would take all of it by design.
  count=$((2 + RANDOM % 3))
  while [ ${#picked[@]} -lt "$count" ]; do
    attack=${attacks[RANDOM % ${#attacks[@]}]}
    [[ " ${picked[*]} " == *" $attack "* ]] || picked+=("$attack")
  done
  [ "$substrate" = process ] && ((RANDOM % 3 == 0)) && picked+=("hog off-turn")
  args=(--run suite)
  for attack in "${picked[@]}"; do args+=(--run "$attack"); done
  dir=$(mktemp -d)
  sock=$dir/ctl.sock
  start=$(date +%s%N)
  timeout 300 "$ANKH" up --substrate "$substrate" --policy enhanced "${args[@]}" \
    --control "$sock" --disk "$dir/disk.img" >"$dir/out.txt" 2>"$dir/err.txt" &
  pid=$!
  kills=0
  if [ "$STORM" = 1 ]; then
    for _ in $(seq 1 200); do [ -S "$sock" ] && break; sleep 0.02; done
    while kill -0 "$pid" 2>/dev/null; do
      # Gentler than kill-storm.sh (every 0-90 ms): beside hogs that slow the
      # servers down, that rate keeps 64 kills waiting and strikes every request,
      # so the suite's calls give up after their 72 attempts, all of them ERESTART.
      sleep "0.$((1 + RANDOM % 4))"
      server=$(shuf -n1 -e pm vfs ds mm blk)
      when=$(shuf -n1 -e now idle mid-request)
      kind=$(shuf -n1 -e crash hang corrupt)
      timeout 10 "$ANKH" ctl --control "$sock" kill --when "$when" --kind "$kind" "$server" \
        >>"$dir/kills.txt" 2>&1 && kills=$((kills + 1))
    done
  fi
  wait "$pid"
  status=$?
  ms=$((($(date +%s%N) - start) / 1000000))
  e2fsck -fn "$dir/disk.img" >/dev/null 2>&1
  fsck=$?
  suite=$(grep -Eo "[0-9]+ passed, [0-9]+ failed" "$dir/out.txt" | head -1)
  explained=$(grep -Eo "suite: [0-9]+ failed, [0-9]+ of them after ERESTART" "$dir/out.txt" | head -1)
  shutdown=$(grep -o "controlled shutdown: .*" "$dir/out.txt" | head -1)
  uncontained=$(grep -E "^\[hostile\] hostile: [a-z-]+ failed" "$dir/out.txt" | head -1)
  verdict=ok
  [ "$suite" = "252 passed, 0 failed" ] || {
    [ "$STORM" = 1 ] && [[ "$explained" =~ suite:\ ([0-9]+)\ failed,\ ([0-9]+)\ of ]] &&
      [ "${BASH_REMATCH[1]}" = "${BASH_REMATCH[2]}" ] && [ -n "$suite" ]
  } || verdict="FAIL suite '$suite'"
  [ -z "$shutdown" ] || [ "$STORM" = 1 ] || verdict="FAIL $shutdown"
  # Under a storm an attack may be cut short by an ERESTART, and its helpers with it
  # (a writer whose reader gave up sees a short write): attacks make their calls once,
  # so their verdicts count only without a storm.
  [ -z "$uncontained" ] || [ "$STORM" = 1 ] || verdict="FAIL $uncontained"
  [ "$fsck" = 0 ] || verdict="FAIL e2fsck $fsck"
  [ "$status" = 124 ] && verdict="FAIL timed out"
  [ "$verdict" = ok ] || failures=$((failures + 1))
  echo "run $run seed $seed $substrate [$(IFS=,; echo "${picked[*]}")]: $verdict, exit $status, ${ms} ms, kills $kills$([ "$verdict" = ok ] || echo " (logs: $dir)")"
  [ "$verdict" = ok ] && rm -rf "$dir"
done
echo "hostile-soak: $failures of $RUNS runs failed"
[ "$failures" = 0 ]
