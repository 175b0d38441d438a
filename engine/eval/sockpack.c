/* SPDX-License-Identifier: MIT */
#include "sockpack.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

_Static_assert(TSG_HAVE_ALL < SE_EXT && SE_EXT < SE_V6, "SE_* must not be field bits");

static void v4_mapped(uint32_t a, uint8_t out[16])
{
	memset(out, 0, 10);
	out[10] = out[11] = 0xff;
	memcpy(out + 12, &a, 4);
}

/* Stores one address (r: the remote one). */
static int addr_put(struct pool *v6, struct sock_ent *s, bool r, const uint8_t a[16])
{
	struct sock_addr6 *x;

	if (!(s->have & SE_V6) && tsg_addr_is_v4mapped(a)) {
		memcpy(r ? &s->ra : &s->la, a + 12, 4);
		return 0;
	}
	if (!(s->have & SE_V6)) {
		uint32_t i = pool_get(v6);

		if (!i)
			return -ENOMEM;
		x = pool_at(v6, i);
		if (s->have & TSG_HAVE(TSG_SF_LADDR))
			v4_mapped(s->la, x->laddr);
		if (s->have & TSG_HAVE(TSG_SF_RADDR))
			v4_mapped(s->ra, x->raddr);
		s->la = i;
		s->ra = 0;
		s->have |= SE_V6;
	}
	x = pool_at(v6, s->la);
	memcpy(r ? x->raddr : x->laddr, a, 16);
	return 0;
}

static int comm_put(struct sock_ent *s, const char comm[TSG_COMM_LEN])
{
	char buf[TSG_COMM_LEN + 1];

	if (s->comm && !strncmp(s->comm, comm, TSG_COMM_LEN))
		return 0;
	memcpy(buf, comm, TSG_COMM_LEN);
	buf[TSG_COMM_LEN] = 0;
	s->comm = tsg_intern(buf);
	return s->comm ? 0 : -ENOMEM;
}

#define EXT_FIELDS                                                                                 \
	(TSG_HAVE(TSG_SF_CGROUP) | TSG_HAVE(TSG_SF_NETNS_NAME) | TSG_HAVE(TSG_SF_CONTAINER) |      \
	 TSG_HAVE(TSG_SF_POD))

static bool ext_same(const struct sock_ext *a, const struct sock_ext *b)
{
	return a->cgroup == b->cgroup && a->netns_name == b->netns_name &&
	       a->container == b->container && a->pod == b->pod;
}

/* The strings are interned: equal strings are equal pointers. */
static uint32_t ext_bucket_of(const struct sock_side *side, const struct sock_ext *x)
{
	uint64_t h = tsg_hash64((uint64_t)(uintptr_t)x->cgroup);

	h = tsg_hash64(h ^ (uint64_t)(uintptr_t)x->netns_name);
	h = tsg_hash64(h ^ (uint64_t)(uintptr_t)x->container);
	h = tsg_hash64(h ^ (uint64_t)(uintptr_t)x->pod);
	return (uint32_t)(h & (side->ext_nbuckets - 1));
}

/* Doubles the chains (at least 64); on failure the old ones stay. */
static int ext_grow(struct sock_side *side)
{
	uint32_t on = side->ext_nbuckets, n = on ? on * 2 : 64, *ob = side->ext_bucket;
	uint32_t *nb;

	if (on >= (1u << 31) || !(nb = calloc(n, sizeof(*nb))))
		return -ENOMEM;
	side->ext_bucket = nb;
	side->ext_nbuckets = n;
	for (uint32_t b = 0; b < on; b++)
		for (uint32_t i = ob[b], next; i; i = next) {
			struct sock_ext *x = pool_at(&side->ext, i);
			uint32_t nbk = ext_bucket_of(side, x);

			next = x->next;
			x->next = nb[nbk];
			nb[nbk] = i;
		}
	free(ob);
	return 0;
}

/* The record of these four, held once more (made when new); 0: out of memory. */
static uint32_t ext_hold(struct sock_side *side, const struct sock_ext *want)
{
	struct sock_ext *x;
	uint32_t b, i;

	if (side->ext.inuse >= side->ext_nbuckets && ext_grow(side) < 0 && !side->ext_nbuckets)
		return 0;
	b = ext_bucket_of(side, want);
	for (i = side->ext_bucket[b]; i; i = x->next) {
		x = pool_at(&side->ext, i);
		if (ext_same(x, want)) {
			x->refs++;
			return i;
		}
	}
	if (!(i = pool_get(&side->ext)))
		return 0;
	x = pool_at(&side->ext, i);
	*x = *want;
	x->refs = 1;
	x->next = side->ext_bucket[b];
	side->ext_bucket[b] = i;
	return i;
}

/* A socket lets record i go; the last one gives it back. */
static void ext_drop(struct sock_side *side, uint32_t i)
{
	struct sock_ext *x = pool_at(&side->ext, i);
	uint32_t *pp;

	if (--x->refs)
		return;
	for (pp = &side->ext_bucket[ext_bucket_of(side, x)]; *pp != i;
	     pp = &((struct sock_ext *)pool_at(&side->ext, *pp))->next)
		;
	*pp = x->next;
	pool_put(&side->ext, i);
}

/* cgroup, netns name, container, pod: the socket's four, a shared record. */
static int ext_put(struct sock_side *side, struct sock_ent *s, const struct tsg_sockinfo *in,
		   uint32_t h)
{
	struct sock_ext want = {0};
	uint32_t i;

	if (s->have & SE_EXT)
		want = *(const struct sock_ext *)pool_at(&side->ext, s->ext);
	if (h & TSG_HAVE(TSG_SF_CGROUP))
		want.cgroup = in->cgroup;
	if (h & TSG_HAVE(TSG_SF_NETNS_NAME))
		want.netns_name = in->netns_name;
	if (h & TSG_HAVE(TSG_SF_CONTAINER))
		want.container = in->container;
	if (h & TSG_HAVE(TSG_SF_POD))
		want.pod = in->pod;
	if ((s->have & SE_EXT) && ext_same(&want, pool_at(&side->ext, s->ext)))
		return 0;
	if (!(i = ext_hold(side, &want)))
		return -ENOMEM;
	if (s->have & SE_EXT)
		ext_drop(side, s->ext);
	s->ext = i;
	s->have |= SE_EXT;
	return 0;
}

int sock_pack_merge(struct sock_side *side, struct sock_ent *s, const struct tsg_sockinfo *in)
{
	struct pool *v6 = &side->v6;
	uint32_t h = in->have & TSG_HAVE_ALL;
	int rc = 0;

	if ((h & TSG_HAVE(TSG_SF_COMM)) && comm_put(s, in->comm) < 0) {
		h &= ~TSG_HAVE(TSG_SF_COMM);
		s->have &= (uint16_t)~TSG_HAVE(TSG_SF_COMM);
		rc = -ENOMEM;
	}
	/* each address known at once: a later one may move both to the IPv6 pool */
	for (int remote = 0; remote < 2; remote++) {
		uint32_t bit = TSG_HAVE(remote ? TSG_SF_RADDR : TSG_SF_LADDR);

		if (!(h & bit))
			continue;
		h &= ~bit;
		if (addr_put(v6, s, remote, remote ? in->raddr : in->laddr) < 0)
			rc = -ENOMEM;
		else
			s->have |= (uint16_t)bit;
	}
	if (h & TSG_HAVE(TSG_SF_PID))
		s->pid = in->pid;
	if (h & TSG_HAVE(TSG_SF_UID))
		s->uid = in->uid;
	if ((h & EXT_FIELDS) && ext_put(side, s, in, h) < 0) {
		h &= ~EXT_FIELDS;
		rc = -ENOMEM;
	}
	if (h & TSG_HAVE(TSG_SF_NETNS))
		s->netns = in->netns;
	if (h & TSG_HAVE(TSG_SF_LPORT))
		s->lport = in->lport;
	if (h & TSG_HAVE(TSG_SF_RPORT))
		s->rport = in->rport;
	if (h & TSG_HAVE(TSG_SF_FAMILY))
		s->family = in->family;
	s->have |= (uint16_t)h;
	return rc;
}

void sock_unpack(const struct sock_side *side, const struct sock_ent *s, struct tsg_sockinfo *out)
{
	const struct pool *v6 = &side->v6;
	uint32_t h = s->have & TSG_HAVE_ALL;

	memset(out, 0, sizeof(*out));
	out->have = h;
	if (h & TSG_HAVE(TSG_SF_COMM))
		strncpy(out->comm, s->comm, TSG_COMM_LEN - 1);
	if (s->have & SE_V6) {
		const struct sock_addr6 *x = pool_at(v6, s->la);

		memcpy(out->laddr, x->laddr, 16);
		memcpy(out->raddr, x->raddr, 16);
	} else {
		if (h & TSG_HAVE(TSG_SF_LADDR))
			v4_mapped(s->la, out->laddr);
		if (h & TSG_HAVE(TSG_SF_RADDR))
			v4_mapped(s->ra, out->raddr);
	}
	out->pid = s->pid;
	out->uid = s->uid;
	out->netns = s->netns;
	if (s->have & SE_EXT) {
		const struct sock_ext *x = pool_at(&side->ext, s->ext);

		out->cgroup = x->cgroup;
		out->netns_name = x->netns_name;
		out->container = x->container;
		out->pod = x->pod;
	}
	out->lport = s->lport;
	out->rport = s->rport;
	out->family = s->family;
}

void sock_pack_release(struct sock_side *side, struct sock_ent *s)
{
	if (s->have & SE_V6)
		pool_put(&side->v6, s->la);
	if (s->have & SE_EXT)
		ext_drop(side, s->ext);
	s->have &= (uint16_t) ~(SE_V6 | SE_EXT);
}

void sock_side_init(struct sock_side *side)
{
	pool_init(&side->v6, sizeof(struct sock_addr6));
	pool_init(&side->ext, sizeof(struct sock_ext));
	side->ext_bucket = NULL;
	side->ext_nbuckets = 0;
}

void sock_side_fini(struct sock_side *side)
{
	pool_fini(&side->v6);
	pool_fini(&side->ext);
	free(side->ext_bucket);
	side->ext_bucket = NULL;
	side->ext_nbuckets = 0;
}
_Static_assert(sizeof(struct sock_ent) == 64, "a tracked socket is 64 bytes");
