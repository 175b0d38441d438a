/* SPDX-License-Identifier: MIT */
/* tsguard: event file reading and writing (JSON Lines, via jansson). */
#include "eventio.h"
#include "container.h"

#include <errno.h>
#include <stdlib.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>

static int fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

static int get_uint(json_t *o, const char *k, uint64_t max, uint64_t *out, bool *present,
		    char *err, size_t errlen)
{
	json_t *v = json_object_get(o, k);
	json_int_t i;

	*present = false;
	if (!v || json_is_null(v))
		return 0;
	if (json_is_real(v)) {
		double d = json_real_value(v);
		if (!isfinite(d) || d != floor(d))
			return fail(err, errlen, "\"%s\" must be a whole number", k);
		if (d < 0 || d > (double)max)
			return fail(err, errlen, "\"%s\" out of range 0..%" PRIu64, k, max);
		i = (json_int_t)d;
	} else if (json_is_integer(v)) {
		i = json_integer_value(v);
	} else {
		return fail(err, errlen, "\"%s\" must be a number", k);
	}
	if (i < 0 || (uint64_t)i > max)
		return fail(err, errlen, "\"%s\" out of range 0..%" PRIu64, k, max);
	*out = (uint64_t)i;
	*present = true;
	return 0;
}

static int get_str(json_t *o, const char *k, const char **out, char *err, size_t errlen)
{
	json_t *v = json_object_get(o, k);

	*out = NULL;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return fail(err, errlen, "\"%s\" must be a string", k);
	*out = json_string_value(v);
	return 0;
}

static int get_state(json_t *o, const char *k, uint8_t *out, bool required, char *err,
		     size_t errlen)
{
	const char *s;
	int st;

	*out = TSG_STATE_NONE;
	if (get_str(o, k, &s, err, errlen) < 0)
		return -EINVAL;
	if (!s)
		return required ? fail(err, errlen, "missing \"%s\"", k) : 0;
	st = tsg_state_parse(s);
	if (st < 0)
		return fail(err, errlen, "unknown state \"%s\" in \"%s\"", s, k);
	*out = (uint8_t)st;
	return 0;
}

/* An interned string field that may be null ("none"): HAVE(sf) when given. */
static int get_ident(json_t *o, const char *k, int sf, const char **out, struct tsg_sockinfo *in,
		     char *err, size_t errlen)
{
	const char *s;

	if (!json_object_get(o, k))
		return 0;
	if (get_str(o, k, &s, err, errlen) < 0)
		return -EINVAL;
	if (s && !*s)
		return fail(err, errlen, "\"%s\" must not be empty (null: none)", k);
	*out = s ? tsg_intern(s) : NULL;
	if (!s || *out)
		in->have |= TSG_HAVE(sf);
	return 0;
}

/* cgroup (with the container and pod parsed from it), netns, netns_name;
 * a container or pod given as such overrides the parsed one. */
static int ident_from_json(json_t *o, struct tsg_sockinfo *in, char *err, size_t errlen)
{
	const char *s;
	uint64_t u;
	bool present;

	if (get_str(o, "cgroup", &s, err, errlen) < 0)
		return -EINVAL;
	if (s && tsg_sockinfo_set_cgroup(in, s) < 0)
		in->have &= ~(TSG_HAVE(TSG_SF_CGROUP) | TSG_HAVE(TSG_SF_CONTAINER) |
			      TSG_HAVE(TSG_SF_POD)); /* intern table full: unknown */
	if (get_uint(o, "netns", UINT32_MAX, &u, &present, err, errlen) < 0)
		return -EINVAL;
	if (present && !u)
		return fail(err, errlen, "\"netns\" must be an inode number above 0");
	if (present) {
		in->netns = (uint32_t)u;
		in->have |= TSG_HAVE(TSG_SF_NETNS);
	}
	if (get_ident(o, "netns_name", TSG_SF_NETNS_NAME, &in->netns_name, in, err, errlen) < 0 ||
	    get_ident(o, "container", TSG_SF_CONTAINER, &in->container, in, err, errlen) < 0 ||
	    get_ident(o, "pod", TSG_SF_POD, &in->pod, in, err, errlen) < 0)
		return -EINVAL;
	return 0;
}

/* A queue sample (cli.md): "queue" and "backlog", "drops" optional (0), no from/to. */
static int sample_from_json(json_t *o, struct tsg_event *ev, char *err, size_t errlen)
{
	uint64_t u = 0;
	bool present;

	if (json_object_get(o, "from") || json_object_get(o, "to"))
		return fail(err, errlen, "a queue sample (\"queue\") has no \"from\" or \"to\"");
	ev->kind = TSG_EV_QUEUE;
	ev->from = ev->to = TSG_LISTEN;
	if (get_uint(o, "queue", UINT32_MAX, &u, &present, err, errlen) < 0)
		return -EINVAL;
	ev->q.queue = (uint32_t)u;
	if (get_uint(o, "backlog", UINT32_MAX, &u, &present, err, errlen) < 0)
		return -EINVAL;
	if (!present)
		return fail(err, errlen, "a queue sample needs \"backlog\"");
	ev->q.backlog = (uint32_t)u;
	u = 0;
	if (get_uint(o, "drops", UINT64_MAX >> 11, &u, &present, err, errlen) < 0)
		return -EINVAL;
	ev->q.drops = u;
	return 0;
}

int tsg_event_from_json(json_t *o, struct tsg_event *ev, char *err, size_t errlen)
{
	static const char *const known[] = {
	    "ts",  "sk",   "family", "laddr",  "lport", "raddr",      "rport",	   "from", "to",
	    "pid", "comm", "uid",    "cgroup", "netns", "netns_name", "container", "pod",  "queue",
	    "backlog", "drops", NULL};
	struct tsg_sockinfo *in = &ev->info;
	const char *s, *key;
	json_t *v;
	uint64_t u;
	bool present;
	char skbuf[32];

	memset(ev, 0, sizeof(*ev));
	if (!json_is_object(o))
		return fail(err, errlen, "an event must be a JSON object");
	json_object_foreach(o, key, v) {
		bool ok = false;
		for (size_t i = 0; known[i]; i++)
			ok |= !strcmp(key, known[i]);
		if (!ok)
			return fail(err, errlen, "unknown field \"%s\"", key);
	}

	v = json_object_get(o, "ts");
	if (!v)
		return fail(err, errlen, "missing \"ts\"");
	if (!json_is_number(v))
		return fail(err, errlen, "\"ts\" must be a number (seconds)");
	{
		double ts = json_number_value(v);
		if (!isfinite(ts) || ts < 0 || ts > 1e9)
			return fail(err, errlen, "\"ts\" out of range");
		ev->ts_ns = (uint64_t)llround(ts * 1e9);
	}

	v = json_object_get(o, "sk");
	if (!v)
		return fail(err, errlen, "missing \"sk\"");
	if (json_is_string(v)) {
		s = json_string_value(v);
	} else if (json_is_integer(v)) {
		snprintf(skbuf, sizeof(skbuf), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		s = skbuf;
	} else {
		return fail(err, errlen, "\"sk\" must be a string");
	}
	if (!*s)
		return fail(err, errlen, "\"sk\" must not be empty");
	ev->sk = tsg_sk_from_string(s);

	if (json_object_get(o, "queue")) {
		if (sample_from_json(o, ev, err, errlen) < 0)
			return -EINVAL;
	} else if (get_state(o, "to", &ev->to, true, err, errlen) < 0 ||
		   get_state(o, "from", &ev->from, false, err, errlen) < 0) {
		return -EINVAL;
	} else if (json_object_get(o, "backlog") || json_object_get(o, "drops")) {
		return fail(err, errlen, "\"backlog\" and \"drops\" belong to a queue sample "
					 "(with \"queue\", without from/to)");
	}

	if (get_str(o, "family", &s, err, errlen) < 0)
		return -EINVAL;
	if (s) {
		if (!strcmp(s, "ipv4"))
			in->family = TSG_FAM_IPV4;
		else if (!strcmp(s, "ipv6"))
			in->family = TSG_FAM_IPV6;
		else
			return fail(err, errlen, "\"family\" must be ipv4 or ipv6, not \"%s\"", s);
		in->have |= TSG_HAVE(TSG_SF_FAMILY);
	}
	for (int which = 0; which < 2; which++) {
		const char *k = which ? "raddr" : "laddr";
		uint8_t *dst = which ? in->raddr : in->laddr;
		uint8_t fam;

		if (get_str(o, k, &s, err, errlen) < 0)
			return -EINVAL;
		if (!s)
			continue;
		if (tsg_addr_parse(s, dst, &fam) < 0)
			return fail(err, errlen, "\"%s\" is not an IP address: \"%s\"", k, s);
		in->have |= TSG_HAVE(which ? TSG_SF_RADDR : TSG_SF_LADDR);
		/* the family follows the peer (an IPv4 peer of a dual-stack socket is ipv4) */
		if (!(in->have & TSG_HAVE(TSG_SF_FAMILY)) && (which || !json_object_get(o, "raddr")))
			in->family = fam;
	}
	if ((in->have & (TSG_HAVE(TSG_SF_LADDR) | TSG_HAVE(TSG_SF_RADDR))) &&
	    !json_object_get(o, "family"))
		in->have |= TSG_HAVE(TSG_SF_FAMILY);
	/* "family": "ipv6" with a v4-mapped peer is IPv4, as in the live capture */
	tsg_sockinfo_norm_family(in);

	if (get_uint(o, "lport", 65535, &u, &present, err, errlen) < 0)
		return -EINVAL;
	if (present) {
		in->lport = (uint16_t)u;
		in->have |= TSG_HAVE(TSG_SF_LPORT);
	}
	if (get_uint(o, "rport", 65535, &u, &present, err, errlen) < 0)
		return -EINVAL;
	if (present) {
		in->rport = (uint16_t)u;
		in->have |= TSG_HAVE(TSG_SF_RPORT);
	}
	if (get_uint(o, "pid", UINT32_MAX, &u, &present, err, errlen) < 0)
		return -EINVAL;
	if (present) {
		in->pid = (uint32_t)u;
		in->have |= TSG_HAVE(TSG_SF_PID);
	}
	if (get_uint(o, "uid", UINT32_MAX, &u, &present, err, errlen) < 0)
		return -EINVAL;
	if (present) {
		in->uid = (uint32_t)u;
		in->have |= TSG_HAVE(TSG_SF_UID);
	}
	if (get_str(o, "comm", &s, err, errlen) < 0)
		return -EINVAL;
	if (s) {
		snprintf(in->comm, sizeof(in->comm), "%s", s);
		in->have |= TSG_HAVE(TSG_SF_COMM);
	}
	return ident_from_json(o, in, err, errlen);
}

int tsg_event_parse_line(const char *line, size_t len, struct tsg_event *ev, char *err,
			 size_t errlen)
{
	json_error_t jerr;
	json_t *o;
	size_t i;
	int rc;

	for (i = 0; i < len && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r' ||
				line[i] == '\n');
	     i++)
		;
	if (i == len)
		return 1;
	if (len > TSG_EVENT_LINE_MAX)
		return fail(err, errlen, "line longer than %d bytes", TSG_EVENT_LINE_MAX);
	o = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!o)
		return fail(err, errlen, "invalid JSON: %s (column %d)", jerr.text, jerr.column);
	rc = tsg_event_from_json(o, ev, err, errlen);
	json_decref(o);
	return rc;
}

json_t *tsg_event_to_json(const struct tsg_event *ev)
{
	const struct tsg_sockinfo *in = &ev->info;
	json_t *o = json_object();
	char buf[64];

	if (!o)
		return NULL;
	json_object_set_new(o, "ts", json_real(round((double)ev->ts_ns / 1e3) / 1e6));
	json_object_set_new(o, "sk", json_string(tsg_sk_to_string(ev->sk, buf, sizeof(buf))));
	if (in->have & TSG_HAVE(TSG_SF_FAMILY))
		json_object_set_new(o, "family",
				    json_string(in->family == TSG_FAM_IPV6 ? "ipv6" : "ipv4"));
	if (in->have & TSG_HAVE(TSG_SF_LADDR))
		json_object_set_new(o, "laddr", json_string(tsg_addr_format(in->laddr, buf, sizeof(buf))));
	if (in->have & TSG_HAVE(TSG_SF_LPORT))
		json_object_set_new(o, "lport", json_integer(in->lport));
	if (in->have & TSG_HAVE(TSG_SF_RADDR))
		json_object_set_new(o, "raddr", json_string(tsg_addr_format(in->raddr, buf, sizeof(buf))));
	if (in->have & TSG_HAVE(TSG_SF_RPORT))
		json_object_set_new(o, "rport", json_integer(in->rport));
	if (ev->kind == TSG_EV_QUEUE) {
		json_object_set_new(o, "queue", json_integer(ev->q.queue));
		json_object_set_new(o, "backlog", json_integer(ev->q.backlog));
		json_object_set_new(o, "drops", json_integer((json_int_t)ev->q.drops));
	} else {
		if (ev->from)
			json_object_set_new(o, "from", json_string(tsg_state_name(ev->from)));
		json_object_set_new(o, "to", json_string(tsg_state_name(ev->to)));
	}
	if (in->have & TSG_HAVE(TSG_SF_PID))
		json_object_set_new(o, "pid", json_integer(in->pid));
	if (in->have & TSG_HAVE(TSG_SF_COMM))
		json_object_set_new(o, "comm", json_string(in->comm));
	if (in->have & TSG_HAVE(TSG_SF_UID))
		json_object_set_new(o, "uid", json_integer(in->uid));
	if ((in->have & TSG_HAVE(TSG_SF_CGROUP)) && in->cgroup)
		json_object_set_new(o, "cgroup", json_string(in->cgroup));
	if ((in->have & TSG_HAVE(TSG_SF_NETNS)) && in->netns)
		json_object_set_new(o, "netns", json_integer(in->netns));
	/* none (NULL) is not written: the cgroup path gives it again */
	if ((in->have & TSG_HAVE(TSG_SF_NETNS_NAME)) && in->netns_name)
		json_object_set_new(o, "netns_name", json_string(in->netns_name));
	if ((in->have & TSG_HAVE(TSG_SF_CONTAINER)) && in->container)
		json_object_set_new(o, "container", json_string(in->container));
	if ((in->have & TSG_HAVE(TSG_SF_POD)) && in->pod)
		json_object_set_new(o, "pod", json_string(in->pod));
	return o;
}

int tsg_event_write(FILE *f, const struct tsg_event *ev)
{
	json_t *o = tsg_event_to_json(ev);
	int rc;

	if (!o)
		return -ENOMEM;
	rc = json_dumpf(o, f, JSON_COMPACT | JSON_REAL_PRECISION(16));
	json_decref(o);
	if (rc < 0 || fputc('\n', f) == EOF)
		return -EIO;
	return 0;
}

ssize_t tsg_event_read_line(FILE *f, char *buf, size_t cap)
{
	size_t len;
	int ch;

	if (!fgets(buf, (int)cap, f))
		return ferror(f) ? -EIO : 0;
	len = strlen(buf);
	if (len == cap - 1 && buf[len - 1] != '\n') {
		while ((ch = fgetc(f)) != EOF && ch != '\n')
			;
		return -E2BIG;
	}
	return (ssize_t)len;
}

int tsg_event_reader_init(struct tsg_event_reader *r, FILE *f, const char *name)
{
	memset(r, 0, sizeof(*r));
	r->f = f;
	r->name = name;
	r->line = malloc(TSG_EVENT_LINE_BUF);
	return r->line ? 0 : -ENOMEM;
}

int tsg_event_reader_next(struct tsg_event_reader *r, struct tsg_event *ev)
{
	char err[256];

	for (;;) {
		ssize_t len;
		int rc;

		errno = 0;
		len = tsg_event_read_line(r->f, r->line, TSG_EVENT_LINE_BUF);
		if (len == 0)
			return 0;
		if (len == -EIO) {
			int e = errno ? errno : EIO;

			if (e == EINTR)
				clearerr(r->f);
			return -e;
		}
		r->lineno++;
		if (len == -E2BIG) {
			snprintf(err, sizeof(err), "line longer than %d bytes", TSG_EVENT_LINE_MAX);
			rc = -EINVAL;
		} else {
			rc = tsg_event_parse_line(r->line, (size_t)len, ev, err, sizeof(err));
			if (rc == 1)
				continue;
			if (rc == 0 && ev->ts_ns < r->last) {
				snprintf(err, sizeof(err),
					 "ts goes backwards (events must be in non-decreasing ts)");
				rc = -EINVAL;
			}
		}
		if (rc < 0) {
			fprintf(stderr, "%s:%zu: error: %s\n", r->name, r->lineno, err);
			r->bad++;
			continue;
		}
		r->last = ev->ts_ns;
		return 1;
	}
}

void tsg_event_reader_fini(struct tsg_event_reader *r)
{
	free(r->line);
	r->line = NULL;
}
