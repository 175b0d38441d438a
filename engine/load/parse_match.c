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

static int conv_ports(struct ld *L, const struct ritems *in, const char *field,
		      struct tsg_portset *ps)
{
	int r = 0;

	ps->v = calloc(in->n, sizeof(*ps->v));
	if (!ps->v)
		return -ENOMEM;
	for (size_t i = 0; i < in->n; i++) {
		const struct ritem *it = &in->v[i];
		const char *s = it->text, *dash;
		struct tsg_portrange pr = { .neg = it->neg };

		if (!ld_no_regex(L, it, field)) {
			r = -EINVAL;
			continue;
		}
		dash = strchr(s, '-');
		if (dash) {
			if (!port_num(s, (size_t)(dash - s), &pr.lo) ||
			    !port_num(dash + 1, strlen(dash + 1), &pr.hi)) {
				ld_item_err(L, it, 0,
					    "bad port range \"%s\" for %s: expected \"A-B\" with "
					    "ports 0 to 65535",
					    s, field);
				r = -EINVAL;
				continue;
			}
			if (pr.lo > pr.hi) {
				ld_item_err(L, it, 0,
					    "bad port range \"%s\" for %s: the start %u is above "
					    "the end %u",
					    s, field, pr.lo, pr.hi);
				r = -EINVAL;
				continue;
			}
		} else if (port_num(s, strlen(s), &pr.lo)) {
			pr.hi = pr.lo;
		} else {
			ld_item_err(L, it, 0,
				    "bad port \"%s\" for %s: expected a port 0 to 65535, a range "
				    "\"A-B\" or $list",
				    s, field);
			r = -EINVAL;
			continue;
		}
		ps->v[ps->n++] = pr;
	}
	return r;
}

static int conv_cidrs(struct ld *L, const struct ritems *in, const char *field,
		      struct tsg_cidrset *cs)
{
	int r = 0;

	cs->v = calloc(in->n, sizeof(*cs->v));
	if (!cs->v)
		return -ENOMEM;
	for (size_t i = 0; i < in->n; i++) {
		const struct ritem *it = &in->v[i];
		struct tsg_cidr c = { .neg = it->neg };
		const char *slash;
		char addr[64];
		bool v6, host_bits = false;
		unsigned plen, max;
		uint8_t fam;

		if (!ld_no_regex(L, it, field)) {
			r = -EINVAL;
			continue;
		}
		slash = strchr(it->text, '/');
		snprintf(addr, sizeof(addr), "%.*s",
			 (int)(slash ? (size_t)(slash - it->text) : strlen(it->text)), it->text);
		v6 = strchr(addr, ':') != NULL;
		max = v6 ? 128 : 32;
		if (strlen(it->text) >= sizeof(addr) || tsg_addr_parse(addr, c.addr, &fam) < 0) {
			ld_item_err(L, it, 0,
				    "bad address \"%s\" for %s: expected an IPv4 or IPv6 address "
				    "or CIDR (e.g. 10.0.0.0/8, fd00::/8) or $list",
				    it->text, field);
			r = -EINVAL;
			continue;
		}
		plen = max;
		if (slash) {
			const char *p = slash + 1;
			size_t n = strlen(p);

			plen = 0;
			if (!n || n > 3 || strspn(p, "0123456789") != n ||
			    (plen = (unsigned)atoi(p)) > max) {
				ld_item_err(
				    L, it, (size_t)(p - it->text),
				    "bad prefix length in \"%s\" for %s: expected /0 to /%u for %s",
				    it->text, field, max, v6 ? "IPv6" : "IPv4");
				r = -EINVAL;
				continue;
			}
		}
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

			ld_warn(L, it->f, it->node,
				"\"%s\" for %s has host bits set; it matches %s/%u", it->text,
				field, tsg_addr_format(c.addr, buf, sizeof(buf)), plen);
		}
		cs->v[cs->n++] = c;
	}
	return r;
}

static int conv_uids(struct ld *L, const struct ritems *in, struct tsg_uidset *us)
{
	int r = 0;

	us->v = calloc(in->n, sizeof(*us->v));
	if (!us->v)
		return -ENOMEM;
	for (size_t i = 0; i < in->n; i++) {
		const struct ritem *it = &in->v[i];
		const char *s = it->text;
		size_t n = strlen(s);
		char *end;
		unsigned long long v;

		if (!ld_no_regex(L, it, "uid")) {
			r = -EINVAL;
			continue;
		}
		errno = 0;
		v = strtoull(s, &end, 10);
		if (!n || strspn(s, "0123456789") != n || *end || errno || v >= 0xffffffffull) {
			ld_item_err(L, it, 0,
				    "bad uid \"%s\": expected a number (0 to 4294967294) or $list",
				    s);
			r = -EINVAL;
			continue;
		}
		us->v[us->n].uid = (uint32_t)v;
		us->v[us->n].neg = it->neg;
		us->n++;
	}
	return r;
}

static int conv_comm(struct ld *L, const struct ritems *in, struct tsg_strset *ss)
{
	int r = 0;

	ss->v = calloc(in->n, sizeof(*ss->v));
	if (!ss->v)
		return -ENOMEM;
	for (size_t i = 0; i < in->n; i++) {
		const struct ritem *it = &in->v[i];
		struct tsg_stritem si = { .neg = it->neg };

		if (it->regex) {
			char msg[256];
			size_t off = 0;
			int rr = tsg_regex_new(it->text, &si.re, &off, msg, sizeof(msg));

			if (rr == -ENOMEM)
				return rr;
			if (rr < 0) {
				ld_item_err(L, it, off,
					    "bad regex \"%s\" for comm: %s at offset %zu", it->text,
					    msg, off);
				r = -EINVAL;
				continue;
			}
		} else if (strlen(it->text) >= TSG_COMM_LEN) {
			ld_item_err(L, it, 0,
				    "comm \"%s\" is longer than %d characters; the kernel keeps "
				    "only the first %d (\"%.*s\")",
				    it->text, TSG_COMM_LEN - 1, TSG_COMM_LEN - 1, TSG_COMM_LEN - 1,
				    it->text);
			r = -EINVAL;
			continue;
		}
		si.s = strdup(it->text);
		if (!si.s) {
			tsg_regex_free(si.re);
			return -ENOMEM;
		}
		ss->v[ss->n++] = si;
	}
	return r;
}

static int conv_cgroups(struct ld *L, const struct ritems *in, struct tsg_strset *ss)
{
	int r = 0;

	ss->v = calloc(in->n, sizeof(*ss->v));
	if (!ss->v)
		return -ENOMEM;
	for (size_t i = 0; i < in->n; i++) {
		const struct ritem *it = &in->v[i];
		size_t n;
		char *s;

		if (!ld_no_regex(L, it, "cgroup")) {
			r = -EINVAL;
			continue;
		}
		if (it->text[0] != '/' || strstr(it->text, "//")) {
			ld_item_err(L, it, 0,
				    "bad cgroup \"%s\": expected a cgroup v2 path starting with "
				    "\"/\" (e.g. /system.slice/nginx.service)",
				    it->text);
			r = -EINVAL;
			continue;
		}
		s = strdup(it->text);
		if (!s)
			return -ENOMEM;
		n = strlen(s);
		while (n > 1 && s[n - 1] == '/') /* "/a/b/" is "/a/b" */
			s[--n] = 0;
		ss->v[ss->n].s = s;
		ss->v[ss->n].neg = it->neg;
		ss->n++;
	}
	return r;
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
			ld_item_err(L, it, 0, "bad family \"%s\": expected ipv4 or ipv6%s",
				    it->text, ld_dym(it->text, fams, dym, sizeof(dym)));
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

static const char *const match_keys[] = {"family", "lport",  "rport", "laddr",	   "raddr", "comm",
					 "uid",	   "cgroup", "netns", "container", "pod",   NULL};
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
		if (r1 >= 0) {
			switch (k) {
			case MK_FAMILY:
				r1 = conv_family(L, &items, &m->family_mask);
				break;
			case MK_LPORT:
				r1 = conv_ports(L, &items, "lport", &m->lport);
				break;
			case MK_RPORT:
				r1 = conv_ports(L, &items, "rport", &m->rport);
				break;
			case MK_LADDR:
				r1 = conv_cidrs(L, &items, "laddr", &m->laddr);
				break;
			case MK_RADDR:
				r1 = conv_cidrs(L, &items, "raddr", &m->raddr);
				break;
			case MK_COMM:
				r1 = conv_comm(L, &items, &m->comm);
				break;
			case MK_UID:
				r1 = conv_uids(L, &items, &m->uid);
				break;
			case MK_CGROUP:
				r1 = conv_cgroups(L, &items, &m->cgroup);
				break;
			case MK_NETNS:
				r1 = ld_conv_netns(L, &items, &m->netns);
				break;
			case MK_CONTAINER:
				r1 = ld_conv_ids(L, &items, "container", &m->container);
				break;
			case MK_POD:
				r1 = ld_conv_ids(L, &items, "pod", &m->pod);
				break;
			}
		}
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
