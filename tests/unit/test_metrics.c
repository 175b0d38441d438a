/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of engine/metrics/metrics.c: the exposition text (checked line by line
 * and by `promtool check metrics`), label escaping, listen address parsing,
 * and the HTTP server on loopback (status codes, content type, bodies,
 * publish while serving, idle clients do not block others).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "metrics.h"

#include <curl/curl.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#ifndef PROMTOOL
#define PROMTOOL "/usr/bin/promtool"
#endif

static struct tsg_metrics_rule test_rules[2];
static struct tsg_metrics_action test_actions[2];
static struct tsg_metrics_url test_urls[3];

/* A snapshot where every value is distinct, so a value in the wrong series
 * shows up. */
static void fill(struct tsg_metrics_snapshot *s)
{
	memset(s, 0, sizeof(*s));
	memset(test_rules, 0, sizeof(test_rules));
	memset(test_actions, 0, sizeof(test_actions));
	memset(test_urls, 0, sizeof(test_urls));
	s->have_capture = true;
	s->capture = (struct tsg_capture_stats){ .seen = 1001, .filtered = 1002, .sent = 1003,
						 .lost = 1004, .map_full = 1005,
						 .tw_entered = 1006, .tw_exited = 1007,
						 .snapshot_sockets = 1008, .resyncs = 1009,
						 .nested_lost = 1010, .netns_known = 1011,
						 .netns_overflow = 1012, .netns_freed = 1013,
						 .other_netns = 1014, .other_cgroup = 1015,
						 .cgroup_asked = 1016, .cgroup_allowed = 1017,
						 .cgroup_denied = 1018, .cgroup_pending = 1019,
						 .tw_kernel_ends = 1020, .tw_taken = 1021 };
	s->engine.events = 2001;
	s->engine.events_matched = 2002;
	s->engine.sockets = 2003;
	s->engine.sockets_dropped = 2004;
	s->engine.keys_dropped = 2005;
	s->engine.notifications = 2006;
	s->engine.suppressed = 2007;
	s->engine.out_of_order = 2008;
	s->engine.rate_coarsened = 2009;
	s->engine.per_state[TSG_SYN_SENT] = 7;
	s->engine.per_state[TSG_TIME_WAIT] = 9;
	strcpy(test_rules[0].name, "slow-https-connect");
	strcpy(test_rules[0].kind, "time");
	test_rules[0].st = (struct tsg_rule_stats){ .firing_now = 3, .fired = 31, .resolved = 28,
						    .suppressed = 4, .keys = 5, .keys_dropped = 6 };
	strcpy(test_rules[1].name, "refused-connect-storm");
	strcpy(test_rules[1].kind, "rate");
	test_rules[1].st = (struct tsg_rule_stats){ .fired = 2 };
	s->rules = test_rules;
	s->nrules = 2;
	strcpy(test_actions[0].name, "alertmanager");
	strcpy(test_actions[0].type, "webhook");
	test_actions[0].st = (struct tsg_action_stats){ .sent = 11, .failed = 12, .timed_out = 13,
							.retried = 14, .dropped = 15,
							.queued_now = 16 };
	strcpy(test_actions[1].name, "syslog");
	strcpy(test_actions[1].type, "syslog");
	test_actions[1].st.sent = 33;
	s->actions = test_actions;
	s->nactions = 2;
	/* the alertmanager action's URLs: am-2 twice, with two passwords; the
	 * action's stats above are not their sums, on purpose (distinct values) */
	strcpy(test_urls[0].action, "alertmanager");
	strcpy(test_urls[0].url, "http://am-1:9093/api/v2/alerts");
	test_urls[0].st = (struct tsg_action_stats){.sent = 51,
						    .failed = 52,
						    .timed_out = 53,
						    .retried = 54,
						    .dropped = 55,
						    .queued_now = 56};
	strcpy(test_urls[1].action, "alertmanager");
	strcpy(test_urls[1].url, "http://ops:s3cret@am-2:9093/api/v2/alerts?x=@y");
	test_urls[1].st = (struct tsg_action_stats){.sent = 61, .failed = 62, .queued_now = 63};
	strcpy(test_urls[2].action, "alertmanager");
	strcpy(test_urls[2].url, "http://a@b:other@am-2:9093/api/v2/alerts?x=@y");
	test_urls[2].st = (struct tsg_action_stats){.sent = 100, .dropped = 7, .queued_now = 1};
	s->urls = test_urls;
	s->nurls = 3;
	s->reloads_ok = 41, s->reloads_failed = 42;
	s->last_reload_ok_time = 1764237600.5, s->start_time = 1764230000.25;
	s->dry_run = true;
}

/* `needle` is a whole line of `text`. */
static bool has_line(const char *text, const char *needle)
{
	size_t n = strlen(needle);

	for (const char *p = text; (p = strstr(p, needle)); p++)
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return true;
	return false;
}

#define assert_line(text, line)                                                       \
	do {                                                                          \
		if (!has_line(text, line))                                            \
			fail_msg("missing line: %s\n---\n%s", line, text);            \
	} while (0)

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Every one of the n lines is a whole line of text. */
static void assert_lines(const char *text, const char *const *lines, size_t n)
{
	for (size_t i = 0; i < n; i++)
		assert_line(text, lines[i]);
}

static char *render(const struct tsg_metrics_snapshot *s)
{
	char *text = NULL;
	size_t len = 0;

	assert_int_equal(tsg_metrics_render(s, &text, &len), 0);
	assert_non_null(text);
	assert_int_equal(strlen(text), len);
	assert_true(len > 0 && text[len - 1] == '\n');
	return text;
}

/* Lines of the filled snapshot: capture, engine, states. */
static const char *const values_lines[] = {
	"# HELP tsguard_capture_events_seen_total TCP state transitions the kernel program saw.",
	"# TYPE tsguard_capture_events_seen_total counter",
	"tsguard_capture_events_seen_total 1001",
	"tsguard_capture_events_filtered_total 1002",
	"tsguard_capture_events_sent_total 1003",
	"tsguard_capture_events_lost_total 1004",
	"tsguard_capture_map_full_total 1005",
	"tsguard_capture_time_wait_entered_total 1006",
	"tsguard_capture_time_wait_exited_total 1007",
	"tsguard_capture_snapshot_sockets 1008",
	"tsguard_capture_resyncs_total 1009",
	"tsguard_capture_events_nested_lost_total 1010",
	"tsguard_capture_netns_watched 1011",
	"tsguard_capture_netns_overflow_total 1012",
	"tsguard_capture_netns_freed_total 1013",
	"tsguard_capture_events_other_netns_total 1014",
	"tsguard_capture_events_other_cgroup_total 1015",
	"tsguard_capture_cgroup_asked_total 1016",
	"tsguard_capture_cgroup_allowed_total 1017",
	"tsguard_capture_cgroup_denied_total 1018",
	"# TYPE tsguard_capture_cgroup_pending gauge",
	"tsguard_capture_cgroup_pending 1019",
	"tsguard_capture_time_wait_kernel_ends_total 1020",
	"tsguard_capture_time_wait_taken_over_total 1021",
	"tsguard_engine_rate_coarsened_total 2009",
	"tsguard_engine_events_total 2001",
	"tsguard_engine_events_matched_total 2002",
	"# TYPE tsguard_engine_sockets_tracked gauge",
	"tsguard_engine_sockets_tracked 2003",
	"tsguard_engine_sockets_dropped_total 2004",
	"tsguard_engine_keys_dropped_total 2005",
	"tsguard_engine_notifications_total 2006",
	"tsguard_engine_notifications_suppressed_total 2007",
	"tsguard_engine_events_out_of_order_total 2008",
	"tsguard_engine_sockets_by_state{state=\"SYN_SENT\"} 7",
	"tsguard_engine_sockets_by_state{state=\"TIME_WAIT\"} 9",
	"tsguard_engine_sockets_by_state{state=\"ESTABLISHED\"} 0",
	"tsguard_engine_sockets_by_state{state=\"NEW_SYN_RECV\"} 0",
};

/* ... rules, actions, reloads, build. */
static const char *const values_lines_more[] = {
	"tsguard_rules_loaded 2",
	"tsguard_rule_info{rule=\"slow-https-connect\",kind=\"time\"} 1",
	"tsguard_rule_info{rule=\"refused-connect-storm\",kind=\"rate\"} 1",
	"# TYPE tsguard_alerts_firing gauge",
	"tsguard_alerts_firing{rule=\"slow-https-connect\"} 3",
	"tsguard_alerts_firing{rule=\"refused-connect-storm\"} 0",
	"# TYPE tsguard_notifications_total counter",
	"tsguard_notifications_total{rule=\"slow-https-connect\",status=\"firing\"} 31",
	"tsguard_notifications_total{rule=\"slow-https-connect\",status=\"resolved\"} 28",
	"tsguard_notifications_total{rule=\"refused-connect-storm\",status=\"firing\"} 2",
	"tsguard_notifications_suppressed_total{rule=\"slow-https-connect\"} 4",
	"tsguard_rule_keys{rule=\"slow-https-connect\"} 5",
	"tsguard_rule_keys_dropped_total{rule=\"slow-https-connect\"} 6",
	"tsguard_action_results_total{action=\"alertmanager\",type=\"webhook\",result=\"sent\"} 11",
	"tsguard_action_results_total{action=\"alertmanager\",type=\"webhook\",result=\"failed\"} 12",
	"tsguard_action_results_total{action=\"alertmanager\",type=\"webhook\",result=\"timed_out\"} 13",
	"tsguard_action_results_total{action=\"alertmanager\",type=\"webhook\",result=\"retried\"} 14",
	"tsguard_action_results_total{action=\"alertmanager\",type=\"webhook\",result=\"dropped\"} 15",
	"tsguard_action_results_total{action=\"syslog\",type=\"syslog\",result=\"sent\"} 33",
	"tsguard_action_queue_depth{action=\"alertmanager\"} 16",
	"tsguard_action_queue_depth{action=\"syslog\"} 0",
	"tsguard_reloads_total{result=\"ok\"} 41",
	"tsguard_reloads_total{result=\"failed\"} 42",
	"tsguard_last_reload_success_timestamp_seconds 1764237600.500",
	"tsguard_start_time_seconds 1764230000.250",
	"tsguard_dry_run 1",
	"tsguard_build_info{version=\"" TSG_VERSION "\"} 1",
};

/* The page of the filled snapshot (fill) in s. */
static char *render_filled(struct tsg_metrics_snapshot *s)
{
	fill(s);
	return render(s);
}

static void test_render_values(void **state)
{
	struct tsg_metrics_snapshot s;
	char *t = render_filled(&s);

	assert_lines(t, values_lines, ARRAY_SIZE(values_lines));
	assert_null(strstr(t, "state=\"NONE\""));
	assert_lines(t, values_lines_more, ARRAY_SIZE(values_lines_more));
	free(t);
}

/* Per-URL series of the first Alertmanager URL. */
static const char *const urls_lines[] = {
	"# TYPE tsguard_webhook_url_results_total counter",
	"tsguard_webhook_url_results_total{action=\"alertmanager\",url=\"http://"
	"am-1:9093/api/v2/alerts\",result=\"sent\"} 51",
	"tsguard_webhook_url_results_total{action=\"alertmanager\",url=\"http://"
	"am-1:9093/api/v2/alerts\",result=\"failed\"} 52",
	"tsguard_webhook_url_results_total{action=\"alertmanager\",url=\"http://"
	"am-1:9093/api/v2/alerts\",result=\"timed_out\"} 53",
	"tsguard_webhook_url_results_total{action=\"alertmanager\",url=\"http://"
	"am-1:9093/api/v2/alerts\",result=\"retried\"} 54",
	"tsguard_webhook_url_results_total{action=\"alertmanager\",url=\"http://"
	"am-1:9093/api/v2/alerts\",result=\"dropped\"} 55",
	"# TYPE tsguard_webhook_url_queue_depth gauge",
	"tsguard_webhook_url_queue_depth{action=\"alertmanager\",url=\"http://"
	"am-1:9093/api/v2/alerts\"} 56",
};

/* ... of the second: two URLs that differ only in user:password@ are one series. */
static const char *const urls_lines_am2[] = {
	"tsguard_webhook_url_results_total{action=\"alertmanager\",url=\"http://"
	"am-2:9093/api/v2/alerts?x=@y\",result=\"sent\"} 161",
	"tsguard_webhook_url_results_total{action=\"alertmanager\",url=\"http://"
	"am-2:9093/api/v2/alerts?x=@y\",result=\"failed\"} 62",
	"tsguard_webhook_url_results_total{action=\"alertmanager\",url=\"http://"
	"am-2:9093/api/v2/alerts?x=@y\",result=\"dropped\"} 7",
	"tsguard_webhook_url_queue_depth{action=\"alertmanager\",url=\"http://"
	"am-2:9093/api/v2/alerts?x=@y\"} 64",
};

static void test_render_urls(void **state)
{
	struct tsg_metrics_snapshot s;
	char *t = render_filled(&s);

	assert_lines(t, urls_lines, ARRAY_SIZE(urls_lines));
	/* no user:password@ in a label; two URLs that differ only there are one
	 * series, their sums; an @ in the query string stays */
	assert_null(strstr(t, "s3cret"));
	assert_null(strstr(t, "other@"));
	assert_lines(t, urls_lines_am2, ARRAY_SIZE(urls_lines_am2));
	{
		const char *p = t;
		int n = 0;

		while ((p = strstr(p, "tsguard_webhook_url_queue_depth{")))
			n++, p++;
		assert_int_equal(n, 2);
	}
	/* the action's own series are unchanged */
	assert_line(t, "tsguard_action_results_total{action=\"alertmanager\",type=\"webhook\","
		       "result=\"sent\"} 11");
	assert_line(t, "tsguard_action_queue_depth{action=\"alertmanager\"} 16");
	free(t);
}

/* An empty snapshot's page (no capture: replay). */
static const char *const no_capture_lines[] = {
	"tsguard_engine_events_total 0",
	"tsguard_rules_loaded 0",
	"# TYPE tsguard_alerts_firing gauge",
	"tsguard_dry_run 0",
};

static void test_render_no_capture(void **state)
{
	struct tsg_metrics_snapshot s = { 0 };
	char *t = render(&s);

	/* no capture (replay): no capture series, the rest still there */
	assert_null(strstr(t, "tsguard_capture_"));
	assert_lines(t, no_capture_lines, ARRAY_SIZE(no_capture_lines));
	assert_null(strstr(t, "tsguard_alerts_firing{"));
	free(t);
}

/* Every line is a comment or a sample, every sample's family was declared. */
static void test_render_every_sample_has_help_and_type(void **state)
{
	struct tsg_metrics_snapshot s;
	char *t, *save = NULL, *line;
	char helped[64][96], typed[64][96];
	size_t nh = 0, nt = 0, nsamples = 0;

	t = render_filled(&s);
	for (line = strtok_r(t, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char name[96];

		if (sscanf(line, "# HELP %95s", name) == 1) {
			assert_true(nh < 64);
			strcpy(helped[nh++], name);
			continue;
		}
		if (sscanf(line, "# TYPE %95s", name) == 1) {
			assert_true(nt < 64);
			strcpy(typed[nt++], name);
			continue;
		}
		assert_true(line[0] != '#');
		assert_int_equal(strncmp(line, "tsguard_", 8), 0);
		size_t n = strcspn(line, "{ ");
		bool h = false, ty = false;

		for (size_t i = 0; i < nh; i++)
			h |= strlen(helped[i]) == n && !strncmp(helped[i], line, n);
		for (size_t i = 0; i < nt; i++)
			ty |= strlen(typed[i]) == n && !strncmp(typed[i], line, n);
		if (!h || !ty)
			fail_msg("sample without HELP/TYPE: %s", line);
		nsamples++;
	}
	assert_int_equal(nh, nt);
	assert_true(nsamples > 40);
	free(t);
}

static void test_label_escaping(void **state)
{
	struct tsg_metrics_snapshot s;
	char *t;

	fill(&s);
	strcpy(test_rules[0].name, "a\"b\\c\nd");
	strcpy(test_actions[0].name, "x\\\"");
	t = render(&s);
	assert_line(t, "tsguard_alerts_firing{rule=\"a\\\"b\\\\c\\nd\"} 3");
	assert_line(t, "tsguard_action_queue_depth{action=\"x\\\\\\\"\"} 16");
	free(t);
}

/* Runs promtool check metrics on `text`; returns its exit status, its output in out. */
static int promtool(const char *text, char *out, size_t outsz)
{
	char tmpl[] = "/tmp/tsg-test-metrics-XXXXXX", cmd[256];
	int fd = mkstemp(tmpl);
	FILE *p;
	ssize_t n;
	int st;

	assert_true(fd >= 0);
	snprintf(cmd, sizeof(cmd), PROMTOOL " check metrics >%s 2>&1", tmpl);
	p = popen(cmd, "w");
	assert_non_null(p);
	fputs(text, p);
	st = pclose(p);
	n = read(fd, out, outsz - 1);
	out[n > 0 ? n : 0] = '\0';
	close(fd);
	unlink(tmpl);
	assert_true(WIFEXITED(st));
	return WEXITSTATUS(st);
}

static void test_promtool(void **state)
{
	struct tsg_metrics_snapshot s;
	char out[4096];
	char *t;

	if (access(PROMTOOL, X_OK) != 0) {
		print_message("%s not installed (Debian package prometheus)\n", PROMTOOL);
		skip();
	}
	/* promtool itself must catch a bad exposition, or this test proves nothing */
	assert_int_not_equal(promtool("# TYPE x_total counter\nx_total{a=\"b} 1\n", out,
				      sizeof(out)), 0);

	fill(&s);
	strcpy(test_rules[0].name, "quote\"back\\slash\nnewline");
	t = render(&s);
	assert_int_equal(promtool(t, out, sizeof(out)), 0);
	if (out[0])
		fail_msg("promtool check metrics reported:\n%s", out);
	free(t);

	memset(&s, 0, sizeof(s));
	t = render(&s);
	assert_int_equal(promtool(t, out, sizeof(out)), 0);
	if (out[0])
		fail_msg("promtool check metrics (empty snapshot) reported:\n%s", out);
	free(t);
}

/* ---- listen addresses ---------------------------------------------------- */

static void test_bad_addresses(void **state)
{
	static const char *const bad[] = {
		"",		  "9464",	     "127.0.0.1",	 "127.0.0.1:",
		"127.0.0.1:0",	  "127.0.0.1:65536", "127.0.0.1:94x64", "127.0.0.1:-1",
		"localhost:9464", "::1:9464",	     "[::1]9464",	 "[::1]",
		"[]:9464",	  "[::1:9464",	     "300.0.0.1:9464",	 "127.0.0.1: 9464",
	};
	struct tsg_metrics *m = NULL;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = tsg_metrics_new(bad[i], &m);

		if (rc != -EINVAL)
			fail_msg("\"%s\": expected -EINVAL, got %d", bad[i], rc);
		assert_null(m);
	}
	tsg_metrics_free(NULL);
}

/* ---- the server ---------------------------------------------------------- */

/* A port nobody listens on now (bind to 0, read it, close). */
static int free_port(int family)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t len = sizeof(ss);
	int fd = socket(family, SOCK_STREAM, 0), port;

	assert_true(fd >= 0);
	ss.ss_family = (sa_family_t)family;
	if (family == AF_INET)
		((struct sockaddr_in *)&ss)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	else
		((struct sockaddr_in6 *)&ss)->sin6_addr = in6addr_loopback;
	assert_int_equal(bind(fd, (struct sockaddr *)&ss, family == AF_INET ?
			      sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
	port = ntohs(family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port :
					 ((struct sockaddr_in6 *)&ss)->sin6_port);
	close(fd);
	return port;
}

/* Starts on host (e.g. "127.0.0.1" or "[::1]") at a free port. */
static struct tsg_metrics *start_on(const char *host, int family, char *base, size_t basesz)
{
	struct tsg_metrics *m = NULL;
	char listen[64];

	for (int tries = 0; tries < 5; tries++) {
		int port = free_port(family);
		int rc;

		snprintf(listen, sizeof(listen), "%s:%d", host, port);
		rc = tsg_metrics_new(listen, &m);
		if (rc == -EADDRINUSE)
			continue; /* someone took it in between */
		assert_int_equal(rc, 0);
		assert_non_null(m);
		snprintf(base, basesz, "http://%s:%d", host, port);
		return m;
	}
	fail_msg("no free port");
	return NULL;
}

struct resp {
	long status;
	char body[65536];
	size_t len;
	char ctype[128];
};

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
	struct resp *r = ud;
	size_t k = sz * n;

	if (k > sizeof(r->body) - 1 - r->len)
		return 0;
	memcpy(r->body + r->len, p, k);
	r->len += k;
	r->body[r->len] = '\0';
	return k;
}

static void fetch(const char *method, const char *url, struct resp *r)
{
	CURL *c = curl_easy_init();
	char *ct = NULL;

	assert_non_null(c);
	memset(r, 0, sizeof(*r));
	curl_easy_setopt(c, CURLOPT_URL, url);
	if (!strcmp(method, "HEAD"))
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	else
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	if (!strcmp(method, "POST"))
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, "x=1");
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
	curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
	if (curl_easy_perform(c) != CURLE_OK)
		fail_msg("%s %s failed", method, url);
	curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
	curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &ct);
	snprintf(r->ctype, sizeof(r->ctype), "%s", ct ? ct : "");
	curl_easy_cleanup(c);
}

/* method base+path into r; fails unless the status is `status`. */
static void fetch_path(const char *method, const char *base, const char *path, struct resp *r,
		       long status)
{
	char url[128];

	snprintf(url, sizeof(url), "%s%s", base, path);
	fetch(method, url, r);
	if (r->status != status)
		fail_msg("%s %s: status %ld, expected %ld", method, url, r->status, status);
}

/* What the server answers besides the pages themselves. */
static const struct {
	const char *method, *path;
	long status;
} statuses[] = {
	{ "GET", "/metrics?x=1", 200 }, { "GET", "/", 404 },	   { "GET", "/metricsx", 404 },
	{ "POST", "/metrics", 405 },	{ "DELETE", "/metrics", 405 }, { "PUT", "/healthz", 405 },
};

static void test_server(void **state)
{
	struct tsg_metrics_snapshot s;
	struct tsg_metrics *m, *m2 = NULL;
	char base[64], url[128], listen[64];
	struct resp *r = malloc(sizeof(*r));

	assert_non_null(r);
	m = start_on("127.0.0.1", AF_INET, base, sizeof(base));

	/* before any snapshot: a valid page with zeros */
	snprintf(url, sizeof(url), "%s/metrics", base);
	fetch("GET", url, r);
	assert_int_equal(r->status, 200);
	assert_string_equal(r->ctype, "text/plain; version=0.0.4; charset=utf-8");
	assert_true(has_line(r->body, "tsguard_rules_loaded 0"));
	assert_true(has_line(r->body, "tsguard_build_info{version=\"" TSG_VERSION "\"} 1"));

	fill(&s);
	tsg_metrics_publish(m, &s);
	/* the copy is deep: changing the caller's arrays changes nothing served */
	strcpy(test_rules[0].name, "changed-after-publish");
	test_rules[0].st.firing_now = 99;
	fetch("GET", url, r);
	assert_int_equal(r->status, 200);
	assert_true(has_line(r->body, "tsguard_alerts_firing{rule=\"slow-https-connect\"} 3"));
	assert_true(has_line(r->body, "tsguard_capture_events_lost_total 1004"));
	assert_null(strstr(r->body, "changed-after-publish"));

	/* a newer snapshot replaces it */
	fill(&s);
	s.engine.events = 123456;
	s.nrules = 1;
	tsg_metrics_publish(m, &s);
	fetch("GET", url, r);
	assert_true(has_line(r->body, "tsguard_engine_events_total 123456"));
	assert_true(has_line(r->body, "tsguard_rules_loaded 1"));
	assert_null(strstr(r->body, "refused-connect-storm"));

	/* HEAD: headers only */
	fetch("HEAD", url, r);
	assert_int_equal(r->status, 200);
	assert_int_equal(r->len, 0);
	assert_string_equal(r->ctype, "text/plain; version=0.0.4; charset=utf-8");

	fetch_path("GET", base, "/healthz", r, 200);
	assert_string_equal(r->body, "ok\n");
	for (size_t i = 0; i < ARRAY_SIZE(statuses); i++)
		fetch_path(statuses[i].method, base, statuses[i].path, r, statuses[i].status);

	/* the same address twice: EADDRINUSE with the reason */
	snprintf(listen, sizeof(listen), "%s", base + strlen("http://"));
	assert_int_equal(tsg_metrics_new(listen, &m2), -EADDRINUSE);
	assert_null(m2);

	tsg_metrics_free(m);
	free(r);
}

struct publisher {
	struct tsg_metrics *m;
	atomic_bool stop;
	unsigned long n;
};

static void *publish_loop(void *arg)
{
	struct publisher *p = arg;
	struct tsg_metrics_rule rules[3] = { 0 };
	struct tsg_metrics_snapshot s = { .rules = rules };

	while (!atomic_load(&p->stop)) {
		/* every snapshot is self-consistent: events == firing of each rule */
		s.nrules = 1 + p->n % 3;
		s.engine.events = p->n;
		for (size_t i = 0; i < s.nrules; i++) {
			snprintf(rules[i].name, sizeof(rules[i].name), "r%zu", i);
			rules[i].st.firing_now = p->n;
		}
		tsg_metrics_publish(p->m, &s);
		p->n++;
	}
	return NULL;
}

/* Snapshots replaced while scrapes render them: each page shows one whole
 * snapshot (no torn values, no freed memory; run under ASan/TSan). */
static void test_publish_while_serving(void **state)
{
	struct publisher p = { 0 };
	char base[64], url[128];
	struct resp *r = malloc(sizeof(*r));
	int checked = 0;
	pthread_t t;

	assert_non_null(r);
	p.m = start_on("127.0.0.1", AF_INET, base, sizeof(base));
	snprintf(url, sizeof(url), "%s/metrics", base);
	assert_int_equal(pthread_create(&t, NULL, publish_loop, &p), 0);
	for (int i = 0; i < 40; i++) {
		unsigned long long ev;
		char line[128];
		const char *e;

		fetch("GET", url, r);
		assert_int_equal(r->status, 200);
		e = strstr(r->body, "\ntsguard_engine_events_total ");
		/* before the first publish the page shows the empty snapshot */
		if (!e || !strstr(r->body, "rule=\"r0\""))
			continue;
		assert_int_equal(sscanf(e, "\ntsguard_engine_events_total %llu", &ev), 1);
		snprintf(line, sizeof(line), "tsguard_alerts_firing{rule=\"r0\"} %llu", ev);
		assert_true(has_line(r->body, line));
		snprintf(line, sizeof(line), "tsguard_rules_loaded %llu", 1 + ev % 3);
		assert_true(has_line(r->body, line));
		checked++;
	}
	atomic_store(&p.stop, true);
	pthread_join(t, NULL);
	assert_true(p.n > 0);
	assert_true(checked > 0); /* at least one page showed a published snapshot */
	tsg_metrics_free(p.m);
	free(r);
}

/* Clients that connect and send nothing hold a slot each, but no more than
 * their share: another client is still served. */
static void test_idle_clients(void **state)
{
	struct tsg_metrics *m;
	char base[64];
	struct resp *r = malloc(sizeof(*r));
	int fds[3];
	struct sockaddr_in sa = { .sin_family = AF_INET };

	assert_non_null(r);
	m = start_on("127.0.0.1", AF_INET, base, sizeof(base));
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons((uint16_t)atoi(strrchr(base, ':') + 1));
	for (int i = 0; i < 3; i++) {
		fds[i] = socket(AF_INET, SOCK_STREAM, 0);
		assert_true(fds[i] >= 0);
		assert_int_equal(connect(fds[i], (struct sockaddr *)&sa, sizeof(sa)), 0);
		/* a partial request line, never finished */
		assert_int_equal(write(fds[i], "GET /met", 8), 8);
	}
	fetch_path("GET", base, "/healthz", r, 200);
	for (int i = 0; i < 3; i++)
		close(fds[i]);
	tsg_metrics_free(m);
	free(r);
}

static void test_server_ipv6(void **state)
{
	struct tsg_metrics *m;
	char base[64];
	struct resp *r;
	int fd = socket(AF_INET6, SOCK_STREAM, 0);

	if (fd < 0) {
		print_message("no IPv6 on this host\n");
		skip();
	}
	close(fd);
	r = malloc(sizeof(*r));
	assert_non_null(r);
	m = start_on("[::1]", AF_INET6, base, sizeof(base));
	fetch_path("GET", base, "/healthz", r, 200);
	assert_string_equal(r->body, "ok\n");
	tsg_metrics_free(m);
	free(r);
}

/* ":PORT" listens on every address: reachable on 127.0.0.1. */
static void test_server_any(void **state)
{
	struct tsg_metrics *m = NULL;
	char listen[32], url[128];
	struct resp *r = malloc(sizeof(*r));
	int rc = -EADDRINUSE, port = 0;

	assert_non_null(r);
	for (int tries = 0; tries < 5 && rc == -EADDRINUSE; tries++) {
		port = free_port(AF_INET);
		snprintf(listen, sizeof(listen), ":%d", port);
		rc = tsg_metrics_new(listen, &m);
	}
	assert_int_equal(rc, 0);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/metrics", port);
	fetch("GET", url, r);
	assert_int_equal(r->status, 200);
	assert_true(has_line(r->body, "tsguard_rules_loaded 0"));
	tsg_metrics_free(m);
	free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_render_values),
		cmocka_unit_test(test_render_urls),
		cmocka_unit_test(test_render_no_capture),
		cmocka_unit_test(test_render_every_sample_has_help_and_type),
		cmocka_unit_test(test_label_escaping),
		cmocka_unit_test(test_promtool),
		cmocka_unit_test(test_bad_addresses),
		cmocka_unit_test(test_server),
		cmocka_unit_test(test_idle_clients),
		cmocka_unit_test(test_publish_while_serving),
		cmocka_unit_test(test_server_ipv6),
		cmocka_unit_test(test_server_any),
	};
	int rc;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	curl_global_cleanup();
	return rc;
}
