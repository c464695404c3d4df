#!/usr/bin/env bash
# Checks clinical_note's behaviour and exit codes. Needs LLMEDGE_MODEL and EXAMPLES_BIN.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
bin="$EXAMPLES_BIN/cpp/clinical_note/clinical_note"
fail=0
expect() { # expect CODE DESCRIPTION COMMAND...
  local want=$1 what=$2; shift 2
  "$@" >/tmp/clinical_note.out 2>/tmp/clinical_note.err
  local got=$?
  if [ "$got" -ne "$want" ]; then echo "clinical_note: $what: exit $got, want $want"; cat /tmp/clinical_note.err; fail=1; fi
}
expect 0 "summary" "$bin" "$LLMEDGE_MODEL" < "$here/sample_note.txt"
[ -s /tmp/clinical_note.out ] || { echo "clinical_note: empty summary"; fail=1; }
expect 2 "usage" "$bin"
expect 3 "missing model" "$bin" /nonexistent.gguf < "$here/sample_note.txt"
expect 4 "invalid model" "$bin" "$here/sample_note.txt" < "$here/sample_note.txt"
expect 5 "empty note" "$bin" "$LLMEDGE_MODEL" < /dev/null
printf 'bad \xff\xfe bytes' > /tmp/clinical_note.bad
expect 7 "non-UTF-8 note" "$bin" "$LLMEDGE_MODEL" < /tmp/clinical_note.bad
python3 -c 'print("word " * 3000)' > /tmp/clinical_note.long
expect 6 "note too long" "$bin" "$LLMEDGE_MODEL" < /tmp/clinical_note.long
[ "$fail" -eq 0 ] && echo "clinical_note: 7 passed, 0 failed"
exit "$fail"
