#!/bin/sh
# The demo participant's program: the sum of the digits of each number in /input/numbers.txt,
# written as {"predictions": [...]} to $SUBMISSION_PATH/submission.json. Plain busybox sh, no Python.
set -u
inputs="${INPUT_PATH:-/input}/numbers.txt"
out="${SUBMISSION_PATH:-/output}/submission.json"
predictions=""
while IFS= read -r number || [ -n "$number" ]; do
  [ -n "$number" ] || continue
  sum=0
  rest="$number"
  while [ -n "$rest" ]; do
    digit="${rest%"${rest#?}"}"
    rest="${rest#?}"
    case "$digit" in [0-9]) sum=$((sum + digit)) ;; esac
  done
  predictions="${predictions:+$predictions, }$sum"
done < "$inputs"
printf '{"predictions": [%s]}\n' "$predictions" > "$out"
