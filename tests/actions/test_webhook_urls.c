/* SPDX-License-Identifier: MIT */
/* webhook `url:` as a list, against real servers on loopback: every
 * notification goes to every URL; a URL that hangs (accepts, never answers)
 * or is down (refused) delays none of the others; each URL has its own
 * queue bound, retries and counters; the dry run prints one POST per URL. */
#include "act_test.h"
#include "tsg_test_main.h"
#include "http_rec.h"

static struct tsg_action_stats t_url_stats(struct tsg_actions *acts, const char *name,
					   const char *url)
{
	struct tsg_action_stats st;

	assert_int_equal(tsg_actions_get_url_stats(acts, name, url, &st), 0);
	return st;
}

/* Polls until `url` of action `name` has finished `n` notifications. */
static bool t_wait_url_done(struct tsg_actions *acts, const char *name, const char *url, uint64_t n,
			    long ms)
{
	for (long t = 0; t <= ms; t += 10) {
		struct tsg_action_stats st = t_url_stats(acts, name, url);

		if (st.sent + st.failed + st.dropped >= n && st.queued_now == 0)
			return true;
		t_sleep_ms(10);
	}
	return false;
}

/* Starts the actions of one webhook w with url: [u1, u2] and `extra` keys. */
static void two_url_start(struct t_fix *f, const struct tsg_actions_opts *o, const char *u1,
			  const char *u2, const char *extra)
{
	t_fix_start_one(f, o, "w",
			"name: w\n"
			"    type: webhook\n"
			"    url: ['%s', '%s']\n"
			"    %s",
			u1, u2, extra);
}

/* http://127.0.0.1:PORT/PATH into buf[64]. */
static const char *url_of(char *buf, uint16_t port, const char *path)
{
	snprintf(buf, 64, "http://127.0.0.1:%u/%s", port, path);
	return buf;
}

#define N_HANG 12 /* more than the 8 transfers one URL may hold at once */

/* url: [hangs, ok]: the ok server has every notification well before the
 * hung URL's first timeout (1 s); the hung URL's timeouts, retries and
 * failures are counted on it, the ok URL's sends on it. */
static void test_urls_hang(void **state)
{
	struct rec_srv *s = rec_start();
	char uh[64], uok[64];
	struct tsg_action_stats st, sh, so;
	struct t_fix f = {0};
	struct hang_srv h = hang_open();
	uint64_t t0;
	double ms;

	(void)state;
	two_url_start(&f, NULL, url_of(uh, h.port, "hang"), url_of(uok, s->port, "ok"),
		      "timeout: 1s\n    retries: 1");
	t0 = t_now_ns();
	for (int i = 0; i < N_HANG; i++)
		tsg_actions_fire(f.acts, &f.a);
	assert_true(rec_wait(s, N_HANG, 900));
	ms = t_ms_since(t0);
	fprintf(stderr, "ok URL had %d notifications after %.0f ms\n", N_HANG, ms);
	assert_true(ms < 1000); /* before the hung URL's first timeout */
	assert_true(t_wait_url_done(f.acts, "w", uok, N_HANG, 1000 - (long)ms));
	sh = t_url_stats(f.acts, "w", uh);
	assert_int_equal(sh.queued_now, N_HANG); /* all still waiting on the hung one */
	assert_int_equal(sh.timed_out, 0);
	so = t_url_stats(f.acts, "w", uok);
	assert_int_equal(so.sent, N_HANG);
	assert_int_equal(so.queued_now, 0);
	/* 8 at once, then the rest: 1 s + 0.5 s + 1 s per wave */
	assert_true(t_wait_url_done(f.acts, "w", uh, N_HANG, 8000));
	sh = t_url_stats(f.acts, "w", uh);
	assert_int_equal(sh.failed, N_HANG);
	assert_int_equal(sh.timed_out, 2 * N_HANG);
	assert_int_equal(sh.retried, N_HANG);
	assert_int_equal(sh.sent, 0);
	st = t_stats(f.acts, "w");
	assert_int_equal(st.sent, N_HANG);
	assert_int_equal(st.failed, N_HANG);
	assert_int_equal(st.timed_out, 2 * N_HANG);
	assert_int_equal(st.queued_now, 0);
	t_fix_stop(&f);
	assert_int_equal(rec_count(s), N_HANG);
	close(h.fd);
	t_fix_free(&f);
	rec_stop(s);
}

/* url: [refused, ok]: the ok one has every notification at once while the
 * refused one is still backing off between its retries. */
static void test_urls_refused(void **state)
{
	struct rec_srv *s = rec_start();
	char ur[64], uok[64];
	struct tsg_action_stats sr, so;
	struct t_fix f = {0};

	(void)state;
	two_url_start(&f, NULL, url_of(ur, closed_port(), "down"), url_of(uok, s->port, "ok"),
		      "retries: 2");
	for (int i = 0; i < 5; i++)
		tsg_actions_fire(f.acts, &f.a);
	assert_true(rec_wait(s, 5, 400));
	assert_true(t_wait_url_done(f.acts, "w", uok, 5, 400));
	sr = t_url_stats(f.acts, "w", ur);
	assert_int_equal(sr.queued_now, 5); /* backing off 0.5 s, then 1 s */
	assert_int_equal(sr.failed, 0);
	assert_int_equal(t_url_stats(f.acts, "w", uok).sent, 5);
	assert_true(t_wait_url_done(f.acts, "w", ur, 5, 4000));
	sr = t_url_stats(f.acts, "w", ur);
	so = t_url_stats(f.acts, "w", uok);
	assert_int_equal(sr.failed, 5);
	assert_int_equal(sr.retried, 10);
	assert_int_equal(sr.timed_out, 0);
	assert_int_equal(so.failed, 0);
	assert_int_equal(so.retried, 0);
	t_has(t_fix_stop(&f), "tsguard: error: rule r1 action w: POST http://127.0.0.1:",
	      "/down failed after 3 attempts: ");
	assert_null(strstr(f.log, "/ok failed"));
	t_fix_free(&f);
	rec_stop(s);
}

/* Each URL has its own queue bound: the hung one fills its 2 and drops the
 * rest, counted on it; the ok one drops nothing. */
static void test_urls_queue_per_url(void **state)
{
	struct tsg_actions_opts o = {.webhook_queue = 2};
	struct rec_srv *s = rec_start();
	char uh[64], uok[64];
	struct tsg_action_stats sh, so;
	struct t_fix f = {0};
	struct hang_srv h = hang_open();

	(void)state;
	two_url_start(&f, &o, url_of(uh, h.port, "hang"), url_of(uok, s->port, "ok"),
		      "timeout: 1500ms");
	for (int i = 0; i < 5; i++) {
		tsg_actions_fire(f.acts, &f.a);
		assert_true(t_wait_url_done(f.acts, "w", uok, (uint64_t)i + 1, 1000));
	}
	sh = t_url_stats(f.acts, "w", uh);
	so = t_url_stats(f.acts, "w", uok);
	assert_int_equal(sh.dropped, 3);
	assert_int_equal(sh.queued_now, 2);
	assert_int_equal(so.dropped, 0);
	assert_int_equal(so.sent, 5);
	assert_int_equal(t_stats(f.acts, "w").dropped, 3);
	t_has(t_fix_stop(&f), "tsguard: warning: rule r1 action w: webhook queue full, "
			      "notification dropped (POST http://127.0.0.1:");
	assert_null(strstr(f.log, "/ok; "));
	close(h.fd);
	t_fix_free(&f);
	rec_stop(s);
}

static void test_urls_dry_run(void **state)
{
	struct rec_srv *s = rec_start();
	struct tsg_actions_opts o = {.dry_run = true};
	struct t_fix f = {0};
	char u1[64], u2[64];

	(void)state;
	two_url_start(&f, &o, url_of(u1, s->port, "one"), url_of(u2, s->port, "two"),
		      "timeout: 2s");
	tsg_actions_fire(f.acts, &f.a);
	t_fix_stop(&f);
	t_fix_out_hasf(&f,
		       "dry-run: action w (webhook) POST: \"%s\" timeout: 2s retries: 3\n"
		       "dry-run: action w (webhook) POST: \"%s\" timeout: 2s retries: 3\n"
		       "dry-run: action w (webhook) headers: [\"Content-Type: application/json\"]\n"
		       "dry-run: action w (webhook) body: {\"time\":",
		       u1, u2);
	rec_expect_none(s);
	t_fix_free(&f);
	rec_stop(s);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_urls_hang),
    cmocka_unit_test(test_urls_refused),
    cmocka_unit_test(test_urls_queue_per_url),
    cmocka_unit_test(test_urls_dry_run),
};

TSG_TEST_MAIN(tests)
