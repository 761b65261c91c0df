#!/usr/bin/env bash
# Summarises a ptxas -v log (bench/dev/bin/ptxas.log by default): one line per
# kernel with registers, spills and shared memory, demangled.
log="${1:-$(dirname "$0")/bin/kernel_check.ptxas.log}"
awk '/Compiling entry function/{match($0,/'"'"'[^'"'"']+'"'"'/); fn=substr($0,RSTART+1,RLENGTH-2); arch=$NF}
     /spill stores/{sp=$0; sub(/.*\. */,"",sp)}
     /Used [0-9]+ registers/{match($0,/Used [0-9]+ registers/); r=substr($0,RSTART+5,RLENGTH-15); print arch "\t" fn "\t" r " regs\t" sp}' "$log" |
  c++filt | sed -e 's/(Fp[A-Za-z]*Params)//' | sort -u |
  awk -F'\t' '{printf "%-10s %-72s %-9s %s\n",$1,$2,$3,$4}'
