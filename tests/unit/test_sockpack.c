/* SPDX-License-Identifier: MIT */
/*
 * The engine's packed socket record against the reference: merging events
 * into a struct sock_ent and unpacking it gives exactly what merging the same
 * events with tsg_sockinfo_copy gives (random fields, IPv4 and IPv6).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tsg_test_main.h"

#include "sockpack.h"

static uint32_t rnd(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

static void rand_addr(uint32_t *seed, uint8_t a[16])
{
	static const char *const v[] = {"10.0.0.1", "192.168.7.9",  "0.0.0.0",	      "fd00::1",
					"::",	    "2001:db8::42", "::ffff:10.1.2.3"};
	uint8_t fam;

	assert_int_equal(tsg_addr_parse(v[rnd(seed) % 7], a, &fam), 0);
}

static void rand_info(uint32_t *seed, struct tsg_sockinfo *in)
{
	static const char *const comms[] = {"curl", "nginx", "", "a-fifteen-chars"};

	memset(in, 0, sizeof(*in));
	in->have = rnd(seed) & TSG_HAVE_ALL;
	snprintf(in->comm, sizeof(in->comm), "%s", comms[rnd(seed) % 4]);
	in->pid = rnd(seed);
	in->uid = rnd(seed);
	in->cgroup = tsg_intern(rnd(seed) & 1 ? "/a.slice" : "/b.slice");
	rand_addr(seed, in->laddr);
	rand_addr(seed, in->raddr);
	in->netns = rnd(seed);
	in->netns_name = rnd(seed) & 1 ? tsg_intern("blue") : NULL;
	in->container = rnd(seed) & 1 ? tsg_intern("0123456789ab") : tsg_intern("cafe");
	in->pod = rnd(seed) & 1 ? tsg_intern("pod-uid-1") : NULL;
	in->lport = (uint16_t)rnd(seed);
	in->rport = (uint16_t)rnd(seed);
	in->family = rnd(seed) & 1 ? TSG_FAM_IPV4 : TSG_FAM_IPV6;
}

static void test_pack_matches_copy(void **state)
{
	struct sock_side side;
	uint32_t seed = 2463534242u;

	sock_side_init(&side);
	for (int round = 0; round < 20000; round++) {
		struct sock_ent s;
		struct tsg_sockinfo ref, got, in;

		memset(&s, 0, sizeof(s));
		memset(&ref, 0, sizeof(ref));
		for (int i = 0; i < 1 + (int)(rnd(&seed) % 4); i++) {
			rand_info(&seed, &in);
			tsg_sockinfo_copy(&ref, &in, TSG_HAVE_ALL);
			assert_int_equal(sock_pack_merge(&side, &s, &in), 0);
			sock_unpack(&side, &s, &got);
			assert_memory_equal(&got, &ref, sizeof(ref));
		}
		sock_pack_release(&side, &s);
	}
	assert_int_equal(side.v6.inuse, 0); /* every side record given back */
	assert_int_equal(side.ext.inuse, 0);
	sock_side_fini(&side);
}

/*
 * Sockets held at once share the record of their cgroup, netns name,
 * container and pod: every socket still unpacks to its own reference while
 * others change theirs or end, there is one record per distinct four held
 * (20 cgroups, some 160 fours: the chains grow past their first 64), and all are given back at the end.
 */
static void test_ext_shared(void **state)
{
	enum { SOCKS = 512 };
	static struct sock_ent s[SOCKS];
	static struct tsg_sockinfo ref[SOCKS];
	struct sock_side side;
	uint32_t seed = 88172645u;

	sock_side_init(&side);
	memset(s, 0, sizeof(s));
	memset(ref, 0, sizeof(ref));
	for (int round = 0; round < 200000; round++) {
		uint32_t k = rnd(&seed) % SOCKS;
		struct tsg_sockinfo in, got;
		char cg[32];

		if (rnd(&seed) % 8 == 0) { /* the socket ends; a new one takes its place */
			sock_pack_release(&side, &s[k]);
			memset(&s[k], 0, sizeof(s[k]));
			memset(&ref[k], 0, sizeof(ref[k]));
			continue;
		}
		rand_info(&seed, &in);
		snprintf(cg, sizeof(cg), "/c%u.slice", rnd(&seed) % 20);
		in.cgroup = tsg_intern(cg);
		tsg_sockinfo_copy(&ref[k], &in, TSG_HAVE_ALL);
		assert_int_equal(sock_pack_merge(&side, &s[k], &in), 0);
		if (round % 64 == 0)
			for (int j = 0; j < SOCKS; j++) {
				sock_unpack(&side, &s[j], &got);
				assert_memory_equal(&got, &ref[j], sizeof(ref[j]));
			}
	}
	/* one record per distinct four held, each counted once per holder */
	uint32_t held = 0, refs = 0;

	for (int j = 0; j < SOCKS; j++)
		if (s[j].have & SE_EXT) {
			const struct sock_ext *x = pool_at(&side.ext, s[j].ext);
			bool first = true;

			held++;
			for (int i = 0; i < j && first; i++)
				if ((s[i].have & SE_EXT) && s[i].ext == s[j].ext)
					first = false;
			refs += first ? x->refs : 0;
			for (int i = 0; i < j; i++)
				if ((s[i].have & SE_EXT) && s[i].ext != s[j].ext) {
					const struct sock_ext *y = pool_at(&side.ext, s[i].ext);

					assert_false(x->cgroup == y->cgroup &&
						     x->netns_name == y->netns_name &&
						     x->container == y->container &&
						     x->pod == y->pod);
				}
		}
	assert_true(held > 0);
	assert_int_equal(refs, held);
	assert_true(side.ext.inuse < held);
	assert_true(side.ext_nbuckets >= side.ext.inuse);
	assert_true(side.ext_nbuckets > 64); /* the chains grew */
	for (int j = 0; j < SOCKS; j++)
		sock_pack_release(&side, &s[j]);
	assert_int_equal(side.ext.inuse, 0);
	assert_int_equal(side.v6.inuse, 0);
	sock_side_fini(&side);
}

/* Records keep their address while held, come back zeroed, are reused. */
static void test_pool(void **state)
{
	struct pool p;
	uint32_t a, b, c;
	uint64_t *pa;

	pool_init(&p, sizeof(uint64_t));
	a = pool_get(&p);
	assert_int_not_equal(a, 0);
	pa = pool_at(&p, a);
	*pa = 42;
	for (uint32_t i = 0; i < 3 * POOL_CHUNK; i++)
		assert_int_not_equal(pool_get(&p), 0);
	assert_ptr_equal(pool_at(&p, a), pa);
	assert_int_equal(*pa, 42);
	b = pool_get(&p);
	pool_put(&p, b);
	c = pool_get(&p);
	assert_int_equal(c, b);
	assert_int_equal(*(uint64_t *)pool_at(&p, c), 0);
	assert_int_equal(p.inuse, 3 * POOL_CHUNK + 2);
	pool_fini(&p);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_pack_matches_copy),
    cmocka_unit_test(test_ext_shared),
    cmocka_unit_test(test_pool),
};

TSG_TEST_MAIN(tests)
