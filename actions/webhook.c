/* SPDX-License-Identifier: MIT */
/*
 * tsguard: the webhook action. One worker thread drives a curl multi handle:
 * many transfers at once (a server that never answers holds one transfer
 * until its per-attempt timeout, nothing else), retries with exponential
 * backoff, one bounded queue for everything accepted and not yet finished.
 *
 * Alertmanager format: API v2 (POST /api/v2/alerts, a JSON array of alerts).
 * A firing alert of a rule that resolves (every kind but transition) is
 * remembered and re-sent every am_resend_ns with endsAt = now + 4 periods,
 * so Alertmanager keeps it active while tsguard runs and lets it expire if
 * tsguard dies; the resolved notification sends endsAt = the resolve time
 * and forgets it. Transition alerts are events: sent once, they expire after
 * 4 periods. Re-sends and a resolve of the same alert never overtake each
 * other: a resolve cancels the firing sends of its alert still waiting.
 */
#include "action_impl.h"

#include <inttypes.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define WH_MAX_ACTIVE 64            /* transfers at once, all actions */
#define WH_MAX_ACTIVE_PER_ACTION 8  /* so one dead server cannot take them all */
#define WH_MAX_AM 4096              /* firing Alertmanager alerts remembered */
#define WH_BACKOFF_FIRST (500 * TSG_NSEC_PER_MSEC)
#define WH_BACKOFF_MAX (30 * TSG_NSEC_PER_SEC)
#define WH_DEFAULT_TIMEOUT (5 * TSG_NSEC_PER_SEC)
#define WH_RESP_KEEP 200            /* bytes of a failed response kept for the log */

struct wh_job {
	char *action, *rule, *url;
	char **headers; /* "Name: value", NULL-terminated */
	char *body;     /* json/template: at fire; alertmanager: per attempt */
	uint64_t timeout_ns;
	int retries, attempt;
	uint64_t next_at;
	struct tsg_act_stat *st;
	/* alertmanager */
	bool am, am_firing, am_tracked;
	bool resend; /* a send of an am_entry: clears its busy flag when finished */
	json_t *am_alert; /* {labels, annotations, startsAt} */
	char *am_id;      /* action \x1f rule \x1f key */
	int64_t am_end_ns;
	/* transfer */
	CURL *easy;
	struct curl_slist *hdrs;
	char errbuf[CURL_ERROR_SIZE];
	char resp[WH_RESP_KEEP + 1];
	size_t resp_len;
	struct wh_job *next;
};

struct am_entry {
	char *id;
	struct wh_job *tmpl; /* a job to copy for each re-send */
	uint64_t next_resend;
	bool busy; /* a send of it is queued or in flight */
	struct am_entry *next;
};

struct tsg_webhook_runner {
	pthread_t thread;
	pthread_mutex_t lock; /* incoming, stop, swap */
	CURLM *multi;
	struct wh_job *in_head, *in_tail;
	atomic_size_t count; /* accepted and not finished */
	size_t cap;
	uint64_t resend_ns;
	bool stop;
	char **swap_keep; /* "action\x1frule\x1f" prefixes that stay (NULL-terminated) */
	bool swap_pending;
	/* worker thread only */
	struct wh_job *pending; /* waiting for next_at */
	struct wh_job *active;
	size_t nactive;
	struct am_entry *am;
	size_t nam;
	bool stopping;
	uint64_t stop_deadline;
};

/* ---- jobs ----------------------------------------------------------------- */

static char **dup_vec(char *const *v)
{
	size_t n = 0;
	char **d;

	while (v && v[n])
		n++;
	d = calloc(n + 1, sizeof(*d));
	for (size_t i = 0; d && i < n; i++)
		if (!(d[i] = strdup(v[i]))) {
			tsg_act_free_vec(d);
			return NULL;
		}
	return d;
}

static void job_free(struct wh_job *j)
{
	if (!j)
		return;
	free(j->action);
	free(j->rule);
	free(j->url);
	tsg_act_free_vec(j->headers);
	free(j->body);
	json_decref(j->am_alert);
	free(j->am_id);
	if (j->easy)
		curl_easy_cleanup(j->easy);
	curl_slist_free_all(j->hdrs);
	free(j);
}

static uint64_t wh_timeout(const struct tsg_action_def *d)
{
	return d->webhook.timeout_ns ? d->webhook.timeout_ns : WH_DEFAULT_TIMEOUT;
}

static bool has_content_type(char *const *h)
{
	for (size_t i = 0; h && h[i]; i++)
		if (!strncasecmp(h[i], "content-type:", 13))
			return true;
	return false;
}

/* "Name: value" per configured header; CR and LF in a rendered value become
 * spaces (a value can never start a header of its own). */
static char **wh_headers(const struct tsg_action_def *d, const struct tsg_alert *a)
{
	char **v = calloc(d->webhook.nheaders + 2, sizeof(*v));
	size_t n = 0;

	if (!v)
		return NULL;
	for (size_t i = 0; i < d->webhook.nheaders; i++) {
		char *val = tsg_act_render(&d->webhook.headers[i].value, a);
		char *h = NULL;

		if (val) {
			for (char *p = val; *p; p++)
				if (*p == '\r' || *p == '\n')
					*p = ' ';
			if (asprintf(&h, "%s: %s", d->webhook.headers[i].name, val) < 0)
				h = NULL;
		}
		free(val);
		if (!h) {
			tsg_act_free_vec(v);
			return NULL;
		}
		v[n++] = h;
	}
	if (!has_content_type(v) && !(v[n++] = strdup("Content-Type: application/json"))) {
		tsg_act_free_vec(v);
		return NULL;
	}
	return v;
}

/* ---- Alertmanager ---------------------------------------------------------- */

static void set_label(json_t *labels, const char *name, const char *value)
{
	char n[128];
	size_t i;

	if (!value || !value[0])
		return;
	/* label names: [a-zA-Z_][a-zA-Z0-9_]* */
	for (i = 0; name[i] && i < sizeof(n) - 1; i++) {
		char c = name[i];
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
			  (i > 0 && c >= '0' && c <= '9');
		n[i] = ok ? c : '_';
	}
	n[i] = 0;
	json_object_set_new(labels, n, json_string(value));
}

/* {labels, annotations, startsAt} of one alert; endsAt is added per send. */
static json_t *am_alert(const struct tsg_alert *a)
{
	static const int sock_fields[] = { TSG_SF_LADDR, TSG_SF_LPORT, TSG_SF_RADDR,
					   TSG_SF_RPORT };
	const struct tsg_rule *r = a->rule;
	json_t *o = json_object(), *labels = json_object(), *ann = json_object();
	char buf[2048];

	if (!o || !labels || !ann) {
		json_decref(o);
		json_decref(labels);
		json_decref(ann);
		return NULL;
	}
	for (size_t i = 0; i < r->nlabels; i++)
		set_label(labels, r->labels[i].name, r->labels[i].value);
	if (a->key_is_sock) {
		for (size_t i = 0; i < sizeof(sock_fields) / sizeof(sock_fields[0]); i++)
			if (tsg_alert_field(a, tsg_sfield_to_tfield(sock_fields[i]), NULL, buf,
					    sizeof(buf)) == 0)
				set_label(labels, tsg_sfield_name(sock_fields[i]), buf);
	} else {
		for (int sf = 0; sf < TSG_SF_N; sf++)
			if ((r->by & TSG_HAVE(sf)) && tsg_alert_field(a, tsg_sfield_to_tfield(sf),
								      NULL, buf, sizeof(buf)) == 0)
				set_label(labels, tsg_sfield_name(sf), buf);
	}
	set_label(labels, "alertname", r->name);
	set_label(labels, "severity", tsg_severity_name(r->severity));
	set_label(labels, "instance", a->host ? a->host : tsg_hostname());
	json_object_set_new(o, "labels", labels);
	json_object_set_new(ann, "summary", json_string(tsg_alert_summary(a, buf, sizeof(buf))));
	json_object_set_new(ann, "description",
			    json_string(r->description ? r->description
						       : tsg_alert_to_text(a, buf, sizeof(buf))));
	json_object_set_new(o, "annotations", ann);
	json_object_set_new(o, "startsAt", json_string(tsg_format_time(a->wall_ns, buf, 40)));
	return o;
}

/* The request body: [alert + endsAt]. */
static char *am_body(const json_t *alert, bool resolved, int64_t end_ns, uint64_t resend_ns)
{
	json_t *o = json_deep_copy(alert), *arr = json_array();
	char t[40];
	char *s = NULL;

	if (o && arr) {
		if (!resolved)
			end_ns = tsg_wall_ns() + 4 * (int64_t)resend_ns;
		json_object_set_new(o, "endsAt", json_string(tsg_format_time(end_ns, t, sizeof(t))));
		json_array_append(arr, o);
		s = json_dumps(arr, JSON_COMPACT);
	}
	json_decref(o);
	json_decref(arr);
	return s;
}

static char *am_id(const char *action, const struct tsg_alert *a)
{
	char key[512];
	char *id;

	if (asprintf(&id, "%s\x1f%s\x1f%s", action, a->rule->name,
		     tsg_alert_key_string(a, key, sizeof(key))) < 0)
		return NULL;
	return id;
}

/* ---- dry run ----------------------------------------------------------------- */

static char *wh_body(struct tsg_act_ctx *c, const struct tsg_action_def *d)
{
	if (d->webhook.format == TSG_WH_TEMPLATE)
		return tsg_act_render(&d->webhook.body, c->a);
	return strdup(tsg_act_ctx_json(c));
}

void tsg_webhook_dry(struct tsg_act_ctx *c, const struct tsg_action_def *d, uint64_t resend_ns)
{
	char **h = wh_headers(d, c->a);
	char *qh = tsg_act_quote_vec(h), *qu = tsg_act_quote(d->webhook.url), *body = NULL;
	bool am = d->webhook.format == TSG_WH_ALERTMANAGER;
	char dur[32], dur2[32];

	if (am) {
		json_t *al = am_alert(c->a);

		if (al)
			body = am_body(al, c->a->status == TSG_RESOLVED, c->a->wall_ns, resend_ns);
		json_decref(al);
	} else {
		body = wh_body(c, d);
	}
	char post[4096], resend[64] = "";

	if (am && c->a->status == TSG_FIRING && c->a->rule->kind != TSG_KIND_TRANSITION)
		snprintf(resend, sizeof(resend), " resend: every %s until resolved",
			 tsg_duration_format(resend_ns, dur2, sizeof(dur2)));
	snprintf(post, sizeof(post), "%s timeout: %s retries: %d%s", qu ? qu : "?",
		 tsg_duration_format(wh_timeout(d), dur, sizeof(dur)), d->webhook.retries, resend);
	tsg_act_dry(c, d, "POST", post, false);
	tsg_act_dry(c, d, "headers", qh, true);
	if (d->webhook.format == TSG_WH_TEMPLATE) {
		char *qb = tsg_act_quote(body);
		tsg_act_dry(c, d, "body", qb, true);
		free(qb);
	} else { /* one line of compact JSON */
		tsg_act_dry(c, d, "body", body, true);
	}
	free(body);
	free(qh);
	free(qu);
	tsg_act_free_vec(h);
}

/* ---- fire ------------------------------------------------------------------- */

static void drop(struct wh_job *j, const char *why)
{
	uint64_t n = atomic_fetch_add(&j->st->dropped, 1) + 1;

	if (tsg_act_log_drop(n))
		act_warn("rule %s action %s: %s, notification dropped (%" PRIu64
			 " dropped so far)",
			 j->rule, j->action, why, n);
}

void tsg_webhook_fire(struct tsg_webhook_runner *r, struct tsg_act_ctx *c,
		      const struct tsg_action_def *d, struct tsg_act_stat *st)
{
	struct wh_job *j = calloc(1, sizeof(*j));
	const char *rule = c->a->rule->name;
	const char *why = NULL;
	bool bad;

	if (j) {
		j->action = strdup(d->name);
		j->rule = strdup(rule);
		j->url = strdup(d->webhook.url ? d->webhook.url : "");
		j->headers = wh_headers(d, c->a);
		j->timeout_ns = wh_timeout(d);
		j->retries = d->webhook.retries > 0 ? d->webhook.retries : 0;
		j->st = st;
		j->am = d->webhook.format == TSG_WH_ALERTMANAGER;
		if (j->am) {
			j->am_firing = c->a->status == TSG_FIRING;
			j->am_tracked = c->a->rule->kind != TSG_KIND_TRANSITION;
			j->am_end_ns = c->a->wall_ns;
			j->am_alert = am_alert(c->a);
			j->am_id = am_id(d->name, c->a);
		} else {
			j->body = wh_body(c, d);
		}
	}
	bad = !j || !j->action || !j->rule || !j->url || !j->headers ||
	      (j->am ? !j->am_alert || !j->am_id : !j->body);
	if (bad) {
		atomic_fetch_add(&st->failed, 1);
		act_err("rule %s action %s: out of memory", rule, d->name);
		job_free(j);
		return;
	}
	pthread_mutex_lock(&r->lock);
	if (r->stop)
		why = "shutting down";
	else if (atomic_load(&r->count) >= r->cap)
		why = "webhook queue full";
	if (!why) {
		if (r->in_tail)
			r->in_tail->next = j;
		else
			r->in_head = j;
		r->in_tail = j;
		atomic_fetch_add(&r->count, 1);
		atomic_fetch_add(&st->queued_now, 1);
	}
	pthread_mutex_unlock(&r->lock);
	if (why) {
		drop(j, why);
		job_free(j);
		return;
	}
	curl_multi_wakeup(r->multi);
}

/* ---- worker -------------------------------------------------------------------- */

/* Removes a job from the books (it ran, failed, or was superseded). */
static void finish(struct tsg_webhook_runner *r, struct wh_job *j)
{
	if (j->resend) {
		for (struct am_entry *e = r->am; e; e = e->next)
			if (!strcmp(e->id, j->am_id))
				e->busy = false;
	}
	atomic_fetch_sub(&j->st->queued_now, 1);
	atomic_fetch_sub(&r->count, 1);
	job_free(j);
}

static void push(struct wh_job **list, struct wh_job *j)
{
	j->next = *list;
	*list = j;
}

static void am_entry_free(struct am_entry *e)
{
	free(e->id);
	job_free(e->tmpl);
	free(e);
}

/* Copies what a re-send needs: everything but the transfer. */
static struct wh_job *job_copy(const struct wh_job *j)
{
	struct wh_job *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->action = strdup(j->action);
	c->rule = strdup(j->rule);
	c->url = strdup(j->url);
	c->headers = dup_vec(j->headers);
	c->timeout_ns = j->timeout_ns;
	c->retries = j->retries;
	c->st = j->st;
	c->am = j->am;
	c->am_firing = j->am_firing;
	c->am_tracked = j->am_tracked;
	c->am_alert = json_deep_copy(j->am_alert);
	c->am_id = strdup(j->am_id);
	if (!c->action || !c->rule || !c->url || !c->headers || !c->am_alert || !c->am_id) {
		job_free(c);
		return NULL;
	}
	return c;
}

/* Cancels queued and in-flight firing sends of alert `id` (a resolve is coming). */
static void am_cancel_firing(struct tsg_webhook_runner *r, const char *id)
{
	struct wh_job **pp;

	for (pp = &r->pending; *pp;) {
		struct wh_job *j = *pp;

		if (j->am && j->am_firing && !strcmp(j->am_id, id)) {
			*pp = j->next;
			finish(r, j);
		} else {
			pp = &j->next;
		}
	}
	for (pp = &r->active; *pp;) {
		struct wh_job *j = *pp;

		if (j->am && j->am_firing && !strcmp(j->am_id, id)) {
			*pp = j->next;
			curl_multi_remove_handle(r->multi, j->easy);
			r->nactive--;
			finish(r, j);
		} else {
			pp = &j->next;
		}
	}
}

/* A new notification from fire(): Alertmanager bookkeeping, then the queue. */
static void accept_job(struct tsg_webhook_runner *r, struct wh_job *j, uint64_t now)
{
	struct am_entry **pp, *e = NULL;

	j->next_at = now;
	if (!j->am || !j->am_tracked) {
		push(&r->pending, j);
		return;
	}
	for (pp = &r->am; *pp; pp = &(*pp)->next)
		if (!strcmp((*pp)->id, j->am_id)) {
			e = *pp;
			break;
		}
	if (e) /* the alert started when it first fired */
		json_object_set(j->am_alert, "startsAt",
				json_object_get(e->tmpl->am_alert, "startsAt"));
	if (!j->am_firing) {
		am_cancel_firing(r, j->am_id);
		if (e) {
			*pp = e->next;
			am_entry_free(e);
			r->nam--;
		}
		push(&r->pending, j);
		return;
	}
	if (!e && r->nam < WH_MAX_AM) {
		e = calloc(1, sizeof(*e));
		if (e && !(e->id = strdup(j->am_id))) {
			free(e);
			e = NULL;
		}
		if (e) {
			e->next = r->am;
			r->am = e;
			r->nam++;
		}
	}
	if (e) {
		job_free(e->tmpl);
		e->tmpl = job_copy(j);
		e->next_resend = now + r->resend_ns;
		e->busy = true; /* until this send finishes */
		j->resend = true;
	} else {
		act_warn("rule %s action %s: more than %d firing Alertmanager alerts; this one is "
			 "not re-sent", j->rule, j->action, WH_MAX_AM);
	}
	push(&r->pending, j);
}

static void am_resends(struct tsg_webhook_runner *r, uint64_t now)
{
	for (struct am_entry *e = r->am; e; e = e->next) {
		struct wh_job *j;

		if (e->busy || now < e->next_resend || !e->tmpl)
			continue;
		e->next_resend = now + r->resend_ns;
		if (atomic_load(&r->count) >= r->cap) {
			drop(e->tmpl, "webhook queue full (re-send)");
			continue;
		}
		j = job_copy(e->tmpl);
		if (!j)
			continue;
		j->resend = true;
		j->next_at = now;
		e->busy = true;
		atomic_fetch_add(&r->count, 1);
		atomic_fetch_add(&j->st->queued_now, 1);
		push(&r->pending, j);
	}
}

/* Forgets re-sends whose action or rule went away with a reload. */
static void am_prune(struct tsg_webhook_runner *r, char **keep)
{
	for (struct am_entry **pp = &r->am; *pp;) {
		struct am_entry *e = *pp;
		bool ok = false;

		for (size_t i = 0; keep && keep[i] && !ok; i++)
			ok = !strncmp(e->id, keep[i], strlen(keep[i]));
		if (ok) {
			pp = &e->next;
			continue;
		}
		*pp = e->next;
		am_entry_free(e);
		r->nam--;
	}
}

static size_t on_data(char *p, size_t sz, size_t n, void *arg)
{
	struct wh_job *j = arg;
	size_t len = sz * n, room = WH_RESP_KEEP - j->resp_len;

	if (room) {
		size_t c = len < room ? len : room;
		memcpy(j->resp + j->resp_len, p, c);
		j->resp_len += c;
		j->resp[j->resp_len] = 0;
	}
	return len;
}

static int start(struct tsg_webhook_runner *r, struct wh_job *j)
{
	long ms = (long)(j->timeout_ns / TSG_NSEC_PER_MSEC);

	if (j->am) {
		free(j->body);
		j->body = am_body(j->am_alert, !j->am_firing, j->am_end_ns, r->resend_ns);
		if (!j->body)
			return -ENOMEM;
	}
	if (!j->easy && !(j->easy = curl_easy_init()))
		return -ENOMEM;
	if (!j->hdrs) {
		for (size_t i = 0; j->headers[i]; i++) {
			struct curl_slist *n = curl_slist_append(j->hdrs, j->headers[i]);
			if (!n)
				return -ENOMEM;
			j->hdrs = n;
		}
		/* no "Expect: 100-continue" round trip */
		struct curl_slist *n = curl_slist_append(j->hdrs, "Expect:");
		if (!n)
			return -ENOMEM;
		j->hdrs = n;
	}
	j->errbuf[0] = 0;
	j->resp_len = 0;
	j->resp[0] = 0;
	curl_easy_reset(j->easy);
	curl_easy_setopt(j->easy, CURLOPT_URL, j->url);
	curl_easy_setopt(j->easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(j->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(j->easy, CURLOPT_POST, 1L);
	curl_easy_setopt(j->easy, CURLOPT_POSTFIELDS, j->body);
	curl_easy_setopt(j->easy, CURLOPT_POSTFIELDSIZE, (long)strlen(j->body));
	curl_easy_setopt(j->easy, CURLOPT_HTTPHEADER, j->hdrs);
	curl_easy_setopt(j->easy, CURLOPT_TIMEOUT_MS, ms > 0 ? ms : 1L);
	curl_easy_setopt(j->easy, CURLOPT_CONNECTTIMEOUT_MS, ms > 0 ? ms : 1L);
	curl_easy_setopt(j->easy, CURLOPT_USERAGENT, "tsguard/" TSG_VERSION);
	curl_easy_setopt(j->easy, CURLOPT_ERRORBUFFER, j->errbuf);
	curl_easy_setopt(j->easy, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(j->easy, CURLOPT_WRITEDATA, j);
	curl_easy_setopt(j->easy, CURLOPT_PRIVATE, j);
	if (curl_multi_add_handle(r->multi, j->easy) != CURLM_OK)
		return -EIO;
	j->attempt++;
	push(&r->active, j);
	r->nactive++;
	return 0;
}

static size_t active_for(struct tsg_webhook_runner *r, const char *action)
{
	size_t n = 0;

	for (struct wh_job *j = r->active; j; j = j->next)
		n += !strcmp(j->action, action);
	return n;
}

static void start_pending(struct tsg_webhook_runner *r, uint64_t now)
{
	struct wh_job **pp = &r->pending;

	/* oldest first: the list is pushed at the head, so walk it all and
	 * start what is due; order among due jobs is not a promise */
	while (*pp) {
		struct wh_job *j = *pp;

		if (r->stopping && now >= r->stop_deadline) {
			*pp = j->next;
			drop(j, "not sent before shutdown");
			finish(r, j);
			continue;
		}
		if (j->next_at > now || r->nactive >= WH_MAX_ACTIVE ||
		    active_for(r, j->action) >= WH_MAX_ACTIVE_PER_ACTION) {
			pp = &j->next;
			continue;
		}
		*pp = j->next;
		if (start(r, j) < 0) {
			atomic_fetch_add(&j->st->failed, 1);
			act_err("rule %s action %s: cannot start the request to %s", j->rule,
				j->action, j->url);
			finish(r, j);
		}
	}
}

static void unlink_active(struct tsg_webhook_runner *r, struct wh_job *j)
{
	for (struct wh_job **pp = &r->active; *pp; pp = &(*pp)->next)
		if (*pp == j) {
			*pp = j->next;
			r->nactive--;
			return;
		}
}

static void done(struct tsg_webhook_runner *r, struct wh_job *j, CURLcode rc, uint64_t now)
{
	long code = 0;
	char why[CURL_ERROR_SIZE + WH_RESP_KEEP + 64];
	bool retry;

	curl_easy_getinfo(j->easy, CURLINFO_RESPONSE_CODE, &code);
	curl_multi_remove_handle(r->multi, j->easy);
	unlink_active(r, j);
	if (rc == CURLE_OK && code >= 200 && code < 300) {
		atomic_fetch_add(&j->st->sent, 1);
		finish(r, j);
		return;
	}
	if (rc != CURLE_OK) {
		snprintf(why, sizeof(why), "%s", j->errbuf[0] ? j->errbuf : curl_easy_strerror(rc));
		retry = true;
		if (rc == CURLE_OPERATION_TIMEDOUT)
			atomic_fetch_add(&j->st->timed_out, 1);
	} else {
		for (char *p = j->resp; *p; p++)
			if (*p == '\n' || *p == '\r')
				*p = ' ';
		snprintf(why, sizeof(why), "HTTP %ld%s%s", code, j->resp_len ? ": " : "", j->resp);
		retry = code >= 500 || code == 408 || code == 429;
	}
	if (retry && j->attempt <= j->retries) {
		uint64_t backoff = WH_BACKOFF_FIRST << (j->attempt - 1 < 16 ? j->attempt - 1 : 16);

		if (backoff > WH_BACKOFF_MAX)
			backoff = WH_BACKOFF_MAX;
		if (!r->stopping || now + backoff < r->stop_deadline) {
			char d[32];

			atomic_fetch_add(&j->st->retried, 1);
			act_warn("rule %s action %s: POST %s attempt %d failed: %s; retry in %s",
				 j->rule, j->action, j->url, j->attempt, why,
				 tsg_duration_format(backoff, d, sizeof(d)));
			j->next_at = now + backoff;
			push(&r->pending, j);
			return;
		}
	}
	atomic_fetch_add(&j->st->failed, 1);
	act_err("rule %s action %s: POST %s failed after %d attempt%s: %s", j->rule, j->action,
		j->url, j->attempt, j->attempt == 1 ? "" : "s", why);
	finish(r, j);
}

static uint64_t longest_pending(struct tsg_webhook_runner *r)
{
	uint64_t l = 0;

	for (struct wh_job *j = r->pending; j; j = j->next)
		l = j->timeout_ns > l ? j->timeout_ns : l;
	for (struct wh_job *j = r->active; j; j = j->next)
		l = j->timeout_ns > l ? j->timeout_ns : l;
	return l;
}

static void *wh_main(void *arg)
{
	struct tsg_webhook_runner *r = arg;

	for (;;) {
		uint64_t now = tsg_mono_ns(), next = now + TSG_NSEC_PER_SEC;
		struct wh_job *in;
		char **keep = NULL;
		bool swap, stop;
		CURLMsg *msg;
		int running, left;

		pthread_mutex_lock(&r->lock);
		in = r->in_head;
		r->in_head = r->in_tail = NULL;
		stop = r->stop;
		swap = r->swap_pending;
		if (swap) {
			keep = r->swap_keep;
			r->swap_keep = NULL;
			r->swap_pending = false;
		}
		pthread_mutex_unlock(&r->lock);
		while (in) {
			struct wh_job *j = in;

			in = j->next;
			j->next = NULL;
			accept_job(r, j, now);
		}
		if (swap) {
			am_prune(r, keep);
			tsg_act_free_vec(keep);
		}
		if (stop && !r->stopping) {
			r->stopping = true;
			/* pending work gets its timeout; re-sends stop now */
			r->stop_deadline = now + longest_pending(r);
		}
		if (!r->stopping)
			am_resends(r, now);
		start_pending(r, now);
		curl_multi_perform(r->multi, &running);
		while ((msg = curl_multi_info_read(r->multi, &left))) {
			struct wh_job *j = NULL;

			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&j);
			done(r, j, msg->data.result, tsg_mono_ns());
		}
		if (r->stopping && !r->pending && !r->active)
			break;
		if (r->stopping && now >= r->stop_deadline) {
			while (r->active) {
				struct wh_job *j = r->active;

				r->active = j->next;
				curl_multi_remove_handle(r->multi, j->easy);
				atomic_fetch_add(&j->st->failed, 1);
				act_err("rule %s action %s: POST %s still unanswered at shutdown; "
					"abandoned", j->rule, j->action, j->url);
				finish(r, j);
			}
			r->nactive = 0;
			continue; /* drops what is pending, then leaves */
		}
		for (struct wh_job *j = r->pending; j; j = j->next)
			if (j->next_at < next)
				next = j->next_at;
		for (struct am_entry *e = r->am; e && !r->stopping; e = e->next)
			if (!e->busy && e->next_resend < next)
				next = e->next_resend;
		if (r->stopping && r->stop_deadline < next)
			next = r->stop_deadline;
		if (next > now) {
			uint64_t ms = (next - now + TSG_NSEC_PER_MSEC - 1) / TSG_NSEC_PER_MSEC;
			curl_multi_poll(r->multi, NULL, 0, (int)ms, NULL);
		}
	}
	return NULL;
}

int tsg_webhook_runner_new(size_t queue_cap, uint64_t am_resend_ns,
			   struct tsg_webhook_runner **out)
{
	struct tsg_webhook_runner *r = calloc(1, sizeof(*r));
	int err;

	if (!r)
		return -ENOMEM;
	r->cap = queue_cap ? queue_cap : 1024;
	r->resend_ns = am_resend_ns ? am_resend_ns : 60 * TSG_NSEC_PER_SEC;
	r->multi = curl_multi_init();
	if (!r->multi) {
		free(r);
		return -ENOMEM;
	}
	pthread_mutex_init(&r->lock, NULL);
	err = tsg_act_thread_start(&r->thread, wh_main, r);
	if (err < 0) {
		act_err("webhook: cannot start the worker thread: %s", strerror(-err));
		curl_multi_cleanup(r->multi);
		pthread_mutex_destroy(&r->lock);
		free(r);
		return err;
	}
	*out = r;
	return 0;
}

void tsg_webhook_swap(struct tsg_webhook_runner *r, const struct tsg_ruleset *rs)
{
	size_t n = 0, cap = 1;
	char **keep;

	if (!r)
		return;
	for (size_t i = 0; rs && i < rs->nrules; i++)
		cap += rs->rules[i].nactions;
	keep = calloc(cap, sizeof(*keep));
	if (!keep)
		return; /* keep re-sending under the old books */
	for (size_t i = 0; rs && i < rs->nrules; i++) {
		const struct tsg_rule *ru = &rs->rules[i];

		for (size_t k = 0; k < ru->nactions; k++) {
			const struct tsg_action_def *d;

			if (ru->actions[k] >= rs->nactions)
				continue;
			d = &rs->actions[ru->actions[k]];
			if (d->type != TSG_ACT_WEBHOOK || d->webhook.format != TSG_WH_ALERTMANAGER)
				continue;
			if (asprintf(&keep[n], "%s\x1f%s\x1f", d->name, ru->name) < 0) {
				keep[n] = NULL;
				tsg_act_free_vec(keep);
				return;
			}
			n++;
		}
	}
	pthread_mutex_lock(&r->lock);
	tsg_act_free_vec(r->swap_keep);
	r->swap_keep = keep;
	r->swap_pending = true;
	pthread_mutex_unlock(&r->lock);
	curl_multi_wakeup(r->multi);
}

void tsg_webhook_runner_stop(struct tsg_webhook_runner *r)
{
	if (!r)
		return;
	pthread_mutex_lock(&r->lock);
	r->stop = true;
	pthread_mutex_unlock(&r->lock);
	curl_multi_wakeup(r->multi);
}

void tsg_webhook_runner_free(struct tsg_webhook_runner *r)
{
	if (!r)
		return;
	tsg_webhook_runner_stop(r);
	/* bounded: the worker leaves by the stop deadline */
	pthread_join(r->thread, NULL);
	while (r->in_head) { /* fire() after stop cannot add; defensive */
		struct wh_job *j = r->in_head;
		r->in_head = j->next;
		finish(r, j);
	}
	while (r->am) {
		struct am_entry *e = r->am;
		r->am = e->next;
		am_entry_free(e);
	}
	tsg_act_free_vec(r->swap_keep);
	curl_multi_cleanup(r->multi);
	pthread_mutex_destroy(&r->lock);
	free(r);
}
