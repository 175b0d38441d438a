/* SPDX-License-Identifier: MIT */
/*
 * destroy action with a fake destroy callback that counts its calls: runs on
 * firing notifications only, with the alert's cookie; at most max_per_minute
 * a minute (sliding, on the event clock), the rest counted as skipped; no
 * callback (replay): failed; a callback error: failed; a dry run prints and
 * calls nothing.
 */
#include "act_test.h"
#include "tsg_test_main.h"

#define YAML                                                                                       \
	"actions:\n"                                                                               \
	"  - {name: reap, type: destroy, max_per_minute: 3}\n"                                     \
	"rules:\n"                                                                                 \
	"  - name: cw\n"                                                                           \
	"    when: {state: CLOSE_WAIT, longer_than: 1m}\n"                                         \
	"    actions: [reap]\n"

struct fake {
	unsigned calls;
	uint64_t cookie;
	uint32_t netns;
	uint16_t lport;
	int rc;
};

static int fake_destroy(void *ctx, uint64_t cookie, uint32_t netns,
			const struct tsg_sockinfo *expect)
{
	struct fake *f = ctx;

	f->calls++;
	f->cookie = cookie;
	f->netns = netns;
	f->lport = expect->lport;
	return f->rc;
}

static void fire_at(struct t_fix *x, int status, uint64_t ts_ns, uint64_t sk)
{
	struct tsg_alert a;

	t_alert(&a, x->rs, "cw", status);
	a.ts_ns = ts_ns;
	a.sk = sk;
	tsg_actions_fire(x->acts, &a);
}

/* The counters of reap: sent, skipped, failed. */
static void expect_reap(struct t_fix *x, uint64_t sent, uint64_t skipped, uint64_t failed)
{
	struct tsg_action_stats st = t_stats(x->acts, "reap");

	assert_int_equal(st.sent, sent);
	assert_int_equal(st.skipped, skipped);
	assert_int_equal(st.failed, failed);
}

static void t_firing_only_and_rate_limit(void **state)
{
	struct fake f = {0};
	struct tsg_actions_opts o = {.destroy = fake_destroy, .destroy_ctx = &f};
	struct t_fix x = {0};
	uint64_t t0 = 100 * TSG_NSEC_PER_SEC;

	(void)state;
	t_fix_start(&x, &o, "cw", YAML);
	fire_at(&x, TSG_RESOLVED, t0, 7);
	assert_int_equal(f.calls, 0); /* resolved: nothing to close */
	fire_at(&x, TSG_FIRING, t0, 1234);
	assert_int_equal(f.calls, 1);
	assert_int_equal(f.cookie, 1234);
	assert_int_equal(f.netns, 0);
	assert_int_equal(f.lport, 50000);
	fire_at(&x, TSG_FIRING, t0 + 1, 2);
	fire_at(&x, TSG_FIRING, t0 + 2, 3);
	fire_at(&x, TSG_FIRING, t0 + 3, 4); /* the 4th within a minute */
	fire_at(&x, TSG_FIRING, t0 + 59 * TSG_NSEC_PER_SEC, 5);
	assert_int_equal(f.calls, 3);
	expect_reap(&x, 3, 2, 0);
	/* a minute after the first, one place is free again */
	fire_at(&x, TSG_FIRING, t0 + 60 * TSG_NSEC_PER_SEC, 6);
	assert_int_equal(f.calls, 4);
	assert_int_equal(f.cookie, 6);
	fire_at(&x, TSG_FIRING, t0 + 60 * TSG_NSEC_PER_SEC, 8);
	assert_int_equal(f.calls, 4);
	/* the callback's error is a failure */
	f.rc = -ENOENT;
	fire_at(&x, TSG_FIRING, t0 + 200 * TSG_NSEC_PER_SEC, 9);
	assert_int_equal(f.calls, 5);
	expect_reap(&x, 4, 3, 1);
	t_fix_free(&x);
}

static void t_no_capture_fails(void **state)
{
	struct t_fix x = {0};

	(void)state;
	t_fix_start(&x, NULL, "cw", YAML);
	fire_at(&x, TSG_FIRING, TSG_NSEC_PER_SEC, 1);
	fire_at(&x, TSG_FIRING, 2 * TSG_NSEC_PER_SEC, 2);
	expect_reap(&x, 0, 0, 2);
	t_fix_free(&x);
}

static void t_dry_run(void **state)
{
	struct fake f = {0};
	struct tsg_actions_opts o = {.dry_run = true, .destroy = fake_destroy, .destroy_ctx = &f};
	struct t_fix x = {0};
	int lines = 0;

	(void)state;
	t_fix_start(&x, &o, "cw", YAML);
	fire_at(&x, TSG_FIRING, TSG_NSEC_PER_SEC, 1234);
	fire_at(&x, TSG_RESOLVED, 2 * TSG_NSEC_PER_SEC, 1234);
	for (int i = 0; i < 3; i++)
		fire_at(&x, TSG_FIRING, 3 * TSG_NSEC_PER_SEC, 10 + (uint64_t)i);
	t_fix_stop(&x);
	assert_int_equal(f.calls, 0);
	assert_non_null(strstr(x.out, "dry-run: action reap (destroy) socket: "
				      "10.0.0.2:50000-10.0.0.9:443 cookie 1234 netns host\n"));
	/* the resolved one prints nothing; the 4th in the minute would be skipped */
	assert_non_null(strstr(x.out, "cookie 12 netns host skipped: more than 3 a minute"));
	assert_null(strstr(x.out, "cookie 11 netns host skipped"));
	for (char *p = x.out; *p; p++)
		lines += *p == '\n';
	assert_int_equal(lines, 4);
	t_fix_free(&x);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(t_firing_only_and_rate_limit),
    cmocka_unit_test(t_no_capture_fails),
    cmocka_unit_test(t_dry_run),
};

TSG_TEST_MAIN(tests)
