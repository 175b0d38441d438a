/* SPDX-License-Identifier: MIT */
/* webhook action against real HTTP servers on loopback: formats, headers,
 * retries with backoff, failures, a server that never answers, queue bound,
 * dry run. */
#include "act_test.h"
#include "tsg_test_main.h"
#include "http_rec.h"
#include "webhook_impl.h"

#include <sys/wait.h>

static void test_webhook_formats(void **state)
{
	struct rec_srv *s = rec_start();
	struct t_fix f = { 0 };
	json_t *j;

	(void)state;
	t_fix_start(&f, NULL, "r1",
		    "actions:\n"
		    "  - name: wj\n"
		    "    type: webhook\n"
		    "    url: http://127.0.0.1:%u/json\n"
		    "    headers: {X-Rule: 'rule={{rule}}', X-Comm: '{{comm}}'}\n"
		    "  - name: wt\n"
		    "    type: webhook\n"
		    "    url: http://127.0.0.1:%u/tmpl\n"
		    "    format: template\n"
		    "    body: '{\"text\": \"{{summary}}\", \"to\": \"{{raddr}}:{{rport}}\"}'\n"
		    "rules:\n"
		    "  - name: r1\n"
		    "    summary: '{{comm}} failed to reach {{raddr}}'\n"
		    "    when: {from: SYN_SENT, to: CLOSE}\n"
		    "    actions: [wj, wt]\n",
		    s->port, s->port);
	/* a comm is chosen by the process: it may hold CR LF */
	t_fix_fire_as(&f, "a\r\nX-Evil: 1");
	assert_true(t_wait_done(f.acts, "wj", 1, 5000));
	assert_true(t_wait_done(f.acts, "wt", 1, 5000));
	assert_int_equal(t_stats(f.acts, "wj").sent, 1);
	assert_int_equal(t_stats(f.acts, "wt").sent, 1);
	t_fix_stop(&f);
	assert_int_equal(rec_count(s), 2);
	for (int i = 0; i < 2; i++) {
		struct rec_req *r = &s->req[i];

		assert_string_equal(r->ctype, "application/json");
		if (!strcmp(r->url, "/json")) {
			j = json_loads(r->body, 0, NULL);
			assert_non_null(j);
			assert_string_equal(json_string_value(json_object_get(j, "rule")), "r1");
			assert_string_equal(json_string_value(json_object_get(j, "comm")),
					    "a\r\nX-Evil: 1");
			assert_string_equal(json_string_value(json_object_get(j, "raddr")),
					    "10.0.0.9");
			json_decref(j);
			assert_string_equal(r->xrule, "rule=r1");
			assert_string_equal(r->xcomm, "a  X-Evil: 1");
			assert_null(r->xevil);
		} else {
			assert_string_equal(r->url, "/tmpl");
			assert_string_equal(r->body, "{\"text\": \"a\r\nX-Evil: 1 failed to reach "
						     "10.0.0.9\", \"to\": \"10.0.0.9:443\"}");
		}
	}
	t_fix_free(&f);
	rec_stop(s);
}

/* 500, 500, 200: two retries 0.5 s then 1 s apart; 400: no retry; a
 * refused connection exhausts its retries; every failure is logged with the
 * rule, the action and the reason. */
static void test_webhook_retries(void **state)
{
	struct rec_srv *s = rec_start(), *bad = rec_start();
	struct tsg_action_stats st;
	struct t_fix f = { 0 };
	double gap1, gap2;

	(void)state;
	s->fail_n = 2;
	bad->code = 400;
	t_fix_start(&f, NULL, "r1",
		    "actions:\n"
		    "  - {name: flaky, type: webhook, url: 'http://127.0.0.1:%u/x', retries: 3}\n"
		    "  - {name: bad, type: webhook, url: 'http://127.0.0.1:%u/x', retries: 3}\n"
		    "  - {name: refused, type: webhook, url: 'http://127.0.0.1:%u/x', retries: 1}\n"
		    "rules:\n"
		    "  - {name: r1, when: {from: SYN_SENT, to: CLOSE}, actions: [flaky, bad, refused]}\n",
		    s->port, bad->port, closed_port());
	tsg_actions_fire(f.acts, &f.a);
	assert_true(t_wait_done(f.acts, "flaky", 1, 6000));
	assert_true(t_wait_done(f.acts, "bad", 1, 3000));
	assert_true(t_wait_done(f.acts, "refused", 1, 3000));
	st = t_stats(f.acts, "flaky");
	assert_int_equal(st.sent, 1);
	assert_int_equal(st.retried, 2);
	assert_int_equal(st.failed, 0);
	st = t_stats(f.acts, "bad");
	assert_int_equal(st.failed, 1);
	assert_int_equal(st.retried, 0);
	st = t_stats(f.acts, "refused");
	assert_int_equal(st.failed, 1);
	assert_int_equal(st.retried, 1);
	t_fix_stop(&f);
	assert_int_equal(rec_count(s), 3);
	assert_int_equal(rec_count(bad), 1);
	gap1 = (double)(s->req[1].at_ns - s->req[0].at_ns) / 1e6;
	gap2 = (double)(s->req[2].at_ns - s->req[1].at_ns) / 1e6;
	fprintf(stderr, "retry gaps: %.0f ms, %.0f ms\n", gap1, gap2);
	assert_true(gap1 >= 480 && gap1 < 1000);
	assert_true(gap2 >= 980 && gap2 < 2000);
	t_has(f.log, "tsguard: warning: rule r1 action flaky: POST ",
	      "attempt 1 failed: HTTP 500: busy; retry in 500ms",
	      "attempt 2 failed: HTTP 500: busy; retry in 1s",
	      "tsguard: error: rule r1 action bad: POST ", "failed after 1 attempt: HTTP 400: busy",
	      "tsguard: error: rule r1 action refused: POST ", "failed after 2 attempts: ");
	t_fix_free(&f);
	rec_stop(s);
	rec_stop(bad);
}

/* A server that accepts and never answers, and a hook that never exits,
 * delay nothing: fire() returns at once and the other actions complete. */
static void test_webhook_hang_blocks_nothing(void **state)
{
	struct rec_srv *s = rec_start();
	struct t_fix f = { 0 };
	struct tsg_action_stats st;
	struct hang_srv h = hang_open();
	uint64_t t0;
	double ms;

	(void)state;
	t_fix_start(&f, NULL, "r1",
		    "actions:\n"
		    "  - {name: hang, type: webhook, url: 'http://127.0.0.1:%u/x', timeout: 1s, retries: 0}\n"
		    "  - {name: forever, type: exec, argv: [%s], timeout: 1s}\n"
		    "  - {name: ok, type: webhook, url: 'http://127.0.0.1:%u/ok'}\n"
		    "rules:\n"
		    "  - {name: r1, when: {from: SYN_SENT, to: CLOSE}, actions: [hang, forever, ok]}\n",
		    h.port, t_fix_script(&f, "forever.sh", "#!/bin/sh\nexec sleep 3600\n"), s->port);
	for (int i = 0; i < 3; i++) {
		t0 = t_now_ns();
		tsg_actions_fire(f.acts, &f.a);
		ms = t_ms_since(t0);
		assert_true(ms < 50);
	}
	assert_true(rec_wait(s, 3, 800)); /* while the others hang */
	assert_int_equal(t_stats(f.acts, "hang").queued_now, 3);
	assert_int_equal(t_stats(f.acts, "forever").queued_now, 3);
	assert_true(t_wait_done(f.acts, "ok", 3, 1000));
	assert_int_equal(t_stats(f.acts, "ok").sent, 3);
	assert_true(t_wait_done(f.acts, "hang", 3, 3000));
	st = t_stats(f.acts, "hang");
	assert_int_equal(st.timed_out, 3);
	assert_int_equal(st.failed, 3);
	assert_true(t_wait_done(f.acts, "forever", 3, 3000));
	assert_int_equal(t_stats(f.acts, "forever").timed_out, 3);
	t_has(t_fix_stop(&f), "tsguard: error: rule r1 action hang: POST http://127.0.0.1:",
	      "failed after 1 attempt: Operation timed out");
	close(h.fd);
	t_fix_free(&f);
	rec_stop(s);
}

/* The queue is bounded: overflow is counted and logged; free() waits for the
 * pending work's timeout and no longer. */
static void test_webhook_queue_and_free(void **state)
{
	struct tsg_actions_opts o = { .webhook_queue = 2 };
	struct tsg_action_stats st;
	struct t_fix f = { 0 };
	struct hang_srv h = hang_open();
	uint64_t t0;
	double ms;

	(void)state;
	t_fix_start_one(&f, &o, "hang",
			"{name: hang, type: webhook, url: 'http://127.0.0.1:%u/x', timeout: 1500ms, retries: 5}",
			h.port);
	for (int i = 0; i < 5; i++)
		tsg_actions_fire(f.acts, &f.a);
	st = t_stats(f.acts, "hang");
	assert_int_equal(st.dropped, 3);
	assert_int_equal(st.queued_now, 2);
	t_sleep_ms(200);
	t0 = t_now_ns();
	t_fix_stop(&f);
	ms = t_ms_since(t0);
	fprintf(stderr, "free took %.0f ms\n", ms);
	assert_true(ms < 1500 + 1000);
	t_has(f.log, "tsguard: warning: rule r1 action hang: webhook queue full, "
		     "notification dropped");
	close(h.fd);
	t_fix_free(&f);
}

static void test_webhook_dry_run(void **state)
{
	struct rec_srv *s = rec_start();
	struct tsg_actions_opts o = { .dry_run = true };
	struct t_fix f = { 0 };

	(void)state;
	t_fix_start(&f, &o, "r1",
		    "actions:\n"
		    "  - name: wt\n"
		    "    type: webhook\n"
		    "    url: http://127.0.0.1:%u/tmpl\n"
		    "    format: template\n"
		    "    body: 'alert {{rule}} \"{{comm}}\"'\n"
		    "    headers: {X-Rule: '{{rule}}'}\n"
		    "  - {name: wj, type: webhook, url: 'http://127.0.0.1:%u/json', timeout: 2s, retries: 1}\n"
		    "rules:\n"
		    "  - {name: r1, when: {from: SYN_SENT, to: CLOSE}, actions: [wt, wj]}\n",
		    s->port, s->port);
	tsg_actions_fire(f.acts, &f.a);
	t_fix_stop(&f);
	t_fix_out_hasf(&f,
		       "dry-run: action wt (webhook) POST: \"http://127.0.0.1:%u/tmpl\" timeout: 5s retries: 3\n"
		       "dry-run: action wt (webhook) headers: [\"X-Rule: r1\",\"Content-Type: application/json\"]\n"
		       "dry-run: action wt (webhook) body: \"alert r1 \\\"curl\\\"\"\n"
		       "dry-run: action wj (webhook) POST: \"http://127.0.0.1:%u/json\" timeout: 2s retries: 1\n"
		       "dry-run: action wj (webhook) headers: [\"Content-Type: application/json\"]\n"
		       "dry-run: action wj (webhook) body: {\"time\":",
		       s->port, s->port);
	rec_expect_none(s);
	t_fix_free(&f);
	rec_stop(s);
}

/* Reload: the old rule set may be freed right after the swap while its
 * notifications are still in flight; new notifications use the new
 * definitions. Unknown action names have no stats. */
static void test_webhook_swap(void **state)
{
	struct rec_srv *s1 = rec_start(), *s2 = rec_start();
	struct tsg_action_stats st;
	struct tsg_actions *acts;
	struct tsg_ruleset *rs1, *rs2;
	struct tsg_alert a;

	(void)state;
	s1->fail_n = 1; /* the old one is retried after the swap */
	rs1 = t_rulesf("actions:\n"
		       "  - {name: w, type: webhook, url: 'http://127.0.0.1:%u/old', headers: {X-Rule: '{{rule}}'}}\n"
		       "rules:\n"
		       "  - {name: r1, labels: {v: one}, when: {from: SYN_SENT, to: CLOSE}, actions: [w]}\n",
		       s1->port);
	rs2 = t_rulesf("actions:\n"
		       "  - {name: w, type: webhook, url: 'http://127.0.0.1:%u/new'}\n"
		       "rules:\n"
		       "  - {name: r2, when: {from: SYN_SENT, to: CLOSE}, actions: [w]}\n",
		       s2->port);
	assert_int_equal(tsg_actions_new(rs1, NULL, &acts), 0);
	assert_int_equal(tsg_actions_get_stats(acts, "nope", &st), -ENOENT);
	t_alert(&a, rs1, "r1", TSG_FIRING);
	tsg_actions_fire(acts, &a);
	assert_int_equal(tsg_actions_swap(acts, rs2), 0);
	tsg_ruleset_free(rs1); /* nothing may point into it any more */
	t_alert(&a, rs2, "r2", TSG_FIRING);
	tsg_actions_fire(acts, &a);
	assert_true(t_wait_done(acts, "w", 2, 5000));
	st = t_stats(acts, "w");
	assert_int_equal(st.sent, 2);
	assert_int_equal(st.retried, 1);
	tsg_actions_free(acts);
	assert_int_equal(rec_count(s1), 2);
	assert_string_equal(s1->req[1].url, "/old");
	assert_string_equal(s1->req[1].xrule, "r1");
	assert_non_null(strstr(s1->req[1].body, "\"labels\":{\"v\":\"one\"}"));
	assert_int_equal(rec_count(s2), 1);
	assert_string_equal(s2->req[0].url, "/new");
	assert_non_null(strstr(s2->req[0].body, "\"rule\":\"r2\""));
	tsg_ruleset_free(rs2);
	rec_stop(s1);
	rec_stop(s2);
}

/* Alertmanager bookkeeping seen from a recording server: re-sends keep the
 * first startsAt and move endsAt ahead; the resolve carries that startsAt
 * and endsAt = the resolve time, and re-sends stop; a transition alert is
 * never re-sent; a reload that drops the rule stops its re-sends. */
static void test_webhook_am_resend(void **state)
{
	struct tsg_actions_opts o = { .am_resend_ns = 300000000ull };
	struct rec_srv *s = rec_start();
	struct tsg_actions *acts;
	struct tsg_ruleset *rs, *rs2;
	struct tsg_alert a, t, c;
	const char *first_start = NULL;
	char resolved_at[40];
	int n, n_tr = 0;
	json_t *j = NULL;

	(void)state;
	rs = t_rulesf("actions:\n"
		      "  - {name: am, type: webhook, format: alertmanager, url: 'http://127.0.0.1:%u/api/v2/alerts'}\n"
		      "rules:\n"
		      "  - {name: slow, when: {state: SYN_SENT, longer_than: 1s}, actions: [am]}\n"
		      "  - {name: fails, when: {from: SYN_SENT, to: CLOSE}, actions: [am]}\n"
		      "  - {name: many, when: {state: TIME_WAIT, count_above: 5, by: comm}, actions: [am]}\n",
		      s->port);
	rs2 = t_rulesf("actions:\n"
		       "  - {name: am, type: webhook, format: alertmanager, url: 'http://127.0.0.1:%u/api/v2/alerts'}\n"
		       "rules:\n"
		       "  - {name: slow, when: {state: SYN_SENT, longer_than: 1s}, actions: [am]}\n",
		       s->port);
	acts = t_actions(rs, &o, &a, "slow");
	t_alert_long(&a, rs, "slow", TSG_FIRING, TSG_SYN_SENT, 1000000000ull);
	t_alert(&t, rs, "fails", TSG_FIRING);
	t_alert(&c, rs, "many", TSG_FIRING);
	c.key_is_sock = false;
	c.from = c.to = 0;
	c.state = TSG_TIME_WAIT;
	c.has_count = true;
	c.count = 6;
	c.info.have = TSG_HAVE(TSG_SF_COMM);
	tsg_actions_fire(acts, &a);
	tsg_actions_fire(acts, &t);
	tsg_actions_fire(acts, &c);
	t_sleep_ms(1100); /* about 3 re-sends of slow and many each */
	a.status = TSG_RESOLVED;
	a.wall_ns += 1100000000;
	tsg_format_time(a.wall_ns, resolved_at, sizeof(resolved_at));
	tsg_actions_fire(acts, &a);
	assert_true(t_wait_done(acts, "am", 0, 2000));
	t_sleep_ms(700); /* no more re-sends of slow */
	tsg_actions_swap(acts, rs2); /* many goes away */
	t_sleep_ms(100);
	n = rec_count(s);
	t_sleep_ms(700); /* nothing re-sent any more */
	assert_int_equal(rec_count(s), n);
	tsg_actions_free(acts);

	int n_slow = 0, n_many = 0;
	for (int i = 0; i < n; i++) {
		json_t *arr = json_loads(s->req[i].body, 0, NULL), *al = json_array_get(arr, 0);
		const char *name = json_string_value(
			json_object_get(json_object_get(al, "labels"), "alertname"));
		const char *st = json_string_value(json_object_get(al, "startsAt"));
		const char *en = json_string_value(json_object_get(al, "endsAt"));

		assert_int_equal(json_array_size(arr), 1);
		assert_string_equal(s->req[i].url, "/api/v2/alerts");
		assert_non_null(name);
		if (!strcmp(name, "fails")) {
			n_tr++;
		} else if (!strcmp(name, "many")) {
			n_many++;
			assert_string_equal(json_string_value(json_object_get(
					    json_object_get(al, "labels"), "comm")), "curl");
			assert_null(json_object_get(json_object_get(al, "labels"), "raddr"));
		} else {
			assert_string_equal(name, "slow");
			assert_string_equal(json_string_value(json_object_get(
					    json_object_get(al, "labels"), "raddr")), "10.0.0.9");
			if (!first_start) {
				first_start = strdup(st);
				j = arr;
				arr = NULL;
			}
			assert_string_equal(st, first_start);
			if (++n_slow > 1 && i == n - 1)
				assert_string_equal(en, resolved_at);
			assert_true(strcmp(en, st) > 0);
		}
		json_decref(arr);
	}
	fprintf(stderr, "requests: %d (slow %d, many %d, fails %d)\n", n, n_slow, n_many, n_tr);
	assert_int_equal(n_tr, 1);
	assert_true(n_slow >= 3 && n_slow <= 6);
	assert_true(n_many >= 3);
	/* the last slow request is the resolve */
	{
		int last = -1;

		for (int i = 0; i < n; i++)
			if (strstr(s->req[i].body, "\"alertname\":\"slow\""))
				last = i;
		assert_non_null(strstr(s->req[last].body, resolved_at));
	}
	json_decref(j);
	free((char *)first_start);
	tsg_ruleset_free(rs);
	tsg_ruleset_free(rs2);
	rec_stop(s);
}

/* A socket's namespace and container are in its Alertmanager labels and its
 * key: the same tuple in two namespaces is two alerts. */
static void test_ident_labels_and_key(void **state)
{
	struct tsg_ruleset *rs =
	    t_rules("rules:\n"
		    "  - {name: slow, when: {state: SYN_SENT, longer_than: 1s}}\n"
		    "  - {name: many, when: {state: TIME_WAIT, count_above: 5, "
		    "by: [container, pod]}}\n");
	struct tsg_alert a, b, c;
	json_t *ja, *jb, *jc, *la, *lb, *key;
	char buf[256];

	(void)state;
	t_alert(&a, rs, "slow", TSG_FIRING);
	a.info.netns = 4026532001u;
	a.info.netns_name = tsg_intern("blue");
	a.info.container =
	    tsg_intern("ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb");
	a.info.pod = tsg_intern("1a2b-3c4d");
	b = a;
	b.info.netns = 4026532002u;
	b.info.netns_name = NULL;
	b.info.container = NULL;
	b.info.pod = NULL;
	ja = wh_am_alert(&a);
	jb = wh_am_alert(&b);
	la = json_object_get(ja, "labels");
	lb = json_object_get(jb, "labels");
	assert_string_equal(json_string_value(json_object_get(la, "netns")), "4026532001");
	assert_string_equal(json_string_value(json_object_get(la, "netns_name")), "blue");
	assert_string_equal(json_string_value(json_object_get(la, "container")), a.info.container);
	assert_string_equal(json_string_value(json_object_get(la, "pod")), "1a2b-3c4d");
	assert_string_equal(json_string_value(json_object_get(lb, "netns")), "4026532002");
	assert_null(json_object_get(lb, "netns_name")); /* only when known */
	assert_null(json_object_get(lb, "container"));
	assert_null(json_object_get(lb, "pod"));
	assert_false(json_equal(la, lb));
	json_decref(ja);
	json_decref(jb);

	ja = tsg_alert_to_json(&a);
	key = json_object_get(ja, "key");
	assert_string_equal(json_string_value(json_object_get(key, "sock")),
			    "10.0.0.2:50000-10.0.0.9:443");
	assert_int_equal(json_integer_value(json_object_get(key, "netns")), 4026532001);
	assert_int_equal(json_integer_value(json_object_get(ja, "netns")), 4026532001);
	assert_string_equal(json_string_value(json_object_get(ja, "pod")), "1a2b-3c4d");
	json_decref(ja);
	jb = tsg_alert_to_json(&b);
	assert_null(json_object_get(jb, "container"));
	assert_null(json_object_get(jb, "netns_name"));
	json_decref(jb);
	assert_string_equal(tsg_alert_key_string(&b, buf, sizeof(buf)),
			    "10.0.0.2:50000-10.0.0.9:443 netns=4026532002");

	/* a count rule by container and pod: its labels are its key */
	t_alert(&c, rs, "many", TSG_FIRING);
	c.key_is_sock = false;
	c.info.have = TSG_HAVE(TSG_SF_CONTAINER) | TSG_HAVE(TSG_SF_POD);
	c.info.container = a.info.container;
	c.info.pod = NULL;
	jc = wh_am_alert(&c);
	assert_string_equal(
	    json_string_value(json_object_get(json_object_get(jc, "labels"), "container")),
	    a.info.container);
	assert_null(json_object_get(json_object_get(jc, "labels"), "pod"));
	assert_null(json_object_get(json_object_get(jc, "labels"), "laddr"));
	json_decref(jc);
	snprintf(buf, sizeof(buf), "container=%s,pod=none", a.info.container);
	{
		char k[256];

		assert_string_equal(tsg_alert_key_string(&c, k, sizeof(k)), buf);
	}
	tsg_ruleset_free(rs);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_ident_labels_and_key),
    cmocka_unit_test(test_webhook_formats),
    cmocka_unit_test(test_webhook_retries),
    cmocka_unit_test(test_webhook_hang_blocks_nothing),
    cmocka_unit_test(test_webhook_queue_and_free),
    cmocka_unit_test(test_webhook_dry_run),
    cmocka_unit_test(test_webhook_swap),
    cmocka_unit_test(test_webhook_am_resend),
};

TSG_TEST_MAIN(tests)
