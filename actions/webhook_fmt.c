/* SPDX-License-Identifier: MIT */
/*
 * tsguard: what a webhook sends: headers, bodies (json, template, the
 * Alertmanager API v2 alerts array) and the dry run. webhook.c delivers.
 */
#include "webhook_impl.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

uint64_t wh_timeout(const struct tsg_action_def *d)
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
char **wh_headers(const struct tsg_action_def *d, const struct tsg_alert *a)
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
json_t *wh_am_alert(const struct tsg_alert *a)
{
	/* a socket's identity: its tuple, and its namespace and container (the
	 * same tuple in two namespaces is two alerts) */
	static const int sock_fields[] = {TSG_SF_LADDR,	    TSG_SF_LPORT, TSG_SF_RADDR,
					  TSG_SF_RPORT,	    TSG_SF_NETNS, TSG_SF_NETNS_NAME,
					  TSG_SF_CONTAINER, TSG_SF_POD};
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
			if (tsg_alert_field(a, tsg_sfield_to_tfield(sock_fields[i]), NULL, buf, sizeof(buf)) ==
			    0)
				set_label(labels, tsg_sfield_name(sock_fields[i]), buf);
	} else {
		for (int sf = 0; sf < TSG_SF_N; sf++)
			if ((r->by & TSG_HAVE(sf)) &&
			    tsg_alert_field(a, tsg_sfield_to_tfield(sf), NULL, buf, sizeof(buf)) == 0)
				set_label(labels, tsg_sfield_name(sf), buf);
	}
	set_label(labels, "alertname", r->name);
	set_label(labels, "severity", tsg_severity_name(r->severity));
	set_label(labels, "instance", a->host ? a->host : tsg_hostname());
	json_object_set_new(o, "labels", labels);
	json_object_set_new(ann, "summary", json_string(tsg_alert_summary(a, buf, sizeof(buf))));
	json_object_set_new(
	    ann, "description",
	    json_string(r->description ? r->description : tsg_alert_to_text(a, buf, sizeof(buf))));
	json_object_set_new(o, "annotations", ann);
	json_object_set_new(o, "startsAt", json_string(tsg_format_time(a->wall_ns, buf, 40)));
	return o;
}

/* The request body: [alert + endsAt]. */
char *wh_am_body(const json_t *alert, bool resolved, int64_t end_ns, uint64_t resend_ns)
{
	json_t *o = json_deep_copy(alert), *arr = json_array();
	char t[40];
	char *s = NULL;

	if (o && arr) {
		if (!resolved)
			end_ns = tsg_wall_ns() + 4 * (int64_t)resend_ns;
		json_object_set_new(o, "endsAt",
				    json_string(tsg_format_time(end_ns, t, sizeof(t))));
		json_array_append(arr, o);
		s = json_dumps(arr, JSON_COMPACT);
	}
	json_decref(o);
	json_decref(arr);
	return s;
}

char *wh_am_id(const char *action, const struct tsg_alert *a)
{
	char key[512];
	char *id;

	if (asprintf(&id, "%s\x1f%s\x1f%s", action, a->rule->name,
		     tsg_alert_key_string(a, key, sizeof(key))) < 0)
		return NULL;
	return id;
}

/* ---- dry run ----------------------------------------------------------------- */

char *wh_body(struct tsg_act_ctx *c, const struct tsg_action_def *d)
{
	if (d->webhook.format == TSG_WH_TEMPLATE)
		return tsg_act_render(&d->webhook.body, c->a);
	return strdup(tsg_act_ctx_json(c));
}

void tsg_webhook_dry(struct tsg_act_ctx *c, const struct tsg_action_def *d, uint64_t resend_ns)
{
	char **h = wh_headers(d, c->a);
	char *qh = tsg_act_quote_vec(h), *body = NULL;
	bool am = d->webhook.format == TSG_WH_ALERTMANAGER;
	char dur[32], dur2[32], post[4096], resend[64] = "";

	if (am) {
		json_t *al = wh_am_alert(c->a);

		if (al)
			body =
			    wh_am_body(al, c->a->status == TSG_RESOLVED, c->a->wall_ns, resend_ns);
		json_decref(al);
	} else {
		body = wh_body(c, d);
	}
	if (am && c->a->status == TSG_FIRING && c->a->rule->kind != TSG_KIND_TRANSITION)
		snprintf(resend, sizeof(resend), " resend: every %s until resolved",
			 tsg_duration_format(resend_ns, dur2, sizeof(dur2)));
	/* one would-send line per URL: each gets the same request */
	for (size_t i = 0; i < d->webhook.nurls; i++) {
		char *qu = tsg_act_quote(d->webhook.urls[i]);

		snprintf(post, sizeof(post), "%s timeout: %s retries: %d%s", qu ? qu : "?",
			 tsg_duration_format(wh_timeout(d), dur, sizeof(dur)), d->webhook.retries,
			 resend);
		tsg_act_dry(c, d, "POST", post, false);
		free(qu);
	}
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
	tsg_act_free_vec(h);
}

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

void wh_job_free(struct wh_job *j)
{
	if (!j)
		return;
	tsg_act_job_fini(&j->h);
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

/* Copies what a send needs: everything but the transfer and the destination. */
struct wh_job *wh_job_copy(const struct wh_job *j)
{
	struct wh_job *c = calloc(1, sizeof(*c));
	bool ok;

	if (!c)
		return NULL;
	ok = tsg_act_job_init(&c->h, j->h.action, j->h.rule, j->h.st);
	c->url = strdup(j->url);
	c->headers = dup_vec(j->headers);
	c->body = j->body ? strdup(j->body) : NULL;
	c->timeout_ns = j->timeout_ns;
	c->retries = j->retries;
	c->ust = j->ust;
	c->am = j->am;
	c->am_firing = j->am_firing;
	c->am_tracked = j->am_tracked;
	c->am_end_ns = j->am_end_ns;
	c->am_alert = j->am_alert ? json_deep_copy(j->am_alert) : NULL;
	c->am_id = j->am_id ? strdup(j->am_id) : NULL;
	if (!ok || !c->url || !c->headers || (j->body && !c->body) ||
	    (j->am_alert && !c->am_alert) || (j->am_id && !c->am_id)) {
		wh_job_free(c);
		return NULL;
	}
	return c;
}

/* The job of one notification, for no URL yet. NULL on ENOMEM. */
struct wh_job *wh_job_new(struct tsg_act_ctx *c, const struct tsg_action_def *d,
			  struct tsg_act_stat *st)
{
	struct wh_job *j = calloc(1, sizeof(*j));
	bool ok, bad;

	if (!j)
		return NULL;
	ok = tsg_act_job_init(&j->h, d->name, c->a->rule->name, st);
	j->url = strdup("");
	j->headers = wh_headers(d, c->a);
	j->timeout_ns = wh_timeout(d);
	j->retries = d->webhook.retries > 0 ? d->webhook.retries : 0;
	j->am = d->webhook.format == TSG_WH_ALERTMANAGER;
	if (j->am) {
		j->am_firing = c->a->status == TSG_FIRING;
		j->am_tracked = c->a->rule->kind != TSG_KIND_TRANSITION;
		j->am_end_ns = c->a->wall_ns;
		j->am_alert = wh_am_alert(c->a);
		j->am_id = wh_am_id(d->name, c->a);
	} else {
		j->body = wh_body(c, d);
	}
	bad = !ok || !j->url || !j->headers ||
	      (j->am ? !j->am_alert || !j->am_id : !j->body);
	if (bad) {
		wh_job_free(j);
		return NULL;
	}
	return j;
}
