/* SPDX-License-Identifier: MIT */
#include "pool.h"

#include <stdlib.h>
#include <string.h>

void pool_init(struct pool *p, size_t esz)
{
	memset(p, 0, sizeof(*p));
	p->esz = (uint32_t)(esz < sizeof(uint32_t) ? sizeof(uint32_t) : esz);
	p->hw = 1; /* index 0 is "none" */
}

void pool_fini(struct pool *p)
{
	for (size_t i = 0; i < p->nchunks; i++)
		free(p->chunks[i]);
	free(p->chunks);
	pool_init(p, p->esz);
}

static int pool_grow(struct pool *p)
{
	char *c;

	if (p->nchunks == p->chunkcap) {
		size_t ncap = p->chunkcap ? p->chunkcap * 2 : 16;
		char **nc = realloc(p->chunks, ncap * sizeof(*nc));

		if (!nc)
			return -1;
		p->chunks = nc;
		p->chunkcap = ncap;
	}
	c = malloc((size_t)POOL_CHUNK * p->esz);
	if (!c)
		return -1;
	p->chunks[p->nchunks++] = c;
	return 0;
}

uint32_t pool_get(struct pool *p)
{
	uint32_t i = p->free;
	void *r;

	if (i) {
		memcpy(&p->free, pool_at(p, i), sizeof(p->free));
	} else {
		if (p->hw == UINT32_MAX)
			return 0;
		if ((p->hw >> POOL_SHIFT) >= p->nchunks && pool_grow(p) < 0)
			return 0;
		i = p->hw++;
	}
	r = pool_at(p, i);
	memset(r, 0, p->esz);
	p->inuse++;
	return i;
}

void pool_put(struct pool *p, uint32_t i)
{
	if (!i)
		return;
	memcpy(pool_at(p, i), &p->free, sizeof(p->free));
	p->free = i;
	p->inuse--;
}

size_t pool_bytes(const struct pool *p)
{
	return p->nchunks * (size_t)POOL_CHUNK * p->esz;
}
