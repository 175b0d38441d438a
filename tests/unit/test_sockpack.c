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

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_pack_matches_copy),
	    cmocka_unit_test(test_pool),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
