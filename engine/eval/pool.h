/* SPDX-License-Identifier: MIT */
/*
 * tsguard: a pool of fixed-size records addressed by 32-bit index.
 *
 * Records live in chunks of POOL_CHUNK that never move, so a record's
 * address is stable while it is held; the pool grows a chunk at a time (no
 * doubling, nothing preallocated) and reuses freed records first. Index 0 is
 * never handed out: it means "none" wherever an index is stored.
 */
#ifndef TSG_POOL_H
#define TSG_POOL_H

#include <stddef.h>
#include <stdint.h>

#define POOL_SHIFT 12
#define POOL_CHUNK (1u << POOL_SHIFT)

struct pool {
	char **chunks;
	size_t nchunks, chunkcap;
	uint32_t esz;	/* record size, >= 4 (a free record holds the next free index) */
	uint32_t hw;	/* records handed out so far, free ones included (from 1) */
	uint32_t free;	/* first free record, 0: none */
	uint32_t inuse; /* records held now */
};

void pool_init(struct pool *p, size_t esz);
void pool_fini(struct pool *p);

static inline void *pool_at(const struct pool *p, uint32_t i)
{
	return p->chunks[i >> POOL_SHIFT] + (size_t)(i & (POOL_CHUNK - 1)) * p->esz;
}

/* A zeroed record, or 0 when out of memory (or 2^32 records). */
uint32_t pool_get(struct pool *p);
/* Gives record i back (0 is ignored). */
void pool_put(struct pool *p, uint32_t i);
/* Bytes held by the pool's chunks. */
size_t pool_bytes(const struct pool *p);

#endif
