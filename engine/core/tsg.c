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

/* names[i] of a NULL-terminated table of n names; NULL when i is out of range */
static const char *name_at(const char *const *names, int n, int i)
{
	return i >= 0 && i < n ? names[i] : NULL;
}

const char *tsg_state_name(int state)
{
	return name_at(state_names, TSG_NSTATES, state);
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

#define SF_NAME(e, n) [TSG_SF_##e] = #n,
static const char *const sfield_names[TSG_SF_N + 1] = { TSG_SFIELDS(SF_NAME)[TSG_SF_N] = NULL };

const char *tsg_sfield_name(int f)
{
	return name_at(sfield_names, TSG_SF_N, f);
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

/* where each field lies in struct tsg_sockinfo */
#define SF_SPAN(e, m)                                                                              \
	[TSG_SF_##e] = { offsetof(struct tsg_sockinfo, m), sizeof(((struct tsg_sockinfo *)0)->m) },
static const struct {
	uint16_t off, len;
} sf_span[TSG_SF_N] = { TSG_SFIELDS(SF_SPAN) };

void tsg_sockinfo_copy(struct tsg_sockinfo *dst, const struct tsg_sockinfo *src, uint32_t fields)
{
	uint32_t h = src->have & fields;

	for (int f = 0; f < TSG_SF_N; f++)
		if (h & TSG_HAVE(f))
			memcpy((char *)dst + sf_span[f].off, (const char *)src + sf_span[f].off,
			       sf_span[f].len);
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
 * Replay names sockets with strings. Each name is kept once, in chunks of
 * bytes that never move (no per-string allocation); the id is the name's
 * position there, with the top bit and a tag set so that it never collides
 * with a kernel socket cookie (cookies count up from 1) nor with the classic
 * capture's ids (the top bit and a counter from 0) in practice. A table of
 * positions (4 bytes a slot) finds a name again. About 16 bytes a name of
 * up to 7 characters at 1M names.
 */
#define SK_STRING_BIT  (1ull << 63)
#define SK_HASH_BIT    (1ull << 62)	 /* a hashed id: the name was not kept */
#define SK_NAME_TAG    (0x1ea7ull << 40) /* ids of kept names: bit 63, the tag, position */
#define SK_NAMES_MAX   (1u << 22)	 /* names kept; then ids are hashes */
#define SK_CHUNK_SHIFT 20
#define SK_CHUNK       (1u << SK_CHUNK_SHIFT) /* bytes; a name never spans two */
#define SK_CHUNKS_MAX  4095u		      /* positions stay below 2^32 - 1 */

static struct {
	char **chunk;	      /* calloc'ed: the bytes after the last name are 0 */
	size_t nchunks, used; /* bytes used in the last chunk */
	uint32_t *slot;	      /* open addressing: position + 1, 0: empty */
	size_t cap, n;
} sk_names;

static const char *sk_name_at(uint32_t pos)
{
	return sk_names.chunk[pos >> SK_CHUNK_SHIFT] + (pos & (SK_CHUNK - 1));
}

/* The slot holding name s, or the empty slot where it would go (cap > 0). */
static size_t sk_slot(const char *s)
{
	size_t j;

	for (j = tsg_hash_str(s) & (sk_names.cap - 1); sk_names.slot[j];
	     j = (j + 1) & (sk_names.cap - 1))
		if (!strcmp(sk_name_at(sk_names.slot[j] - 1), s))
			break;
	return j;
}

static int sk_names_grow(void)
{
	size_t ncap = sk_names.cap ? sk_names.cap * 2 : 1024, ocap = sk_names.cap;
	uint32_t *ns = calloc(ncap, sizeof(*ns)), *os = sk_names.slot;

	if (!ns)
		return -ENOMEM;
	sk_names.slot = ns;
	sk_names.cap = ncap;
	for (size_t i = 0; i < ocap; i++)
		if (os[i])
			ns[sk_slot(sk_name_at(os[i] - 1))] = os[i];
	free(os);
	return 0;
}

/* Copies s into the chunks: its position, or -1. */
static int64_t sk_name_store(const char *s, size_t len)
{
	uint32_t pos;

	if (len >= SK_CHUNK)
		return -1;
	if (!sk_names.nchunks || sk_names.used + len + 1 > SK_CHUNK) {
		char **nc;

		if (sk_names.nchunks == SK_CHUNKS_MAX)
			return -1;
		nc = realloc(sk_names.chunk, (sk_names.nchunks + 1) * sizeof(*nc));
		if (!nc)
			return -1;
		sk_names.chunk = nc;
		if (!(nc[sk_names.nchunks] = calloc(1, SK_CHUNK)))
			return -1;
		sk_names.nchunks++;
		sk_names.used = 0;
	}
	pos = (uint32_t)((sk_names.nchunks - 1) << SK_CHUNK_SHIFT | sk_names.used);
	memcpy(sk_names.chunk[sk_names.nchunks - 1] + sk_names.used, s, len + 1);
	sk_names.used += len + 1;
	return pos;
}

uint64_t tsg_sk_from_string(const char *s)
{
	int64_t pos;
	size_t j;

	if (sk_names.cap && sk_names.slot[j = sk_slot(s)])
		return SK_STRING_BIT | SK_NAME_TAG | (sk_names.slot[j] - 1);
	if ((sk_names.n + 1) * 2 > sk_names.cap &&
	    (sk_names.n >= SK_NAMES_MAX || sk_names_grow() < 0))
		goto hashed;
	pos = sk_name_store(s, strlen(s));
	if (pos < 0)
		goto hashed;
	sk_names.slot[sk_slot(s)] = (uint32_t)pos + 1;
	sk_names.n++;
	return SK_STRING_BIT | SK_NAME_TAG | (uint64_t)pos;
hashed: /* not kept: a hash (printed as a number) */
	return SK_STRING_BIT | SK_HASH_BIT | (tsg_hash_str(s) >> 2);
}

/* Is sk an id that tsg_sk_from_string made from a kept name? Reads only
 * inside the chunks (each ends in 0), whatever sk is. */
static bool sk_is_name(uint64_t sk)
{
	uint64_t pos = sk & ~(SK_STRING_BIT | SK_NAME_TAG);
	size_t j;

	if ((sk & (SK_STRING_BIT | SK_HASH_BIT | SK_NAME_TAG)) != (SK_STRING_BIT | SK_NAME_TAG) ||
	    pos >= (uint64_t)sk_names.nchunks << SK_CHUNK_SHIFT || !sk_names.cap)
		return false;
	j = sk_slot(sk_name_at((uint32_t)pos));
	return sk_names.slot[j] == pos + 1;
}

const char *tsg_sk_to_string(uint64_t sk, char *buf, size_t len)
{
	if (sk_is_name(sk))
		return sk_name_at((uint32_t)(sk & ~(SK_STRING_BIT | SK_NAME_TAG)));
	snprintf(buf, len, "%" PRIu64, sk);
	return buf;
}

/* ---- addresses ---------------------------------------------------------------- */

static const uint8_t v4mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

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
			snprintf(buf, len, "%" PRIu64 ".%" PRIu64 "s", ms / 1000,
				 (ms % 1000) / 100);
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
