#!/bin/sh
# Lists the C files over 900 lines and the functions over 100 lines (from the
# line of the name to the closing brace at column 0) in engine/ actions/ bpf/.
# Usage: scripts/sizes.sh [FILE_LIMIT [FUNCTION_LIMIT]]
cd "$(dirname "$0")/.." || exit 1
files=$(git ls-files 'engine/*.c' 'actions/*.c' 'bpf/*.c')
wc -l $files | awk -v max="${1:-900}" '$2 != "total" && $1 > max { print "file " $2 " " $1 }'
awk -v max="${2:-100}" '
	FNR == 1 { name = "" }
	/^[A-Za-z_][A-Za-z0-9_ \*]*\(/ && !/;[ \t]*$/ {
		s = $0; sub(/\(.*/, "", s); n = split(s, w, /[ \*]+/)
		name = w[n]; start = FNR
	}
	/^}/ && name != "" {
		if (FNR - start + 1 > max) print "function " FILENAME ":" start " " name " " FNR - start + 1
		name = ""
	}' $files
