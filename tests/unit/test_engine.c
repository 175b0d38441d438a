/* SPDX-License-Identifier: MIT */
/* tsguard: engine unit tests: each `when` kind at its edges, for, cooldown,
 * bounds, reload. Rules are written as YAML and loaded by the real loader. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tsg_test_main.h"

#include "engine.h"
#include "ruleset.h"
#include "tsg_test_yaml.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MS(x) ((uint64_t)(x) * 1000000ull)
#define SEC(x) ((uint64_t)(x) * 1000000000ull)

struct note {
	char rule[65];
	int status;
	uint64_t ts;
	uint64_t count, suppressed, duration;
	char comm[16];
	char key[128];
	char text[512];
};

struct rec {
	struct note v[256];
	size_t n;
};

static void on_note(void *ctx, const struct tsg_alert *a)
{
	struct rec *r = ctx;
	struct note *n;

	assert_true(r->n < 256);
	n = &r->v[r->n++];
	snprintf(n->rule, sizeof(n->rule), "%s", a->rule->name);
	n->status = a->status;
	n->ts = a->ts_ns;
	n->count = a->count;
	n->suppressed = a->suppressed;
	n->duration = a->duration_ns;
	snprintf(n->comm, sizeof(n->comm), "%s", a->info.comm);
	tsg_alert_key_string(a, n->key, sizeof(n->key));
	tsg_alert_to_text(a, n->text, sizeof(n->text));
}

static struct tsg_ruleset *load(const char *yaml)
{
	struct tsg_ruleset *rs = tsg_test_yaml_rules(yaml);

	assert_non_null(rs);
	return rs;
}

struct fx {
	struct tsg_ruleset *rs;
	struct tsg_engine *e;
	struct rec rec;
};

static void fx_start(struct fx *f, const char *yaml, size_t max_keys, size_t max_socks)
{
	struct tsg_engine_opts o = { .keep_idle_sockets = true,
				     .max_keys_per_rule = max_keys,
				     .max_sockets = max_socks };

	memset(f, 0, sizeof(*f));
	f->rs = load(yaml);
	assert_int_equal(tsg_engine_new(f->rs, &o, on_note, &f->rec, &f->e), 0);
}

static void fx_stop(struct fx *f)
{
	tsg_engine_free(f->e);
	tsg_ruleset_free(f->rs);
}

/* Reload: the engine takes the rule set of yaml, the old one is freed. */
static void fx_reload(struct fx *f, const char *yaml)
{
	struct tsg_ruleset *rs2 = load(yaml);

	assert_int_equal(tsg_engine_swap_rules(f->e, rs2), 0);
	tsg_ruleset_free(f->rs);
	f->rs = rs2;
}

static void ev(struct fx *f, uint64_t ts, const char *sk, int from, int to, const char *comm,
	       int rport)
{
	struct tsg_event e = { .ts_ns = ts, .sk = tsg_sk_from_string(sk), .from = (uint8_t)from,
			       .to = (uint8_t)to };

	if (comm) {
		snprintf(e.info.comm, sizeof(e.info.comm), "%s", comm);
		e.info.have |= TSG_HAVE(TSG_SF_COMM);
	}
	if (rport >= 0) {
		e.info.rport = (uint16_t)rport;
		e.info.have |= TSG_HAVE(TSG_SF_RPORT);
		tsg_addr_parse("10.0.0.9", e.info.raddr, &e.info.family);
		e.info.have |= TSG_HAVE(TSG_SF_RADDR) | TSG_HAVE(TSG_SF_FAMILY);
	}
	tsg_engine_feed(f->e, &e);
}

static void expect(struct fx *f, size_t i, const char *rule, int status, uint64_t ts)
{
	assert_true(i < f->rec.n);
	assert_string_equal(f->rec.v[i].rule, rule);
	assert_int_equal(f->rec.v[i].status, status);
	assert_int_equal(f->rec.v[i].ts, ts);
}

static const char *TIME_RULE = "rules:\n"
			       "  - name: slow\n"
			       "    match: {rport: 443}\n"
			       "    when: {state: SYN_SENT, longer_than: 500ms}\n";

static void test_time_fires_at_threshold(void **state)
{
	struct fx f;

	fx_start(&f, TIME_RULE, 0, 0);
	ev(&f, 0, "s1", TSG_CLOSE, TSG_SYN_SENT, "curl", 443);
	tsg_engine_advance(f.e, MS(499));
	assert_int_equal(f.rec.n, 0);
	assert_int_equal(tsg_engine_next_deadline(f.e), MS(500));
	tsg_engine_advance(f.e, MS(500));
	assert_int_equal(f.rec.n, 1);
	expect(&f, 0, "slow", TSG_FIRING, MS(500));
	assert_int_equal(f.rec.v[0].duration, MS(500));
	assert_string_equal(f.rec.v[0].comm, "curl");
	ev(&f, MS(900), "s1", TSG_SYN_SENT, TSG_ESTABLISHED, NULL, -1);
	assert_int_equal(f.rec.n, 2);
	expect(&f, 1, "slow", TSG_RESOLVED, MS(900));
	assert_int_equal(f.rec.v[1].duration, MS(900));
	fx_stop(&f);
}

static void test_time_leave_at_threshold_instant(void **state)
{
	struct fx f;

	fx_start(&f, TIME_RULE, 0, 0);
	ev(&f, 0, "s1", TSG_CLOSE, TSG_SYN_SENT, "curl", 443);
	/* leaves exactly at 500 ms: it was not there *longer* than 500 ms */
	ev(&f, MS(500), "s1", TSG_SYN_SENT, TSG_ESTABLISHED, NULL, -1);
	tsg_engine_advance(f.e, SEC(5));
	assert_int_equal(f.rec.n, 0);
	/* one nanosecond later it would have fired first */
	ev(&f, SEC(6), "s2", TSG_CLOSE, TSG_SYN_SENT, "curl", 443);
	ev(&f, SEC(6) + MS(500) + 1, "s2", TSG_SYN_SENT, TSG_CLOSE, NULL, -1);
	assert_int_equal(f.rec.n, 2);
	expect(&f, 0, "slow", TSG_FIRING, SEC(6) + MS(500));
	expect(&f, 1, "slow", TSG_RESOLVED, SEC(6) + MS(500) + 1);
	fx_stop(&f);
}

static void test_time_no_match_no_alert(void **state)
{
	struct fx f;
	struct tsg_engine_stats st;

	fx_start(&f, TIME_RULE, 0, 0);
	ev(&f, 0, "s1", TSG_CLOSE, TSG_SYN_SENT, "curl", 80);
	tsg_engine_advance(f.e, SEC(10));
	assert_int_equal(f.rec.n, 0);
	ev(&f, SEC(11), "s1", TSG_SYN_SENT, TSG_CLOSE, NULL, -1);
	tsg_engine_get_stats(f.e, &st);
	assert_int_equal(st.sockets, 0); /* entries end with the socket */
	fx_stop(&f);
}

static const char *COUNT_RULE = "rules:\n"
				"  - name: tw\n"
				"    when: {state: TIME_WAIT, count_above: 2, by: comm}\n";

static void test_count_up_and_down(void **state)
{
	struct fx f;

	fx_start(&f, COUNT_RULE, 0, 0);
	ev(&f, SEC(1), "a", TSG_FIN_WAIT2, TSG_TIME_WAIT, "web", -1);
	ev(&f, SEC(2), "b", TSG_FIN_WAIT2, TSG_TIME_WAIT, "web", -1);
	ev(&f, SEC(2), "x", TSG_FIN_WAIT2, TSG_TIME_WAIT, "other", -1);
	assert_int_equal(f.rec.n, 0); /* exactly at the threshold: not above */
	ev(&f, SEC(3), "c", TSG_FIN_WAIT2, TSG_TIME_WAIT, "web", -1);
	assert_int_equal(f.rec.n, 1);
	expect(&f, 0, "tw", TSG_FIRING, SEC(3));
	assert_int_equal(f.rec.v[0].count, 3);
	assert_string_equal(f.rec.v[0].comm, "web");
	ev(&f, SEC(4), "d", TSG_FIN_WAIT2, TSG_TIME_WAIT, "web", -1);
	assert_int_equal(f.rec.n, 1); /* still firing: no new notification */
	ev(&f, SEC(5), "a", TSG_TIME_WAIT, TSG_CLOSE, NULL, -1);
	assert_int_equal(f.rec.n, 1); /* 3 > 2 */
	ev(&f, SEC(6), "b", TSG_TIME_WAIT, TSG_CLOSE, NULL, -1);
	assert_int_equal(f.rec.n, 2); /* 2 <= resolve_below (2) */
	expect(&f, 1, "tw", TSG_RESOLVED, SEC(6));
	assert_int_equal(f.rec.v[1].count, 2);
	fx_stop(&f);
}

static void test_count_resolve_below(void **state)
{
	struct fx f;

	fx_start(&f,
		 "rules:\n"
		 "  - name: est\n"
		 "    when: {state: ESTABLISHED, count_above: 2, resolve_below: 1, by: comm}\n",
		 0, 0);
	ev(&f, SEC(1), "a", TSG_SYN_SENT, TSG_ESTABLISHED, "db", -1);
	ev(&f, SEC(1), "b", TSG_SYN_SENT, TSG_ESTABLISHED, "db", -1);
	ev(&f, SEC(1), "c", TSG_SYN_SENT, TSG_ESTABLISHED, "db", -1);
	assert_int_equal(f.rec.n, 1);
	ev(&f, SEC(2), "a", TSG_ESTABLISHED, TSG_FIN_WAIT1, NULL, -1);
	assert_int_equal(f.rec.n, 1); /* 2 > resolve_below 1: still firing */
	ev(&f, SEC(3), "a", TSG_FIN_WAIT1, TSG_CLOSE, NULL, -1);
	ev(&f, SEC(4), "b", TSG_ESTABLISHED, TSG_CLOSE_WAIT, NULL, -1);
	assert_int_equal(f.rec.n, 2);
	expect(&f, 1, "est", TSG_RESOLVED, SEC(4));
	fx_stop(&f);
}

static void test_count_for_interrupted_and_held(void **state)
{
	struct fx f;

	fx_start(&f,
		 "rules:\n"
		 "  - name: cw\n"
		 "    when: {state: CLOSE_WAIT, count_above: 1, by: comm, for: 10s}\n",
		 0, 0);
	ev(&f, SEC(0), "a", TSG_ESTABLISHED, TSG_CLOSE_WAIT, "app", -1);
	ev(&f, SEC(1), "b", TSG_ESTABLISHED, TSG_CLOSE_WAIT, "app", -1);
	/* pending from 1 s; interrupted at 5 s */
	ev(&f, SEC(5), "b", TSG_CLOSE_WAIT, TSG_LAST_ACK, NULL, -1);
	tsg_engine_advance(f.e, SEC(20));
	assert_int_equal(f.rec.n, 0);
	/* held: pending from 21 s, fires at exactly 31 s */
	ev(&f, SEC(21), "c", TSG_ESTABLISHED, TSG_CLOSE_WAIT, "app", -1);
	tsg_engine_advance(f.e, SEC(31) - 1);
	assert_int_equal(f.rec.n, 0);
	tsg_engine_advance(f.e, SEC(40));
	assert_int_equal(f.rec.n, 1);
	expect(&f, 0, "cw", TSG_FIRING, SEC(31));
	fx_stop(&f);
}

static const char *RATE_RULE = "rules:\n"
			       "  - name: refused\n"
			       "    when: {from: SYN_SENT, to: CLOSE, rate_above: 2, per: 10s, by: [raddr, rport]}\n";

static void test_rate_window_slides(void **state)
{
	struct fx f;
	char sk[8];

	fx_start(&f, RATE_RULE, 0, 0);
	for (int i = 0; i < 3; i++) {
		snprintf(sk, sizeof(sk), "r%d", i);
		ev(&f, SEC(i), sk, TSG_CLOSE, TSG_SYN_SENT, "c", 80);
		ev(&f, SEC(i), sk, TSG_SYN_SENT, TSG_CLOSE, NULL, -1);
	}
	assert_int_equal(f.rec.n, 1);
	expect(&f, 0, "refused", TSG_FIRING, SEC(2));
	assert_int_equal(f.rec.v[0].count, 3);
	/* the event at 0 s leaves the window at exactly 10 s */
	tsg_engine_advance(f.e, SEC(10) - 1);
	assert_int_equal(f.rec.n, 1);
	tsg_engine_advance(f.e, SEC(10));
	assert_int_equal(f.rec.n, 2);
	expect(&f, 1, "refused", TSG_RESOLVED, SEC(10));
	assert_int_equal(f.rec.v[1].count, 2);
	/* another key does not share the window */
	ev(&f, SEC(11), "o1", TSG_CLOSE, TSG_SYN_SENT, "c", 81);
	ev(&f, SEC(11), "o1", TSG_SYN_SENT, TSG_CLOSE, NULL, -1);
	assert_int_equal(f.rec.n, 2);
	fx_stop(&f);
}

static void test_rate_for(void **state)
{
	struct fx f;
	char sk[8];

	fx_start(&f,
		 "rules:\n"
		 "  - name: r\n"
		 "    when: {to: CLOSE, rate_above: 1, per: 5s, by: comm, for: 2s}\n",
		 0, 0);
	/* one failure per second for 6 s: above 1 per 5 s from t=1 */
	for (int i = 0; i < 6; i++) {
		snprintf(sk, sizeof(sk), "q%d", i);
		ev(&f, SEC(i), sk, TSG_SYN_SENT, TSG_CLOSE, "c", -1);
	}
	assert_int_equal(f.rec.n, 1);
	expect(&f, 0, "r", TSG_FIRING, SEC(3));
	/* last event at 5 s; window holds 4..5 until 9 s, then 1 event: resolved */
	tsg_engine_advance(f.e, SEC(30));
	assert_int_equal(f.rec.n, 2);
	expect(&f, 1, "r", TSG_RESOLVED, SEC(9));
	fx_stop(&f);
}

static void test_cooldown_counts_suppressed(void **state)
{
	struct fx f;

	fx_start(&f,
		 "rules:\n"
		 "  - name: failed\n"
		 "    when: {from: SYN_SENT, to: CLOSE}\n"
		 "    cooldown: 10s\n",
		 0, 0);
	ev(&f, SEC(0), "a", TSG_SYN_SENT, TSG_CLOSE, "c", 80);
	ev(&f, SEC(1), "b", TSG_SYN_SENT, TSG_CLOSE, "c", 80);
	ev(&f, SEC(9), "c", TSG_SYN_SENT, TSG_CLOSE, "c", 80);
	assert_int_equal(f.rec.n, 1);
	assert_int_equal(f.rec.v[0].suppressed, 0);
	ev(&f, SEC(10), "d", TSG_SYN_SENT, TSG_CLOSE, "c", 80);
	assert_int_equal(f.rec.n, 2);
	expect(&f, 1, "failed", TSG_FIRING, SEC(10));
	assert_int_equal(f.rec.v[1].suppressed, 2);
	fx_stop(&f);
}

static void test_key_limit_counted(void **state)
{
	struct fx f;
	struct tsg_engine_stats st;
	char sk[8], comm[8];

	fx_start(&f, COUNT_RULE, 2, 0);
	for (int i = 0; i < 3; i++) {
		snprintf(sk, sizeof(sk), "k%d", i);
		snprintf(comm, sizeof(comm), "c%d", i);
		ev(&f, SEC(1), sk, TSG_FIN_WAIT2, TSG_TIME_WAIT, comm, -1);
	}
	tsg_engine_get_stats(f.e, &st);
	assert_int_equal(st.keys_dropped, 1);
	fx_stop(&f);
}

static void test_socket_limit_counted(void **state)
{
	struct fx f;
	struct tsg_engine_stats st;
	char sk[8];

	fx_start(&f, TIME_RULE, 0, 4);
	for (int i = 0; i < 6; i++) {
		snprintf(sk, sizeof(sk), "s%d", i);
		ev(&f, 0, sk, TSG_CLOSE, TSG_SYN_SENT, "curl", 443);
	}
	tsg_engine_get_stats(f.e, &st);
	assert_int_equal(st.sockets, 4);
	assert_int_equal(st.sockets_dropped, 2);
	tsg_engine_advance(f.e, SEC(1));
	assert_int_equal(f.rec.n, 4);
	fx_stop(&f);
}

/* COUNT_RULE firing: sockets a, b and c of web in TIME_WAIT at 1 s. */
static void fx_count_firing(struct fx *f)
{
	fx_start(f, COUNT_RULE, 0, 0);
	ev(f, SEC(1), "a", TSG_FIN_WAIT2, TSG_TIME_WAIT, "web", -1);
	ev(f, SEC(1), "b", TSG_FIN_WAIT2, TSG_TIME_WAIT, "web", -1);
	ev(f, SEC(1), "c", TSG_FIN_WAIT2, TSG_TIME_WAIT, "web", -1);
	assert_int_equal(f->rec.n, 1);
}

static void test_reload_keeps_unchanged_state(void **state)
{
	struct fx f;

	fx_count_firing(&f);
	fx_reload(&f, COUNT_RULE);
	/* the firing alert survived: leaving resolves it, no second firing */
	ev(&f, SEC(2), "d", TSG_FIN_WAIT2, TSG_TIME_WAIT, "web", -1);
	assert_int_equal(f.rec.n, 1);
	ev(&f, SEC(3), "a", TSG_TIME_WAIT, TSG_CLOSE, NULL, -1);
	ev(&f, SEC(3), "b", TSG_TIME_WAIT, TSG_CLOSE, NULL, -1);
	assert_int_equal(f.rec.n, 2);
	expect(&f, 1, "tw", TSG_RESOLVED, SEC(3));
	fx_stop(&f);
}

static void test_reload_changed_rule_starts_fresh(void **state)
{
	struct fx f;

	fx_count_firing(&f);
	fx_reload(&f, "rules:\n"
		      "  - name: tw\n"
		      "    when: {state: TIME_WAIT, count_above: 5, by: comm}\n");
	ev(&f, SEC(3), "a", TSG_TIME_WAIT, TSG_CLOSE, NULL, -1);
	assert_int_equal(f.rec.n, 1); /* no resolved for the dropped alert */
	fx_stop(&f);
}

static void test_snapshot_age_counts_from_since(void **state)
{
	struct fx f;
	struct tsg_event e = { .ts_ns = SEC(100), .sk = tsg_sk_from_string("old"),
			       .to = TSG_SYN_SENT, .snapshot = 1, .since_ns = SEC(100) };

	fx_start(&f, TIME_RULE, 0, 0);
	e.info.rport = 443;
	e.info.have = TSG_HAVE(TSG_SF_RPORT);
	tsg_engine_feed(f.e, &e);
	tsg_engine_advance(f.e, SEC(101));
	assert_int_equal(f.rec.n, 1);
	expect(&f, 0, "slow", TSG_FIRING, SEC(100) + MS(500));
	fx_stop(&f);
}

/* Freeing an engine with armed timers of every kind (time, `for`, rate
 * window) and live sockets: ASan/valgrind see no invalid access or leak. */
static void test_free_with_armed_timers(void **state)
{
	struct fx f;

	fx_start(&f,
		 "rules:\n"
		 "  - name: t\n"
		 "    when: {state: SYN_SENT, longer_than: 1h}\n"
		 "  - name: c\n"
		 "    when: {state: SYN_SENT, count_above: 0, by: comm, for: 1h}\n"
		 "  - name: r\n"
		 "    when: {to: SYN_SENT, rate_above: 0, per: 1h, by: comm}\n",
		 0, 0);
	ev(&f, SEC(1), "a", TSG_CLOSE, TSG_SYN_SENT, "x", 80);
	ev(&f, SEC(1), "b", TSG_CLOSE, TSG_SYN_SENT, "y", 80);
	assert_true(tsg_engine_next_deadline(f.e) != UINT64_MAX);
	assert_int_equal(f.rec.n, 2); /* the rate rule fired for x and y */
	fx_stop(&f);
}

/* A connect's port is learnt after its alert fired: the resolved notification
 * keeps the firing one's key, so both name the same alert downstream. */
static void test_time_key_stable_when_port_learnt(void **state)
{
	struct fx f;
	struct tsg_event e = { .ts_ns = 0, .sk = tsg_sk_from_string("p1"), .from = TSG_CLOSE,
			       .to = TSG_SYN_SENT };

	fx_start(&f, TIME_RULE, 0, 0);
	e.info.rport = 443;
	e.info.have = TSG_HAVE(TSG_SF_RPORT);
	tsg_engine_feed(f.e, &e);
	tsg_engine_advance(f.e, SEC(1));
	e.ts_ns = SEC(2);
	e.from = TSG_SYN_SENT;
	e.to = TSG_ESTABLISHED;
	e.info.lport = 40000;
	e.info.have |= TSG_HAVE(TSG_SF_LPORT);
	tsg_engine_feed(f.e, &e);
	assert_int_equal(f.rec.n, 2);
	assert_string_equal(f.rec.v[0].key, "?:?-?:443#p1");
	assert_string_equal(f.rec.v[1].key, f.rec.v[0].key);
	fx_stop(&f);
}

/* After a reload the snapshot is delivered again: a socket already known
 * joins the new rules but keeps its age and its alerts in the old ones. */
static void test_resnapshot_joins_new_rules(void **state)
{
	struct fx f;
	struct tsg_event e = { .ts_ns = SEC(1), .sk = tsg_sk_from_string("cw"),
			       .from = TSG_ESTABLISHED, .to = TSG_CLOSE_WAIT };
	const char *r1 = "rules:\n"
			 "  - name: leak\n"
			 "    when: {state: CLOSE_WAIT, longer_than: 10s}\n";

	fx_start(&f, r1, 0, 0);
	snprintf(e.info.comm, sizeof(e.info.comm), "app");
	e.info.have = TSG_HAVE(TSG_SF_COMM);
	tsg_engine_feed(f.e, &e);
	fx_reload(&f, "rules:\n"
		      "  - name: leak\n"
		      "    when: {state: CLOSE_WAIT, longer_than: 10s}\n"
		      "  - name: many\n"
		      "    when: {state: CLOSE_WAIT, count_above: 0, by: comm}\n");
	e.ts_ns = SEC(5);
	e.from = TSG_STATE_NONE;
	e.snapshot = 1;
	e.since_ns = SEC(5);
	tsg_engine_feed(f.e, &e);
	assert_int_equal(f.rec.n, 1);
	expect(&f, 0, "many", TSG_FIRING, SEC(5));
	/* the old rule's timer still counts from 1 s, not from the snapshot */
	tsg_engine_advance(f.e, SEC(20));
	assert_int_equal(f.rec.n, 2);
	expect(&f, 1, "leak", TSG_FIRING, SEC(11));
	/* delivered once more, nothing changes */
	e.ts_ns = SEC(21);
	tsg_engine_feed(f.e, &e);
	assert_int_equal(f.rec.n, 2);
	fx_stop(&f);
}

/* The text rendering is one line whatever a process name holds. */
static void test_text_line_has_no_control_chars(void **state)
{
	struct fx f;

	fx_start(&f,
		 "rules:\n"
		 "  - name: failed\n"
		 "    when: {from: SYN_SENT, to: CLOSE}\n",
		 0, 0);
	ev(&f, 0, "a", TSG_SYN_SENT, TSG_CLOSE, "ev\nFIRING\r", 80);
	assert_int_equal(f.rec.n, 1);
	assert_null(strchr(f.rec.v[0].text, '\n'));
	assert_null(strchr(f.rec.v[0].text, '\r'));
	assert_non_null(strstr(f.rec.v[0].text, "ev?FIRING?"));
	fx_stop(&f);
}

/* The one masked copy of a socket's fields (keys, merges, owners). */
static void test_sockinfo_copy(void **state)
{
	struct tsg_sockinfo src = {0}, dst = {0};

	(void)state;
	src.have = TSG_HAVE(TSG_SF_PID) | TSG_HAVE(TSG_SF_COMM) | TSG_HAVE(TSG_SF_LPORT);
	src.pid = 42;
	snprintf(src.comm, sizeof(src.comm), "nginx");
	src.lport = 443;
	src.uid = 1000; /* not in src.have: never copied */
	src.rport = 80;
	dst.have = TSG_HAVE(TSG_SF_RPORT) | TSG_HAVE(TSG_SF_PID);
	dst.rport = 5555;
	dst.pid = 7;
	dst.lport = 1;
	tsg_sockinfo_copy(&dst, &src, TSG_HAVE(TSG_SF_PID) | TSG_HAVE(TSG_SF_COMM) |
					      TSG_HAVE(TSG_SF_UID) | TSG_HAVE(TSG_SF_RPORT));
	assert_int_equal(dst.have, TSG_HAVE(TSG_SF_RPORT) | TSG_HAVE(TSG_SF_PID) |
					   TSG_HAVE(TSG_SF_COMM));
	assert_int_equal(dst.pid, 42);
	assert_string_equal(dst.comm, "nginx");
	assert_int_equal(dst.uid, 0);      /* selected, but src does not know it */
	assert_int_equal(dst.rport, 5555); /* selected, but src does not know it */
	assert_int_equal(dst.lport, 1);    /* known in src, not selected */
	tsg_sockinfo_copy(&dst, &src, TSG_HAVE_ALL);
	assert_int_equal(dst.lport, 443);
	assert_int_equal(dst.have & TSG_HAVE(TSG_SF_LPORT), TSG_HAVE(TSG_SF_LPORT));
}

/* tsg_engine_foreach_alert: what `tsguard ctl alerts` lists */
struct seen {
	struct tsg_alert_view v[8];
	char key[8][128];
	size_t n;
};

static void on_view(void *ctx, const struct tsg_alert_view *v)
{
	struct seen *s = ctx;

	assert_true(s->n < 8);
	s->v[s->n] = *v;
	tsg_alert_key_string(&v->alert, s->key[s->n], sizeof(s->key[0]));
	s->n++;
}

static const struct tsg_alert_view *find_view(struct seen *s, const char *rule)
{
	for (size_t i = 0; i < s->n; i++)
		if (!strcmp(s->v[i].alert.rule->name, rule))
			return &s->v[i];
	return NULL;
}

static void test_foreach_alert_pending_and_firing(void **state)
{
	const struct tsg_alert_view *v;
	struct seen s = { 0 };
	struct fx f;

	fx_start(&f,
		 "rules:\n"
		 "  - name: slow\n"
		 "    match: {rport: 443}\n"
		 "    when: {state: SYN_SENT, longer_than: 500ms}\n"
		 "  - name: cw\n"
		 "    when: {state: CLOSE_WAIT, count_above: 1, by: comm, for: 10s}\n"
		 "  - name: tw\n"
		 "    when: {state: TIME_WAIT, count_above: 0, by: comm}\n",
		 0, 0);
	assert_int_equal(tsg_engine_foreach_alert(f.e, on_view, &s), 0);
	ev(&f, SEC(0), "a", TSG_CLOSE, TSG_SYN_SENT, "curl", 443);
	ev(&f, SEC(1), "b", TSG_ESTABLISHED, TSG_CLOSE_WAIT, "app", -1);
	ev(&f, SEC(1), "c", TSG_ESTABLISHED, TSG_CLOSE_WAIT, "app", -1);
	ev(&f, SEC(2), "d", TSG_FIN_WAIT2, TSG_TIME_WAIT, "web", -1);
	tsg_engine_advance(f.e, SEC(3));
	assert_int_equal(tsg_engine_foreach_alert(f.e, on_view, &s), 3);
	assert_int_equal(s.n, 3);
	v = find_view(&s, "slow"); /* firing since it passed its threshold */
	assert_non_null(v);
	assert_false(v->pending);
	assert_int_equal(v->since_ns, MS(500));
	assert_int_equal(v->alert.duration_ns, SEC(3));
	assert_non_null(strstr(s.key[v - s.v], ":443"));
	v = find_view(&s, "cw"); /* pending during `for` */
	assert_non_null(v);
	assert_true(v->pending);
	assert_int_equal(v->since_ns, SEC(1));
	assert_int_equal(v->alert.count, 2);
	assert_string_equal(s.key[v - s.v], "comm=app");
	v = find_view(&s, "tw"); /* firing at once: since the event */
	assert_non_null(v);
	assert_false(v->pending);
	assert_int_equal(v->since_ns, SEC(2));
	assert_int_equal(v->alert.count, 1);

	/* `for` elapsed: cw fires at 11 s; slow resolves when its socket leaves */
	ev(&f, SEC(12), "a", TSG_SYN_SENT, TSG_ESTABLISHED, NULL, -1);
	memset(&s, 0, sizeof(s));
	assert_int_equal(tsg_engine_foreach_alert(f.e, on_view, &s), 2);
	assert_null(find_view(&s, "slow"));
	v = find_view(&s, "cw");
	assert_non_null(v);
	assert_false(v->pending);
	assert_int_equal(v->since_ns, SEC(11));
	fx_stop(&f);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_time_fires_at_threshold),
    cmocka_unit_test(test_time_leave_at_threshold_instant),
    cmocka_unit_test(test_time_no_match_no_alert),
    cmocka_unit_test(test_count_up_and_down),
    cmocka_unit_test(test_count_resolve_below),
    cmocka_unit_test(test_count_for_interrupted_and_held),
    cmocka_unit_test(test_rate_window_slides),
    cmocka_unit_test(test_rate_for),
    cmocka_unit_test(test_cooldown_counts_suppressed),
    cmocka_unit_test(test_key_limit_counted),
    cmocka_unit_test(test_socket_limit_counted),
    cmocka_unit_test(test_reload_keeps_unchanged_state),
    cmocka_unit_test(test_reload_changed_rule_starts_fresh),
    cmocka_unit_test(test_snapshot_age_counts_from_since),
    cmocka_unit_test(test_free_with_armed_timers),
    cmocka_unit_test(test_time_key_stable_when_port_learnt),
    cmocka_unit_test(test_resnapshot_joins_new_rules),
    cmocka_unit_test(test_text_line_has_no_control_chars),
    cmocka_unit_test(test_sockinfo_copy),
    cmocka_unit_test(test_foreach_alert_pending_and_firing),
};

TSG_TEST_MAIN(tests)
