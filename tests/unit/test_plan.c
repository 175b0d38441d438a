// SPDX-License-Identifier: MIT
/*
 * Unit tests of the plan compiler (engine/plan/plan.c): every map type, the
 * reference evaluator, --explain, and the superset property against the
 * user-space matchers.
 *
 * Rule sets are built by hand here so that the tests do not depend on the
 * YAML loader.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tsg_test_main.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "match.h"
#include "plan.h"
#include "tsg_test_yaml.h"

/* ---- hand-built rule sets --------------------------------------------- */

#define MAX_RULES 256

struct rsb {
	struct tsg_ruleset rs;
	struct tsg_rule rules[MAX_RULES];
};

/* The --explain text of plan p (malloc'd). */
static char *explain(const struct tsg_plan *p, const struct tsg_ruleset *rs)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	tsg_plan_explain(p, rs, f);
	fclose(f);
	return buf;
}

static struct rsb *rsb_new(void)
{
	struct rsb *b = calloc(1, sizeof(*b));

	assert_non_null(b);
	b->rs.rules = b->rules;
	return b;
}

static void rsb_free(struct rsb *b)
{
	if (!b)
		return;
	for (size_t i = 0; i < b->rs.nrules; i++) {
		struct tsg_rule *r = &b->rules[i];
		free(r->name);
		tsg_match_fini(&r->match);
	}
	free(b);
}

static struct tsg_rule *add_rule(struct rsb *b, const char *name, int kind)
{
	struct tsg_rule *r;

	assert_true(b->rs.nrules < MAX_RULES);
	r = &b->rules[b->rs.nrules];
	memset(r, 0, sizeof(*r));
	r->name = strdup(name);
	r->kind = kind;
	r->enabled = true;
	r->severity = 4;
	r->index = (uint32_t)b->rs.nrules++;
	return r;
}

static struct tsg_rule *add_trans(struct rsb *b, const char *name, tsg_statemask from,
				  tsg_statemask to)
{
	struct tsg_rule *r = add_rule(b, name, TSG_KIND_TRANSITION);

	r->from = from;
	r->to = to;
	return r;
}

#define SM(s) ((tsg_statemask)(1u << (s)))

/* Calls fn for each item of spec ("a, !b"): its text after a '!', and whether it had one. */
static void each_item(const char *spec, void *set, void (*fn)(void *set, const char *t, bool neg))
{
	char *dup = strdup(spec), *save = NULL;

	for (char *t = strtok_r(dup, ", ", &save); t; t = strtok_r(NULL, ", ", &save))
		fn(set, t + (*t == '!'), *t == '!');
	free(dup);
}

/* appends x to the set s (v, n) */
#define SET_PUSH(s, x)                                                                             \
	do {                                                                                       \
		(s)->v = realloc((s)->v, sizeof(*(s)->v) * ((s)->n + 1));                          \
		(s)->v[(s)->n++] = (x);                                                            \
	} while (0)

static void port_item(void *set, const char *t, bool neg)
{
	struct tsg_portrange pr = {.neg = neg};
	unsigned lo, hi;

	if (sscanf(t, "%u-%u", &lo, &hi) != 2)
		hi = lo = (unsigned)atoi(t);
	pr.lo = (uint16_t)lo;
	pr.hi = (uint16_t)hi;
	SET_PUSH((struct tsg_portset *)set, pr);
}

/* "80, !8080, 8000-8999" */
static void set_ports(struct tsg_portset *s, const char *spec)
{
	each_item(spec, s, port_item);
}

static void parse_prefix(const char *t, struct tsg_cidr *c)
{
	char buf[80];
	const char *slash = strchr(t, '/');
	uint8_t fam = 0;
	size_t n = slash ? (size_t)(slash - t) : strlen(t);

	memcpy(buf, t, n);
	buf[n] = 0;
	assert_int_equal(tsg_addr_parse(buf, c->addr, &fam), 0);
	if (!slash)
		c->plen = 128;
	else
		c->plen = (uint8_t)(atoi(slash + 1) + (fam == TSG_FAM_IPV4 ? 96 : 0));
}

static void cidr_item(void *set, const char *t, bool neg)
{
	struct tsg_cidr c = {.neg = neg};

	parse_prefix(t, &c);
	SET_PUSH((struct tsg_cidrset *)set, c);
}

/* "10.0.0.0/8, !10.1.0.0/16" */
static void set_cidrs(struct tsg_cidrset *s, const char *spec)
{
	each_item(spec, s, cidr_item);
}

static void comm_item(void *set, const char *t, bool neg)
{
	struct tsg_stritem it = {.neg = neg};

	if (!strncmp(t, "re:", 3)) {
		size_t off;
		char msg[128];
		t += 3;
		assert_int_equal(tsg_regex_new(t, &it.re, &off, msg, sizeof(msg)), 0);
	}
	it.s = strdup(t);
	SET_PUSH((struct tsg_strset *)set, it);
}

/* "curl, !nginx, re:^py" (re: a regex item) */
static void set_comms(struct tsg_strset *s, const char *spec)
{
	each_item(spec, s, comm_item);
}

static void uid_item(void *set, const char *t, bool neg)
{
	struct tsg_uiditem u = {.neg = neg, .uid = (uint32_t)strtoul(t, NULL, 10)};

	SET_PUSH((struct tsg_uidset *)set, u);
}

/* "1000, !0" */
static void set_uids(struct tsg_uidset *s, const char *spec)
{
	each_item(spec, s, uid_item);
}

static struct tsg_plan *build(struct rsb *b, bool record_all)
{
	struct tsg_plan *p = NULL;

	assert_int_equal(tsg_plan_build(&b->rs, record_all, &p), 0);
	assert_non_null(p);
	return p;
}

/* A fully known IPv4 socket. */
static struct tsg_sockinfo sock4(const char *laddr, uint16_t lport, const char *raddr,
				 uint16_t rport, const char *comm, uint32_t uid)
{
	struct tsg_sockinfo si = {0};
	uint8_t fam;

	si.have = TSG_HAVE_ALL & ~TSG_HAVE(TSG_SF_CGROUP);
	assert_int_equal(tsg_addr_parse(laddr, si.laddr, &fam), 0);
	assert_int_equal(tsg_addr_parse(raddr, si.raddr, &si.family), 0);
	si.lport = lport;
	si.rport = rport;
	snprintf(si.comm, sizeof(si.comm), "%s", comm);
	si.uid = uid;
	si.pid = 42;
	return si;
}

static uint64_t lpm_bits(const struct tsg_plan_lpm *e, size_t n, const char *prefix)
{
	struct tsg_cidr c = {0};

	parse_prefix(prefix, &c);
	for (size_t i = 0; i < n; i++)
		if (e[i].plen == c.plen && !memcmp(e[i].addr, c.addr, 16))
			return e[i].bits;
	fail_msg("no LPM entry %s", prefix);
	return 0;
}

static const struct tsg_plan_comm *comm_entry(const struct tsg_plan *p, const char *c)
{
	for (size_t i = 0; i < p->ncomm; i++)
		if (!strcmp(p->comm[i].comm, c))
			return &p->comm[i];
	return NULL;
}

static const struct tsg_plan_uid *uid_entry(const struct tsg_plan *p, uint32_t u)
{
	for (size_t i = 0; i < p->nuid; i++)
		if (p->uid[i].uid == u)
			return &p->uid[i];
	return NULL;
}

/* ---- transitions --------------------------------------------------------- */

static void test_trans_transition_rules(void **state)
{
	struct rsb *b = rsb_new();
	add_trans(b, "failed-connect", SM(TSG_SYN_SENT), SM(TSG_CLOSE));
	add_trans(b, "from-only", SM(TSG_ESTABLISHED), 0);
	add_trans(b, "to-only", 0, SM(TSG_LISTEN) | SM(TSG_CLOSE_WAIT));
	struct tsg_rule *rate = add_rule(b, "rate", TSG_KIND_RATE);
	rate->from = SM(TSG_SYN_SENT);
	rate->to = SM(TSG_CLOSE);
	rate->threshold = 50;
	rate->per_ns = 10 * TSG_NSEC_PER_SEC;
	struct tsg_plan *p = build(b, false);

	assert_int_equal(p->all_slots, 0xf);
	assert_int_equal(p->slot_of_rule[2], 2);
	assert_int_equal(p->trans[TSG_SYN_SENT][TSG_CLOSE], 0x1 | 0x8);
	assert_int_equal(p->trans[TSG_SYN_SENT][TSG_ESTABLISHED], 0);
	assert_int_equal(p->trans[TSG_CLOSE][TSG_SYN_SENT], 0);
	/* from ESTABLISHED to anything */
	for (int t = 0; t < TSG_NSTATES; t++)
		assert_true(p->trans[TSG_ESTABLISHED][t] & 0x2);
	assert_false(p->trans[TSG_SYN_SENT][TSG_ESTABLISHED] & 0x2);
	/* to LISTEN or CLOSE_WAIT from anything, the snapshot's NONE included */
	for (int f = 0; f < TSG_NSTATES; f++) {
		assert_true(p->trans[f][TSG_LISTEN] & 0x4);
		assert_true(p->trans[f][TSG_CLOSE_WAIT] & 0x4);
		assert_false(p->trans[f][TSG_CLOSE] & 0x4);
	}
	assert_true(p->trans[TSG_STATE_NONE][TSG_LISTEN] & 0x4);

	/* the evaluator: a matching transition crosses, others do not */
	struct tsg_sockinfo si = sock4("10.0.0.2", 50000, "10.0.0.9", 443, "curl", 1000);
	assert_int_equal(tsg_plan_eval(p, TSG_SYN_SENT, TSG_CLOSE, &si), 0x9);
	assert_int_equal(tsg_plan_eval(p, TSG_SYN_SENT, TSG_ESTABLISHED, &si), 0);
	assert_int_equal(tsg_plan_eval(p, TSG_ESTABLISHED, TSG_CLOSE_WAIT, &si), 0x6);
	assert_int_equal(tsg_plan_eval(p, TSG_NSTATES, TSG_CLOSE, &si), 0);
	tsg_plan_free(p);
	rsb_free(b);
}

static void test_trans_state_rules(void **state)
{
	struct rsb *b = rsb_new();
	struct tsg_rule *t = add_rule(b, "slow-connect", TSG_KIND_TIME);
	t->state = TSG_SYN_SENT;
	t->longer_than_ns = 500 * TSG_NSEC_PER_MSEC;
	struct tsg_rule *c = add_rule(b, "tw-count", TSG_KIND_COUNT);
	c->state = TSG_TIME_WAIT;
	c->threshold = c->resolve_below = 500;
	c->by = TSG_HAVE(TSG_SF_COMM);
	struct tsg_plan *p = build(b, false);

	/* entering SYN_SENT: connect, and the snapshot (NONE) */
	assert_int_equal(p->trans[TSG_CLOSE][TSG_SYN_SENT], 0x1);
	assert_int_equal(p->trans[TSG_STATE_NONE][TSG_SYN_SENT], 0x1);
	/* leaving it, every way */
	assert_int_equal(p->trans[TSG_SYN_SENT][TSG_ESTABLISHED], 0x1);
	assert_int_equal(p->trans[TSG_SYN_SENT][TSG_CLOSE], 0x1);
	/* unrelated */
	assert_int_equal(p->trans[TSG_ESTABLISHED][TSG_FIN_WAIT1], 0);
	assert_int_equal(p->trans[TSG_LISTEN][TSG_SYN_RECV], 0);

	/* TIME_WAIT: a state like any other; the capture derives these pairs */
	assert_int_equal(p->trans[TSG_FIN_WAIT2][TSG_TIME_WAIT], 0x2);
	assert_int_equal(p->trans[TSG_CLOSING][TSG_TIME_WAIT], 0x2);
	assert_int_equal(p->trans[TSG_TIME_WAIT][TSG_CLOSE], 0x2);
	assert_int_equal(p->trans[TSG_STATE_NONE][TSG_TIME_WAIT], 0x2);
	assert_int_equal(p->trans[TSG_FIN_WAIT2][TSG_CLOSE], 0);

	unsigned n1 = 0, n2 = 0;
	for (int f = 0; f < TSG_NSTATES; f++)
		for (int to = 0; to < TSG_NSTATES; to++) {
			n1 += !!(p->trans[f][to] & 1);
			n2 += !!(p->trans[f][to] & 2);
		}
	assert_int_equal(n1, 2 * TSG_NSTATES - 1);
	assert_int_equal(n2, 2 * TSG_NSTATES - 1);
	tsg_plan_free(p);
	rsb_free(b);
}

/* ---- family, ports --------------------------------------------------------- */

static void test_family(void **state)
{
	struct rsb *b = rsb_new();
	add_trans(b, "v4", 0, 0)->match.family_mask = 1;
	add_trans(b, "v6", 0, 0)->match.family_mask = 2;
	add_trans(b, "any", 0, 0);
	struct tsg_plan *p = build(b, false);

	assert_int_equal(p->family[0], 0x5);
	assert_int_equal(p->family[1], 0x6);
	struct tsg_sockinfo si = sock4("10.0.0.2", 1, "10.0.0.9", 2, "x", 0);
	assert_int_equal(tsg_plan_eval(p, TSG_SYN_SENT, TSG_ESTABLISHED, &si), 0x5);
	si.family = TSG_FAM_IPV6;
	assert_int_equal(tsg_plan_eval(p, TSG_SYN_SENT, TSG_ESTABLISHED, &si), 0x6);
	for (size_t i = 0; i < 3; i++)
		assert_int_equal(p->user_fields_of_rule[i], 0); /* exact in the kernel */
	tsg_plan_free(p);
	rsb_free(b);
}

static void test_ports_ranges_exclusions(void **state)
{
	struct rsb *b = rsb_new();
	set_ports(&add_trans(b, "web", 0, 0)->match.rport, "80, 8000-8999, !8080");
	set_ports(&add_trans(b, "not-ssh", 0, 0)->match.rport, "!22");
	add_trans(b, "any", 0, 0);
	set_ports(&add_trans(b, "edges", 0, 0)->match.rport, "0, 65535");
	struct tsg_plan *p = build(b, false);

	assert_int_equal(p->rport[80], 0x1 | 0x2 | 0x4);
	assert_int_equal(p->rport[79], 0x2 | 0x4);
	assert_int_equal(p->rport[81], 0x2 | 0x4);
	assert_int_equal(p->rport[7999], 0x2 | 0x4);
	assert_int_equal(p->rport[8000], 0x7);
	assert_int_equal(p->rport[8079], 0x7);
	assert_int_equal(p->rport[8080], 0x6);
	assert_int_equal(p->rport[8081], 0x7);
	assert_int_equal(p->rport[8999], 0x7);
	assert_int_equal(p->rport[9000], 0x6);
	assert_int_equal(p->rport[22], 0x4);
	assert_int_equal(p->rport[0], 0x2 | 0x4 | 0x8);
	assert_int_equal(p->rport[65535], 0x2 | 0x4 | 0x8);
	assert_int_equal(p->rport[1], 0x6);
	/* exactly the matcher, port by port */
	for (uint32_t port = 0; port < 65536; port++)
		for (size_t i = 0; i < b->rs.nrules; i++)
			assert_int_equal(!!(p->rport[port] & (1ull << i)),
					 tsg_portset_match(&b->rules[i].match.rport,
							   (uint16_t)port));
	/* rport sets are decided in the kernel */
	for (size_t i = 0; i < b->rs.nrules; i++)
		assert_int_equal(p->user_fields_of_rule[i], 0);
	/* no lport sets: every lport passes every slot */
	assert_int_equal(p->lport[12345], 0xf);
	tsg_plan_free(p);
	rsb_free(b);
}

static void test_lport_zero_at_connect(void **state)
{
	struct rsb *b = rsb_new();
	set_ports(&add_trans(b, "lport-8080", 0, 0)->match.lport, "8080");
	set_ports(&add_trans(b, "lport-not-22", 0, 0)->match.lport, "!22");
	set_ports(&add_trans(b, "lport-1-100", 0, 0)->match.lport, "1-100");
	struct tsg_plan *p = build(b, false);

	assert_int_equal(p->lport[0], 0x7); /* every slot */
	assert_int_equal(p->lport[1], 0x2 | 0x4);
	assert_int_equal(p->lport[8080], 0x1 | 0x2);
	assert_int_equal(p->lport[22], 0x4);
	/* the connect itself crosses for the lport-8080 rule ... */
	struct tsg_sockinfo si = sock4("10.0.0.2", 0, "10.0.0.9", 443, "curl", 1000);
	assert_int_equal(tsg_plan_eval(p, TSG_CLOSE, TSG_SYN_SENT, &si), 0x7);
	/* ... so user space re-checks lport where port 0 does not match the set */
	assert_int_equal(p->user_fields_of_rule[0], TSG_HAVE(TSG_SF_LPORT));
	assert_int_equal(p->user_fields_of_rule[1], 0);
	assert_int_equal(p->user_fields_of_rule[2], TSG_HAVE(TSG_SF_LPORT));
	/* an unknown lport is looked up as 0 as well */
	si.have &= ~TSG_HAVE(TSG_SF_LPORT);
	si.lport = 22;
	assert_int_equal(tsg_plan_eval(p, TSG_CLOSE, TSG_SYN_SENT, &si), 0x7);
	tsg_plan_free(p);
	rsb_free(b);
}

/* ---- LPM ------------------------------------------------------------------- */

static void test_cidr_nesting(void **state)
{
	struct rsb *b = rsb_new();
	struct tsg_rule *a = add_trans(b, "ten-but-not-ten-one", 0, 0);
	set_cidrs(&a->match.raddr, "10.0.0.0/8, !10.1.0.0/16, 10.1.2.0/24");
	struct tsg_rule *c = add_trans(b, "ten-two-three", 0, 0);
	set_cidrs(&c->match.raddr, "10.2.3.0/24");
	add_trans(b, "any", 0, 0);
	struct tsg_rule *d = add_trans(b, "not-ten-one", 0, 0);
	set_cidrs(&d->match.raddr, "!10.1.0.0/16");
	struct tsg_plan *p = build(b, false);

	/* ::/0, 10/8, 10.1/16, 10.1.2/24, 10.2.3/24 (10.1/16 collected once) */
	assert_int_equal(p->nraddr, 5);
	assert_int_equal(p->nladdr, 1);
	assert_int_equal(lpm_bits(p->raddr, p->nraddr, "::/0"), 0x4 | 0x8);
	assert_int_equal(lpm_bits(p->raddr, p->nraddr, "10.0.0.0/8"), 0x1 | 0x4 | 0x8);
	assert_int_equal(lpm_bits(p->raddr, p->nraddr, "10.1.0.0/16"), 0x4);
	/* the exclusion wins over the /24 written inside it */
	assert_int_equal(lpm_bits(p->raddr, p->nraddr, "10.1.2.0/24"), 0x4);
	/* another rule's /24 inside the /8 carries the /8's rule too */
	assert_int_equal(lpm_bits(p->raddr, p->nraddr, "10.2.3.0/24"), 0x1 | 0x2 | 0x4 | 0x8);
	assert_int_equal(lpm_bits(p->laddr, p->nladdr, "::/0"), 0xf);

	struct {
		const char *addr;
		uint64_t bits;
	} cases[] = {
		{"10.0.0.1", 0xd},   {"10.255.255.255", 0xd}, {"10.1.0.1", 0x4},
		{"10.1.2.3", 0x4},   {"10.2.3.4", 0xf},       {"10.2.4.1", 0xd},
		{"11.0.0.1", 0xc},   {"9.255.255.255", 0xc},  {"fd00::1", 0xc},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct tsg_sockinfo si = sock4("10.0.0.2", 1, "10.0.0.9", 2, "x", 0);
		uint8_t fam;
		assert_int_equal(tsg_addr_parse(cases[i].addr, si.raddr, &fam), 0);
		si.family = fam;
		uint64_t got = tsg_plan_eval(p, TSG_SYN_SENT, TSG_ESTABLISHED, &si);
		if (got != cases[i].bits)
			fail_msg("%s: bits 0x%llx, want 0x%llx", cases[i].addr,
				 (unsigned long long)got, (unsigned long long)cases[i].bits);
	}
	/* exact: LPM bits equal the matcher for many addresses around the prefixes */
	srand(7);
	for (int k = 0; k < 20000; k++) {
		struct tsg_sockinfo si = sock4("10.0.0.2", 1, "10.0.0.9", 2, "x", 0);
		si.raddr[12] = (uint8_t)(k & 1 ? 10 : rand());
		si.raddr[13] = (uint8_t)(rand() % 4);
		si.raddr[14] = (uint8_t)(rand() % 5);
		si.raddr[15] = (uint8_t)rand();
		uint64_t got = tsg_plan_eval(p, TSG_SYN_SENT, TSG_ESTABLISHED, &si);
		for (size_t i = 0; i < b->rs.nrules; i++)
			assert_int_equal(!!(got & (1ull << i)),
					 tsg_cidrset_match(&b->rules[i].match.raddr, si.raddr));
	}
	for (size_t i = 0; i < b->rs.nrules; i++)
		assert_int_equal(p->user_fields_of_rule[i], 0);
	tsg_plan_free(p);
	rsb_free(b);
}

/*
 * The LPM entry of a prefix must describe the addresses whose longest match
 * it is, not its own network address (which here lies in a longer,
 * excluded prefix).
 */
static void test_cidr_network_address_excluded(void **state)
{
	struct rsb *b = rsb_new();
	set_cidrs(&add_trans(b, "ten-not-first-16", 0, 0)->match.raddr,
		  "10.0.0.0/8, !10.0.0.0/16");
	set_cidrs(&add_trans(b, "v6-not-low", 0, 0)->match.raddr, "!::/96");
	struct tsg_plan *p = build(b, false);

	assert_int_equal(lpm_bits(p->raddr, p->nraddr, "10.0.0.0/8"), 0x3);
	assert_int_equal(lpm_bits(p->raddr, p->nraddr, "10.0.0.0/16"), 0x2);
	assert_int_equal(lpm_bits(p->raddr, p->nraddr, "::/96"), 0);
	/* ::/0's network address :: is in !::/96 (v4-mapped ones are not) */
	assert_int_equal(lpm_bits(p->raddr, p->nraddr, "::/0"), 0x2);
	struct tsg_sockinfo si = sock4("10.0.0.2", 1, "10.5.5.5", 2, "x", 0);
	assert_int_equal(tsg_plan_eval(p, TSG_SYN_SENT, TSG_CLOSE, &si), 0x3);
	si = sock4("10.0.0.2", 1, "10.0.5.5", 2, "x", 0);
	assert_int_equal(tsg_plan_eval(p, TSG_SYN_SENT, TSG_CLOSE, &si), 0x2);
	si = sock4("fd00::1", 1, "2001:db8::1", 2, "x", 0);
	assert_int_equal(tsg_plan_eval(p, TSG_SYN_SENT, TSG_CLOSE, &si), 0x2);
	si = sock4("fd00::1", 1, "::7", 2, "x", 0);
	assert_int_equal(tsg_plan_eval(p, TSG_SYN_SENT, TSG_CLOSE, &si), 0);
	tsg_plan_free(p);
	rsb_free(b);
}

static void test_v4_mapped(void **state)
{
	struct rsb *b = rsb_new();
	set_cidrs(&add_trans(b, "lan4", 0, 0)->match.laddr, "192.168.0.0/16");
	set_cidrs(&add_trans(b, "ula6", 0, 0)->match.laddr, "fd00::/8");
	set_cidrs(&add_trans(b, "all-v4", 0, 0)->match.laddr, "0.0.0.0/0");
	struct tsg_plan *p = build(b, false);

	/* 0.0.0.0/0 is ::ffff:0:0/96 in the v6 space */
	assert_int_equal(lpm_bits(p->laddr, p->nladdr, "0.0.0.0/0"), 0x4);
	assert_int_equal(lpm_bits(p->laddr, p->nladdr, "::/0"), 0);
	/* an IPv4 peer on a dual-stack socket: v4-mapped address, family ipv4 */
	struct tsg_sockinfo si = sock4("::ffff:192.168.1.1", 80, "10.0.0.9", 2, "x", 0);
	assert_int_equal(tsg_plan_eval(p, TSG_LISTEN, TSG_SYN_RECV, &si), 0x1 | 0x4);
	si = sock4("192.168.1.1", 80, "10.0.0.9", 2, "x", 0);
	assert_int_equal(tsg_plan_eval(p, TSG_LISTEN, TSG_SYN_RECV, &si), 0x1 | 0x4);
	si = sock4("fd00::5", 80, "fd00::9", 2, "x", 0);
	assert_int_equal(tsg_plan_eval(p, TSG_LISTEN, TSG_SYN_RECV, &si), 0x2);
	si = sock4("2001:db8::1", 80, "fd00::9", 2, "x", 0);
	assert_int_equal(tsg_plan_eval(p, TSG_LISTEN, TSG_SYN_RECV, &si), 0);
	/* "::192.168.1.1" (v4-compatible, not mapped) is not IPv4 */
	si = sock4("::192.168.1.1", 80, "fd00::9", 2, "x", 0);
	assert_int_equal(tsg_plan_eval(p, TSG_LISTEN, TSG_SYN_RECV, &si), 0);
	tsg_plan_free(p);
	rsb_free(b);
}

/* ---- comm, uid, cgroup --------------------------------------------------------- */

static void test_comm(void **state)
{
	struct rsb *b = rsb_new();
	set_comms(&add_trans(b, "clients", 0, 0)->match.comm, "curl, wget");
	set_comms(&add_trans(b, "not-nginx", 0, 0)->match.comm, "!nginx");
	set_comms(&add_trans(b, "python", 0, 0)->match.comm, "re:^py, !pyfoo");
	add_trans(b, "any", 0, 0);
	set_comms(&add_trans(b, "long", 0, 0)->match.comm, "averyveryverylongname");
	struct tsg_plan *p = build(b, false);

	/* exact items of kernel-decided sets only: curl nginx wget */
	assert_int_equal(p->ncomm, 3);
	assert_null(comm_entry(p, "pyfoo"));
	assert_int_equal(p->comm_default, 0x2 | 0x4 | 0x8 | 0x10);
	assert_int_equal(comm_entry(p, "curl")->bits, 0x1f);
	assert_int_equal(comm_entry(p, "wget")->bits, 0x1f);
	/* the excluded comm: entry with the bit cleared */
	assert_int_equal(comm_entry(p, "nginx")->bits, 0x4 | 0x8 | 0x10);

	struct tsg_sockinfo si = sock4("10.0.0.2", 1, "10.0.0.9", 2, "python3", 0);
	assert_int_equal(tsg_plan_eval(p, TSG_SYN_SENT, TSG_CLOSE, &si), 0x1e);
	snprintf(si.comm, sizeof(si.comm), "nginx");
	assert_int_equal(tsg_plan_eval(p, TSG_SYN_SENT, TSG_CLOSE, &si), 0x1c);
	snprintf(si.comm, sizeof(si.comm), "curl");
	assert_int_equal(tsg_plan_eval(p, TSG_SYN_SENT, TSG_CLOSE, &si), 0x1f);
	/* unknown owner (socket older than tsguard): the default */
	si.have &= ~TSG_HAVE(TSG_SF_COMM);
	assert_int_equal(tsg_plan_eval(p, TSG_SYN_SENT, TSG_CLOSE, &si), 0x1e);

	assert_int_equal(p->user_fields_of_rule[0], 0);
	assert_int_equal(p->user_fields_of_rule[1], 0);
	assert_int_equal(p->user_fields_of_rule[2], TSG_HAVE(TSG_SF_COMM));
	assert_int_equal(p->user_fields_of_rule[3], 0);
	assert_int_equal(p->user_fields_of_rule[4], TSG_HAVE(TSG_SF_COMM));
	tsg_plan_free(p);
	rsb_free(b);
}

/* The exported lookups (what the capture writes in phase 1 of a reload) and
 * the copy the capture keeps of what its maps hold. */
static void test_lookups_and_dup(void **state)
{
	struct rsb *b = rsb_new();
	struct tsg_rule *a = add_trans(b, "ten-not-ten-one", 0, 0);
	set_cidrs(&a->match.raddr, "10.0.0.0/8, !10.1.0.0/16");
	set_comms(&a->match.comm, "curl");
	set_uids(&a->match.uid, "1000");
	add_trans(b, "any", 0, 0);
	struct tsg_plan *p = build(b, false), *d = NULL;
	struct tsg_cidr c = {0};

	(void)state;
	struct {
		const char *prefix;
		uint64_t bits;
	} keys[] = {
		{"10.0.0.0/8", 0x3},   {"10.1.0.0/16", 0x2}, {"10.1.2.0/24", 0x2},
		{"10.2.0.0/16", 0x3},  {"10.9.9.9/32", 0x3}, {"8.0.0.0/6", 0x2},
		{"::/0", 0x2},
	};
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		uint64_t got;

		parse_prefix(keys[i].prefix, &c);
		got = tsg_plan_lpm_bits(p->raddr, p->nraddr, c.addr, c.plen);
		if (got != keys[i].bits)
			fail_msg("%s: bits 0x%llx, want 0x%llx", keys[i].prefix,
				 (unsigned long long)got, (unsigned long long)keys[i].bits);
	}
	/* a key shorter than every entry but ::/0 gets ::/0's bits */
	parse_prefix("10.0.0.0/7", &c);
	assert_int_equal(tsg_plan_lpm_bits(p->raddr, p->nraddr, c.addr, c.plen), 0x2);
	assert_int_equal(tsg_plan_lpm_bits(p->raddr, 0, c.addr, c.plen), 0);
	assert_int_equal(tsg_plan_comm_bits(p, "curl"), 0x3);
	assert_int_equal(tsg_plan_comm_bits(p, "wget"), 0x2);
	assert_int_equal(p->comm_default, 0x2);
	assert_int_equal(tsg_plan_comm_bits(p, "curlcurlcurlcurlcurl"), 0x2);
	assert_int_equal(tsg_plan_uid_bits(p, 1000), 0x3);
	assert_int_equal(tsg_plan_uid_bits(p, 0), 0x2);

	assert_int_equal(tsg_plan_dup(p, &d), 0);
	assert_non_null(d);
	assert_ptr_not_equal(d->lport, p->lport);
	assert_ptr_not_equal(d->raddr, p->raddr);
	assert_memory_equal(d->trans, p->trans, sizeof(p->trans));
	assert_memory_equal(d->family, p->family, sizeof(p->family));
	assert_memory_equal(d->lport, p->lport, 65536 * sizeof(uint64_t));
	assert_memory_equal(d->rport, p->rport, 65536 * sizeof(uint64_t));
	assert_int_equal(d->nladdr, p->nladdr);
	assert_int_equal(d->nraddr, 3);
	assert_memory_equal(d->laddr, p->laddr, p->nladdr * sizeof(*p->laddr));
	assert_memory_equal(d->raddr, p->raddr, p->nraddr * sizeof(*p->raddr));
	assert_int_equal(d->ncomm, 1);
	assert_memory_equal(d->comm, p->comm, p->ncomm * sizeof(*p->comm));
	assert_int_equal(d->nuid, 1);
	assert_memory_equal(d->uid, p->uid, p->nuid * sizeof(*p->uid));
	assert_int_equal(d->comm_default, p->comm_default);
	assert_int_equal(d->uid_default, p->uid_default);
	assert_int_equal(d->all_slots, 0x3);
	assert_int_equal(d->nrules, 2);
	assert_memory_equal(d->slot_of_rule, p->slot_of_rule, 2);
	assert_memory_equal(d->user_fields_of_rule, p->user_fields_of_rule, 2 * sizeof(uint32_t));
	/* the copy is its own: changing it leaves the plan as it was */
	d->lport[80] = 0;
	d->raddr[0].bits = 0;
	d->comm[0].bits = 0;
	assert_int_equal(p->lport[80], 0x3);
	assert_int_equal(tsg_plan_lpm_bits(p->raddr, p->nraddr, c.addr, c.plen), 0x2);
	assert_int_equal(tsg_plan_comm_bits(p, "curl"), 0x3);
	tsg_plan_free(d);
	tsg_plan_free(p);

	p = build(b, true);
	assert_int_equal(tsg_plan_dup(p, &d), 0);
	assert_true(d->record_all);
	assert_int_equal(tsg_plan_uid_bits(d, 0), ~(uint64_t)0);
	tsg_plan_free(d);
	tsg_plan_free(p);
	rsb_free(b);
}

static void test_uid_and_cgroup(void **state)
{
	struct rsb *b = rsb_new();
	set_uids(&add_trans(b, "users", 0, 0)->match.uid, "1000, 1001");
	set_uids(&add_trans(b, "not-root", 0, 0)->match.uid, "!0");
	add_trans(b, "any", 0, 0);
	struct tsg_rule *cg = add_trans(b, "nginx-cg", 0, 0);
	set_comms(&cg->match.cgroup, "/system.slice/nginx.service");
	struct tsg_plan *p = build(b, false);

	assert_int_equal(p->nuid, 3);
	assert_int_equal(uid_entry(p, 1000)->bits, 0xf);
	assert_int_equal(uid_entry(p, 1001)->bits, 0xf);
	assert_int_equal(uid_entry(p, 0)->bits, 0x4 | 0x8);
	assert_int_equal(p->uid_default, 0x2 | 0x4 | 0x8);

	struct tsg_sockinfo si = sock4("10.0.0.2", 1, "10.0.0.9", 2, "x", 1001);
	assert_int_equal(tsg_plan_eval(p, TSG_SYN_SENT, TSG_CLOSE, &si), 0xf);
	si.uid = 0;
	assert_int_equal(tsg_plan_eval(p, TSG_SYN_SENT, TSG_CLOSE, &si), 0xc);
	si.uid = 33;
	assert_int_equal(tsg_plan_eval(p, TSG_SYN_SENT, TSG_CLOSE, &si), 0xe);
	si.have &= ~TSG_HAVE(TSG_SF_UID);
	assert_int_equal(tsg_plan_eval(p, TSG_SYN_SENT, TSG_CLOSE, &si), 0xe);

	/* cgroup: not in the kernel, left to user space */
	assert_int_equal(p->user_fields_of_rule[3], TSG_HAVE(TSG_SF_CGROUP));
	assert_int_equal(p->user_fields_of_rule[0], 0);
	tsg_plan_free(p);
	rsb_free(b);
}

/* ---- slots ----------------------------------------------------------------- */

static void test_more_than_64_rules(void **state)
{
	struct rsb *b = rsb_new();
	char name[32];
	for (int i = 0; i < 70; i++) {
		snprintf(name, sizeof(name), "r%d", i);
		add_trans(b, name, 0, SM(TSG_CLOSE));
	}
	set_ports(&b->rules[0].match.rport, "80");
	b->rules[0].to = SM(TSG_ESTABLISHED);
	set_ports(&b->rules[64].match.rport, "443");
	set_comms(&b->rules[64].match.comm, "curl");
	set_ports(&b->rules[1].match.rport, "22");
	struct tsg_plan *p = build(b, false);

	assert_int_equal(p->all_slots, ~0ull);
	assert_int_equal(p->slot_of_rule[64], 0);
	assert_int_equal(p->slot_of_rule[69], 5);
	/* slot 0 is the union of rules 0 and 64 */
	assert_true(p->rport[80] & 1);
	assert_true(p->rport[443] & 1);
	assert_false(p->rport[22] & 1);
	assert_true(p->trans[TSG_SYN_SENT][TSG_ESTABLISHED] & 1);
	assert_true(p->trans[TSG_SYN_SENT][TSG_CLOSE] & 1);
	assert_true(comm_entry(p, "curl")->bits & 1);
	assert_true(p->comm_default & 1); /* rule 0 has no comm set */
	/* the union is a superset: user space re-checks the shared slot's fields */
	assert_int_equal(p->user_fields_of_rule[0], TSG_HAVE(TSG_SF_RPORT));
	assert_int_equal(p->user_fields_of_rule[64],
			 TSG_HAVE(TSG_SF_RPORT) | TSG_HAVE(TSG_SF_COMM));
	assert_int_equal(p->user_fields_of_rule[5], 0);  /* shared, but no fields */
	/* rule 1 (rport 22) shares slot 1 with rule 65 (no rport): any port passes */
	assert_int_equal(p->user_fields_of_rule[1], TSG_HAVE(TSG_SF_RPORT));
	assert_int_equal(p->user_fields_of_rule[65], 0);
	assert_true(p->rport[23] & 2);
	tsg_plan_free(p);
	rsb_free(b);
}

static void test_disabled_rules(void **state)
{
	struct rsb *b = rsb_new();
	char name[32];
	for (int i = 0; i < 65; i++) {
		snprintf(name, sizeof(name), "r%d", i);
		set_ports(&add_trans(b, name, SM(TSG_SYN_SENT), SM(TSG_CLOSE))->match.rport,
			  i == 0 ? "80" : "443");
	}
	b->rules[64].enabled = false; /* would share slot 0 */
	b->rules[64].to = SM(TSG_ESTABLISHED);
	b->rules[3].enabled = false;
	struct tsg_plan *p = build(b, false);

	assert_int_equal(p->all_slots, ~0ull & ~(1ull << 3));
	assert_false(p->rport[443] & 1);
	assert_true(p->rport[80] & 1);
	assert_int_equal(p->trans[TSG_SYN_SENT][TSG_ESTABLISHED], 0);
	for (int f = 0; f < TSG_NSTATES; f++)
		for (int t = 0; t < TSG_NSTATES; t++)
			assert_false(p->trans[f][t] & (1ull << 3));
	assert_false(p->lport[0] & (1ull << 3));
	assert_false(p->rport[443] & (1ull << 3));
	assert_int_equal(p->user_fields_of_rule[3], 0);
	assert_int_equal(p->user_fields_of_rule[64], 0);
	/* rule 0 is alone in slot 0: a disabled rule does not share it */
	assert_int_equal(p->user_fields_of_rule[0], 0);
	struct tsg_sockinfo si = sock4("10.0.0.2", 1, "10.0.0.9", 443, "x", 0);
	assert_int_equal(tsg_plan_eval(p, TSG_SYN_SENT, TSG_CLOSE, &si),
			 ~0ull & ~(1ull << 3) & ~1ull);
	tsg_plan_free(p);
	rsb_free(b);
}

static void test_record_all(void **state)
{
	struct rsb *b = rsb_new();
	struct tsg_plan *p = build(b, true);
	struct tsg_sockinfo si = sock4("10.0.0.2", 1, "10.0.0.9", 2, "x", 0);

	/* no rules at all: still every transition crosses */
	assert_int_equal(p->all_slots, 0);
	for (int f = 0; f < TSG_NSTATES; f++)
		for (int t = 0; t < TSG_NSTATES; t++)
			assert_int_equal(tsg_plan_eval(p, (uint8_t)f, (uint8_t)t, &si), ~0ull);
	tsg_plan_free(p);

	set_ports(&add_trans(b, "narrow", SM(TSG_SYN_SENT), SM(TSG_CLOSE))->match.rport, "1");
	set_comms(&b->rules[0].match.comm, "curl");
	set_cidrs(&b->rules[0].match.raddr, "10.9.9.9/32");
	set_uids(&b->rules[0].match.uid, "7");
	p = build(b, true);
	assert_true(p->record_all);
	assert_int_equal(p->comm_default, ~0ull);
	assert_int_equal(p->uid_default, ~0ull);
	assert_int_equal(p->family[0] & p->family[1], ~0ull);
	for (uint32_t port = 0; port < 65536; port++)
		assert_int_equal(p->lport[port] & p->rport[port], ~0ull);
	for (size_t i = 0; i < p->nraddr; i++)
		assert_int_equal(p->raddr[i].bits, ~0ull);
	assert_int_equal(comm_entry(p, "curl")->bits, ~0ull);
	assert_int_equal(uid_entry(p, 7)->bits, ~0ull);
	assert_int_equal(tsg_plan_eval(p, TSG_LISTEN, TSG_SYN_RECV, &si), ~0ull);
	tsg_plan_free(p);
	/* without --record the same rule set filters */
	p = build(b, false);
	assert_int_equal(tsg_plan_eval(p, TSG_LISTEN, TSG_SYN_RECV, &si), 0);
	tsg_plan_free(p);
	rsb_free(b);
}

/* ---- explain ------------------------------------------------------------------ */

static void test_explain(void **state)
{
	struct rsb *b = rsb_new();
	struct tsg_rule *r;

	r = add_rule(b, "slow-https-connect", TSG_KIND_TIME);
	r->state = TSG_SYN_SENT;
	r->longer_than_ns = 500 * TSG_NSEC_PER_MSEC;
	set_ports(&r->match.rport, "443");
	set_ports(&r->match.lport, "!22");
	r = add_trans(b, "failed-connect", SM(TSG_SYN_SENT), SM(TSG_CLOSE));
	set_cidrs(&r->match.raddr, "10.0.0.0/8, !10.1.0.0/16");
	set_comms(&r->match.comm, "curl, !wget");
	set_uids(&r->match.uid, "1000");
	set_ports(&r->match.lport, "8080");
	r = add_rule(b, "tw-per-comm", TSG_KIND_COUNT);
	r->state = TSG_TIME_WAIT;
	r->threshold = r->resolve_below = 500;
	r->by = TSG_HAVE(TSG_SF_COMM);
	r = add_rule(b, "syn-fail-rate", TSG_KIND_RATE);
	r->from = SM(TSG_SYN_SENT);
	r->to = SM(TSG_CLOSE);
	r->threshold = 50;
	r->per_ns = 10 * TSG_NSEC_PER_SEC;
	r->by = TSG_HAVE(TSG_SF_RADDR) | TSG_HAVE(TSG_SF_RPORT);
	set_comms(&r->match.comm, "re:^py");
	set_comms(&r->match.cgroup, "/system.slice");
	r = add_trans(b, "off", 0, SM(TSG_LISTEN));
	r->enabled = false;
	struct tsg_plan *p = build(b, false);

	char *buf = explain(p, &b->rs);

	const char *want[] = {
		"rule 0 \"slow-https-connect\"",
		"slot 0 (bit 0x0000000000000001), time in state rule",
		"ANY->SYN_SENT, SYN_SENT->ANY  (25 pairs",
		"timer at longer_than 500ms after entering SYN_SENT",
		"rport     443  (slot bit in 1 of 65536 rport[] entries)",
		"lport     !22  (slot bit in 65535 of 65536 lport[] entries)",
		"rule 1 \"failed-connect\"",
		"SYN_SENT->CLOSE  (1 pair of",
		"raddr     10.0.0.0/8, !10.1.0.0/16",
		"LPM entries with the slot bit: 10.0.0.0/8 (of 3)",
		"\"curl\"=pass \"wget\"=drop; other comms (comm_default): drop",
		"entries: 1000=pass; other uids (uid_default): drop",
		"plus lport[0]: connects report lport 0",
		"lport     re-checked (lport[0] passes every slot)",
		"count per key by comm of sockets in TIME_WAIT; fires above 500",
		"TIME_WAIT pairs are derived by the capture",
		"window 10s per key by raddr,rport of transitions SYN_SENT->CLOSE; fires above 50",
		"regex \"^py\"",
		"cgroup    prefix /system.slice",
		"rule 4 \"off\"\n  disabled: no slot bits",
		"summary:",
		"rules     5 (4 enabled) in 4 slots",
		"lport[0] = 0x000000000000000f (connects report lport 0",
		"raddr     LPM trie, 3 entries (incl. ::/0)",
		"comm      hash, 2 entries",
		"cgroup    user space only",
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		if (!strstr(buf, want[i]))
			fail_msg("explain lacks \"%s\":\n%s", want[i], buf);
	/* stable: the same plan explains the same way */
	char *buf2 = explain(p, &b->rs);
	assert_string_equal(buf, buf2);
	if (getenv("TSG_TEST_SHOW_EXPLAIN"))
		fputs(buf, stderr);
	free(buf);
	free(buf2);
	tsg_plan_free(p);
	rsb_free(b);
}

/* ---- the superset property --------------------------------------------------- */

static bool rule_wants(const struct tsg_rule *r, int from, int to)
{
	if (r->kind == TSG_KIND_TIME || r->kind == TSG_KIND_COUNT)
		return from == r->state || to == r->state;
	return (!r->from || (r->from >> from) & 1) && (!r->to || (r->to >> to) & 1);
}

static const char *const PREFIXES[] = {
	"10.0.0.0/8",     "10.1.0.0/16", "10.1.2.0/24", "10.1.2.3/32", "192.168.0.0/16",
	"0.0.0.0/0",      "fd00::/8",    "fd00:1::/32", "::/0",        "::1/128",
	"127.0.0.0/8",    "10.1.2.128/25", "10.0.0.0/16", "::/64", "::/96",
};
static const char *const ADDRS[] = {
	"10.0.0.1", "10.1.0.1", "10.1.2.3", "10.1.2.200", "10.1.2.4", "192.168.1.1",
	"11.1.1.1", "fd00::1",  "fd00:1::5", "::1",      "2001:db8::1", "127.0.0.1",
	"10.5.5.5", "10.0.9.9", "::5",
};
static const uint16_t PORTS[] = {0, 1, 22, 80, 443, 8000, 8080, 8999, 9000, 50000, 65535};
static const char *const COMMS[] = {"curl", "wget", "nginx", "python3", "pyfoo", "sshd", "x"};
static const char *const COMM_ITEMS[] = {"curl", "wget", "nginx", "sshd", "re:^py",
					 "re:^(curl|wget)$", "averyveryverylongname"};
static const uint32_t UIDS[] = {0, 33, 1000, 1001, 65534};
static const char *const CGROUPS[] = {"/system.slice/nginx.service", "/user.slice", "/a/b"};

#define PICK(a) ((a)[rand() % (int)(sizeof(a) / sizeof((a)[0]))])

static tsg_statemask rand_mask(void)
{
	if (rand() % 3 == 0)
		return 0;
	tsg_statemask m = 0;
	for (int k = rand() % 3; k >= 0; k--)
		m |= SM(1 + rand() % (TSG_NSTATES - 1));
	return m;
}

static void rand_rule(struct rsb *b, int i)
{
	char name[32], spec[256];
	struct tsg_rule *r;
	int kind = rand() % 4;

	snprintf(name, sizeof(name), "rule-%d", i);
	r = add_rule(b, name, kind);
	r->enabled = rand() % 10 != 0;
	if (kind == TSG_KIND_TIME || kind == TSG_KIND_COUNT) {
		r->state = (uint8_t)(1 + rand() % (TSG_NSTATES - 1));
	} else {
		r->from = rand_mask();
		r->to = rand_mask();
	}
	struct tsg_match *m = &r->match;
	if (rand() % 4 == 0)
		m->family_mask = (uint8_t)(1 + rand() % 3);
	struct tsg_portset *ps[2] = {&m->lport, &m->rport};
	for (int k = 0; k < 2; k++) {
		if (rand() % 2)
			continue;
		spec[0] = 0;
		for (int j = rand() % 3; j >= 0; j--) {
			uint16_t lo = PICK(PORTS), hi = lo;
			if (rand() % 3 == 0)
				hi = (uint16_t)(lo + rand() % 2000 > 65535 ? 65535 : lo + rand() % 2000);
			char item[32];
			snprintf(item, sizeof(item), "%s%s%u-%u", spec[0] ? "," : "",
				 rand() % 3 == 0 ? "!" : "", lo, hi);
			strcat(spec, item);
		}
		set_ports(ps[k], spec);
	}
	struct tsg_cidrset *cs[2] = {&m->laddr, &m->raddr};
	for (int k = 0; k < 2; k++) {
		if (rand() % 2)
			continue;
		spec[0] = 0;
		for (int j = rand() % 3; j >= 0; j--) {
			strcat(spec, spec[0] ? "," : "");
			strcat(spec, rand() % 3 == 0 ? "!" : "");
			strcat(spec, PICK(PREFIXES));
		}
		set_cidrs(cs[k], spec);
	}
	if (rand() % 2 == 0) {
		spec[0] = 0;
		for (int j = rand() % 3; j >= 0; j--) {
			strcat(spec, spec[0] ? "," : "");
			strcat(spec, rand() % 3 == 0 ? "!" : "");
			strcat(spec, PICK(COMM_ITEMS));
		}
		set_comms(&m->comm, spec);
	}
	if (rand() % 3 == 0) {
		char item[32];
		spec[0] = 0;
		for (int j = rand() % 2; j >= 0; j--) {
			snprintf(item, sizeof(item), "%s%s%u", spec[0] ? "," : "",
				 rand() % 3 == 0 ? "!" : "", PICK(UIDS));
			strcat(spec, item);
		}
		set_uids(&m->uid, spec);
	}
	if (rand() % 6 == 0)
		set_comms(&m->cgroup, PICK(CGROUPS));
}

static struct tsg_sockinfo rand_sock(void)
{
	struct tsg_sockinfo si = {0};
	uint8_t fam;

	assert_int_equal(tsg_addr_parse(PICK(ADDRS), si.laddr, &fam), 0);
	assert_int_equal(tsg_addr_parse(PICK(ADDRS), si.raddr, &si.family), 0);
	si.lport = rand() % 4 ? PICK(PORTS) : (uint16_t)rand();
	si.rport = rand() % 4 ? PICK(PORTS) : (uint16_t)rand();
	snprintf(si.comm, sizeof(si.comm), "%s", PICK(COMMS));
	si.uid = PICK(UIDS);
	si.cgroup = PICK(CGROUPS);
	si.have = TSG_HAVE_ALL;
	if (rand() % 4 == 0) /* replay events may lack fields */
		si.have &= (uint32_t)rand();
	return si;
}

static void test_superset_property(void **state)
{
	unsigned long matches = 0, exact_checked = 0, checks = 0;

	srand(20261127);
	for (int set = 0; set < 12; set++) {
		struct rsb *b = rsb_new();
		int nrules = set < 4 ? 10 + set * 10 : 40 + rand() % 120;
		for (int i = 0; i < nrules; i++)
			rand_rule(b, i);
		struct tsg_plan *p = build(b, false);
		unsigned users[TSG_PLAN_SLOTS] = {0};
		for (size_t i = 0; i < b->rs.nrules; i++)
			users[p->slot_of_rule[i]] += b->rules[i].enabled;

		for (int k = 0; k < 3000; k++) {
			struct tsg_sockinfo si = rand_sock();
			int from = rand() % TSG_NSTATES, to = 1 + rand() % (TSG_NSTATES - 1);
			if (k % 10 == 0) { /* a connect: lport not chosen yet */
				from = TSG_CLOSE;
				to = TSG_SYN_SENT;
				si.lport = 0;
			}
			uint64_t bits = tsg_plan_eval(p, (uint8_t)from, (uint8_t)to, &si);
			assert_int_equal(bits & ~p->all_slots, 0);
			for (size_t i = 0; i < b->rs.nrules; i++) {
				const struct tsg_rule *r = &b->rules[i];
				bool want = r->enabled && rule_wants(r, from, to) &&
					    tsg_match_sock(&r->match, &si);
				bool got = bits & (1ull << p->slot_of_rule[i]);
				checks++;
				if (want) {
					matches++;
					if (!got)
						fail_msg("set %d rule %zu: user space matches %d->%d"
							 " but the kernel bits 0x%llx lack slot %u",
							 set, i, from, to, (unsigned long long)bits,
							 p->slot_of_rule[i]);
				}
				/* Exactness: a rule alone in its slot with nothing left to
				 * user space is decided by the kernel alone (all fields
				 * known, as they are in the kernel). */
				if (r->enabled && users[p->slot_of_rule[i]] == 1 &&
				    p->user_fields_of_rule[i] == 0 && si.have == TSG_HAVE_ALL) {
					exact_checked++;
					if (got != (rule_wants(r, from, to) &&
						    tsg_match_sock(&r->match, &si)))
						fail_msg("set %d rule %zu: kernel %d, user %d at %d->%d",
							 set, i, got, !got, from, to);
				}
			}
		}
		tsg_plan_free(p);
		rsb_free(b);
	}
	/* the test must have exercised real matches */
	assert_true(matches > 1000);
	assert_true(exact_checked > 10000);
	print_message("superset: %lu checks, %lu user-space matches, %lu exactness checks\n",
		      checks, matches, exact_checked);
}

/* ---- through the real loader ---------------------------------------------- */

static const char LOADED_YAML[] =
	"lists:\n"
	"  web: [80, 443, \"!8080\", 8000-8999]\n"
	"  internal: [10.0.0.0/8, \"!10.1.0.0/16\", \"fd00::/8\"]\n"
	"rules:\n"
	"  - name: web-from-outside\n"
	"    match: {lport: $web, raddr: [\"!10.0.0.0/8\"], family: ipv4}\n"
	"    when: {from: SYN_RECV, to: ESTABLISHED}\n"
	"  - name: internal-failed\n"
	"    match: {raddr: $internal, comm: [curl, \"!wget\"], uid: [1000]}\n"
	"    when: {from: SYN_SENT, to: CLOSE}\n"
	"  - name: py-slow\n"
	"    match: {comm: {regex: \"^py\"}, cgroup: /system.slice}\n"
	"    when: {state: SYN_SENT, longer_than: 2s}\n"
	"  - name: off\n"
	"    enabled: false\n"
	"    when: {to: LISTEN}\n";

static void test_loaded_rules(void **state)
{
	struct tsg_ruleset *rs = NULL;
	struct tsg_plan *p = NULL;
	struct tsg_diags d;
	char path[TSG_TEST_YAML_PATH], rule0[TSG_TEST_YAML_PATH + 64];

	tsg_diags_init(&d);
	int rc = tsg_test_yaml_load(LOADED_YAML, false, &d, &rs, path);
	if (rc < 0) {
		tsg_diags_print(&d, stderr);
		fail_msg("load failed: %d", rc);
	}
	tsg_diags_fini(&d);
	snprintf(rule0, sizeof(rule0), "rule 0 \"web-from-outside\" (%s", path);
	assert_int_equal(rs->nrules, 4);
	assert_int_equal(tsg_plan_build(rs, false, &p), 0);

	assert_int_equal(p->all_slots, 0x7);
	assert_int_equal(p->family[0], 0x7);
	assert_int_equal(p->family[1], 0x6);
	assert_int_equal(p->lport[443], 0x7);
	assert_int_equal(p->lport[8080], 0x6);
	assert_int_equal(p->lport[8500], 0x7);
	assert_int_equal(p->lport[0], 0x7);
	assert_int_equal(lpm_bits(p->raddr, p->nraddr, "::/0"), 0x1 | 0x4);
	assert_int_equal(lpm_bits(p->raddr, p->nraddr, "10.0.0.0/8"), 0x2 | 0x4);
	assert_int_equal(lpm_bits(p->raddr, p->nraddr, "10.1.0.0/16"), 0x4);
	assert_int_equal(lpm_bits(p->raddr, p->nraddr, "fd00::/8"), 0x1 | 0x2 | 0x4);
	assert_int_equal(comm_entry(p, "wget")->bits, 0x1 | 0x4);
	assert_int_equal(p->comm_default, 0x1 | 0x4);
	assert_int_equal(uid_entry(p, 1000)->bits, 0x7);
	assert_int_equal(p->uid_default, 0x5);
	assert_int_equal(p->trans[TSG_STATE_NONE][TSG_LISTEN], 0);
	assert_int_equal(p->user_fields_of_rule[0], TSG_HAVE(TSG_SF_LPORT));
	assert_int_equal(p->user_fields_of_rule[1], 0);
	assert_int_equal(p->user_fields_of_rule[2],
			 TSG_HAVE(TSG_SF_COMM) | TSG_HAVE(TSG_SF_CGROUP));

	struct tsg_sockinfo si = sock4("10.0.0.2", 50000, "10.2.0.9", 80, "curl", 1000);
	assert_int_equal(tsg_plan_eval(p, TSG_SYN_SENT, TSG_CLOSE, &si), 0x2 | 0x4);
	si = sock4("10.0.0.2", 443, "8.8.8.8", 50000, "nginx", 33);
	assert_int_equal(tsg_plan_eval(p, TSG_SYN_RECV, TSG_ESTABLISHED, &si), 0x1);
	si.lport = 8080;
	assert_int_equal(tsg_plan_eval(p, TSG_SYN_RECV, TSG_ESTABLISHED, &si), 0);

	char *buf = explain(p, rs);
	assert_non_null(strstr(buf, rule0));
	assert_non_null(strstr(buf, "lport     80, 443, !8080, 8000-8999"));
	assert_non_null(strstr(buf, "regex \"^py\""));
	assert_non_null(strstr(buf, "rule 3 \"off\""));
	free(buf);
	tsg_plan_free(p);
	tsg_ruleset_free(rs);
}

/* ---- netns, container, pod: user space, and the namespaces named ------------ */

static void test_netns_container_pod(void **state)
{
	struct tsg_ruleset *rs = tsg_test_yaml_rules(
	    "rules:\n"
	    "  - name: in-ns\n"
	    "    match: {netns: [4026532001, 4026532002, \"!4026532003\"], container: \"!none\"}\n"
	    "    when: {to: CLOSE}\n"
	    "  - name: named\n"
	    "    match: {netns: [tsg-plan-no-such-ns, 4026532001], pod: 1a2b-3c4d}\n"
	    "    when: {to: CLOSE}\n");
	const struct tsg_plan_netns *ns;
	struct tsg_plan *p = NULL, *d = NULL;
	char *buf;

	assert_non_null(rs);
	assert_int_equal(tsg_plan_build(rs, false, &p), 0);
	assert_int_equal(p->user_fields_of_rule[0],
			 TSG_HAVE(TSG_SF_NETNS) | TSG_HAVE(TSG_SF_CONTAINER));
	assert_int_equal(p->user_fields_of_rule[1], TSG_HAVE(TSG_SF_NETNS) | TSG_HAVE(TSG_SF_POD));
	ns = tsg_plan_netns(p);
	assert_false(ns->any);
	assert_int_equal(ns->ninodes, 2); /* sorted, distinct; exclusions not in it */
	assert_int_equal(ns->inodes[0], 4026532001u);
	assert_int_equal(ns->inodes[1], 4026532002u);
	assert_int_equal(ns->nnames, 1);
	assert_string_equal(ns->names[0], "tsg-plan-no-such-ns");
	/* the copy the capture keeps holds the same */
	assert_int_equal(tsg_plan_dup(p, &d), 0);
	assert_int_equal(tsg_plan_netns(d)->ninodes, 2);
	assert_int_equal(tsg_plan_netns(d)->inodes[1], 4026532002u);
	assert_string_equal(tsg_plan_netns(d)->names[0], "tsg-plan-no-such-ns");
	assert_ptr_not_equal(tsg_plan_netns(d)->names[0], ns->names[0]);
	tsg_plan_free(d);

	buf = explain(p, rs);
	assert_non_null(strstr(buf, "    netns     4026532001, 4026532002, !4026532003\n"));
	assert_non_null(strstr(buf, "    container !none (id or id prefix)\n"));
	assert_non_null(strstr(buf, "tsg-plan-no-such-ns (not present at load: by name)"));
	assert_non_null(strstr(buf, "    pod       1a2b-3c4d\n"));
	assert_non_null(strstr(buf, "netns/container/pod: matched in user space"));
	free(buf);
	tsg_plan_free(p);
	tsg_ruleset_free(rs);

	/* a rule without netns, or with exclusions only: every namespace */
	rs = tsg_test_yaml_rules(
	    "rules:\n"
	    "  - name: a\n    match: {netns: 4026532001}\n    when: {to: CLOSE}\n"
	    "  - name: b\n    match: {netns: \"!4026532001\"}\n    when: {to: CLOSE}\n");
	assert_non_null(rs);
	assert_int_equal(tsg_plan_build(rs, false, &p), 0);
	assert_true(tsg_plan_netns(p)->any);
	tsg_plan_free(p);
	rs->rules[1].enabled = false; /* a disabled rule names nothing */
	assert_int_equal(tsg_plan_build(rs, false, &p), 0);
	assert_false(tsg_plan_netns(p)->any);
	tsg_plan_free(p);
	assert_int_equal(tsg_plan_build(rs, true, &p), 0); /* --record: all */
	assert_true(tsg_plan_netns(p)->any);
	tsg_plan_free(p);
	tsg_ruleset_free(rs);
}

/* ---- the cgroup gate: containers and pods the rules name ------------------- */

#define CID1 "abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789"
#define CID2 "abcdef0123450000000000000000000000000000000000000000000000000000"
#define CID3 "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"

/* Builds the plan of `yaml`; its gate, and allows() for (container, pod). */
static struct tsg_plan *cg_plan(const char *yaml, bool record_all, struct tsg_ruleset **rs)
{
	struct tsg_plan *p = NULL;

	*rs = tsg_test_yaml_rules(yaml);
	assert_non_null(*rs);
	assert_int_equal(tsg_plan_build(*rs, record_all, &p), 0);
	return p;
}

static void test_cgroup_gate(void **state)
{
	struct tsg_ruleset *rs;
	struct tsg_plan *p, *d = NULL;
	char *buf;

	(void)state;
	/* every rule names a container (prefix) or a pod: the gate closes */
	p = cg_plan("rules:\n"
		    "  - name: c\n    match: {container: [abcdef012345, \"!" CID2 "\"]}\n"
		    "    when: {to: CLOSE}\n"
		    "  - name: p\n    match: {pod: 1a2b-3c4d}\n    when: {to: CLOSE}\n"
		    "  - name: both\n    match: {container: " CID3 ", pod: 9f9f-0000}\n"
		    "    when: {to: CLOSE}\n",
		    false, &rs);
	assert_true(tsg_plan_cgroup_gate(p));
	assert_true(tsg_plan_cgroup_allows(p, CID1, NULL));	   /* by prefix */
	assert_false(tsg_plan_cgroup_allows(p, CID2, NULL));	   /* excluded */
	assert_false(tsg_plan_cgroup_allows(p, NULL, NULL));	   /* no container */
	assert_true(tsg_plan_cgroup_allows(p, NULL, "1a2b-3c4d")); /* the pod */
	assert_true(tsg_plan_cgroup_allows(p, CID2, "1a2b-3c4d")); /* rule p: any container */
	assert_false(tsg_plan_cgroup_allows(p, CID3, NULL));	   /* rule both: needs its pod */
	assert_false(tsg_plan_cgroup_allows(p, CID3, "1a2b-3c4e"));
	assert_true(tsg_plan_cgroup_allows(p, CID3, "9f9f-0000"));
	/* the capture's copy decides the same */
	assert_int_equal(tsg_plan_dup(p, &d), 0);
	assert_true(tsg_plan_cgroup_gate(d));
	assert_true(tsg_plan_cgroup_allows(d, CID1, NULL));
	assert_false(tsg_plan_cgroup_allows(d, CID2, NULL));
	assert_true(tsg_plan_cgroup_allows(d, CID3, "9f9f-0000"));
	assert_false(tsg_plan_cgroup_allows(d, CID3, NULL));
	tsg_plan_free(d);
	buf = explain(p, rs);
	assert_non_null(
	    strstr(buf, "  container, pod  kernel gate on the socket's cgroup: 3 rules"));
	free(buf);
	tsg_plan_free(p);
	/* a disabled rule names nothing: it does not open the gate */
	rs->rules[1].enabled = false;
	assert_int_equal(tsg_plan_build(rs, false, &p), 0);
	assert_true(tsg_plan_cgroup_gate(p));
	assert_false(tsg_plan_cgroup_allows(p, NULL, "1a2b-3c4d"));
	tsg_plan_free(p);
	/* --record: every cgroup */
	assert_int_equal(tsg_plan_build(rs, true, &p), 0);
	assert_false(tsg_plan_cgroup_gate(p));
	assert_true(tsg_plan_cgroup_allows(p, NULL, NULL));
	tsg_plan_free(p);
	tsg_ruleset_free(rs);

	/* a rule that can match outside every named container opens it: no
	 * container item, exclusions only, `none`, `!none` (any container) */
	static const char *const open_sets[] = {
	    "{lport: 80}",
	    "{container: \"!" CID1 "\"}",
	    "{container: [" CID1 ", none]}",
	    "{container: \"!none\"}",
	    "{pod: none}",
	};
	for (size_t i = 0; i < sizeof(open_sets) / sizeof(open_sets[0]); i++) {
		char yaml[512];

		snprintf(
		    yaml, sizeof(yaml),
		    "rules:\n  - name: c\n    match: {container: " CID1 "}\n"
		    "    when: {to: CLOSE}\n  - name: o\n    match: %s\n    when: {to: CLOSE}\n",
		    open_sets[i]);
		p = cg_plan(yaml, false, &rs);
		if (tsg_plan_cgroup_gate(p))
			fail_msg("gate closed with %s", open_sets[i]);
		assert_true(tsg_plan_cgroup_allows(p, NULL, NULL));
		buf = explain(p, rs);
		assert_non_null(strstr(buf, "  container, pod  user space; some rule matches any"));
		free(buf);
		tsg_plan_free(p);
		tsg_ruleset_free(rs);
	}
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_trans_transition_rules),
    cmocka_unit_test(test_trans_state_rules),
    cmocka_unit_test(test_family),
    cmocka_unit_test(test_ports_ranges_exclusions),
    cmocka_unit_test(test_lport_zero_at_connect),
    cmocka_unit_test(test_cidr_nesting),
    cmocka_unit_test(test_cidr_network_address_excluded),
    cmocka_unit_test(test_v4_mapped),
    cmocka_unit_test(test_comm),
    cmocka_unit_test(test_uid_and_cgroup),
    cmocka_unit_test(test_lookups_and_dup),
    cmocka_unit_test(test_more_than_64_rules),
    cmocka_unit_test(test_disabled_rules),
    cmocka_unit_test(test_netns_container_pod),
    cmocka_unit_test(test_cgroup_gate),
    cmocka_unit_test(test_record_all),
    cmocka_unit_test(test_explain),
    cmocka_unit_test(test_superset_property),
    cmocka_unit_test(test_loaded_rules),
};

TSG_TEST_MAIN(tests)
