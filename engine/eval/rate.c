/* SPDX-License-Identifier: MIT */
/* tsguard: the sliding window of a rate rule key (see rate.h). */
#include "rate.h"

#include <errno.h>
#include <stdlib.h>

static uint64_t base_cell(uint64_t per)
{
	return per && per < TSG_RATE_CELL_NS ? per : TSG_RATE_CELL_NS;
}

static uint32_t ring_at(const struct tsg_rate_win *w, uint32_t i)
{
	return (w->head + i) % w->cap;
}

static void pop_front(struct tsg_rate_win *w)
{
	w->total -= w->n[w->head];
	w->head = (w->head + 1) % w->cap;
	w->len--;
}

static void expire(struct tsg_rate_win *w, uint64_t now, uint64_t per)
{
	while (w->len && w->ts[w->head] + per <= now)
		pop_front(w);
}

/* Doubles the ring (up to the bound), unrolled oldest first. */
static int grow(struct tsg_rate_win *w)
{
	uint32_t ncap = w->cap ? w->cap * 2 : 4;
	uint64_t *ts;
	uint32_t *n;

	if (ncap > TSG_RATE_MAX_BUCKETS)
		return -ENOSPC;
	ts = malloc(ncap * sizeof(*ts));
	n = malloc(ncap * sizeof(*n));
	if (!ts || !n) {
		free(ts);
		free(n);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < w->len; i++) {
		ts[i] = w->ts[ring_at(w, i)];
		n[i] = w->n[ring_at(w, i)];
	}
	free(w->ts);
	free(w->n);
	w->ts = ts;
	w->n = n;
	w->cap = ncap;
	w->head = 0;
	return 0;
}

/*
 * The ring is full of buckets within `per`: widens the cell to the smallest
 * power-of-two multiple that fits the window in half the ring, and merges
 * the buckets of each wider cell into its first one (they leave earlier,
 * never later). Returns true when a slot was freed.
 */
static bool coarsen(struct tsg_rate_win *w, uint64_t per)
{
	uint64_t cell = w->cell * 2;
	uint32_t j = 0;

	while (per / cell + 2 > TSG_RATE_MAX_BUCKETS / 2)
		cell *= 2;
	for (uint32_t i = 1; i < w->len; i++) {
		uint32_t to = ring_at(w, j), from = ring_at(w, i);

		if (w->ts[from] / cell == w->ts[to] / cell &&
		    (uint64_t)w->n[to] + w->n[from] <= UINT32_MAX) {
			w->n[to] += w->n[from];
			continue;
		}
		to = ring_at(w, ++j);
		w->ts[to] = w->ts[from];
		w->n[to] = w->n[from];
	}
	w->cell = cell;
	if (j + 1 == w->len)
		return false;
	w->len = j + 1;
	return true;
}

/* Makes room for one more bucket: 1 when the cells widened, <0 when none. */
static int make_room(struct tsg_rate_win *w, uint64_t per)
{
	int rc = grow(w);

	if (rc == 0)
		return 0;
	if (w->len && coarsen(w, per))
		return 1;
	return rc == -ENOSPC ? -ENOMEM : rc;
}

int tsg_rate_push(struct tsg_rate_win *w, uint64_t now, uint64_t per, uint64_t keep)
{
	uint64_t base = base_cell(per);
	uint32_t back;
	int rc = 0;

	expire(w, now, per);
	if (!w->len || w->cell < base)
		w->cell = base; /* an empty window starts again at 1 ms */
	back = w->len ? ring_at(w, w->len - 1) : 0;
	if (w->len && w->ts[back] / w->cell == now / w->cell && w->n[back] < UINT32_MAX) {
		w->n[back]++;
	} else {
		if (w->len == w->cap && (rc = make_room(w, per)) < 0) {
			if (!w->len)
				return rc;
			/* out of memory: the event joins the newest bucket */
			rc = 1;
			if (w->n[back] == UINT32_MAX)
				return -ENOMEM;
			w->n[back]++;
			goto trim;
		}
		back = ring_at(w, w->len++);
		w->ts[back] = now;
		w->n[back] = 1;
	}
trim:
	w->total++;
	/* only the newest buckets holding `keep` events matter */
	while (w->len > 1 && w->total - w->n[w->head] >= keep)
		pop_front(w);
	return rc;
}

uint64_t tsg_rate_count(struct tsg_rate_win *w, uint64_t now, uint64_t per)
{
	expire(w, now, per);
	return w->total;
}

uint64_t tsg_rate_next_expiry(const struct tsg_rate_win *w, uint64_t per)
{
	return w->len ? w->ts[w->head] + per : UINT64_MAX;
}

bool tsg_rate_live(const struct tsg_rate_win *w, uint64_t now, uint64_t per)
{
	return w->len && w->ts[ring_at(w, w->len - 1)] + per > now;
}

uint64_t tsg_rate_resolution(const struct tsg_rate_win *w)
{
	return w->len ? w->cell : 0;
}

void tsg_rate_fini(struct tsg_rate_win *w)
{
	free(w->ts);
	free(w->n);
	*w = (struct tsg_rate_win){0};
}
