/* SPDX-License-Identifier: MIT */
/* tsguard: alert renderings (template fields, JSON object, text line). */
#include "alert.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

const char *tsg_status_name(int st)
{
	return st == TSG_RESOLVED ? "resolved" : "firing";
}

const char *tsg_hostname(void)
{
	static char host[256];

	if (!host[0]) {
		/* TSG_HOSTNAME: a pod without hostNetwork has its own host name
		 * (the pod's); the DaemonSet passes the node's name here */
		const char *env = getenv("TSG_HOSTNAME");

		if (env && *env)
			snprintf(host, sizeof(host), "%s", env);
		else if (gethostname(host, sizeof(host) - 1) < 0 || !host[0])
			snprintf(host, sizeof(host), "localhost");
		host[sizeof(host) - 1] = 0;
	}
	return host;
}

const char *tsg_format_time(int64_t wall_ns, char *buf, size_t len)
{
	time_t sec = (time_t)(wall_ns / 1000000000);
	int ms = (int)((wall_ns % 1000000000) / 1000000);
	struct tm tm;
	char tmp[96];

	if (wall_ns < 0) {
		sec = 0;
		ms = 0;
	}
	gmtime_r(&sec, &tm);
	snprintf(tmp, sizeof(tmp), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
	if (len) {
		size_t n = strlen(tmp) < len - 1 ? strlen(tmp) : len - 1;

		memcpy(buf, tmp, n);
		buf[n] = 0;
	}
	return buf;
}

static bool have(const struct tsg_alert *a, int sf)
{
	return a->info.have & TSG_HAVE(sf);
}

static const char *family_name(uint8_t f)
{
	return f == TSG_FAM_IPV6 ? "ipv6" : "ipv4";
}

/* "10.0.0.2:50000", "[fd00::1]:443"; "?" for what is not known. */
static void format_endpoint(const uint8_t addr[16], uint16_t port, bool have_addr,
			    bool have_port, char *buf, size_t len)
{
	char a[64] = "?", p[8] = "?";

	if (have_addr)
		tsg_addr_format(addr, a, sizeof(a));
	if (have_port)
		snprintf(p, sizeof(p), "%u", port);
	if (have_addr && !tsg_addr_is_v4mapped(addr))
		snprintf(buf, len, "[%s]:%s", a, p);
	else
		snprintf(buf, len, "%s:%s", a, p);
}

static const char *sock_string(const struct tsg_alert *a, char *buf, size_t len)
{
	char l[80], r[80];

	format_endpoint(a->info.laddr, a->info.lport, have(a, TSG_SF_LADDR),
			have(a, TSG_SF_LPORT), l, sizeof(l));
	format_endpoint(a->info.raddr, a->info.rport, have(a, TSG_SF_RADDR),
			have(a, TSG_SF_RPORT), r, sizeof(r));
	snprintf(buf, len, "%s-%s", l, r);
	return buf;
}

/* An interned string field: NULL is "none" (the field is absent). */
static int str_text(const char *v, char *buf, size_t len)
{
	if (!v)
		return -ENOENT;
	snprintf(buf, len, "%s", v);
	return 0;
}

/* Value of one socket field as text; -ENOENT when unknown. */
static int sfield_text(const struct tsg_alert *a, int sf, char *buf, size_t len)
{
	if (!have(a, sf))
		return -ENOENT;
	switch (sf) {
	case TSG_SF_COMM:
		snprintf(buf, len, "%s", a->info.comm);
		break;
	case TSG_SF_PID:
		snprintf(buf, len, "%" PRIu32, a->info.pid);
		break;
	case TSG_SF_UID:
		snprintf(buf, len, "%" PRIu32, a->info.uid);
		break;
	case TSG_SF_CGROUP:
		snprintf(buf, len, "%s", a->info.cgroup ? a->info.cgroup : "");
		break;
	case TSG_SF_LADDR:
		tsg_addr_format(a->info.laddr, buf, len);
		break;
	case TSG_SF_RADDR:
		tsg_addr_format(a->info.raddr, buf, len);
		break;
	case TSG_SF_LPORT:
		snprintf(buf, len, "%u", a->info.lport);
		break;
	case TSG_SF_RPORT:
		snprintf(buf, len, "%u", a->info.rport);
		break;
	case TSG_SF_FAMILY:
		snprintf(buf, len, "%s", family_name(a->info.family));
		break;
	case TSG_SF_NETNS:
		if (!a->info.netns)
			return -ENOENT;
		snprintf(buf, len, "%" PRIu32, a->info.netns);
		break;
	case TSG_SF_NETNS_NAME:
		return str_text(a->info.netns_name, buf, len);
	case TSG_SF_CONTAINER:
		return str_text(a->info.container, buf, len);
	case TSG_SF_POD:
		return str_text(a->info.pod, buf, len);
	default:
		return -ENOENT;
	}
	return 0;
}

/* The "sock" of a socket's key: its tuple (and its id while the local port
 * is not known). */
static const char *sock_key(const struct tsg_alert *a, char *buf, size_t len)
{
	sock_string(a, buf, len);
	/* a connect whose port is not known yet: two of them to one peer
	 * would have the same tuple, so the socket's id tells them apart */
	if (!have(a, TSG_SF_LPORT) && a->sk) {
		char id[32];
		size_t off = strlen(buf);

		snprintf(buf + off, len - off, "#%s", tsg_sk_to_string(a->sk, id, sizeof(id)));
	}
	return buf;
}

const char *tsg_alert_key_string(const struct tsg_alert *a, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = 0;
	if (a->key_is_sock) {
		sock_key(a, buf, len);
		if (have(a, TSG_SF_NETNS) && a->info.netns) {
			off = strlen(buf);
			snprintf(buf + off, len - off, " netns=%" PRIu32, a->info.netns);
		}
		return buf;
	}
	for (int sf = 0; sf < TSG_SF_N && off < len; sf++) {
		char v[128];

		if (!(a->rule->by & TSG_HAVE(sf)))
			continue;
		/* known to be none (no container, no pod) or not known */
		if (sfield_text(a, sf, v, sizeof(v)) < 0)
			snprintf(v, sizeof(v), "%s", have(a, sf) ? "none" : "?");
		off += (size_t)snprintf(buf + off, len - off, "%s%s=%s", off ? "," : "",
					tsg_sfield_name(sf), v);
	}
	return buf;
}

/* a state field: -ENOENT when the alert has none */
static int state_text(int state, char *buf, size_t len)
{
	if (!state)
		return -ENOENT;
	snprintf(buf, len, "%s", tsg_state_name(state));
	return 0;
}

int tsg_alert_field(const struct tsg_alert *a, int field, const char *label, char *buf,
		    size_t len)
{
	int sf = tsg_tfield_to_sfield(field);

	buf[0] = 0;
	if (sf >= 0)
		return sfield_text(a, sf, buf, len);
	switch (field) {
	case TSG_TF_RULE:
		snprintf(buf, len, "%s", a->rule->name);
		return 0;
	case TSG_TF_SEVERITY:
		snprintf(buf, len, "%s", tsg_severity_name(a->rule->severity));
		return 0;
	case TSG_TF_STATUS:
		snprintf(buf, len, "%s", tsg_status_name(a->status));
		return 0;
	case TSG_TF_SUMMARY:
		tsg_alert_summary(a, buf, len);
		return 0;
	case TSG_TF_HOST:
		snprintf(buf, len, "%s", a->host ? a->host : tsg_hostname());
		return 0;
	case TSG_TF_TIME:
		tsg_format_time(a->wall_ns, buf, len);
		return 0;
	case TSG_TF_STATE:
		return state_text(a->state, buf, len);
	case TSG_TF_FROM:
		return state_text(a->from, buf, len);
	case TSG_TF_TO:
		return state_text(a->to, buf, len);
	case TSG_TF_DURATION:
		if (!a->has_duration)
			return -ENOENT;
		tsg_duration_format(a->duration_ns, buf, len);
		return 0;
	case TSG_TF_DURATION_MS:
		if (!a->has_duration)
			return -ENOENT;
		snprintf(buf, len, "%" PRIu64, (a->duration_ns + 500000) / 1000000);
		return 0;
	case TSG_TF_COUNT:
		if (!a->has_count)
			return -ENOENT;
		snprintf(buf, len, "%" PRIu64, a->count);
		return 0;
	case TSG_TF_RATE:
		if (!a->has_rate)
			return -ENOENT;
		snprintf(buf, len, "%.3g", a->rate);
		return 0;
	case TSG_TF_KEY:
		tsg_alert_key_string(a, buf, len);
		return 0;
	case TSG_TF_QUEUE:
	case TSG_TF_BACKLOG:
	case TSG_TF_DROPS:
		if (!a->has_queue)
			return -ENOENT;
		snprintf(buf, len, "%" PRIu64,
			 field == TSG_TF_QUEUE	   ? (uint64_t)a->q.queue
			 : field == TSG_TF_BACKLOG ? (uint64_t)a->q.backlog
						   : a->q.drops);
		return 0;
	case TSG_TF_LABEL:
		for (size_t i = 0; label && i < a->rule->nlabels; i++)
			if (!strcmp(a->rule->labels[i].name, label)) {
				snprintf(buf, len, "%s", a->rule->labels[i].value);
				return 0;
			}
		return -ENOENT;
	}
	return -ENOENT;
}

size_t tsg_template_render(const struct tsg_template *t, const struct tsg_alert *a, char *buf,
			   size_t len)
{
	size_t off = 0;
	char v[1024];

	if (len)
		buf[0] = 0;
	for (size_t i = 0; i < t->nseg; i++) {
		const char *piece;
		size_t n;

		if (t->seg[i].field < 0) {
			piece = t->seg[i].text;
		} else {
			/* summary inside a template: render it (never recursive: a
			 * summary cannot contain {{summary}}, the loader refuses it) */
			/* a field the alert has but whose value is not known (a
			 * port not chosen yet, an owner that predates tsguard) */
			if (tsg_alert_field(a, t->seg[i].field, t->seg[i].text, v, sizeof(v)) < 0)
				snprintf(v, sizeof(v), "?");
			piece = v;
		}
		n = strlen(piece);
		if (len && off < len - 1) {
			size_t c = n < len - 1 - off ? n : len - 1 - off;
			memcpy(buf + off, piece, c);
			buf[off + c] = 0;
		}
		off += n;
	}
	return off;
}

const char *tsg_alert_summary(const struct tsg_alert *a, char *buf, size_t len)
{
	if (!a->rule->summary.nseg) {
		snprintf(buf, len, "%s %s", a->rule->name, tsg_status_name(a->status));
		return buf;
	}
	tsg_template_render(&a->rule->summary, a, buf, len);
	return buf;
}

static json_t *sfield_json(const struct tsg_alert *a, int sf)
{
	char v[4096]; /* a cgroup path (Kubernetes: often over 150 characters) */

	switch (sf) {
	case TSG_SF_PID:
		return json_integer(a->info.pid);
	case TSG_SF_UID:
		return json_integer(a->info.uid);
	case TSG_SF_LPORT:
		return json_integer(a->info.lport);
	case TSG_SF_RPORT:
		return json_integer(a->info.rport);
	case TSG_SF_NETNS:
		if (a->info.netns)
			return json_integer(a->info.netns);
		return json_null();
	default:
		if (sfield_text(a, sf, v, sizeof(v)) < 0)
			return json_null();
		return json_string(v);
	}
}

/* json_object_set_new that tolerates a NULL value (ENOMEM): skips it. */
static void jset(json_t *o, const char *k, json_t *v)
{
	if (v)
		json_object_set_new(o, k, v);
}

json_t *tsg_alert_to_json(const struct tsg_alert *a)
{
	static const int order[] = {
	    TSG_SF_COMM,       TSG_SF_PID,	 TSG_SF_UID,   TSG_SF_CGROUP, TSG_SF_FAMILY,
	    TSG_SF_LADDR,      TSG_SF_LPORT,	 TSG_SF_RADDR, TSG_SF_RPORT,  TSG_SF_NETNS,
	    TSG_SF_NETNS_NAME, TSG_SF_CONTAINER, TSG_SF_POD};
	json_t *o = json_object(), *key, *labels, *acts;
	char buf[1024];

	if (!o)
		return NULL;
	jset(o, "time", json_string(tsg_format_time(a->wall_ns, buf, sizeof(buf))));
	jset(o, "ts", json_real(round((double)a->ts_ns / 1e6) / 1e3));
	jset(o, "rule", json_string(a->rule->name));
	jset(o, "status", json_string(tsg_status_name(a->status)));
	jset(o, "severity", json_string(tsg_severity_name(a->rule->severity)));
	jset(o, "summary", json_string(tsg_alert_summary(a, buf, sizeof(buf))));
	key = json_object();
	if (key) {
		if (a->key_is_sock) {
			sock_key(a, buf, sizeof(buf));
			jset(key, "sock", json_string(buf));
			/* the same addresses in two namespaces are two sockets */
			if (have(a, TSG_SF_NETNS) && a->info.netns)
				jset(key, "netns", json_integer(a->info.netns));
		} else {
			for (int sf = 0; sf < TSG_SF_N; sf++)
				if (a->rule->by & TSG_HAVE(sf))
					jset(key, tsg_sfield_name(sf), sfield_json(a, sf));
		}
		json_object_set_new(o, "key", key);
	}
	labels = json_object();
	if (labels) {
		for (size_t i = 0; i < a->rule->nlabels; i++)
			jset(labels, a->rule->labels[i].name,
			     json_string(a->rule->labels[i].value));
		json_object_set_new(o, "labels", labels);
	}
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		json_t *v = have(a, order[i]) ? sfield_json(a, order[i]) : NULL;

		/* a field without a value (no container, no name) is left out */
		if (v && json_is_null(v))
			json_decref(v);
		else
			jset(o, tsg_sfield_name(order[i]), v);
	}
	if (a->state)
		jset(o, "state", json_string(tsg_state_name(a->state)));
	if (a->from)
		jset(o, "from", json_string(tsg_state_name(a->from)));
	if (a->to)
		jset(o, "to", json_string(tsg_state_name(a->to)));
	if (a->has_duration)
		jset(o, "duration_ms", json_integer((json_int_t)((a->duration_ns + 500000) / 1000000)));
	if (a->has_count)
		jset(o, "count", json_integer((json_int_t)a->count));
	if (a->has_rate)
		jset(o, "rate", json_real(a->rate));
	if (a->has_queue) {
		jset(o, "queue", json_integer((json_int_t)a->q.queue));
		jset(o, "backlog", json_integer((json_int_t)a->q.backlog));
		jset(o, "drops", json_integer((json_int_t)a->q.drops));
	}
	if (a->suppressed)
		jset(o, "suppressed", json_integer((json_int_t)a->suppressed));
	jset(o, "host", json_string(a->host ? a->host : tsg_hostname()));
	acts = json_array();
	if (acts) {
		for (size_t i = 0; i < a->rule->nactions; i++)
			if (a->rs && a->rule->actions[i] < a->rs->nactions)
				json_array_append_new(
					acts, json_string(a->rs->actions[a->rule->actions[i]].name));
		json_object_set_new(o, "actions", acts);
	}
	jset(o, "dry_run", json_boolean(a->dry_run));
	return o;
}

char *tsg_alert_json_dumps(const struct tsg_alert *a)
{
	json_t *o = tsg_alert_to_json(a);
	char *s;

	if (!o)
		return NULL;
	s = json_dumps(o, TSG_JSON_FLAGS);
	json_decref(o);
	return s;
}

const char *tsg_alert_to_text(const struct tsg_alert *a, char *buf, size_t len)
{
	char t[40], sum[512], key[256], sup[48] = "";

	if (a->suppressed)
		snprintf(sup, sizeof(sup), " (%" PRIu64 " suppressed)", a->suppressed);
	snprintf(buf, len, "%s %.3f %s %s %s: %s [%s]%s", tsg_format_time(a->wall_ns, t, sizeof(t)),
		 (double)a->ts_ns / 1e9, a->status == TSG_FIRING ? "FIRING" : "RESOLVED",
		 tsg_severity_name(a->rule->severity), a->rule->name,
		 tsg_alert_summary(a, sum, sizeof(sum)), tsg_alert_key_string(a, key, sizeof(key)),
		 sup);
	/* one line, whatever a process name or label holds: control characters
	 * (a newline in a comm could forge a second alert line) become '?' */
	for (char *p = buf; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			*p = '?';
	return buf;
}
