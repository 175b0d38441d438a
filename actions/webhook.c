/* SPDX-License-Identifier: MIT */
/*
 * tsguard: the webhook action. One worker thread drives a curl multi handle:
 * many transfers at once (a server that never answers holds one transfer
 * until its per-attempt timeout, nothing else), retries with exponential
 * backoff.
 *
 * Every URL of an action is a destination of its own: every notification is
 * copied to each, and each has its own bounded queue, its own in-flight
 * transfers (WH_MAX_ACTIVE_PER_DEST at most, and always at least one whatever
 * the others hold), its own retries and backoff, its own Alertmanager
 * re-sends and its own counters. A URL that hangs or is down fills its own
 * queue and no other.
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
#include "webhook_impl.h"

#include <inttypes.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define WH_MAX_ACTIVE	       64   /* transfers at once, all URLs (but see above) */
#define WH_MAX_ACTIVE_PER_DEST 8    /* so one dead server cannot take them all */
#define WH_MAX_AM	       4096 /* firing Alertmanager alerts remembered, per URL */
#define WH_MAX_DESTS	       4096 /* (action, URL) destinations known at once */
#define WH_BACKOFF_FIRST       (500 * TSG_NSEC_PER_MSEC)
#define WH_BACKOFF_MAX	       (30 * TSG_NSEC_PER_SEC)

struct am_entry {
	char *id;
	struct wh_job *tmpl; /* a job to copy for each re-send */
	uint64_t next_resend;
	bool busy; /* a send of it is queued or in flight */
	struct am_entry *next;
};

/* One URL of one action: its own queue, transfers, re-sends and counters. */
struct wh_dest {
	char *action, *url;
	struct tsg_act_stat *ust; /* NULL past TSG_ACT_MAX_URL_STATS */
	atomic_size_t count;	  /* accepted and not finished; added to under the lock */
	bool gone;		  /* no longer in the rule set: freed once idle (worker) */
	/* worker thread only */
	struct wh_job *pending; /* waiting for next_at */
	struct wh_job *active;
	size_t nactive;
	struct am_entry *am;
	size_t nam;
	struct wh_dest *next;
};

struct tsg_webhook_runner {
	struct tsg_act_runner base; /* first; its lock: incoming, stop, swap, the destination
				     * list and counts; cap: per destination */
	CURLM *multi;
	struct wh_job *in_head, *in_tail;
	struct wh_dest *dests; /* added by fire(), removed by the worker, both locked */
	size_t ndests;
	uint64_t resend_ns;
	char **swap_keep;  /* "action\x1frule\x1f" prefixes that stay (NULL-terminated) */
	char **swap_dests; /* "action\x1furl" destinations that stay (NULL-terminated) */
	bool swap_pending;
	/* worker thread only */
	size_t nactive;
	bool stopping;
	uint64_t stop_deadline;
};

/* Adds 1 to counter `f` of the job's action and of its URL. */
#define wh_count(j, f)                                                                             \
	do {                                                                                       \
		atomic_fetch_add(&(j)->h.st->f, 1);                                                  \
		if ((j)->ust)                                                                      \
			atomic_fetch_add(&(j)->ust->f, 1);                                         \
	} while (0)

static void queued_add(struct wh_job *j, int n)
{
	atomic_fetch_add(&j->h.st->queued_now, n);
	if (j->ust)
		atomic_fetch_add(&j->ust->queued_now, n);
}

/* ---- fire ------------------------------------------------------------------- */

static void drop(struct wh_job *j, const char *why)
{
	uint64_t n;
	bool logged = tsg_act_count_drop(j->h.st, &n);

	if (j->ust)
		atomic_fetch_add(&j->ust->dropped, 1);
	if (logged)
		act_warn("rule %s action %s: %s, notification dropped (POST %s; %" PRIu64
			 " dropped so far)",
			 j->h.rule, j->h.action, why, j->url, n);
}

static void dest_free(struct wh_dest *dd)
{
	if (!dd)
		return;
	free(dd->action);
	free(dd->url);
	free(dd);
}

/* The destination (action, url), found or added. Under the lock. */
static struct wh_dest *dest_get_locked(struct tsg_webhook_runner *r, struct tsg_act_stat *st,
				       const char *action, const char *url)
{
	struct wh_dest *dd;

	for (dd = r->dests; dd; dd = dd->next)
		if (!strcmp(dd->action, action) && !strcmp(dd->url, url))
			return dd;
	if (r->ndests >= WH_MAX_DESTS || !(dd = calloc(1, sizeof(*dd))))
		return NULL;
	dd->action = strdup(action);
	dd->url = strdup(url);
	if (!dd->action || !dd->url) {
		dest_free(dd);
		return NULL;
	}
	dd->ust = tsg_act_url_stat(st, url);
	dd->next = r->dests;
	r->dests = dd;
	r->ndests++;
	return dd;
}

/* Queues `j` (owned) for `url`: its own destination, its own bound. */
static void enqueue(struct tsg_webhook_runner *r, struct wh_job *j, const char *url)
{
	const char *why = NULL;
	struct wh_dest *dd = NULL;
	char *u = strdup(url);

	if (!u) {
		atomic_fetch_add(&j->h.st->failed, 1);
		act_err("rule %s action %s: out of memory", j->h.rule, j->h.action);
		wh_job_free(j);
		return;
	}
	free(j->url);
	j->url = u;
	pthread_mutex_lock(&r->base.lock);
	if (r->base.stop)
		why = "shutting down";
	else if (!(dd = dest_get_locked(r, j->h.st, j->h.action, url)))
		why = "out of memory or too many webhook URLs";
	else if (atomic_load(&dd->count) >= r->base.cap)
		why = "webhook queue full";
	if (!why) {
		j->dest = dd;
		j->ust = dd->ust;
		if (r->in_tail)
			r->in_tail->next = j;
		else
			r->in_head = j;
		r->in_tail = j;
		atomic_fetch_add(&dd->count, 1);
		queued_add(j, 1);
	} else if (dd) {
		j->ust = dd->ust;
	}
	pthread_mutex_unlock(&r->base.lock);
	if (why) {
		drop(j, why);
		wh_job_free(j);
	}
}

void tsg_webhook_fire(struct tsg_webhook_runner *r, struct tsg_act_ctx *c,
		      const struct tsg_action_def *d, struct tsg_act_stat *st)
{
	struct wh_job *j = wh_job_new(c, d, st);

	if (!j) {
		atomic_fetch_add(&st->failed, 1);
		act_err("rule %s action %s: out of memory", c->a->rule->name, d->name);
		return;
	}
	/* every URL gets a copy; the last one takes the original */
	for (size_t i = 0; i + 1 < d->webhook.nurls; i++) {
		struct wh_job *cp = wh_job_copy(j);

		if (!cp) {
			atomic_fetch_add(&st->failed, 1);
			act_err("rule %s action %s: out of memory (POST %s)", j->h.rule, d->name,
				d->webhook.urls[i]);
			continue;
		}
		enqueue(r, cp, d->webhook.urls[i]);
	}
	if (d->webhook.nurls)
		enqueue(r, j, d->webhook.urls[d->webhook.nurls - 1]);
	else
		wh_job_free(j);
	tsg_act_runner_wake(&r->base);
}

/* ---- worker -------------------------------------------------------------------- */

/* Removes a job from the books (it ran, failed, or was superseded). */
static void finish(struct tsg_webhook_runner *r, struct wh_job *j)
{
	(void)r;
	if (j->resend) {
		for (struct am_entry *e = j->dest->am; e; e = e->next)
			if (!strcmp(e->id, j->am_id))
				e->busy = false;
	}
	queued_add(j, -1);
	atomic_fetch_sub(&j->dest->count, 1);
	wh_job_free(j);
}

static void push(struct wh_job **list, struct wh_job *j)
{
	j->next = *list;
	*list = j;
}

static void am_entry_free(struct am_entry *e)
{
	free(e->id);
	wh_job_free(e->tmpl);
	free(e);
}

/* Cancels queued and in-flight firing sends of alert `id` to `dd` (a resolve is coming). */
static void am_cancel_firing(struct tsg_webhook_runner *r, struct wh_dest *dd, const char *id)
{
	struct wh_job **pp;

	for (pp = &dd->pending; *pp;) {
		struct wh_job *j = *pp;

		if (j->am && j->am_firing && !strcmp(j->am_id, id)) {
			*pp = j->next;
			finish(r, j);
		} else {
			pp = &j->next;
		}
	}
	for (pp = &dd->active; *pp;) {
		struct wh_job *j = *pp;

		if (j->am && j->am_firing && !strcmp(j->am_id, id)) {
			*pp = j->next;
			curl_multi_remove_handle(r->multi, j->easy);
			dd->nactive--;
			r->nactive--;
			finish(r, j);
		} else {
			pp = &j->next;
		}
	}
}

/* A new notification from fire(): Alertmanager bookkeeping, then its URL's queue. */
static void accept_job(struct tsg_webhook_runner *r, struct wh_job *j, uint64_t now)
{
	struct wh_dest *dd = j->dest;
	struct am_entry **pp, *e = NULL;

	j->next_at = now;
	if (!j->am || !j->am_tracked) {
		push(&dd->pending, j);
		return;
	}
	for (pp = &dd->am; *pp; pp = &(*pp)->next)
		if (!strcmp((*pp)->id, j->am_id)) {
			e = *pp;
			break;
		}
	if (e) /* the alert started when it first fired */
		json_object_set(j->am_alert, "startsAt",
				json_object_get(e->tmpl->am_alert, "startsAt"));
	if (!j->am_firing) {
		am_cancel_firing(r, dd, j->am_id);
		if (e) {
			*pp = e->next;
			am_entry_free(e);
			dd->nam--;
		}
		push(&dd->pending, j);
		return;
	}
	if (!e && dd->nam < WH_MAX_AM) {
		e = TSG_ACT_NAMED_NEW(struct am_entry, id, j->am_id);
		if (e) {
			e->next = dd->am;
			dd->am = e;
			dd->nam++;
		}
	}
	if (e) {
		wh_job_free(e->tmpl);
		e->tmpl = wh_job_copy(j);
		if (e->tmpl)
			e->tmpl->dest = dd;
		e->next_resend = now + r->resend_ns;
		e->busy = true; /* until this send finishes */
		j->resend = true;
	} else {
		act_warn("rule %s action %s: more than %d firing Alertmanager alerts for %s; this "
			 "one is not re-sent",
			 j->h.rule, j->h.action, WH_MAX_AM, dd->url);
	}
	push(&dd->pending, j);
}

static void am_resends(struct tsg_webhook_runner *r, struct wh_dest *dd, uint64_t now)
{
	for (struct am_entry *e = dd->am; e; e = e->next) {
		struct wh_job *j;

		if (e->busy || now < e->next_resend || !e->tmpl)
			continue;
		e->next_resend = now + r->resend_ns;
		if (atomic_load(&dd->count) >= r->base.cap) {
			drop(e->tmpl, "webhook queue full (re-send)");
			continue;
		}
		j = wh_job_copy(e->tmpl);
		if (!j)
			continue;
		j->dest = dd;
		j->resend = true;
		j->next_at = now;
		e->busy = true;
		atomic_fetch_add(&dd->count, 1);
		queued_add(j, 1);
		push(&dd->pending, j);
	}
}

/* Forgets re-sends whose action or rule went away with a reload (all with NULL). */
static void am_prune(struct wh_dest *dd, char **keep)
{
	for (struct am_entry **pp = &dd->am; *pp;) {
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
		dd->nam--;
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
		j->body = wh_am_body(j->am_alert, !j->am_firing, j->am_end_ns, r->resend_ns);
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
	push(&j->dest->active, j);
	j->dest->nactive++;
	r->nactive++;
	return 0;
}

/* A URL may always have one transfer in flight, whatever the others hold. */
static bool may_start(const struct tsg_webhook_runner *r, const struct wh_dest *dd)
{
	if (dd->nactive >= WH_MAX_ACTIVE_PER_DEST)
		return false;
	return !dd->nactive || r->nactive < WH_MAX_ACTIVE;
}

static void start_pending(struct tsg_webhook_runner *r, struct wh_dest *dd, uint64_t now)
{
	struct wh_job **pp = &dd->pending;

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
		if (j->next_at > now || !may_start(r, dd)) {
			pp = &j->next;
			continue;
		}
		*pp = j->next;
		if (start(r, j) < 0) {
			wh_count(j, failed);
			act_err("rule %s action %s: cannot start the request to %s", j->h.rule,
				j->h.action, j->url);
			finish(r, j);
		}
	}
}

static void unlink_active(struct tsg_webhook_runner *r, struct wh_job *j)
{
	for (struct wh_job **pp = &j->dest->active; *pp; pp = &(*pp)->next)
		if (*pp == j) {
			*pp = j->next;
			j->dest->nactive--;
			r->nactive--;
			return;
		}
}

/* Why an attempt failed, into `why`; true if it is worth another attempt. */
static bool failure(struct wh_job *j, CURLcode rc, long code, char *why, size_t len)
{
	if (rc != CURLE_OK) {
		snprintf(why, len, "%s", j->errbuf[0] ? j->errbuf : curl_easy_strerror(rc));
		if (rc == CURLE_OPERATION_TIMEDOUT)
			wh_count(j, timed_out);
		return true;
	}
	for (char *p = j->resp; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	snprintf(why, len, "HTTP %ld%s%s", code, j->resp_len ? ": " : "", j->resp);
	return code >= 500 || code == 408 || code == 429;
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
		wh_count(j, sent);
		finish(r, j);
		return;
	}
	retry = failure(j, rc, code, why, sizeof(why));
	if (retry && j->attempt <= j->retries) {
		uint64_t backoff = WH_BACKOFF_FIRST << (j->attempt - 1 < 16 ? j->attempt - 1 : 16);

		if (backoff > WH_BACKOFF_MAX)
			backoff = WH_BACKOFF_MAX;
		if (!r->stopping || now + backoff < r->stop_deadline) {
			char d[32];

			wh_count(j, retried);
			act_warn("rule %s action %s: POST %s attempt %d failed: %s; retry in %s",
				 j->h.rule, j->h.action, j->url, j->attempt, why,
				 tsg_duration_format(backoff, d, sizeof(d)));
			j->next_at = now + backoff;
			push(&j->dest->pending, j);
			return;
		}
	}
	wh_count(j, failed);
	act_err("rule %s action %s: POST %s failed after %d attempt%s: %s", j->h.rule, j->h.action,
		j->url, j->attempt, j->attempt == 1 ? "" : "s", why);
	finish(r, j);
}

static uint64_t longest_pending(struct wh_dest *dests)
{
	uint64_t l = 0;

	for (struct wh_dest *dd = dests; dd; dd = dd->next) {
		for (struct wh_job *j = dd->pending; j; j = j->next)
			l = j->timeout_ns > l ? j->timeout_ns : l;
		for (struct wh_job *j = dd->active; j; j = j->next)
			l = j->timeout_ns > l ? j->timeout_ns : l;
	}
	return l;
}

/* At the stop deadline: what is still in flight is abandoned. */
static void abandon_active(struct tsg_webhook_runner *r, struct wh_dest *dests)
{
	for (struct wh_dest *dd = dests; dd; dd = dd->next) {
		while (dd->active) {
			struct wh_job *j = dd->active;

			dd->active = j->next;
			curl_multi_remove_handle(r->multi, j->easy);
			wh_count(j, failed);
			act_err("rule %s action %s: POST %s still unanswered at shutdown; "
				"abandoned",
				j->h.rule, j->h.action, j->url);
			finish(r, j);
		}
		dd->nactive = 0;
	}
	r->nactive = 0;
}

static bool in_vec(char *const *v, const char *s)
{
	for (size_t i = 0; v && v[i]; i++)
		if (!strcmp(v[i], s))
			return true;
	return false;
}

/* Reload: re-sends of gone rules and actions are forgotten, URLs no longer in
 * the rule set are marked and freed once idle. */
static void apply_swap(struct wh_dest *dests, char **keep, char **keep_dests)
{
	for (struct wh_dest *dd = dests; dd; dd = dd->next) {
		char *id = NULL;

		if (asprintf(&id, "%s\x1f%s", dd->action, dd->url) < 0)
			id = NULL;
		dd->gone = id && !in_vec(keep_dests, id);
		free(id);
		am_prune(dd, dd->gone ? NULL : keep);
	}
}

/* Frees idle destinations that left with a reload. Under the lock: fire()
 * cannot pick one up meanwhile. */
static void sweep_gone_locked(struct tsg_webhook_runner *r)
{
	for (struct wh_dest **pp = &r->dests; *pp;) {
		struct wh_dest *dd = *pp;

		if (!dd->gone || atomic_load(&dd->count) || dd->am) {
			pp = &dd->next;
			continue;
		}
		*pp = dd->next;
		r->ndests--;
		dest_free(dd);
	}
}

/* When the worker must next look: a retry, a re-send, the stop deadline. */
static uint64_t next_wake(struct tsg_webhook_runner *r, struct wh_dest *dests, uint64_t next)
{
	for (struct wh_dest *dd = dests; dd; dd = dd->next) {
		for (struct wh_job *j = dd->pending; j; j = j->next)
			if (j->next_at < next)
				next = j->next_at;
		for (struct am_entry *e = dd->am; e && !r->stopping; e = e->next)
			if (!e->busy && e->next_resend < next)
				next = e->next_resend;
	}
	if (r->stopping && r->stop_deadline < next)
		next = r->stop_deadline;
	return next;
}

static bool idle(struct wh_dest *dests)
{
	for (struct wh_dest *dd = dests; dd; dd = dd->next)
		if (dd->pending || dd->active)
			return false;
	return true;
}

/* One turn's intake under the lock: new jobs, stop, a reload, the destinations. */
struct wh_turn {
	struct wh_job *in;
	struct wh_dest *dests;
	char **keep, **keep_dests;
	bool stop, swap;
};

static void take_turn(struct tsg_webhook_runner *r, struct wh_turn *t)
{
	pthread_mutex_lock(&r->base.lock);
	t->in = r->in_head;
	r->in_head = r->in_tail = NULL;
	t->stop = r->base.stop;
	t->swap = r->swap_pending;
	if (t->swap) {
		t->keep = r->swap_keep;
		t->keep_dests = r->swap_dests;
		r->swap_keep = r->swap_dests = NULL;
		r->swap_pending = false;
	}
	t->dests = r->dests; /* fire() only adds at the head */
	pthread_mutex_unlock(&r->base.lock);
}

static void *wh_main(void *arg)
{
	struct tsg_webhook_runner *r = arg;

	for (;;) {
		uint64_t now = tsg_mono_ns(), next;
		struct wh_turn t = {0};
		CURLMsg *msg;
		int running, left;

		take_turn(r, &t);
		while (t.in) {
			struct wh_job *j = t.in;

			t.in = j->next;
			j->next = NULL;
			accept_job(r, j, now);
		}
		if (t.swap) {
			apply_swap(t.dests, t.keep, t.keep_dests);
			tsg_act_free_vec(t.keep);
			tsg_act_free_vec(t.keep_dests);
		}
		if (t.stop && !r->stopping) {
			r->stopping = true;
			/* pending work gets its timeout; re-sends stop now */
			r->stop_deadline = now + longest_pending(t.dests);
		}
		for (struct wh_dest *dd = t.dests; dd; dd = dd->next) {
			if (!r->stopping)
				am_resends(r, dd, now);
			start_pending(r, dd, now);
		}
		curl_multi_perform(r->multi, &running);
		while ((msg = curl_multi_info_read(r->multi, &left))) {
			struct wh_job *j = NULL;

			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&j);
			done(r, j, msg->data.result, tsg_mono_ns());
		}
		if (r->stopping && idle(t.dests))
			break;
		if (r->stopping && now >= r->stop_deadline) {
			abandon_active(r, t.dests);
			continue; /* drops what is pending, then leaves */
		}
		pthread_mutex_lock(&r->base.lock);
		sweep_gone_locked(r);
		t.dests = r->dests;
		pthread_mutex_unlock(&r->base.lock);
		next = next_wake(r, t.dests, now + TSG_NSEC_PER_SEC);
		if (next > now) {
			uint64_t ms = (next - now + TSG_NSEC_PER_MSEC - 1) / TSG_NSEC_PER_MSEC;
			curl_multi_poll(r->multi, NULL, 0, (int)ms, NULL);
		}
	}
	return NULL;
}

static void wh_wake(struct tsg_act_runner *base)
{
	curl_multi_wakeup(((struct tsg_webhook_runner *)base)->multi);
}

/* arg: the Alertmanager re-send period (0: a minute). */
static int wh_init(struct tsg_act_runner *base, const void *arg)
{
	struct tsg_webhook_runner *r = (struct tsg_webhook_runner *)base;
	uint64_t resend = *(const uint64_t *)arg;

	r->resend_ns = resend ? resend : 60 * TSG_NSEC_PER_SEC;
	r->multi = curl_multi_init();
	return r->multi ? 0 : -ENOMEM;
}

/* After the join (by the stop deadline). */
static void wh_fini(struct tsg_act_runner *base)
{
	struct tsg_webhook_runner *r = (struct tsg_webhook_runner *)base;

	while (r->in_head) { /* fire() after stop cannot add; defensive */
		struct wh_job *j = r->in_head;
		r->in_head = j->next;
		finish(r, j);
	}
	while (r->dests) {
		struct wh_dest *dd = r->dests;

		r->dests = dd->next;
		am_prune(dd, NULL);
		dest_free(dd);
	}
	tsg_act_free_vec(r->swap_keep);
	tsg_act_free_vec(r->swap_dests);
	curl_multi_cleanup(r->multi);
}

static const struct tsg_act_runner_def wh_def = {
	"webhook", "worker", 1024, wh_main, wh_wake, wh_init, wh_fini, NULL,
};

int tsg_webhook_runner_new(size_t queue_cap, uint64_t am_resend_ns, struct tsg_webhook_runner **out)
{
	return tsg_act_runner_new(sizeof(**out), &wh_def, queue_cap, &am_resend_ns, out);
}

/* "action\x1frule\x1f" of every rule's Alertmanager action (NULL-terminated). */
static char **keep_rules(const struct tsg_ruleset *rs)
{
	size_t n = 0, cap = 1;
	char **keep;

	for (size_t i = 0; rs && i < rs->nrules; i++)
		cap += rs->rules[i].nactions;
	keep = calloc(cap, sizeof(*keep));
	for (size_t i = 0; keep && rs && i < rs->nrules; i++) {
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
				return NULL;
			}
			n++;
		}
	}
	return keep;
}

/* "action\x1furl" of every URL of every webhook action (NULL-terminated). */
static char **keep_urls(const struct tsg_ruleset *rs)
{
	size_t n = 0, cap = 1;
	char **keep;

	for (size_t i = 0; rs && i < rs->nactions; i++)
		if (rs->actions[i].type == TSG_ACT_WEBHOOK)
			cap += rs->actions[i].webhook.nurls;
	keep = calloc(cap, sizeof(*keep));
	for (size_t i = 0; keep && rs && i < rs->nactions; i++) {
		const struct tsg_action_def *d = &rs->actions[i];

		for (size_t k = 0; d->type == TSG_ACT_WEBHOOK && k < d->webhook.nurls; k++) {
			if (asprintf(&keep[n], "%s\x1f%s", d->name, d->webhook.urls[k]) < 0) {
				keep[n] = NULL;
				tsg_act_free_vec(keep);
				return NULL;
			}
			n++;
		}
	}
	return keep;
}

void tsg_webhook_swap(struct tsg_webhook_runner *r, const struct tsg_ruleset *rs)
{
	char **keep, **dests;

	if (!r)
		return;
	keep = keep_rules(rs);
	dests = keep_urls(rs);
	if (!keep || !dests) { /* keep re-sending under the old books */
		tsg_act_free_vec(keep);
		tsg_act_free_vec(dests);
		return;
	}
	pthread_mutex_lock(&r->base.lock);
	tsg_act_free_vec(r->swap_keep);
	tsg_act_free_vec(r->swap_dests);
	r->swap_keep = keep;
	r->swap_dests = dests;
	r->swap_pending = true;
	pthread_mutex_unlock(&r->base.lock);
	tsg_act_runner_wake(&r->base);
}
