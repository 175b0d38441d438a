#!/bin/bash
# The every-transition rule set of the kernel benchmarks, to stdout: count
# rules on every state and a rate rule from every state, so that every
# transition crosses to user space; no threshold is ever reached.
STATES="ESTABLISHED SYN_SENT SYN_RECV FIN_WAIT1 FIN_WAIT2 TIME_WAIT CLOSE CLOSE_WAIT LAST_ACK LISTEN CLOSING"
echo "rules:"
for s in $STATES; do
	[ "$s" = CLOSE ] && continue
	echo "  - name: many-$(echo "$s" | tr 'A-Z_' 'a-z-')"
	echo "    when: {state: $s, count_above: 100000000, by: comm}"
done
echo "  - name: fast-leaves"
echo "    when: {from: [$(echo "$STATES" | tr ' ' ',')], rate_above: 1000000000, per: 1s, by: comm}"
