#!/bin/sh
# expect_exit.sh CODE TEXT COMMAND [ARG...]: COMMAND exits with CODE, and its output (stdout and
# stderr together) contains TEXT. The output is printed for the test log.
code=$1
text=$2
shift 2
out=$("$@" 2>&1)
status=$?
printf '%s\n' "$out"
if [ "$status" -ne "$code" ]; then
  echo "expect_exit: expected exit code $code, got $status" >&2
  exit 1
fi
if ! printf '%s\n' "$out" | grep -qF -- "$text"; then
  echo "expect_exit: expected the output to contain: $text" >&2
  exit 1
fi
