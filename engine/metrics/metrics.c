/* SPDX-License-Identifier: MIT */
/*
 * tsguard: Prometheus metrics over libmicrohttpd (metrics.h).
 *
 * The main loop publishes a snapshot: a deep copy is made outside any lock
 * and swapped in under a mutex held only for the pointer swap. The HTTP
 * thread takes a reference to the current snapshot under the same mutex,
 * renders it without the lock and drops the reference. So neither side ever
 * waits on the other's work.
 *
 * Bounds: a fixed number of connections (all clients and per client IP), an
 * idle timeout per connection so a slow client cannot hold a slot, a small
 * memory pool per connection, and request bodies are never read.
 */
#include "metrics.h"
#include "log.h"

#include <microhttpd.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define METRICS_MAX_CONNS 16
#define METRICS_MAX_CONNS_PER_IP 4
#define METRICS_CONN_TIMEOUT_S 10
#define METRICS_CONN_MEMORY (32 * 1024)
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* A published snapshot with its own copies of the rule and action arrays. */
struct snap_ref {
	struct tsg_metrics_snapshot s;
	unsigned refs; /* under tsg_metrics.lock */
};

struct tsg_metrics {
	struct MHD_Daemon *daemon;
	pthread_mutex_t lock;
	struct snap_ref *cur;
	double start_time; /* shown until the first snapshot arrives */
	char listen[128];
};

/* ---- the exposition text ------------------------------------------------ */

struct buf {
	char *p;
	size_t len, cap;
	bool oom;
};

static void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void buf_printf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->oom)
		return;
	for (;;) {
		size_t room = b->cap - b->len;

		va_start(ap, fmt);
		n = vsnprintf(b->p ? b->p + b->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = true;
			return;
		}
		if ((size_t)n < room) {
			b->len += (size_t)n;
			return;
		}
		size_t ncap = b->cap ? b->cap : 4096;
		while (ncap - b->len <= (size_t)n)
			ncap *= 2;
		char *np = realloc(b->p, ncap);
		if (!np) {
			b->oom = true;
			return;
		}
		b->p = np;
		b->cap = ncap;
	}
}

/* A label value, escaped as the text format wants: \\, \" and \n. */
static void buf_label(struct buf *b, const char *name, const char *val, bool first)
{
	buf_printf(b, "%s%s=\"", first ? "" : ",", name);
	for (const char *c = val; *c && !b->oom; c++) {
		switch (*c) {
		case '\\':
			buf_printf(b, "\\\\");
			break;
		case '"':
			buf_printf(b, "\\\"");
			break;
		case '\n':
			buf_printf(b, "\\n");
			break;
		default:
			buf_printf(b, "%c", *c);
		}
	}
	buf_printf(b, "\"");
}

static void family(struct buf *b, const char *name, const char *type, const char *help)
{
	buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void sample_u64(struct buf *b, const char *name, uint64_t v)
{
	buf_printf(b, "%s %llu\n", name, (unsigned long long)v);
}

static void counter(struct buf *b, const char *name, const char *help, uint64_t v)
{
	family(b, name, "counter", help);
	sample_u64(b, name, v);
}

static void gauge(struct buf *b, const char *name, const char *help, uint64_t v)
{
	family(b, name, "gauge", help);
	sample_u64(b, name, v);
}

static void gauge_time(struct buf *b, const char *name, const char *help, double t)
{
	family(b, name, "gauge", help);
	buf_printf(b, "%s %.3f\n", name, t);
}

/* name{l1="v1"[,l2="v2"[,l3="v3"]]} value */
static void sample_l(struct buf *b, const char *name, uint64_t v, const char *l1,
		     const char *v1, const char *l2, const char *v2, const char *l3,
		     const char *v3)
{
	buf_printf(b, "%s{", name);
	buf_label(b, l1, v1, true);
	if (l2)
		buf_label(b, l2, v2, false);
	if (l3)
		buf_label(b, l3, v3, false);
	buf_printf(b, "} %llu\n", (unsigned long long)v);
}

/* One counter or gauge of a stats struct: the uint64_t at `off`. */
struct series {
	const char *name;
	bool gauge;
	const char *help;
	size_t off;
};

#define CAP(f) offsetof(struct tsg_capture_stats, f)
#define ENG(f) offsetof(struct tsg_engine_stats, f)

static const struct series capture_series[] = {
	{ "tsguard_capture_events_seen_total", false,
	  "TCP state transitions the kernel program saw.", CAP(seen) },
	{ "tsguard_capture_events_filtered_total", false,
	  "Transitions dropped in the kernel because no rule wants them.", CAP(filtered) },
	{ "tsguard_capture_events_sent_total", false,
	  "Transitions written to the ring buffer for user space.", CAP(sent) },
	{ "tsguard_capture_events_lost_total", false,
	  "Transitions lost because the ring buffer was full.", CAP(lost) },
	{ "tsguard_capture_map_full_total", false,
	  "Kernel map insertions that failed because a bounded map was full.", CAP(map_full) },
	{ "tsguard_capture_time_wait_entered_total", false,
	  "Sockets seen entering TIME_WAIT (derived, the tracepoint does not report it).",
	  CAP(tw_entered) },
	{ "tsguard_capture_time_wait_exited_total", false,
	  "TIME_WAIT sockets seen leaving (reported by the kernel, or found gone by the scan).",
	  CAP(tw_exited) },
	{ "tsguard_capture_syn_recv_entered_total", false,
	  "Half-open connections (NEW_SYN_RECV) found by the reconcile scan.",
	  CAP(syn_recv_entered) },
	{ "tsguard_capture_syn_recv_exited_total", false,
	  "Half-open connections (NEW_SYN_RECV) the reconcile scan found gone.",
	  CAP(syn_recv_exited) },
	{ "tsguard_capture_resyncs_total", false,
	  "Times the tracked sockets were made equal to the kernel's after a loss.", CAP(resyncs) },
	{ "tsguard_capture_events_nested_lost_total", false,
	  "Transitions the kernel skipped for both attached programs (nested runs on one CPU).",
	  CAP(nested_lost) },
	{ "tsguard_capture_netns_watched", true, "Network namespaces scanned now.",
	  CAP(netns_known) },
	{ "tsguard_capture_netns_overflow_total", false,
	  "Network namespaces beyond the cap, not scanned.", CAP(netns_overflow) },
	{ "tsguard_capture_netns_freed_total", false,
	  "Network namespaces that disappeared and were freed.", CAP(netns_freed) },
	{ "tsguard_capture_events_other_netns_total", false,
	  "Transitions of network namespaces no rule names, dropped in the kernel.",
	  CAP(other_netns) },
	{ "tsguard_capture_events_other_cgroup_total", false,
	  "Transitions of cgroups whose container or pod no rule names, dropped in the kernel.",
	  CAP(other_cgroup) },
	{ "tsguard_capture_cgroup_asked_total", false,
	  "Cgroups the kernel's cgroup gate asked a verdict for.", CAP(cgroup_asked) },
	{ "tsguard_capture_cgroup_allowed_total", false,
	  "Cgroup gate verdicts written: some rule names the container or pod.",
	  CAP(cgroup_allowed) },
	{ "tsguard_capture_cgroup_denied_total", false,
	  "Cgroup gate verdicts written: no rule names the container or pod.", CAP(cgroup_denied) },
	{ "tsguard_capture_cgroup_pending", true,
	  "Cgroups left without a verdict (path not found, map write failed): they pass.",
	  CAP(cgroup_pending) },
	{ "tsguard_capture_time_wait_kernel_ends_total", false,
	  "Ends of followed timewait sockets reported by the kernel (their timer fired, a reset).",
	  CAP(tw_kernel_ends) },
	{ "tsguard_capture_time_wait_taken_over_total", false,
	  "Followed timewait sockets whose 4-tuple a new connection took over.", CAP(tw_taken) },
	{ "tsguard_capture_snapshot_sockets", true,
	  "Sockets found by the startup snapshot (sockets older than tsguard).",
	  CAP(snapshot_sockets) },
};

static const struct series engine_series[] = {
	{ "tsguard_engine_events_total", false, "Transitions fed to the evaluation engine.",
	  ENG(events) },
	{ "tsguard_engine_events_matched_total", false,
	  "Transitions that reached at least one rule.", ENG(events_matched) },
	{ "tsguard_engine_notifications_total", false,
	  "Alert notifications (firing and resolved) of all rules.", ENG(notifications) },
	{ "tsguard_engine_notifications_suppressed_total", false,
	  "Firing notifications of all rules suppressed by cooldown.", ENG(suppressed) },
	{ "tsguard_engine_sockets_tracked", true, "Sockets tracked by the engine now.",
	  ENG(sockets) },
	{ "tsguard_engine_sockets_dropped_total", false,
	  "Sockets not tracked because the socket table was full.", ENG(sockets_dropped) },
	{ "tsguard_engine_keys_dropped_total", false,
	  "Count, rate or cooldown keys not tracked because a rule's key limit was hit.",
	  ENG(keys_dropped) },
	{ "tsguard_engine_rate_coarsened_total", false,
	  "Times a rate window widened its buckets beyond 1 ms (long windows).",
	  ENG(rate_coarsened) },
	{ "tsguard_engine_events_out_of_order_total", false,
	  "Events older than the engine clock (clamped to it).", ENG(out_of_order) },
};

/* Each of the n series, its value read from `stats`, in table order. */
static void render_series(struct buf *b, const struct series *s, size_t n, const void *stats)
{
	for (size_t i = 0; i < n; i++) {
		uint64_t v;

		memcpy(&v, (const char *)stats + s[i].off, sizeof(v));
		(s[i].gauge ? gauge : counter)(b, s[i].name, s[i].help, v);
	}
}

static void render_capture(struct buf *b, const struct tsg_capture_stats *c)
{
	render_series(b, capture_series, sizeof(capture_series) / sizeof(capture_series[0]), c);
}

static void render_engine(struct buf *b, const struct tsg_engine_stats *e)
{
	render_series(b, engine_series, sizeof(engine_series) / sizeof(engine_series[0]), e);
	family(b, "tsguard_engine_sockets_by_state", "gauge",
	       "Sockets tracked by the engine now, by TCP state.");
	for (int st = TSG_STATE_NONE + 1; st < TSG_NSTATES; st++)
		sample_l(b, "tsguard_engine_sockets_by_state", e->per_state[st], "state",
			 tsg_state_name(st), NULL, NULL, NULL, NULL);
}

static void render_rules(struct buf *b, const struct tsg_metrics_snapshot *s)
{
	gauge(b, "tsguard_rules_loaded", "Rules in the running rule set.", s->nrules);
	family(b, "tsguard_rule_info", "gauge", "One series per loaded rule, with its kind.");
	for (size_t i = 0; i < s->nrules; i++)
		sample_l(b, "tsguard_rule_info", 1, "rule", s->rules[i].name, "kind",
			 s->rules[i].kind, NULL, NULL);
	family(b, "tsguard_alerts_firing", "gauge", "Alerts firing now, by rule.");
	for (size_t i = 0; i < s->nrules; i++)
		sample_l(b, "tsguard_alerts_firing", s->rules[i].st.firing_now, "rule",
			 s->rules[i].name, NULL, NULL, NULL, NULL);
	family(b, "tsguard_notifications_total", "counter",
	       "Alert notifications, by rule and status (firing or resolved).");
	for (size_t i = 0; i < s->nrules; i++) {
		sample_l(b, "tsguard_notifications_total", s->rules[i].st.fired, "rule",
			 s->rules[i].name, "status", "firing", NULL, NULL);
		sample_l(b, "tsguard_notifications_total", s->rules[i].st.resolved, "rule",
			 s->rules[i].name, "status", "resolved", NULL, NULL);
	}
	family(b, "tsguard_notifications_suppressed_total", "counter",
	       "Firing notifications suppressed by cooldown, by rule.");
	for (size_t i = 0; i < s->nrules; i++)
		sample_l(b, "tsguard_notifications_suppressed_total", s->rules[i].st.suppressed,
			 "rule", s->rules[i].name, NULL, NULL, NULL, NULL);
	family(b, "tsguard_rule_keys", "gauge",
	       "Keys (sockets, count, rate or cooldown keys) a rule holds now.");
	for (size_t i = 0; i < s->nrules; i++)
		sample_l(b, "tsguard_rule_keys", s->rules[i].st.keys, "rule", s->rules[i].name,
			 NULL, NULL, NULL, NULL);
	family(b, "tsguard_rule_keys_dropped_total", "counter",
	       "Keys not tracked because the rule's key limit was hit, by rule.");
	for (size_t i = 0; i < s->nrules; i++)
		sample_l(b, "tsguard_rule_keys_dropped_total", s->rules[i].st.keys_dropped,
			 "rule", s->rules[i].name, NULL, NULL, NULL, NULL);
}

/* The result label of the action and URL series, in tsg_action_stats order
 * (a webhook URL never skips: its series stop at dropped). */
static const char *const results[] = { "sent",	  "failed",  "timed_out",
				       "retried", "dropped", "skipped" };

static void render_actions(struct buf *b, const struct tsg_metrics_snapshot *s)
{

	family(b, "tsguard_action_results_total", "counter",
	       "Action runs by action, type and result (sent, failed, timed_out, retried, dropped, "
	       "skipped).");
	for (size_t i = 0; i < s->nactions; i++) {
		const struct tsg_metrics_action *a = &s->actions[i];
		const uint64_t v[] = { a->st.sent,    a->st.failed,  a->st.timed_out,
				       a->st.retried, a->st.dropped, a->st.skipped };

		for (size_t r = 0; r < sizeof(results) / sizeof(results[0]); r++)
			sample_l(b, "tsguard_action_results_total", v[r], "action", a->name,
				 "type", a->type, "result", results[r]);
	}
	family(b, "tsguard_action_queue_depth", "gauge",
	       "Action runs queued or in flight now, by action.");
	for (size_t i = 0; i < s->nactions; i++)
		sample_l(b, "tsguard_action_queue_depth", s->actions[i].st.queued_now, "action",
			 s->actions[i].name, NULL, NULL, NULL, NULL);
}

/* The URL as a label: without the user information (user:password@), which
 * must not reach a scraper. */
static void url_shown(const char *url, char *out, size_t n)
{
	const char *h = strstr(url, "://"), *at = NULL, *end;

	if (!h) {
		snprintf(out, n, "%s", url);
		return;
	}
	h += 3;
	end = h + strcspn(h, "/?#");
	for (const char *p = h; p < end; p++)
		if (*p == '@')
			at = p;
	snprintf(out, n, "%.*s%s", (int)(h - url), url, at ? at + 1 : h);
}

/* URLs i and j of s show the same series (the same action and shown URL). */
static bool url_same(const struct tsg_metrics_snapshot *s, size_t i, size_t j)
{
	char a[sizeof(s->urls[0].url)], b[sizeof(a)];

	if (strcmp(s->urls[i].action, s->urls[j].action))
		return false;
	url_shown(s->urls[i].url, a, sizeof(a));
	url_shown(s->urls[j].url, b, sizeof(b));
	return !strcmp(a, b);
}

/* The sums of URL i and of the later ones showing the same series as it;
 * false when an earlier one shows it (it was rendered there). */
static bool url_sum(const struct tsg_metrics_snapshot *s, size_t i, struct tsg_action_stats *t)
{
	for (size_t j = 0; j < i; j++)
		if (url_same(s, j, i))
			return false;
	*t = s->urls[i].st;
	for (size_t j = i + 1; j < s->nurls; j++) {
		if (!url_same(s, i, j))
			continue;
		t->sent += s->urls[j].st.sent;
		t->failed += s->urls[j].st.failed;
		t->timed_out += s->urls[j].st.timed_out;
		t->retried += s->urls[j].st.retried;
		t->dropped += s->urls[j].st.dropped;
		t->queued_now += s->urls[j].st.queued_now;
	}
	return true;
}

/* Per URL of the webhook actions: tsguard_webhook_url_results_total and
 * tsguard_webhook_url_queue_depth (the action's series are their sums). */
static void render_urls(struct buf *b, const struct tsg_metrics_snapshot *s)
{
	char u[sizeof(s->urls[0].url)];
	struct tsg_action_stats t;

	family(b, "tsguard_webhook_url_results_total", "counter",
	       "Webhook deliveries by action, URL and result (sent, failed, timed_out, retried, "
	       "dropped).");
	for (size_t i = 0; i < s->nurls; i++) {
		if (!url_sum(s, i, &t))
			continue;
		const uint64_t v[] = { t.sent, t.failed, t.timed_out, t.retried, t.dropped };

		url_shown(s->urls[i].url, u, sizeof(u));
		for (size_t r = 0; r < sizeof(v) / sizeof(v[0]); r++)
			sample_l(b, "tsguard_webhook_url_results_total", v[r], "action",
				 s->urls[i].action, "url", u, "result", results[r]);
	}
	family(b, "tsguard_webhook_url_queue_depth", "gauge",
	       "Webhook deliveries queued or in flight now, by action and URL.");
	for (size_t i = 0; i < s->nurls; i++) {
		if (!url_sum(s, i, &t))
			continue;
		url_shown(s->urls[i].url, u, sizeof(u));
		sample_l(b, "tsguard_webhook_url_queue_depth", t.queued_now, "action",
			 s->urls[i].action, "url", u, NULL, NULL);
	}
}

int tsg_metrics_render(const struct tsg_metrics_snapshot *s, char **out, size_t *len)
{
	struct buf b = { 0 };

	if (s->have_capture)
		render_capture(&b, &s->capture);
	render_engine(&b, &s->engine);
	render_rules(&b, s);
	render_actions(&b, s);
	render_urls(&b, s);

	family(&b, "tsguard_reloads_total", "counter", "Rule reloads (SIGHUP) by result.");
	sample_l(&b, "tsguard_reloads_total", s->reloads_ok, "result", "ok", NULL, NULL, NULL,
		 NULL);
	sample_l(&b, "tsguard_reloads_total", s->reloads_failed, "result", "failed", NULL, NULL,
		 NULL, NULL);
	gauge_time(&b, "tsguard_last_reload_success_timestamp_seconds",
		   "Unix time of the last successful reload, 0 if none since start.",
		   s->last_reload_ok_time);
	gauge_time(&b, "tsguard_start_time_seconds", "Unix time tsguard started.",
		   s->start_time);
	gauge(&b, "tsguard_dry_run", "1 when running with --dry-run (actions print, never run).",
	      s->dry_run ? 1 : 0);
	family(&b, "tsguard_build_info", "gauge", "Always 1; the version in a label.");
	sample_l(&b, "tsguard_build_info", 1, "version", TSG_VERSION, NULL, NULL, NULL, NULL);

	if (b.oom || !b.p) {
		free(b.p);
		return -ENOMEM;
	}
	*out = b.p;
	*len = b.len;
	return 0;
}

/* ---- snapshots ----------------------------------------------------------- */

static void snap_free(struct snap_ref *r)
{
	if (!r)
		return;
	free(r->s.rules);
	free(r->s.actions);
	free(r->s.urls);
	free(r);
}

/* n elements of src in a new array (n > 0), or NULL */
static void *array_copy(const void *src, size_t n, size_t size)
{
	void *d = calloc(n, size);

	if (d)
		memcpy(d, src, n * size);
	return d;
}

#define TERMINATE(a) ((a)[sizeof(a) - 1] = '\0')

static struct snap_ref *snap_copy(const struct tsg_metrics_snapshot *s)
{
	struct snap_ref *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->s = *s;
	r->s.rules = NULL;
	r->s.actions = NULL;
	r->s.urls = NULL;
	r->refs = 1;
	if ((s->nrules && !(r->s.rules = array_copy(s->rules, s->nrules, sizeof(*s->rules)))) ||
	    (s->nactions &&
	     !(r->s.actions = array_copy(s->actions, s->nactions, sizeof(*s->actions)))) ||
	    (s->nurls && !(r->s.urls = array_copy(s->urls, s->nurls, sizeof(*s->urls))))) {
		snap_free(r);
		return NULL;
	}
	for (size_t i = 0; i < s->nrules; i++) {
		TERMINATE(r->s.rules[i].name);
		TERMINATE(r->s.rules[i].kind);
	}
	for (size_t i = 0; i < s->nactions; i++) {
		TERMINATE(r->s.actions[i].name);
		TERMINATE(r->s.actions[i].type);
	}
	for (size_t i = 0; i < s->nurls; i++) {
		TERMINATE(r->s.urls[i].action);
		TERMINATE(r->s.urls[i].url);
	}
	return r;
}

static void snap_put(struct tsg_metrics *m, struct snap_ref *r)
{
	bool last;

	if (!r)
		return;
	pthread_mutex_lock(&m->lock);
	last = --r->refs == 0;
	pthread_mutex_unlock(&m->lock);
	if (last)
		snap_free(r);
}

static struct snap_ref *snap_get(struct tsg_metrics *m)
{
	struct snap_ref *r;

	pthread_mutex_lock(&m->lock);
	r = m->cur;
	if (r)
		r->refs++;
	pthread_mutex_unlock(&m->lock);
	return r;
}

void tsg_metrics_publish(struct tsg_metrics *m, const struct tsg_metrics_snapshot *s)
{
	struct snap_ref *r, *old;

	if (!m || !s)
		return;
	r = snap_copy(s);
	if (!r) {
		log_warn("metrics: out of memory copying a snapshot; /metrics shows the previous one");
		return;
	}
	pthread_mutex_lock(&m->lock);
	old = m->cur;
	m->cur = r;
	pthread_mutex_unlock(&m->lock);
	snap_put(m, old);
}

/* ---- HTTP ---------------------------------------------------------------- */

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned status, const char *ctype,
			     const char *body, size_t len, enum MHD_ResponseMemoryMode mode)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	resp = MHD_create_response_from_buffer(len, (void *)body, mode);
	if (!resp)
		return MHD_NO;
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	ret = MHD_queue_response(conn, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version,
				  const char *upload_data, size_t *upload_data_size,
				  void **req_cls)
{
	static const char not_found[] = "not found: try /metrics or /healthz\n";
	static const char not_allowed[] = "method not allowed\n";
	static const char ok[] = "ok\n";
	struct tsg_metrics *m = cls;
	struct snap_ref *r;
	char *text = NULL;
	size_t len = 0;
	int rc;

	/* HEAD is GET without the body (libmicrohttpd drops it). */
	if (strcmp(method, MHD_HTTP_METHOD_GET) && strcmp(method, MHD_HTTP_METHOD_HEAD))
		return reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain", not_allowed,
			     sizeof(not_allowed) - 1, MHD_RESPMEM_PERSISTENT);
	if (!strcmp(url, "/healthz"))
		return reply(conn, MHD_HTTP_OK, "text/plain", ok, sizeof(ok) - 1,
			     MHD_RESPMEM_PERSISTENT);
	if (strcmp(url, "/metrics"))
		return reply(conn, MHD_HTTP_NOT_FOUND, "text/plain", not_found,
			     sizeof(not_found) - 1, MHD_RESPMEM_PERSISTENT);

	r = snap_get(m);
	if (r) {
		rc = tsg_metrics_render(&r->s, &text, &len);
	} else {
		struct tsg_metrics_snapshot empty = { .start_time = m->start_time };

		rc = tsg_metrics_render(&empty, &text, &len);
	}
	snap_put(m, r);
	if (rc < 0) {
		static const char oom[] = "out of memory\n";

		return reply(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "text/plain", oom,
			     sizeof(oom) - 1, MHD_RESPMEM_PERSISTENT);
	}
	return reply(conn, MHD_HTTP_OK, METRICS_CONTENT_TYPE, text, len, MHD_RESPMEM_MUST_FREE);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[256];
	size_t n;

	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
		msg[--n] = '\0';
	/* clients that hang up, time out or hit the connection limit: visible
	 * with -v; a failure to start is reported by tsg_metrics_new() */
	log_debug("metrics: %s", msg);
}

/* ---- listen address ------------------------------------------------------ */

#define ADDR_EXAMPLES "expected ADDR:PORT such as 127.0.0.1:9464, [::1]:9464 or :9464"

/* "127.0.0.1:9464", "[::1]:9464", ":9464" (any: *any = true, sa unset). */
static int parse_listen(const char *s, struct sockaddr_storage *sa, socklen_t *salen, bool *any)
{
	char host[INET6_ADDRSTRLEN + 32];
	const char *port, *colon;
	struct addrinfo hints = { 0 }, *res = NULL;
	unsigned long p;
	char *end;
	size_t hl;
	int rc;

	*any = false;
	if (!s || !*s) {
		log_err("--metrics: empty address; " ADDR_EXAMPLES);
		return -EINVAL;
	}
	if (s[0] == '[') {
		const char *rb = strchr(s, ']');

		if (!rb || rb[1] != ':') {
			log_err("--metrics %s: an IPv6 address is written [ADDR]:PORT; " ADDR_EXAMPLES,
				s);
			return -EINVAL;
		}
		hl = (size_t)(rb - s - 1);
		if (hl == 0 || hl >= sizeof(host)) {
			log_err("--metrics %s: bad IPv6 address; " ADDR_EXAMPLES, s);
			return -EINVAL;
		}
		memcpy(host, s + 1, hl);
		host[hl] = '\0';
		port = rb + 2;
	} else {
		colon = strrchr(s, ':');
		if (!colon) {
			log_err("--metrics %s: no port; " ADDR_EXAMPLES, s);
			return -EINVAL;
		}
		if (memchr(s, ':', (size_t)(colon - s))) {
			log_err("--metrics %s: an IPv6 address goes in brackets, e.g. [::1]:9464", s);
			return -EINVAL;
		}
		hl = (size_t)(colon - s);
		if (hl >= sizeof(host)) {
			log_err("--metrics %s: address too long; " ADDR_EXAMPLES, s);
			return -EINVAL;
		}
		memcpy(host, s, hl);
		host[hl] = '\0';
		port = colon + 1;
	}
	errno = 0;
	p = strtoul(port, &end, 10);
	if (!*port || *end || errno || p < 1 || p > 65535 || port[0] < '0' || port[0] > '9') {
		log_err("--metrics %s: bad port \"%s\" (1-65535); " ADDR_EXAMPLES, s, port);
		return -EINVAL;
	}
	if (!host[0]) {
		struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)sa;

		/* all addresses: tried dual-stack first, IPv4 only as a fallback */
		memset(sa, 0, sizeof(*sa));
		a6->sin6_family = AF_INET6;
		a6->sin6_addr = in6addr_any;
		a6->sin6_port = htons((uint16_t)p);
		*salen = sizeof(*a6);
		*any = true;
		return 0;
	}
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
	hints.ai_socktype = SOCK_STREAM;
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0 || !res || res->ai_addrlen > sizeof(*sa)) {
		log_err("--metrics %s: \"%s\" is not a numeric IPv4 or IPv6 address; " ADDR_EXAMPLES,
			s, host);
		if (res)
			freeaddrinfo(res);
		return -EINVAL;
	}
	memset(sa, 0, sizeof(*sa));
	memcpy(sa, res->ai_addr, res->ai_addrlen);
	*salen = res->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

/* libmicrohttpd does not say why it could not start; a bind of our own does. */
static int bind_errno(const struct sockaddr *sa, socklen_t len)
{
	int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int one = 1, err = 0;

	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, sa, len) < 0)
		err = -errno;
	close(fd);
	return err;
}

static struct MHD_Daemon *start(struct tsg_metrics *m, const struct sockaddr *sa,
				unsigned int flags)
{
	return MHD_start_daemon(
		flags | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG, 0,
		NULL, NULL, on_request, m, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, m,
		MHD_OPTION_SOCK_ADDR, sa, MHD_OPTION_CONNECTION_LIMIT,
		(unsigned int)METRICS_MAX_CONNS, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
		(unsigned int)METRICS_MAX_CONNS_PER_IP, MHD_OPTION_CONNECTION_TIMEOUT,
		(unsigned int)METRICS_CONN_TIMEOUT_S, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
		(size_t)METRICS_CONN_MEMORY, MHD_OPTION_END);
}

int tsg_metrics_new(const char *listen, struct tsg_metrics **out)
{
	struct sockaddr_storage sa;
	socklen_t salen = 0;
	struct tsg_metrics *m;
	bool any;
	int rc;

	rc = parse_listen(listen, &sa, &salen, &any);
	if (rc < 0)
		return rc;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	pthread_mutex_init(&m->lock, NULL);
	snprintf(m->listen, sizeof(m->listen), "%s", listen);
	m->start_time = (double)time(NULL);

	if (any) {
		struct sockaddr_in a4 = { .sin_family = AF_INET,
					  .sin_port = ((struct sockaddr_in6 *)&sa)->sin6_port,
					  .sin_addr.s_addr = htonl(INADDR_ANY) };

		m->daemon = start(m, (struct sockaddr *)&sa, MHD_USE_DUAL_STACK);
		if (!m->daemon) {
			/* no IPv6 on this host: all IPv4 addresses */
			memcpy(&sa, &a4, sizeof(a4));
			salen = sizeof(a4);
			m->daemon = start(m, (struct sockaddr *)&sa, 0);
		}
	} else {
		m->daemon = start(m, (struct sockaddr *)&sa,
				  sa.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0);
	}
	if (!m->daemon) {
		rc = bind_errno((struct sockaddr *)&sa, salen);
		if (rc == 0)
			rc = -EIO;
		log_err("--metrics %s: cannot serve metrics: %s", listen, strerror(-rc));
		tsg_metrics_free(m);
		return rc;
	}
	log_info("metrics: serving /metrics and /healthz on %s", listen);
	*out = m;
	return 0;
}

void tsg_metrics_free(struct tsg_metrics *m)
{
	if (!m)
		return;
	if (m->daemon)
		MHD_stop_daemon(m->daemon);
	/* the HTTP thread is gone: nobody else holds a reference */
	snap_free(m->cur);
	pthread_mutex_destroy(&m->lock);
	free(m);
}
