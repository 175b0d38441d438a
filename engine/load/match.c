/* SPDX-License-Identifier: MIT */
/*
 * tsguard: user-space matchers (docs/rules.md "match").
 *
 * Every set holds positive items and exclusions ("!X"). A value matches a set
 * when it matches some positive item, or the set holds only exclusions, and
 * no exclusion. An empty set (field not given) matches anything; an unknown
 * value matches only a set that is empty or holds only exclusions.
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "match.h"

#include <errno.h>
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

/* Per-regex cache of results by comm: bounded, cleared when full. */
#define RE_CACHE_SLOTS 2048 /* power of two */
#define RE_CACHE_MAX 1024   /* entries before it is cleared */

struct re_cache_ent {
	char comm[TSG_COMM_LEN]; /* "" = free slot */
	bool used;
	bool result;
};

struct tsg_regex {
	pcre2_code *code;
	pcre2_match_data *md;
	struct re_cache_ent *cache; /* RE_CACHE_SLOTS */
	size_t ncache;
	uint64_t hits, misses, clears; /* for tests and metrics */
};

/* ---- regex --------------------------------------------------------------- */

int tsg_regex_new(const char *pattern, struct tsg_regex **out, size_t *err_off,
		  char *err_msg, size_t err_len)
{
	struct tsg_regex *re;
	PCRE2_SIZE eoff = 0;
	int ecode = 0;

	re = calloc(1, sizeof(*re));
	if (!re)
		return -ENOMEM;
	re->code = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, 0,
				 &ecode, &eoff, NULL);
	if (!re->code) {
		if (err_msg && err_len) {
			PCRE2_UCHAR buf[256];

			if (pcre2_get_error_message(ecode, buf, sizeof(buf)) < 0)
				snprintf((char *)buf, sizeof(buf), "error %d", ecode);
			snprintf(err_msg, err_len, "%s", (const char *)buf);
		}
		if (err_off)
			*err_off = (size_t)eoff;
		free(re);
		return -EINVAL;
	}
	re->md = pcre2_match_data_create_from_pattern(re->code, NULL);
	re->cache = calloc(RE_CACHE_SLOTS, sizeof(*re->cache));
	if (!re->md || !re->cache) {
		tsg_regex_free(re);
		return -ENOMEM;
	}
	*out = re;
	return 0;
}

void tsg_regex_free(struct tsg_regex *re)
{
	if (!re)
		return;
	pcre2_match_data_free(re->md);
	pcre2_code_free(re->code);
	free(re->cache);
	free(re);
}

static bool regex_run(struct tsg_regex *re, const char *subject, size_t len)
{
	int rc = pcre2_match(re->code, (PCRE2_SPTR)subject, len, 0, 0, re->md, NULL);

	return rc >= 0;
}

bool tsg_regex_match(struct tsg_regex *re, const char *subject)
{
	size_t len, j;
	bool res;

	if (!re || !subject)
		return false;
	len = strlen(subject);
	if (len >= TSG_COMM_LEN) /* not a comm: no caching */
		return regex_run(re, subject, len);
	for (j = tsg_hash_str(subject) & (RE_CACHE_SLOTS - 1); re->cache[j].used;
	     j = (j + 1) & (RE_CACHE_SLOTS - 1)) {
		if (!strcmp(re->cache[j].comm, subject)) {
			re->hits++;
			return re->cache[j].result;
		}
	}
	re->misses++;
	res = regex_run(re, subject, len);
	if (re->ncache >= RE_CACHE_MAX) {
		memset(re->cache, 0, RE_CACHE_SLOTS * sizeof(*re->cache));
		re->ncache = 0;
		re->clears++;
		j = tsg_hash_str(subject) & (RE_CACHE_SLOTS - 1);
	}
	memcpy(re->cache[j].comm, subject, len + 1);
	re->cache[j].used = true;
	re->cache[j].result = res;
	re->ncache++;
	return res;
}

/* Test and metrics access to the cache counters (declared by the tests). */
void tsg_regex_stats(const struct tsg_regex *re, uint64_t *hits, uint64_t *misses,
		     uint64_t *clears, size_t *entries)
{
	*hits = re->hits;
	*misses = re->misses;
	*clears = re->clears;
	*entries = re->ncache;
}

/* ---- sets ------------------------------------------------------------------ */

/*
 * The common rule: `pos` = some positive item matched, `anypos` = the set has
 * positive items, `neg` = some exclusion matched. SET_MATCH evaluates it over
 * the items of a set (an empty or absent set matches): `in` is whether item
 * `it` (a const TYPE *) covers the value; an item that cannot change the
 * verdict any more is not evaluated (a regex is not run for it).
 */
static inline bool verdict(bool anypos, bool pos, bool neg)
{
	return (pos || !anypos) && !neg;
}

#define SET_MATCH(set, TYPE, it, in)                                  \
	({                                                            \
		bool _anypos = false, _pos = false, _neg = false;     \
		for (size_t _i = 0; (set) && _i < (set)->n; _i++) {   \
			const TYPE *it = &(set)->v[_i];               \
			if (!it->neg)                                 \
				_anypos = true;                       \
			if (it->neg ? _neg : _pos)                    \
				continue;                             \
			if (it->neg)                                  \
				_neg |= (in);                         \
			else                                          \
				_pos |= (in);                         \
		}                                                     \
		verdict(_anypos, _pos, _neg);                         \
	})

bool tsg_portset_match(const struct tsg_portset *s, uint16_t port)
{
	return SET_MATCH(s, struct tsg_portrange, r, port >= r->lo && port <= r->hi);
}

static bool cidr_contains(const struct tsg_cidr *c, const uint8_t a[16])
{
	unsigned full = c->plen / 8, rem = c->plen % 8;

	if (memcmp(c->addr, a, full))
		return false;
	if (rem) {
		uint8_t mask = (uint8_t)(0xff << (8 - rem));

		if ((c->addr[full] & mask) != (a[full] & mask))
			return false;
	}
	return true;
}

bool tsg_cidrset_match(const struct tsg_cidrset *s, const uint8_t addr[16])
{
	return SET_MATCH(s, struct tsg_cidr, c, cidr_contains(c, addr));
}

bool tsg_uidset_match(const struct tsg_uidset *s, uint32_t uid)
{
	return SET_MATCH(s, struct tsg_uiditem, u, u->uid == uid);
}

bool tsg_commset_match(const struct tsg_strset *s, const char *comm)
{
	if (!comm)
		comm = "";
	return SET_MATCH(s, struct tsg_stritem, it,
			 it->re ? tsg_regex_match(it->re, comm) : !strcmp(it->s, comm));
}

/* "/a/b" covers "/a/b" and "/a/b/..." but not "/a/bc"; "/" covers all. */
static bool cgroup_covers(const char *prefix, const char *cg)
{
	size_t n = strlen(prefix);

	if (n == 1 && prefix[0] == '/')
		return cg[0] == '/';
	if (strncmp(prefix, cg, n))
		return false;
	return cg[n] == 0 || cg[n] == '/';
}

bool tsg_cgroupset_match(const struct tsg_strset *s, const char *cgroup)
{
	if (!cgroup)
		cgroup = "";
	return SET_MATCH(s, struct tsg_stritem, it, cgroup_covers(it->s, cgroup));
}

bool tsg_netnsset_match(const struct tsg_netnsset *s, uint32_t inode, const char *name)
{
	return SET_MATCH(s, struct tsg_netnsitem, it,
			 (it->inode && it->inode == inode) ||
			     (it->name && name && !strcmp(it->name, name)));
}

static bool id_covers(const struct tsg_iditem *it, const char *id, bool prefix)
{
	if (!it->s)
		return !id;
	if (!id)
		return false;
	return prefix ? !strncmp(it->s, id, strlen(it->s)) : !strcmp(it->s, id);
}

bool tsg_idset_match(const struct tsg_idset *s, const char *id, bool prefix)
{
	return SET_MATCH(s, struct tsg_iditem, it, id_covers(it, id, prefix));
}

/* ---- whole match --------------------------------------------------------- */

#define ONLY_EXCL(set)                                              \
	({                                                          \
		bool _only = true;                                  \
		for (size_t _i = 0; _i < (set).n; _i++)             \
			if (!(set).v[_i].neg)                       \
				_only = false;                      \
		_only;                                              \
	})

/* A field the match gives (set.n): `match` when the socket has the field,
 * else only a set of exclusions lets the socket through. */
#define FIELD_OK(set, has, match) (!(set).n || ((has) ? (match) : ONLY_EXCL(set)))
#define HAS(sf) (have & TSG_HAVE(sf))

/* An unknown container or pod matches a set of exclusions only, and not
 * "!none" either: "in some container" is not known of it. */
static bool unknown_id_ok(const struct tsg_idset *s)
{
	for (size_t i = 0; i < s->n; i++)
		if (!s->v[i].neg || !s->v[i].s)
			return false;
	return true;
}

/* netns, container, pod */
static bool match_ident(const struct tsg_match *m, const struct tsg_sockinfo *info)
{
	uint32_t have = info->have;
	const char *name = have & TSG_HAVE(TSG_SF_NETNS_NAME) ? info->netns_name : NULL;

	if (m->netns.n && !((have & TSG_HAVE(TSG_SF_NETNS)) && info->netns
				? tsg_netnsset_match(&m->netns, info->netns, name)
				: ONLY_EXCL(m->netns)))
		return false;
	if (m->container.n && !((have & TSG_HAVE(TSG_SF_CONTAINER))
				    ? tsg_idset_match(&m->container, info->container, true)
				    : unknown_id_ok(&m->container)))
		return false;
	if (m->pod.n && !((have & TSG_HAVE(TSG_SF_POD)) ? tsg_idset_match(&m->pod, info->pod, false)
							: unknown_id_ok(&m->pod)))
		return false;
	return true;
}

bool tsg_match_sock(const struct tsg_match *m, const struct tsg_sockinfo *info)
{
	uint32_t have = info->have;

	if (m->family_mask) {
		uint8_t bit;

		if (!(have & TSG_HAVE(TSG_SF_FAMILY)))
			return false;
		bit = info->family == TSG_FAM_IPV4 ? 1 : info->family == TSG_FAM_IPV6 ? 2 : 0;
		if (!(m->family_mask & bit))
			return false;
	}
	/* comm last: it may run a regex */
	return FIELD_OK(m->lport, HAS(TSG_SF_LPORT), tsg_portset_match(&m->lport, info->lport)) &&
	       FIELD_OK(m->rport, HAS(TSG_SF_RPORT), tsg_portset_match(&m->rport, info->rport)) &&
	       FIELD_OK(m->laddr, HAS(TSG_SF_LADDR), tsg_cidrset_match(&m->laddr, info->laddr)) &&
	       FIELD_OK(m->raddr, HAS(TSG_SF_RADDR), tsg_cidrset_match(&m->raddr, info->raddr)) &&
	       FIELD_OK(m->uid, HAS(TSG_SF_UID), tsg_uidset_match(&m->uid, info->uid)) &&
	       FIELD_OK(m->cgroup, HAS(TSG_SF_CGROUP) && info->cgroup,
			tsg_cgroupset_match(&m->cgroup, info->cgroup)) &&
	       match_ident(m, info) &&
	       FIELD_OK(m->comm, HAS(TSG_SF_COMM), tsg_commset_match(&m->comm, info->comm));
}

static void strset_fini(struct tsg_strset *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->v[i].s);
		tsg_regex_free(s->v[i].re);
	}
	free(s->v);
	s->v = NULL;
	s->n = 0;
}

void tsg_match_fini(struct tsg_match *m)
{
	if (!m)
		return;
	free(m->lport.v);
	free(m->rport.v);
	free(m->laddr.v);
	free(m->raddr.v);
	free(m->uid.v);
	strset_fini(&m->comm);
	strset_fini(&m->cgroup);
	for (size_t i = 0; i < m->netns.n; i++)
		free(m->netns.v[i].name);
	free(m->netns.v);
	for (size_t i = 0; i < m->container.n; i++)
		free(m->container.v[i].s);
	free(m->container.v);
	for (size_t i = 0; i < m->pod.n; i++)
		free(m->pod.v[i].s);
	free(m->pod.v);
	memset(m, 0, sizeof(*m));
}
