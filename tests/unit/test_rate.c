/* SPDX-License-Identifier: MIT */
/*
 * tsguard: rate rules. Edges (the window's edge, several events in one
 * millisecond, threshold 0, resolving at exactly N, long windows) and
 * property tests: seeded random event streams through the engine, their
 * firing and resolved times compared with a naive reference kept here.
 * TSG_RATE_SEED=N reruns one seed; the seed of every run is printed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tsg_test_main.h"

#include "engine.h"
#include "rate.h"
#include "ruleset.h"
#include "tsg_test_yaml.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MS(x)  ((uint64_t)(x)*1000000ull)
#define SEC(x) ((uint64_t)(x)*1000000000ull)

struct note {
	int status;
	uint64_t ts, count;
};

struct notes {
	struct note *v;
	size_t n, cap;
};

static void notes_add(struct notes *l, int status, uint64_t ts, uint64_t count)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 64;
		l->v = realloc(l->v, l->cap * sizeof(*l->v));
		assert_non_null(l->v);
	}
	l->v[l->n++] = (struct note){status, ts, count};
}

static void on_note(void *ctx, const struct tsg_alert *a)
{
	notes_add(ctx, a->status, a->ts_ns, a->count);
}

struct fx {
	struct tsg_ruleset *rs;
	struct tsg_engine *e;
	struct notes got;
	uint64_t next_sk;
};

/* One rule: {from: SYN_SENT, to: CLOSE, rate_above: N, per: PER, by: comm}. */
static void fx_start(struct fx *f, uint64_t threshold, const char *per)
{
	char yaml[256];

	memset(f, 0, sizeof(*f));
	snprintf(yaml, sizeof(yaml),
		 "rules:\n  - name: r\n    when: {from: SYN_SENT, to: CLOSE, rate_above: %llu, "
		 "per: %s, by: comm}\n",
		 (unsigned long long)threshold, per);
	f->rs = tsg_test_yaml_rules(yaml);
	assert_non_null(f->rs);
	assert_int_equal(tsg_engine_new(f->rs, NULL, on_note, &f->got, &f->e), 0);
}

static void fx_stop(struct fx *f)
{
	tsg_engine_free(f->e);
	tsg_ruleset_free(f->rs);
	free(f->got.v);
}

/* A failed connect of process `busy` at ts. */
static void fail_at(struct fx *f, uint64_t ts)
{
	struct tsg_event e = {
	    .ts_ns = ts, .sk = ++f->next_sk, .from = TSG_SYN_SENT, .to = TSG_CLOSE};

	e.info.have = TSG_HAVE(TSG_SF_COMM);
	snprintf(e.info.comm, sizeof(e.info.comm), "busy");
	tsg_engine_feed(f->e, &e);
}

static void expect(const struct fx *f, size_t i, int status, uint64_t ts, uint64_t count)
{
	assert_true(i < f->got.n);
	assert_int_equal(f->got.v[i].status, status);
	assert_int_equal(f->got.v[i].ts, ts);
	assert_int_equal(f->got.v[i].count, count);
}

/* ---- edges ------------------------------------------------------------------ */

static void test_event_at_window_edge(void **state)
{
	struct fx f;

	(void)state;
	fx_start(&f, 1, "1s");
	/* the first event has left at exactly 1 s: only one in the window */
	fail_at(&f, 0);
	fail_at(&f, SEC(1));
	assert_int_equal(f.got.n, 0);
	/* 1 ns inside the window: two, fires; resolves when the older leaves */
	fail_at(&f, SEC(2) - 1);
	assert_int_equal(f.got.n, 1);
	expect(&f, 0, TSG_FIRING, SEC(2) - 1, 2);
	tsg_engine_advance(f.e, SEC(2) - 1);
	assert_int_equal(f.got.n, 1);
	tsg_engine_advance(f.e, SEC(2));
	assert_int_equal(f.got.n, 2);
	expect(&f, 1, TSG_RESOLVED, SEC(2), 1);
	fx_stop(&f);
}

static void test_events_in_one_ms(void **state)
{
	struct fx f;

	(void)state;
	fx_start(&f, 1, "10ms");
	/* three events within one millisecond: they fire at the second */
	fail_at(&f, MS(5) + 100000);
	fail_at(&f, MS(5) + 200000);
	fail_at(&f, MS(5) + 300000);
	assert_int_equal(f.got.n, 1);
	expect(&f, 0, TSG_FIRING, MS(5) + 200000, 2);
	/* they share the first one's expiry (resolution 1 ms): all leave at
	 * 15.1 ms, 0.1 ms before the second alone would bring the count to 1 */
	tsg_engine_advance(f.e, MS(15) + 99999);
	assert_int_equal(f.got.n, 1);
	tsg_engine_advance(f.e, MS(20));
	assert_int_equal(f.got.n, 2);
	expect(&f, 1, TSG_RESOLVED, MS(15) + 100000, 0);
	assert_true(MS(15) + 200000 - f.got.v[1].ts < MS(1));
	/* the next millisecond is a new cell: counted apart, to the ns */
	fail_at(&f, MS(30) + 999999);
	fail_at(&f, MS(31));
	assert_int_equal(f.got.n, 3);
	tsg_engine_advance(f.e, MS(41));
	assert_int_equal(f.got.n, 4);
	expect(&f, 3, TSG_RESOLVED, MS(40) + 999999, 1);
	fx_stop(&f);
}

static void test_threshold_zero(void **state)
{
	struct fx f;

	(void)state;
	fx_start(&f, 0, "5s");
	fail_at(&f, SEC(1));
	assert_int_equal(f.got.n, 1);
	expect(&f, 0, TSG_FIRING, SEC(1), 1);
	fail_at(&f, SEC(3)); /* still firing: no new notification */
	assert_int_equal(f.got.n, 1);
	tsg_engine_advance(f.e, SEC(7));
	assert_int_equal(f.got.n, 1); /* the 3 s event holds it until 8 s */
	tsg_engine_advance(f.e, SEC(9));
	assert_int_equal(f.got.n, 2);
	expect(&f, 1, TSG_RESOLVED, SEC(8), 0);
	fx_stop(&f);
}

static void test_resolves_at_exactly_n(void **state)
{
	struct fx f;

	(void)state;
	fx_start(&f, 3, "10s");
	for (int i = 0; i < 5; i++)
		fail_at(&f, SEC(i));
	assert_int_equal(f.got.n, 1);
	expect(&f, 0, TSG_FIRING, SEC(3), 4);
	/* 10 s: 1..4 s remain (4, above 3); 11 s: 2..4 s (3 = N): resolved */
	tsg_engine_advance(f.e, SEC(10));
	assert_int_equal(f.got.n, 1);
	tsg_engine_advance(f.e, SEC(12));
	assert_int_equal(f.got.n, 2);
	expect(&f, 1, TSG_RESOLVED, SEC(11), 3);
	fx_stop(&f);
}

/* A window longer than 65.5 s with events in every millisecond: the cells
 * widen (counted), the alert still fires on the right event and resolves
 * at most one (wider) cell early. */
static void test_long_window_coarsens(void **state)
{
	struct fx f;
	struct tsg_engine_stats st;
	const uint64_t n = 80000, thr = 70000, per = SEC(3600);
	uint64_t exact;

	(void)state;
	fx_start(&f, thr, "1h");
	for (uint64_t i = 1; i <= n; i++)
		fail_at(&f, MS(i));
	assert_int_equal(f.got.n, 1);
	expect(&f, 0, TSG_FIRING, MS(thr + 1), thr + 1);
	tsg_engine_get_stats(f.e, &st);
	assert_true(st.rate_coarsened >= 1);
	/* exact: the count falls to 70000 when event 10000 leaves */
	exact = MS(n - thr) + per;
	tsg_engine_advance(f.e, per * 2);
	assert_int_equal(f.got.n, 2);
	assert_int_equal(f.got.v[1].status, TSG_RESOLVED);
	assert_true(f.got.v[1].ts <= exact);
	assert_true(exact - f.got.v[1].ts < MS(128));
	fx_stop(&f);
}

/* ---- memory bounds of one window -------------------------------------------- */

static void test_memory_independent_of_threshold(void **state)
{
	struct tsg_rate_win w = {0};
	uint64_t t = 0;

	(void)state;
	/* 10 s window, 20 events per ms, threshold 10^9: one bucket per ms */
	for (int i = 0; i < 1000000; i++) {
		t += 50000;
		assert_true(tsg_rate_push(&w, t, SEC(10), 1000000001ull) >= 0);
		assert_true(w.len <= 10001);
	}
	assert_true(w.cap <= 16384);
	/* (40 s, 50 s] holds 200000 events; the 19 of its first ms after
	 * 40 s left with the cell's first event, at 40 s exactly: 1 ms resolution */
	assert_int_equal(tsg_rate_count(&w, t, SEC(10)), 200000 - 19);
	assert_int_equal(tsg_rate_resolution(&w), MS(1));
	/* a small threshold keeps the buckets of its N + 1 newest events */
	tsg_rate_fini(&w);
	for (int i = 0; i < 100000; i++) {
		t += MS(1);
		assert_true(tsg_rate_push(&w, t, SEC(10), 11) >= 0);
		assert_true(w.len <= 11);
	}
	assert_true(w.cap <= 16);
	tsg_rate_fini(&w);
}

static void test_memory_bounded_for_long_windows(void **state)
{
	struct tsg_rate_win w = {0};
	uint64_t t = 0;
	int widened = 0;

	(void)state;
	for (int i = 0; i < 1000000; i++) {
		int rc;

		t += MS(1);
		rc = tsg_rate_push(&w, t, SEC(3600), UINT64_MAX);
		assert_true(rc >= 0);
		widened += rc;
		assert_true(w.cap <= TSG_RATE_MAX_BUCKETS);
	}
	assert_int_equal(widened, 1);
	assert_int_equal(tsg_rate_resolution(&w), MS(128));
	assert_int_equal(tsg_rate_count(&w, t, SEC(3600)), 1000000);
	/* once the window empties, 1 ms again */
	t += SEC(3600);
	assert_int_equal(tsg_rate_count(&w, t, SEC(3600)), 0);
	assert_int_equal(tsg_rate_push(&w, t, SEC(3600), UINT64_MAX), 0);
	assert_int_equal(tsg_rate_resolution(&w), MS(1));
	tsg_rate_fini(&w);
}

/* ---- property tests against a naive reference ---------------------------------- */

/*
 * The reference: every event kept; event i counts at t while ts_i <= t <
 * exp_i. exact: exp_i = ts_i + per (the contract, to the ns). cells: exp_i =
 * (first event in i's 1 ms cell) + per (the documented 1 ms resolution).
 * The condition is evaluated at every expiry and after every event, events
 * one by one, each after the expiries at or before its time (the engine's
 * order: a window is brought to the event's time, then the event added).
 */
struct ref {
	bool firing;
	uint64_t thr;
	struct notes *out;
};

static void ref_eval(struct ref *r, uint64_t t, size_t count)
{
	if (!r->firing && count > r->thr) {
		r->firing = true;
		notes_add(r->out, TSG_FIRING, t, 0);
	} else if (r->firing && count <= r->thr) {
		r->firing = false;
		notes_add(r->out, TSG_RESOLVED, t, 0);
	}
}

/* Expiries strictly before `until` (events so far: k; expired: *j). */
static void ref_expire(struct ref *r, const uint64_t *exp, size_t k, size_t *j, uint64_t until)
{
	while (*j < k && exp[*j] < until) {
		uint64_t t = exp[*j];

		while (*j < k && exp[*j] <= t)
			(*j)++;
		ref_eval(r, t, k - *j);
	}
}

static void reference(const uint64_t *ts, size_t n, uint64_t per, uint64_t thr, bool cells,
		      struct notes *out)
{
	uint64_t *exp = malloc(n * sizeof(*exp));
	uint64_t cell = per < MS(1) ? per : MS(1);
	struct ref r = {false, thr, out};
	size_t j = 0, first = 0;

	assert_non_null(exp);
	for (size_t k = 0; k < n; k++) {
		if (ts[k] / cell != ts[first] / cell)
			first = k;
		exp[k] = (cells ? ts[first] : ts[k]) + per;
	}
	for (size_t k = 0; k < n; k++) {
		ref_expire(&r, exp, k, &j, ts[k]);
		while (j < k && exp[j] <= ts[k])
			j++;
		ref_eval(&r, ts[k], k + 1 - j);
	}
	ref_expire(&r, exp, n, &j, UINT64_MAX);
	free(exp);
}

static unsigned long long rnd(unsigned long long *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/*
 * A stream that crosses the threshold: phases of mean gap per/N times 0.5 ..
 * 10, bursts (gap 0), times snapped to whole ms (so expiries meet events),
 * and pauses longer than the window. sparse: at most one event per ms.
 */
static size_t gen(unsigned long long *seed, uint64_t per, uint64_t thr, bool sparse, uint64_t *ts,
		  size_t max)
{
	static const double factor[] = {0.5, 0.9, 1.0, 1.1, 2.0, 10.0};
	uint64_t t = MS(1000);
	size_t n = 0;

	for (int phase = 0; n < max; phase++) {
		/* the first phase crosses the threshold (twice as dense, long enough) */
		double mean = (double)per / (double)(thr + 1) * factor[phase ? rnd(seed) % 6 : 0];
		size_t len = phase ? 1 + rnd(seed) % (2 * thr + 20) : 2 * thr + 20;

		for (size_t k = 0; k < len && n < max; k++) {
			uint64_t gap = (uint64_t)(mean * (double)(rnd(seed) % 2001) / 1000.0);

			if (rnd(seed) % 16 == 0)
				gap = 0;
			if (sparse && gap < MS(1))
				gap = MS(1);
			t += gap;
			/* snapped often when events are sparse, rarely when dense */
			if (rnd(seed) % (mean >= 100000.0 ? 5 : 1000) == 0)
				t = (t / MS(1) + 1) * MS(1);
			ts[n++] = t;
		}
		if (rnd(seed) % 3 == 0)
			t += per + rnd(seed) % (per + 1);
	}
	return n;
}

/* Returns the notifications of the case (both sides agree on them). */
static size_t property_case(unsigned long long seed, uint64_t thr, const char *per_s, bool sparse)
{
	static uint64_t ts[300000];
	struct notes want = {0}, exact = {0};
	struct tsg_engine_stats st;
	unsigned long long s = seed;
	uint64_t per;
	size_t n, max = thr >= 100000 ? 300000 : thr >= 1000 ? 30000 : 5000;
	struct fx f;

	assert_int_equal(tsg_duration_parse(per_s, &per), 0);
	n = gen(&s, per, thr, sparse, ts, max);
	fx_start(&f, thr, per_s);
	for (size_t k = 0; k < n; k++)
		fail_at(&f, ts[k]);
	tsg_engine_advance(f.e, ts[n - 1] + per + 1);
	reference(ts, n, per, thr, true, &want);
	if (f.got.n != want.n)
		fail_msg("seed %llu threshold %llu per %s %s: %zu notifications, reference %zu",
			 seed, (unsigned long long)thr, per_s, sparse ? "sparse" : "dense", f.got.n,
			 want.n);
	for (size_t k = 0; k < want.n; k++)
		if (f.got.v[k].status != want.v[k].status || f.got.v[k].ts != want.v[k].ts)
			fail_msg("seed %llu threshold %llu per %s: notification %zu: %d at %llu, "
				 "reference %d at %llu",
				 seed, (unsigned long long)thr, per_s, k, f.got.v[k].status,
				 (unsigned long long)f.got.v[k].ts, want.v[k].status,
				 (unsigned long long)want.v[k].ts);
	if (sparse) {
		/* one event per ms at most: the contract to the nanosecond */
		reference(ts, n, per, thr, false, &exact);
		assert_int_equal(exact.n, want.n);
		for (size_t k = 0; k < exact.n; k++)
			assert_int_equal(exact.v[k].ts, want.v[k].ts);
	}
	tsg_engine_get_stats(f.e, &st);
	assert_int_equal(st.rate_coarsened, 0);
	n = want.n;
	free(want.v);
	free(exact.v);
	fx_stop(&f);
	return n;
}

static void test_property_random_streams(void **state)
{
	static const uint64_t thr[] = {1, 10, 1000, 100000};
	static const char *per[] = {"1ms", "7ms", "250ms", "1s", "10s", "60s"};
	const char *env = getenv("TSG_RATE_SEED");
	unsigned long long seed = env ? strtoull(env, NULL, 10) : (unsigned long long)getpid();
	(void)state;
	if (!seed)
		seed = 1;
	printf("test_rate: property seed %llu (rerun: TSG_RATE_SEED=%llu)\n", seed, seed);
	for (size_t a = 0; a < 4; a++) {
		size_t notes = 0;

		for (size_t b = 0; b < 6; b++)
			for (int sparse = 0; sparse < 2; sparse++)
				notes += property_case(seed + a * 12 + b * 2 + (unsigned)sparse,
						       thr[a], per[b], sparse);
		printf("threshold %llu: %zu notifications\n", (unsigned long long)thr[a], notes);
		/* the streams do cross every threshold */
		assert_true(notes > 0);
	}
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_event_at_window_edge),
    cmocka_unit_test(test_events_in_one_ms),
    cmocka_unit_test(test_threshold_zero),
    cmocka_unit_test(test_resolves_at_exactly_n),
    cmocka_unit_test(test_long_window_coarsens),
    cmocka_unit_test(test_memory_independent_of_threshold),
    cmocka_unit_test(test_memory_bounded_for_long_windows),
    cmocka_unit_test(test_property_random_streams),
};

TSG_TEST_MAIN(tests)
