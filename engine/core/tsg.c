/* SPDX-License-Identifier: MIT */
/* tsguard: small utilities declared in tsg.h. */
#include "tsg.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const state_names[TSG_NSTATES + 1] = {
	[TSG_STATE_NONE] = "NONE",
	[TSG_ESTABLISHED] = "ESTABLISHED",
	[TSG_SYN_SENT] = "SYN_SENT",
	[TSG_SYN_RECV] = "SYN_RECV",
	[TSG_FIN_WAIT1] = "FIN_WAIT1",
	[TSG_FIN_WAIT2] = "FIN_WAIT2",
	[TSG_TIME_WAIT] = "TIME_WAIT",
	[TSG_CLOSE] = "CLOSE",
	[TSG_CLOSE_WAIT] = "CLOSE_WAIT",
	[TSG_LAST_ACK] = "LAST_ACK",
	[TSG_LISTEN] = "LISTEN",
	[TSG_CLOSING] = "CLOSING",
	[TSG_NEW_SYN_RECV] = "NEW_SYN_RECV",
	[TSG_NSTATES] = NULL,
};

const char *tsg_state_name(int state)
{
	if (state < 0 || state >= TSG_NSTATES)
		return NULL;
	return state_names[state];
}

const char *const *tsg_state_words(void)
{
	return state_names + 1;
}

int tsg_state_parse(const char *s)
{
	char buf[32];
	size_t i;

	if (!s)
		return -EINVAL;
	for (i = 0; s[i] && i < sizeof(buf) - 1; i++)
		buf[i] = s[i] == '-' ? '_' : (char)toupper((unsigned char)s[i]);
	if (s[i])
		return -EINVAL;
	buf[i] = 0;
	for (int st = 1; st < TSG_NSTATES; st++)
		if (!strcmp(buf, state_names[st]))
			return st;
	return -EINVAL;
}

static const char *const sfield_names[TSG_SF_N + 1] = {
	[TSG_SF_COMM] = "comm",
	[TSG_SF_PID] = "pid",
	[TSG_SF_UID] = "uid",
	[TSG_SF_CGROUP] = "cgroup",
	[TSG_SF_LADDR] = "laddr",
	[TSG_SF_LPORT] = "lport",
	[TSG_SF_RADDR] = "raddr",
	[TSG_SF_RPORT] = "rport",
	[TSG_SF_FAMILY] = "family",
	[TSG_SF_NETNS] = "netns",
	[TSG_SF_NETNS_NAME] = "netns_name",
	[TSG_SF_CONTAINER] = "container",
	[TSG_SF_POD] = "pod",
	[TSG_SF_N] = NULL,
};

const char *tsg_sfield_name(int f)
{
	if (f < 0 || f >= TSG_SF_N)
		return NULL;
	return sfield_names[f];
}

const char *const *tsg_sfield_words(void)
{
	return sfield_names;
}

int tsg_sfield_parse(const char *s)
{
	for (int f = 0; f < TSG_SF_N; f++)
		if (s && !strcmp(s, sfield_names[f]))
			return f;
	return -EINVAL;
}

void tsg_sockinfo_copy(struct tsg_sockinfo *dst, const struct tsg_sockinfo *src, uint32_t fields)
{
	uint32_t h = src->have & fields;

	if (h & TSG_HAVE(TSG_SF_COMM))
		memcpy(dst->comm, src->comm, sizeof(dst->comm));
	if (h & TSG_HAVE(TSG_SF_PID))
		dst->pid = src->pid;
	if (h & TSG_HAVE(TSG_SF_UID))
		dst->uid = src->uid;
	if (h & TSG_HAVE(TSG_SF_CGROUP))
		dst->cgroup = src->cgroup;
	if (h & TSG_HAVE(TSG_SF_LADDR))
		memcpy(dst->laddr, src->laddr, 16);
	if (h & TSG_HAVE(TSG_SF_RADDR))
		memcpy(dst->raddr, src->raddr, 16);
	if (h & TSG_HAVE(TSG_SF_LPORT))
		dst->lport = src->lport;
	if (h & TSG_HAVE(TSG_SF_RPORT))
		dst->rport = src->rport;
	if (h & TSG_HAVE(TSG_SF_FAMILY))
		dst->family = src->family;
	if (h & TSG_HAVE(TSG_SF_NETNS))
		dst->netns = src->netns;
	if (h & TSG_HAVE(TSG_SF_NETNS_NAME))
		dst->netns_name = src->netns_name;
	if (h & TSG_HAVE(TSG_SF_CONTAINER))
		dst->container = src->container;
	if (h & TSG_HAVE(TSG_SF_POD))
		dst->pod = src->pod;
	dst->have |= h;
}

/* ---- clocks ------------------------------------------------------------------- */

uint64_t tsg_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * TSG_NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

int64_t tsg_wall_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * (int64_t)TSG_NSEC_PER_SEC + ts.tv_nsec;
}

/* ---- interning ------------------------------------------------------------ */

#define INTERN_MAX (1u << 20)

static struct {
	char **slot; /* open addressing, power of two */
	size_t cap, n;
	uint64_t dropped;
} intern_tab;

uint64_t tsg_hash_bytes(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;

	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 1099511628211ull;
	}
	return h;
}

uint64_t tsg_hash_str(const char *s)
{
	return tsg_hash_bytes(TSG_HASH_SEED, s, strlen(s));
}

static int intern_grow(void)
{
	size_t ncap = intern_tab.cap ? intern_tab.cap * 2 : 1024;
	char **ns = calloc(ncap, sizeof(*ns));

	if (!ns)
		return -ENOMEM;
	for (size_t i = 0; i < intern_tab.cap; i++) {
		char *s = intern_tab.slot[i];
		size_t j;

		if (!s)
			continue;
		for (j = tsg_hash_str(s) & (ncap - 1); ns[j]; j = (j + 1) & (ncap - 1))
			;
		ns[j] = s;
	}
	free(intern_tab.slot);
	intern_tab.slot = ns;
	intern_tab.cap = ncap;
	return 0;
}

/* The slot holding s, or the empty slot where it would go (cap > 0). */
static size_t intern_slot(const char *s)
{
	size_t j;

	for (j = tsg_hash_str(s) & (intern_tab.cap - 1); intern_tab.slot[j];
	     j = (j + 1) & (intern_tab.cap - 1))
		if (!strcmp(intern_tab.slot[j], s))
			break;
	return j;
}

const char *tsg_intern(const char *s)
{
	size_t j;

	if (!s)
		return NULL;
	if (intern_tab.cap && intern_tab.slot[j = intern_slot(s)])
		return intern_tab.slot[j];
	if (intern_tab.n * 2 >= intern_tab.cap &&
	    (intern_tab.n >= INTERN_MAX || intern_grow() < 0)) {
		intern_tab.dropped++;
		return NULL;
	}
	j = intern_slot(s);
	intern_tab.slot[j] = strdup(s);
	if (!intern_tab.slot[j]) {
		intern_tab.dropped++;
		return NULL;
	}
	intern_tab.n++;
	return intern_tab.slot[j];
}

uint64_t tsg_intern_dropped(void)
{
	return intern_tab.dropped;
}

/* ---- socket ids ------------------------------------------------------------ */

/*
 * Replay names sockets with strings. An interned string's address is stable
 * for the process and distinct per string, so it serves as the id; the top
 * bit marks it so that it never collides with a kernel socket cookie in
 * practice (cookies count up from 1).
 */
#define SK_STRING_BIT (1ull << 63)
#define SK_HASH_BIT (1ull << 62) /* never set in a user-space pointer */

/*
 * The ids made from strings, as a set of pointer values: tsg_sk_to_string
 * gives a string back only for an id in this set, and never dereferences
 * an id it did not make (a kernel id may have the top bit set too).
 */
static struct {
	uint64_t *v; /* open addressing; 0 is empty */
	size_t cap, n;
} sk_ids;

static bool sk_ids_has(uint64_t id)
{
	if (!sk_ids.cap)
		return false;
	for (size_t j = tsg_hash64(id) & (sk_ids.cap - 1); sk_ids.v[j]; j = (j + 1) & (sk_ids.cap - 1))
		if (sk_ids.v[j] == id)
			return true;
	return false;
}

static void sk_ids_add(uint64_t id)
{
	size_t j;

	if (sk_ids_has(id))
		return;
	if ((sk_ids.n + 1) * 2 > sk_ids.cap) {
		size_t ncap = sk_ids.cap ? sk_ids.cap * 2 : 1024;
		uint64_t *nv = calloc(ncap, sizeof(*nv));

		if (!nv)
			return; /* printed as a number then */
		for (size_t i = 0; i < sk_ids.cap; i++) {
			if (!sk_ids.v[i])
				continue;
			for (j = tsg_hash64(sk_ids.v[i]) & (ncap - 1); nv[j]; j = (j + 1) & (ncap - 1))
				;
			nv[j] = sk_ids.v[i];
		}
		free(sk_ids.v);
		sk_ids.v = nv;
		sk_ids.cap = ncap;
	}
	for (j = tsg_hash64(id) & (sk_ids.cap - 1); sk_ids.v[j]; j = (j + 1) & (sk_ids.cap - 1))
		;
	sk_ids.v[j] = id;
	sk_ids.n++;
}

uint64_t tsg_sk_from_string(const char *s)
{
	const char *i = tsg_intern(s);
	uint64_t id;

	if (!i) /* table full: fall back to a hash (printed as a number) */
		return SK_STRING_BIT | SK_HASH_BIT | (tsg_hash_str(s) >> 2);
	id = SK_STRING_BIT | (uint64_t)(uintptr_t)i;
	sk_ids_add(id);
	return id;
}

const char *tsg_sk_to_string(uint64_t sk, char *buf, size_t len)
{
	if ((sk & SK_STRING_BIT) && !(sk & SK_HASH_BIT) && sk_ids_has(sk))
		return (const char *)(uintptr_t)(sk & ~SK_STRING_BIT);
	snprintf(buf, len, "%" PRIu64, sk);
	return buf;
}

/* ---- addresses ---------------------------------------------------------------- */

static const uint8_t v4mapped_prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

int tsg_addr_parse(const char *s, uint8_t out[16], uint8_t *family)
{
	struct in_addr a4;
	uint8_t a6[16];

	if (!s)
		return -EINVAL;
	if (inet_pton(AF_INET, s, &a4) == 1) {
		memcpy(out, v4mapped_prefix, 12);
		memcpy(out + 12, &a4, 4);
		if (family)
			*family = TSG_FAM_IPV4;
		return 0;
	}
	if (inet_pton(AF_INET6, s, a6) == 1) {
		memcpy(out, a6, 16);
		if (family)
			*family = tsg_addr_is_v4mapped(a6) ? TSG_FAM_IPV4 : TSG_FAM_IPV6;
		return 0;
	}
	return -EINVAL;
}

bool tsg_addr_is_v4mapped(const uint8_t a[16])
{
	return !memcmp(a, v4mapped_prefix, 12);
}

void tsg_sockinfo_norm_family(struct tsg_sockinfo *in)
{
	if (!(in->have & TSG_HAVE(TSG_SF_RADDR)) || !tsg_addr_is_v4mapped(in->raddr))
		return;
	in->family = TSG_FAM_IPV4;
	in->have |= TSG_HAVE(TSG_SF_FAMILY);
}

const char *tsg_addr_format(const uint8_t a[16], char *buf, size_t len)
{
	if (tsg_addr_is_v4mapped(a)) {
		if (!inet_ntop(AF_INET, a + 12, buf, (socklen_t)len))
			snprintf(buf, len, "?");
	} else if (!inet_ntop(AF_INET6, a, buf, (socklen_t)len)) {
		snprintf(buf, len, "?");
	}
	return buf;
}

/* ---- durations -------------------------------------------------------------- */

int tsg_duration_parse(const char *s, uint64_t *out_ns)
{
	const char *p = s;
	double v, mult;
	char *end;

	if (!s || !*s || isspace((unsigned char)*s) || *s == '-' || *s == '+')
		return -EINVAL;
	for (; *p && (isdigit((unsigned char)*p) || *p == '.'); p++)
		;
	if (p == s)
		return -EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (errno || end != p || !isfinite(v) || v < 0)
		return -EINVAL;
	if (!strcmp(p, "ms"))
		mult = 1e6;
	else if (!strcmp(p, "s"))
		mult = 1e9;
	else if (!strcmp(p, "m"))
		mult = 60e9;
	else if (!strcmp(p, "h"))
		mult = 3600e9;
	else
		return -EINVAL;
	v = v * mult;
	if (v > 1e18) /* ~31 years */
		return -EINVAL;
	*out_ns = (uint64_t)llround(v);
	return 0;
}

const char *tsg_duration_format(uint64_t ns, char *buf, size_t len)
{
	uint64_t ms = (ns + 500000) / 1000000;

	if (ms < 1000) {
		snprintf(buf, len, "%" PRIu64 "ms", ms);
	} else if (ms < 60000) {
		if (ms % 1000 == 0)
			snprintf(buf, len, "%" PRIu64 "s", ms / 1000);
		else if (ms % 100 == 0)
			snprintf(buf, len, "%" PRIu64 ".%" PRIu64 "s", ms / 1000, (ms % 1000) / 100);
		else
			snprintf(buf, len, "%" PRIu64 ".%03" PRIu64 "s", ms / 1000, ms % 1000);
	} else if (ms < 3600000) {
		uint64_t m = ms / 60000, sec = (ms % 60000) / 1000;

		if (sec)
			snprintf(buf, len, "%" PRIu64 "m%" PRIu64 "s", m, sec);
		else
			snprintf(buf, len, "%" PRIu64 "m", m);
	} else {
		uint64_t h = ms / 3600000, m = (ms % 3600000) / 60000;

		if (m)
			snprintf(buf, len, "%" PRIu64 "h%" PRIu64 "m", h, m);
		else
			snprintf(buf, len, "%" PRIu64 "h", h);
	}
	return buf;
}
