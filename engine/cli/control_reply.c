/* SPDX-License-Identifier: MIT */
/*
 * tsguard: the replies of the control socket (control.h). Each reply is built
 * as a JSON object first; the text reply is rendered from it, so the two
 * never disagree. Lists are cut at TSG_CONTROL_MAX_ALERTS entries, counted.
 */
#include "control_priv.h"
#include "tsg.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static const char *const action_types[] = {"syslog", "exec", "webhook"};

static char *with_header(const char *header, const char *body)
{
	char *s = NULL;

	if (asprintf(&s, "%s\n%s", header, body) < 0)
		return NULL;
	return s;
}

char *tsg_ctl_error_reply(const char *msg)
{
	char *s = NULL;

	if (asprintf(&s, "error\nerror: %s\n", msg) < 0)
		return NULL;
	return s;
}

static char *json_reply(const char *header, json_t *o)
{
	char *body = o ? json_dumps(o, JSON_INDENT(2) | JSON_REAL_PRECISION(15)) : NULL;
	char *s = NULL;

	json_decref(o);
	if (body && asprintf(&s, "%s\n%s\n", header, body) < 0)
		s = NULL;
	free(body);
	return s;
}

static json_t *jint(uint64_t v)
{
	return json_integer((json_int_t)v);
}

/* ---- status ------------------------------------------------------------------- */

static json_t *status_actions(const struct tsg_control_view *v)
{
	json_t *a = json_array();

	for (size_t i = 0; v->rs && i < v->rs->nactions && i < TSG_CONTROL_MAX_ALERTS; i++) {
		const struct tsg_action_def *d = &v->rs->actions[i];
		struct tsg_action_stats st = {0};

		if (v->actions)
			tsg_actions_get_stats(v->actions, d->name, &st);
		json_array_append_new(a, json_pack("{s:s, s:s, s:I, s:I, s:I, s:I}", "name",
						   d->name, "type", action_types[d->type % 3],
						   "queued", (json_int_t)st.queued_now, "sent",
						   (json_int_t)st.sent, "failed",
						   (json_int_t)(st.failed + st.timed_out),
						   "dropped", (json_int_t)st.dropped));
	}
	return a;
}

static json_t *status_json(const struct tsg_control_view *v, const struct tsg_control_stats *cs)
{
	struct tsg_engine_stats es = {0};
	json_t *o = json_object(), *files = json_array(), *by = json_object();

	tsg_engine_get_stats(v->engine, &es);
	if (!v->have_capture) /* replay: every event read reaches the engine */
		json_object_set_new(o, "events",
				    json_pack("{s:I, s:I, s:I, s:I}", "seen", (json_int_t)es.events,
					      "filtered", (json_int_t)0, "sent",
					      (json_int_t)es.events, "lost", (json_int_t)0));
	else
		json_object_set_new(o, "events",
				    json_pack("{s:I, s:I, s:I, s:I}", "seen", (json_int_t)v->seen,
					      "filtered", (json_int_t)v->filtered, "sent",
					      (json_int_t)v->sent, "lost", (json_int_t)v->lost));
	json_object_set_new(o, "version", json_string(TSG_VERSION));
	json_object_set_new(o, "uptime", json_real((double)tsg_wall_ns() / 1e9 - v->start_time));
	json_object_set_new(o, "source", json_string(v->source));
	for (size_t i = 0; i < v->rs->nfiles && i < TSG_CONTROL_MAX_ALERTS; i++)
		json_array_append_new(files, json_string(v->rs->files[i]));
	json_object_set_new(o, "rule_files", files);
	json_object_set_new(o, "rules", jint(v->rs->nrules));
	for (int s = 1; s < TSG_NSTATES; s++)
		if (es.per_state[s])
			json_object_set_new(by, tsg_state_name(s), jint(es.per_state[s]));
	json_object_set_new(o, "sockets",
			    json_pack("{s:I, s:o, s:I}", "tracked", (json_int_t)es.sockets,
				      "by_state", by, "dropped", (json_int_t)es.sockets_dropped));
	/* one network namespace today: the one tsguard runs in */
	json_object_set_new(o, "namespaces",
			    json_pack("{s:i, s:[s]}", "watched", 1, "names", "host"));
	json_object_set_new(o, "action_queues", status_actions(v));
	json_object_set_new(o, "reloads",
			    json_pack("{s:I, s:I}", "ok", (json_int_t)v->reloads_ok, "failed",
				      (json_int_t)v->reloads_failed));
	json_object_set_new(o, "control",
			    json_pack("{s:I, s:I, s:I, s:I}", "requests", (json_int_t)cs->requests,
				      "bad_requests", (json_int_t)cs->bad_requests, "busy",
				      (json_int_t)cs->busy, "timed_out",
				      (json_int_t)cs->timed_out));
	return o;
}

static json_int_t geti(const json_t *o, const char *k)
{
	return json_integer_value(json_object_get(o, k));
}

static void status_text_queues(FILE *f, const json_t *q)
{
	size_t i, w = 4;
	json_t *a;

	if (!json_array_size(q)) {
		fprintf(f, "%-14s none\n", "action queues:");
		return;
	}
	json_array_foreach(q, i, a) if (strlen(json_string_value(json_object_get(a, "name"))) > w)
	    w = strlen(json_string_value(json_object_get(a, "name")));
	fprintf(f, "action queues:\n  %-*s  %-7s  %6s  %8s  %6s  %7s\n", (int)w, "NAME", "TYPE",
		"QUEUED", "SENT", "FAILED", "DROPPED");
	json_array_foreach(q, i, a)
	    fprintf(f,
		    "  %-*s  %-7s  %6" JSON_INTEGER_FORMAT "  %8" JSON_INTEGER_FORMAT
		    "  %6" JSON_INTEGER_FORMAT "  %7" JSON_INTEGER_FORMAT "\n",
		    (int)w, json_string_value(json_object_get(a, "name")),
		    json_string_value(json_object_get(a, "type")), geti(a, "queued"),
		    geti(a, "sent"), geti(a, "failed"), geti(a, "dropped"));
}

static void status_text(FILE *f, const json_t *o)
{
	const json_t *ev = json_object_get(o, "events"), *sk = json_object_get(o, "sockets");
	const json_t *rl = json_object_get(o, "reloads"), *cs = json_object_get(o, "control");
	const json_t *files = json_object_get(o, "rule_files"), *x;
	const char *name;
	char up[32];
	size_t i;

	tsg_duration_format((uint64_t)(json_real_value(json_object_get(o, "uptime")) * 1e9), up,
			    sizeof(up));
	fprintf(f, "%-14s tsguard %s\n",
		"version:", json_string_value(json_object_get(o, "version")));
	fprintf(f, "%-14s %s\n", "uptime:", up);
	fprintf(f, "%-14s %s\n", "source:", json_string_value(json_object_get(o, "source")));
	fprintf(f, "%-14s %zu\n", "rule files:", json_array_size(files));
	json_array_foreach(files, i, x) fprintf(f, "%-14s %s\n", "", json_string_value(x));
	fprintf(f, "%-14s %" JSON_INTEGER_FORMAT "\n", "rules:", geti(o, "rules"));
	fprintf(f,
		"%-14s seen %" JSON_INTEGER_FORMAT ", filtered %" JSON_INTEGER_FORMAT
		", sent %" JSON_INTEGER_FORMAT ", lost %" JSON_INTEGER_FORMAT "\n",
		"events:", geti(ev, "seen"), geti(ev, "filtered"), geti(ev, "sent"),
		geti(ev, "lost"));
	fprintf(f, "%-14s %" JSON_INTEGER_FORMAT " tracked", "sockets:", geti(sk, "tracked"));
	i = 0;
	json_object_foreach((json_t *)json_object_get(sk, "by_state"), name, x) fprintf(
	    f, "%s%s %" JSON_INTEGER_FORMAT, i++ ? ", " : " (", name, json_integer_value(x));
	fprintf(f, "%s\n", i ? ")" : "");
	fprintf(f, "%-14s 1 (host)\n", "namespaces:");
	fprintf(f, "%-14s ok %" JSON_INTEGER_FORMAT ", failed %" JSON_INTEGER_FORMAT "\n",
		"reloads:", geti(rl, "ok"), geti(rl, "failed"));
	fprintf(f,
		"%-14s requests %" JSON_INTEGER_FORMAT ", bad %" JSON_INTEGER_FORMAT
		", busy %" JSON_INTEGER_FORMAT ", timed out %" JSON_INTEGER_FORMAT "\n",
		"control:", geti(cs, "requests"), geti(cs, "bad_requests"), geti(cs, "busy"),
		geti(cs, "timed_out"));
	status_text_queues(f, json_object_get(o, "action_queues"));
}

/* Renders o as text with the header `ok` (o is released). */
static char *text_reply(json_t *o, void (*render)(FILE *, const json_t *))
{
	char *body = NULL, *s;
	size_t len = 0;
	FILE *f;

	if (!o)
		return NULL;
	f = open_memstream(&body, &len);
	if (!f) {
		json_decref(o);
		return NULL;
	}
	render(f, o);
	json_decref(o);
	if (fclose(f) != 0) {
		free(body);
		return NULL;
	}
	s = with_header("ok", body);
	free(body);
	return s;
}

char *tsg_ctl_status_reply(const struct tsg_control_ops *ops, const struct tsg_control_stats *st,
			   bool json)
{
	struct tsg_control_view v = {0};
	json_t *o;

	ops->view(ops->ctx, &v);
	o = status_json(&v, st);
	return json ? json_reply("ok", o) : text_reply(o, status_text);
}

/* ---- alerts ------------------------------------------------------------------ */

struct collect {
	const struct tsg_control_view *v;
	json_t *list;
	bool text;
	uint64_t now;
	int64_t wall_now;
};

static void collect_alert(void *ctx, const struct tsg_alert_view *av)
{
	struct collect *c = ctx;
	const struct tsg_alert *a = &av->alert;
	json_t *o, *full;
	char buf[256];

	if (json_array_size(c->list) >= TSG_CONTROL_MAX_ALERTS)
		return;
	o = json_object();
	full = tsg_alert_to_json(a);
	json_object_set_new(o, "rule", json_string(a->rule->name));
	json_object_set_new(o, "status", json_string(av->pending ? "pending" : "firing"));
	json_object_set(o, "key", json_object_get(full, "key"));
	json_decref(full);
	if (c->text)
		json_object_set_new(o, "key_text",
				    json_string(tsg_alert_key_string(a, buf, sizeof(buf))));
	json_object_set_new(o, "since", json_real((double)av->since_ns / 1e9));
	json_object_set_new(o, "age", json_real((double)(c->now - av->since_ns) / 1e9));
	if (c->v->have_capture) /* the event clock is monotonic: wall time of it */
		json_object_set_new(
		    o, "since_time",
		    json_string(tsg_format_time(c->wall_now - (int64_t)(c->now - av->since_ns), buf,
						sizeof(buf))));
	json_object_set_new(o, "count", a->has_count ? jint(a->count) : json_null());
	if (a->has_duration)
		json_object_set_new(o, "duration", json_real((double)a->duration_ns / 1e9));
	json_object_set_new(o, "suppressed", jint(a->suppressed));
	json_object_set_new(o, "silenced", json_boolean(av->silenced));
	json_array_append_new(c->list, o);
}

static void alerts_text(FILE *f, const json_t *o)
{
	const json_t *list = json_object_get(o, "alerts"), *a;
	size_t i, wr = 4, wk = 3, ws = 5;
	char since[96], age[32], cnt[24];

	if (!json_array_size(list))
		fprintf(f, "no alert pending or firing\n");
	json_array_foreach(list, i, a)
	{
		size_t lr = strlen(json_string_value(json_object_get(a, "rule")));
		size_t lk = strlen(json_string_value(json_object_get(a, "key_text")));

		wr = lr > wr ? lr : wr;
		wk = lk > wk ? lk : wk;
	}
	for (int pass = 0; pass < 2; pass++) {
		if (pass && json_array_size(list))
			fprintf(f, "%-*s  %-8s  %-*s  %-*s  %5s  %s\n", (int)wr, "RULE", "STATUS",
				(int)wk, "KEY", (int)ws, "SINCE", "COUNT", "SUPPRESSED");
		json_array_foreach(list, i, a)
		{
			const json_t *st = json_object_get(a, "since_time");

			tsg_duration_format(
			    (uint64_t)(json_real_value(json_object_get(a, "age")) * 1e9), age,
			    sizeof(age));
			if (st)
				snprintf(since, sizeof(since), "%s (%s ago)", json_string_value(st),
					 age);
			else /* replay: the event clock */
				snprintf(since, sizeof(since), "ts %.3f (%s ago)",
					 json_real_value(json_object_get(a, "since")), age);
			if (!pass) {
				ws = strlen(since) > ws ? strlen(since) : ws;
				continue;
			}
			if (json_is_integer(json_object_get(a, "count")))
				snprintf(cnt, sizeof(cnt), "%" JSON_INTEGER_FORMAT,
					 geti(a, "count"));
			else
				snprintf(cnt, sizeof(cnt), "-");
			fprintf(f, "%-*s  %-8s  %-*s  %-*s  %5s  %" JSON_INTEGER_FORMAT "%s\n",
				(int)wr, json_string_value(json_object_get(a, "rule")),
				json_string_value(json_object_get(a, "status")), (int)wk,
				json_string_value(json_object_get(a, "key_text")), (int)ws, since,
				cnt, geti(a, "suppressed"),
				json_is_true(json_object_get(a, "silenced")) ? " (cooldown)" : "");
		}
	}
	if (json_is_true(json_object_get(o, "truncated")))
		fprintf(f, "... and %" JSON_INTEGER_FORMAT " more\n",
			geti(o, "total") - (json_int_t)json_array_size(list));
}

char *tsg_ctl_alerts_reply(const struct tsg_control_ops *ops, bool json)
{
	struct tsg_control_view v = {0};
	struct collect c = {.v = &v, .list = json_array(), .text = !json};
	size_t total;
	json_t *o;

	ops->view(ops->ctx, &v);
	c.now = tsg_engine_now(v.engine);
	c.wall_now = tsg_wall_ns();
	total = tsg_engine_foreach_alert(v.engine, collect_alert, &c);
	o = json_pack("{s:o, s:I, s:b}", "alerts", c.list, "total", (json_int_t)total, "truncated",
		      total > json_array_size(c.list));
	return json ? json_reply("ok", o) : text_reply(o, alerts_text);
}

/* ---- reload ------------------------------------------------------------------ */

static char *reload_json(int rc, size_t nrules, const char *errs, bool cut)
{
	json_t *o = json_object(), *list = json_array();
	char *copy = strdup(errs), *save = NULL;

	for (char *l = copy ? strtok_r(copy, "\n", &save) : NULL; l;
	     l = strtok_r(NULL, "\n", &save))
		json_array_append_new(list, json_string(l));
	free(copy);
	json_object_set_new(o, "reloaded", json_boolean(rc == 0));
	if (rc == 0)
		json_object_set_new(o, "rules", jint(nrules));
	json_object_set_new(o, "errors", list);
	json_object_set_new(o, "truncated", json_boolean(cut));
	return json_reply(rc == 0 ? "ok" : rc == -EINVAL ? "rejected" : "failed", o);
}

char *tsg_ctl_reload_reply(const struct tsg_control_ops *ops, bool json)
{
	char *errs = NULL, *s = NULL, line[64];
	size_t len = 0, nrules = 0;
	FILE *f = open_memstream(&errs, &len);
	bool cut = false;
	int rc;

	if (!f)
		return NULL;
	rc = ops->reload(ops->ctx, f, &nrules);
	if (fclose(f) != 0) {
		free(errs);
		return NULL;
	}
	if (len > TSG_CONTROL_REPLY_MAX) { /* bounded: cut at a line */
		char *nl = memrchr(errs, '\n', TSG_CONTROL_REPLY_MAX);

		*(nl ? nl + 1 : errs + TSG_CONTROL_REPLY_MAX) = '\0';
		cut = true;
	}
	if (json) {
		s = reload_json(rc, nrules, errs, cut);
	} else if (rc == 0) {
		snprintf(line, sizeof(line), "reloaded: %zu rules\n", nrules);
		s = with_header("ok", line);
	} else {
		if (!*errs || cut) {
			char *more = NULL;

			if (asprintf(&more, "%s%s", errs,
				     cut ? "... (more errors: see the log)\n"
					 : "error: the reload failed; see the log\n") >= 0) {
				free(errs);
				errs = more;
			}
		}
		s = with_header(rc == -EINVAL ? "rejected" : "failed", errs);
	}
	free(errs);
	return s;
}
