/* SPDX-License-Identifier: MIT */
/*
 * tsguard: a rule's `match:` block -> struct tsg_match.
 */
#include "load_priv.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void ld_item_err(struct ld *L, const struct ritem *it, size_t off, const char *fmt, ...)
{
	char *m = NULL;
	va_list ap;

	va_start(ap, fmt);
	if (vasprintf(&m, fmt, ap) < 0)
		m = NULL;
	va_end(ap);
	if (it->list)
		ld_err_at(L, it->f, it->node, it->text_off + off, "%s (in list \"%s\")",
			  m ? m : "out of memory", it->list);
	else
		ld_err_at(L, it->f, it->node, it->text_off + off, "%s", m ? m : "out of memory");
	free(m);
}

bool ld_no_regex(struct ld *L, const struct ritem *it, const char *field)
{
	if (!it->regex)
		return true;
	ld_item_err(L, it, 0, "{regex: ...} is only allowed for comm, not for %s", field);
	return false;
}

/* "80" -> 80; false unless all digits and <= 65535 */
static bool port_num(const char *s, size_t n, uint16_t *out)
{
	unsigned v = 0;

	if (!n || n > 5)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	if (v > 65535)
		return false;
	*out = (uint16_t)v;
	return true;
}

/* Converts one item into *out: 0, -EINVAL (reported) or -ENOMEM. */
typedef int (*conv_one_fn)(struct ld *L, const struct ritem *it, const char *field, void *out);

/*
 * The items of a match field into an array of `size`-byte elements (*v, *n;
 * *v is set also on failure, for the rule set's free): each item is checked
 * for {regex:} unless the field allows it, then converted by `one`. Every bad
 * item is reported; -EINVAL when any was, -ENOMEM at once.
 */
static int conv_items(struct ld *L, const struct ritems *in, const char *field, bool regex_ok,
		      size_t size, conv_one_fn one, void **v, size_t *n)
{
	char *a = calloc(in->n, size);
	int r = 0;

	*v = a;
	*n = 0;
	if (!a)
		return -ENOMEM;
	for (size_t i = 0; i < in->n; i++) {
		const struct ritem *it = &in->v[i];
		int r1 = -EINVAL;

		if (regex_ok || ld_no_regex(L, it, field))
			r1 = one(L, it, field, a + *n * size);
		if (r1 == -ENOMEM)
			return r1;
		if (r1 < 0)
			r = r1;
		else
			(*n)++;
	}
	return r;
}

/* conv_items into a set (v, n) of the match. */
#define CONV_SET(L, in, field, regex_ok, one, set)                                          \
	({                                                                                  \
		void *_v;                                                                   \
		int _r = conv_items(L, in, field, regex_ok, sizeof(*(set)->v), one, &_v,    \
				    &(set)->n);                                             \
		(set)->v = _v;                                                              \
		_r;                                                                         \
	})

static int conv_port(struct ld *L, const struct ritem *it, const char *field, void *out)
{
	const char *s = it->text, *dash = strchr(s, '-');
	struct tsg_portrange pr = { .neg = it->neg };

	if (dash) {
		if (!port_num(s, (size_t)(dash - s), &pr.lo) ||
		    !port_num(dash + 1, strlen(dash + 1), &pr.hi)) {
			ld_item_err(L, it, 0,
				 "bad port range \"%s\" for %s: expected \"A-B\" with ports 0 to 65535",
				 s, field);
			return -EINVAL;
		}
		if (pr.lo > pr.hi) {
			ld_item_err(L, it, 0,
				 "bad port range \"%s\" for %s: the start %u is above the end %u", s,
				 field, pr.lo, pr.hi);
			return -EINVAL;
		}
	} else if (port_num(s, strlen(s), &pr.lo)) {
		pr.hi = pr.lo;
	} else {
		ld_item_err(L, it, 0,
			 "bad port \"%s\" for %s: expected a port 0 to 65535, a range \"A-B\" or $list",
			 s, field);
		return -EINVAL;
	}
	*(struct tsg_portrange *)out = pr;
	return 0;
}

/* The prefix length after the "/" of a CIDR: 0, or -EINVAL (reported). */
static int cidr_plen(struct ld *L, const struct ritem *it, const char *field, const char *p,
		     bool v6, unsigned *plen)
{
	unsigned max = v6 ? 128 : 32;
	size_t n = strlen(p);

	*plen = 0;
	if (!n || n > 3 || strspn(p, "0123456789") != n || (*plen = (unsigned)atoi(p)) > max) {
		ld_item_err(L, it, (size_t)(p - it->text),
			 "bad prefix length in \"%s\" for %s: expected /0 to /%u for %s", it->text,
			 field, max, v6 ? "IPv6" : "IPv4");
		return -EINVAL;
	}
	return 0;
}

static int conv_cidr(struct ld *L, const struct ritem *it, const char *field, void *out)
{
	struct tsg_cidr c = { .neg = it->neg };
	const char *slash = strchr(it->text, '/');
	char addr[64];
	bool v6, host_bits = false;
	unsigned plen;
	uint8_t fam;

	snprintf(addr, sizeof(addr), "%.*s",
		 (int)(slash ? (size_t)(slash - it->text) : strlen(it->text)), it->text);
	v6 = strchr(addr, ':') != NULL;
	if (strlen(it->text) >= sizeof(addr) || tsg_addr_parse(addr, c.addr, &fam) < 0) {
		ld_item_err(L, it, 0,
			 "bad address \"%s\" for %s: expected an IPv4 or IPv6 address or CIDR (e.g. 10.0.0.0/8, fd00::/8) or $list",
			 it->text, field);
		return -EINVAL;
	}
	plen = v6 ? 128 : 32;
	if (slash && cidr_plen(L, it, field, slash + 1, v6, &plen) < 0)
		return -EINVAL;
	c.plen = (uint8_t)(v6 ? plen : 96 + plen);
	for (unsigned b = c.plen; b < 128; b++) {
		uint8_t bit = (uint8_t)(0x80 >> (b % 8));

		if (c.addr[b / 8] & bit) {
			host_bits = true;
			c.addr[b / 8] &= (uint8_t)~bit;
		}
	}
	if (host_bits) {
		char buf[64];

		ld_warn(L, it->f, it->node, "\"%s\" for %s has host bits set; it matches %s/%u",
			it->text, field, tsg_addr_format(c.addr, buf, sizeof(buf)), plen);
	}
	*(struct tsg_cidr *)out = c;
	return 0;
}

static int conv_uid(struct ld *L, const struct ritem *it, const char *field, void *out)
{
	const char *s = it->text;
	size_t n = strlen(s);
	char *end;
	unsigned long long v;

	(void)field;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (!n || strspn(s, "0123456789") != n || *end || errno || v >= 0xffffffffull) {
		ld_item_err(L, it, 0, "bad uid \"%s\": expected a number (0 to 4294967294) or $list", s);
		return -EINVAL;
	}
	*(struct tsg_uiditem *)out = (struct tsg_uiditem){ .uid = (uint32_t)v, .neg = it->neg };
	return 0;
}

static int conv_comm(struct ld *L, const struct ritem *it, const char *field, void *out)
{
	struct tsg_stritem si = { .neg = it->neg };

	(void)field;
	if (it->regex) {
		char msg[256];
		size_t off = 0;
		int rr = tsg_regex_new(it->text, &si.re, &off, msg, sizeof(msg));

		if (rr == -ENOMEM)
			return rr;
		if (rr < 0) {
			ld_item_err(L, it, off, "bad regex \"%s\" for comm: %s at offset %zu", it->text,
				 msg, off);
			return -EINVAL;
		}
	} else if (strlen(it->text) >= TSG_COMM_LEN) {
		ld_item_err(L, it, 0,
			 "comm \"%s\" is longer than %d characters; the kernel keeps only the first %d (\"%.*s\")",
			 it->text, TSG_COMM_LEN - 1, TSG_COMM_LEN - 1, TSG_COMM_LEN - 1, it->text);
		return -EINVAL;
	}
	si.s = strdup(it->text);
	if (!si.s) {
		tsg_regex_free(si.re);
		return -ENOMEM;
	}
	*(struct tsg_stritem *)out = si;
	return 0;
}

static int conv_cgroup(struct ld *L, const struct ritem *it, const char *field, void *out)
{
	struct tsg_stritem si = { .neg = it->neg };
	size_t n;

	(void)field;
	if (it->text[0] != '/' || strstr(it->text, "//")) {
		ld_item_err(L, it, 0,
			 "bad cgroup \"%s\": expected a cgroup v2 path starting with \"/\" (e.g. /system.slice/nginx.service)",
			 it->text);
		return -EINVAL;
	}
	si.s = strdup(it->text);
	if (!si.s)
		return -ENOMEM;
	n = strlen(si.s);
	while (n > 1 && si.s[n - 1] == '/') /* "/a/b/" is "/a/b" */
		si.s[--n] = 0;
	*(struct tsg_stritem *)out = si;
	return 0;
}

static int conv_family(struct ld *L, const struct ritems *in, uint8_t *mask)
{
	static const char *const fams[] = { "ipv4", "ipv6", NULL };
	uint8_t pos = 0, neg = 0;
	int r = 0;

	for (size_t i = 0; i < in->n; i++) {
		const struct ritem *it = &in->v[i];
		uint8_t bit;
		char dym[64];

		if (!ld_no_regex(L, it, "family")) {
			r = -EINVAL;
			continue;
		}
		if (!strcmp(it->text, "ipv4")) {
			bit = 1;
		} else if (!strcmp(it->text, "ipv6")) {
			bit = 2;
		} else {
			ld_item_err(L, it, 0, "bad family \"%s\": expected ipv4 or ipv6%s", it->text,
				 ld_dym(it->text, fams, dym, sizeof(dym)));
			r = -EINVAL;
			continue;
		}
		if (it->neg)
			neg |= bit;
		else
			pos |= bit;
	}
	if (r < 0)
		return r;
	*mask = (uint8_t)((pos ? pos : 3) & ~neg);
	if (!*mask) {
		ld_err(L, in->v[0].f, in->v[0].node, "family matches neither ipv4 nor ipv6");
		return -EINVAL;
	}
	return 0;
}

static const char *const match_keys[] = { "family", "lport", "rport",	   "laddr", "raddr", "comm",
					  "uid",    "cgroup", "netns", "container", "pod",  NULL };
enum {
	MK_FAMILY,
	MK_LPORT,
	MK_RPORT,
	MK_LADDR,
	MK_RADDR,
	MK_COMM,
	MK_UID,
	MK_CGROUP,
	MK_NETNS,
	MK_CONTAINER,
	MK_POD,
	MK_N
};

/* the items of match key k into its part of m */
static int conv_key(struct ld *L, const struct ritems *items, int k, struct tsg_match *m)
{
	const char *key = match_keys[k];

	switch (k) {
	case MK_FAMILY:
		return conv_family(L, items, &m->family_mask);
	case MK_LPORT:
	case MK_RPORT:
		return CONV_SET(L, items, key, false, conv_port,
				k == MK_LPORT ? &m->lport : &m->rport);
	case MK_LADDR:
	case MK_RADDR:
		return CONV_SET(L, items, key, false, conv_cidr,
				k == MK_LADDR ? &m->laddr : &m->raddr);
	case MK_COMM:
		return CONV_SET(L, items, key, true, conv_comm, &m->comm);
	case MK_UID:
		return CONV_SET(L, items, key, false, conv_uid, &m->uid);
	case MK_CGROUP:
		return CONV_SET(L, items, key, false, conv_cgroup, &m->cgroup);
	case MK_NETNS:
		return ld_conv_netns(L, items, &m->netns);
	case MK_CONTAINER:
	case MK_POD:
		return ld_conv_ids(L, items, key, k == MK_POD ? &m->pod : &m->container);
	}
	return -EINVAL;
}

int ld_match(struct ld *L, struct ld_file *f, yaml_node_t *n, const char *rule,
	     struct tsg_match *m)
{
	yaml_node_t *kn[MK_N], *vn[MK_N];
	char what[128];
	int r = 0;

	snprintf(what, sizeof(what), "match of rule \"%s\"", rule);
	if (!ld_map(L, f, n, what, match_keys, kn, vn))
		return -EINVAL;
	for (int k = 0; k < MK_N; k++) {
		struct ritems items = { 0 };
		int r1;

		if (!kn[k])
			continue;
		r1 = ld_items(L, f, vn[k], match_keys[k], &items);
		if (r1 >= 0 && !items.n) {
			/* only an empty $list gets here: matching nothing is
			 * surely not meant, and "anything" would be a trap */
			ld_err(L, f, vn[k], "%s has no items (its lists are empty)",
			       match_keys[k]);
			r1 = -EINVAL;
		}
		if (r1 >= 0)
			r1 = conv_key(L, &items, k, m);
		free(items.v);
		if (r1 == -ENOMEM) {
			L->oom = true;
			return r1;
		}
		if (r1 < 0)
			r = r1;
	}
	return r;
}
