#!/bin/bash
# usage: run.sh rounds pattern out-prefix
R=$1; P=$2; O=$3
rm -f $O.old $O.new
for i in $(seq 1 $R); do
  echo "round $i load: $(cat /proc/loadavg)" >&2
  (cd /work/wt/typed/bench && /tmp/typed/old.test -test.run '^$' -test.bench "$P" -test.benchmem -test.benchtime 0.5s -test.count 1 | grep ^Bench >> $O.old)
  (cd /work/wt/typed/bench && /tmp/typed/new.test -test.run '^$' -test.bench "$P" -test.benchmem -test.benchtime 0.5s -test.count 1 | grep ^Bench >> $O.new)
done
echo "end load: $(cat /proc/loadavg)" >&2
