/* SPDX-License-Identifier: MIT */
/*
 * destroy action with a fake destroy callback that counts its calls: runs on
 * firing notifications only, with the alert's cookie; at most max_per_minute
 * a minute (sliding, on the event clock), the rest counted as skipped; no
 * callback (replay): failed; a callback error: failed; a dry run prints and
 * calls nothing.
 */
#include "act_test.h"

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

static void fire_at(struct tsg_actions *acts, const struct tsg_ruleset *rs, int status,
		    uint64_t ts_ns, uint64_t sk)
{
	struct tsg_alert a;

	t_alert(&a, rs, "cw", status);
	a.ts_ns = ts_ns;
	a.sk = sk;
	tsg_actions_fire(acts, &a);
}

static void t_firing_only_and_rate_limit(void **state)
{
	struct tsg_ruleset *rs = t_rules(YAML);
	struct fake f = {0};
	struct tsg_actions_opts o = {.destroy = fake_destroy, .destroy_ctx = &f};
	struct tsg_actions *acts;
	struct tsg_action_stats st;
	uint64_t t0 = 100 * TSG_NSEC_PER_SEC;

	(void)state;
	assert_int_equal(tsg_actions_new(rs, &o, &acts), 0);
	fire_at(acts, rs, TSG_RESOLVED, t0, 7);
	assert_int_equal(f.calls, 0); /* resolved: nothing to close */
	fire_at(acts, rs, TSG_FIRING, t0, 1234);
	assert_int_equal(f.calls, 1);
	assert_int_equal(f.cookie, 1234);
	assert_int_equal(f.netns, 0);
	assert_int_equal(f.lport, 50000);
	fire_at(acts, rs, TSG_FIRING, t0 + 1, 2);
	fire_at(acts, rs, TSG_FIRING, t0 + 2, 3);
	fire_at(acts, rs, TSG_FIRING, t0 + 3, 4); /* the 4th within a minute */
	fire_at(acts, rs, TSG_FIRING, t0 + 59 * TSG_NSEC_PER_SEC, 5);
	assert_int_equal(f.calls, 3);
	st = t_stats(acts, "reap");
	assert_int_equal(st.sent, 3);
	assert_int_equal(st.skipped, 2);
	assert_int_equal(st.failed, 0);
	/* a minute after the first, one place is free again */
	fire_at(acts, rs, TSG_FIRING, t0 + 60 * TSG_NSEC_PER_SEC, 6);
	assert_int_equal(f.calls, 4);
	assert_int_equal(f.cookie, 6);
	fire_at(acts, rs, TSG_FIRING, t0 + 60 * TSG_NSEC_PER_SEC, 8);
	assert_int_equal(f.calls, 4);
	/* the callback's error is a failure */
	f.rc = -ENOENT;
	fire_at(acts, rs, TSG_FIRING, t0 + 200 * TSG_NSEC_PER_SEC, 9);
	assert_int_equal(f.calls, 5);
	st = t_stats(acts, "reap");
	assert_int_equal(st.sent, 4);
	assert_int_equal(st.skipped, 3);
	assert_int_equal(st.failed, 1);
	tsg_actions_free(acts);
	tsg_ruleset_free(rs);
}

static void t_no_capture_fails(void **state)
{
	struct tsg_ruleset *rs = t_rules(YAML);
	struct tsg_actions *acts;
	struct tsg_action_stats st;

	(void)state;
	assert_int_equal(tsg_actions_new(rs, NULL, &acts), 0);
	fire_at(acts, rs, TSG_FIRING, TSG_NSEC_PER_SEC, 1);
	fire_at(acts, rs, TSG_FIRING, 2 * TSG_NSEC_PER_SEC, 2);
	st = t_stats(acts, "reap");
	assert_int_equal(st.failed, 2);
	assert_int_equal(st.sent, 0);
	tsg_actions_free(acts);
	tsg_ruleset_free(rs);
}

static void t_dry_run(void **state)
{
	struct tsg_ruleset *rs = t_rules(YAML);
	struct fake f = {0};
	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);
	struct tsg_actions_opts o = {
	    .dry_run = true, .dry_out = out, .destroy = fake_destroy, .destroy_ctx = &f};
	struct tsg_actions *acts;

	(void)state;
	assert_non_null(out);
	assert_int_equal(tsg_actions_new(rs, &o, &acts), 0);
	fire_at(acts, rs, TSG_FIRING, TSG_NSEC_PER_SEC, 1234);
	fire_at(acts, rs, TSG_RESOLVED, 2 * TSG_NSEC_PER_SEC, 1234);
	for (int i = 0; i < 3; i++)
		fire_at(acts, rs, TSG_FIRING, 3 * TSG_NSEC_PER_SEC, 10 + (uint64_t)i);
	tsg_actions_free(acts);
	fclose(out);
	assert_int_equal(f.calls, 0);
	assert_non_null(strstr(buf, "dry-run: action reap (destroy) socket: "
				    "10.0.0.2:50000-10.0.0.9:443 cookie 1234 netns host\n"));
	/* the resolved one prints nothing; the 4th in the minute would be skipped */
	assert_non_null(strstr(buf, "cookie 12 netns host skipped: more than 3 a minute"));
	assert_null(strstr(buf, "cookie 11 netns host skipped"));
	{
		int lines = 0;

		for (char *p = buf; *p; p++)
			lines += *p == '\n';
		assert_int_equal(lines, 4);
	}
	free(buf);
	tsg_ruleset_free(rs);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(t_firing_only_and_rate_limit),
	    cmocka_unit_test(t_no_capture_fails),
	    cmocka_unit_test(t_dry_run),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
