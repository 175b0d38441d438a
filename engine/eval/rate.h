/* SPDX-License-Identifier: MIT */
/*
 * tsguard: the sliding window of one rate rule key ("more than N matching
 * transitions within the last `per`").
 *
 * A deque of buckets, oldest first. A bucket is (time of its first event in
 * ns, events in it); an event joins the newest bucket when both fall in the
 * same cell of the clock, a cell being 1 ms (or `per` when shorter), and a
 * bucket leaves the window, all its events at once, `per` after its first
 * event. So an event leaves at most one cell early: events 1 ms or more
 * apart are counted to the nanosecond, events closer than that share the
 * first one's expiry (resolution 1 ms).
 *
 * Cost: every bucket is added once and removed once, so an event costs O(1)
 * amortised, whatever N and `per`.
 *
 * Memory: 12 bytes per bucket, at most min(N + 1 events' buckets,
 * per / 1 ms + 1, TSG_RATE_MAX_BUCKETS) buckets: only the newest buckets
 * holding N + 1 events matter (they alone decide "more than N", and older
 * ones leave before them), and a cell holds one bucket. A window longer than
 * TSG_RATE_MAX_BUCKETS - 1 ms whose ring fills (a key with events in more
 * than that many distinct milliseconds within `per`) widens its cells to a
 * power-of-two multiple of 1 ms so that they fit in half the ring: for
 * `per: 1h`, 128 ms. That is counted (tsg_rate_push returns 1) and lasts
 * until the window empties.
 */
#ifndef TSG_RATE_H
#define TSG_RATE_H

#include <stdbool.h>
#include <stdint.h>

#define TSG_RATE_MAX_BUCKETS 65536u
#define TSG_RATE_CELL_NS     1000000ull /* 1 ms */

struct tsg_rate_win {
	uint64_t *ts; /* ring: first event of each bucket (ns) */
	uint32_t *n;  /* ring: events in each bucket */
	uint32_t cap, head, len;
	uint64_t total; /* events in the buckets */
	uint64_t cell;	/* coalescing cell (ns); 0: not set yet */
};

/*
 * Adds an event at `now` (non-decreasing) to a window of `per` that keeps
 * what `keep` (= N + 1) events need. Returns 0, 1 when the cells had to be
 * widened, or -ENOMEM when the event could not be stored (nothing held).
 */
int tsg_rate_push(struct tsg_rate_win *w, uint64_t now, uint64_t per, uint64_t keep);
/* Drops buckets that left the window at `now`; returns the events left. */
uint64_t tsg_rate_count(struct tsg_rate_win *w, uint64_t now, uint64_t per);
/* When the window next loses events (UINT64_MAX: empty). */
uint64_t tsg_rate_next_expiry(const struct tsg_rate_win *w, uint64_t per);
/* True while some event is still in the window at `now`. */
bool tsg_rate_live(const struct tsg_rate_win *w, uint64_t now, uint64_t per);
/* Current cell width in ns (the resolution), 0 for an empty window. */
uint64_t tsg_rate_resolution(const struct tsg_rate_win *w);
void tsg_rate_fini(struct tsg_rate_win *w);

#endif
