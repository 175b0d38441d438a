/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the user-space matchers (engine/load/match.c): sets built both
 * by hand and by the loader from YAML, so the two agree.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "tsg_test_main.h"

#include "match.h"
#include "ruleset.h"
#include "tsg_test_yaml.h"

/* Loads one rule with the given `match:` body (flow mapping) and returns it. */
static struct tsg_ruleset *load_match(const char *match)
{
	struct tsg_ruleset *rs;
	char yaml[1024];

	assert_true(snprintf(yaml, sizeof(yaml),
			     "rules:\n  - name: m\n    match: %s\n    when: {to: CLOSE}\n",
			     match) < (int)sizeof(yaml));
	rs = tsg_test_yaml_rules(yaml);
	if (!rs)
		fail();
	return rs;
}

static struct tsg_sockinfo sock(const char *laddr, uint16_t lport, const char *raddr,
				uint16_t rport)
{
	struct tsg_sockinfo s = { 0 };

	assert_int_equal(tsg_addr_parse(laddr, s.laddr, &s.family), 0);
	assert_int_equal(tsg_addr_parse(raddr, s.raddr, &s.family), 0);
	s.lport = lport;
	s.rport = rport;
	s.have = TSG_HAVE(TSG_SF_LADDR) | TSG_HAVE(TSG_SF_RADDR) | TSG_HAVE(TSG_SF_LPORT) |
		 TSG_HAVE(TSG_SF_RPORT) | TSG_HAVE(TSG_SF_FAMILY);
	return s;
}

static void addr(const char *s, uint8_t out[16])
{
	assert_int_equal(tsg_addr_parse(s, out, NULL), 0);
}

/* An address and whether a set matches it. */
struct addr_case {
	const char *addr;
	bool match;
};

/* Fails at the first case where set s disagrees. */
static void check_addrs(const struct tsg_cidrset *s, const struct addr_case *c, size_t n)
{
	uint8_t a[16];

	for (size_t i = 0; i < n; i++) {
		addr(c[i].addr, a);
		if (tsg_cidrset_match(s, a) != c[i].match)
			fail_msg("%s: %s", c[i].addr, c[i].match ? "no match" : "matched");
	}
}

#define N_CASES(c) (sizeof(c) / sizeof((c)[0]))

/* ---- ports ------------------------------------------------------------------ */

static void t_ports(void **state)
{
	struct tsg_portrange v[] = { { 80, 80, false }, { 8000, 8999, false }, { 8080, 8080, true } };
	struct tsg_portset s = { v, 3 };
	struct tsg_portset empty = { NULL, 0 };
	struct tsg_portrange ex[] = { { 22, 22, true } };
	struct tsg_portset only_ex = { ex, 1 };
	const struct {
		const struct tsg_portset *set;
		uint16_t port;
		bool match;
	} cases[] = {
		{ &s, 80, true },	    { &s, 81, false },	 { &s, 8000, true },
		{ &s, 8999, true },	    { &s, 9000, false }, { &s, 7999, false },
		{ &s, 8080, false }, /* excluded inside the range */
		{ &empty, 1, true },	    { &only_ex, 443, true }, { &only_ex, 22, false },
	};

	for (size_t i = 0; i < N_CASES(cases); i++)
		if (tsg_portset_match(cases[i].set, cases[i].port) != cases[i].match)
			fail_msg("case %zu, port %u: %s", i, cases[i].port,
				 cases[i].match ? "no match" : "matched");
}

static void t_ports_yaml(void **state)
{
	struct tsg_ruleset *rs = load_match("{rport: [443, \"8000-8999\", \"!8443\", 0], "
					    "lport: \"!22\"}");
	const struct tsg_match *m = &rs->rules[0].match;
	static const struct {
		uint16_t lport, rport;
		bool match;
	} cases[] = {
		{ 50000, 443, true }, { 50000, 8443, false }, { 50000, 8500, true },
		{ 50000, 0, true },   { 50000, 1, false },    { 22, 443, false },
	};

	for (size_t i = 0; i < N_CASES(cases); i++) {
		struct tsg_sockinfo s = sock("10.0.0.2", cases[i].lport, "10.0.0.9", cases[i].rport);

		if (tsg_match_sock(m, &s) != cases[i].match)
			fail_msg("lport %u rport %u: %s", cases[i].lport, cases[i].rport,
				 cases[i].match ? "no match" : "matched");
	}
	tsg_ruleset_free(rs);
}

/* ---- addresses ---------------------------------------------------------------- */

static void t_cidr_v4_v6(void **state)
{
	struct tsg_ruleset *rs = load_match(
		"{raddr: [10.0.0.0/8, \"fd00::/8\", 192.168.1.7, \"::ffff:172.16.0.0/108\", "
		"\"!10.9.0.0/16\"]}");
	const struct tsg_cidrset *s = &rs->rules[0].match.raddr;
	static const struct addr_case cases[] = {
		{ "10.1.2.3", true },
		{ "::ffff:10.1.2.3", true }, /* the same address written as v4-mapped */
		{ "11.0.0.1", false },
		{ "10.9.1.1", false }, /* excluded */
		{ "fd12::1", true },
		{ "fe80::1", false },
		{ "192.168.1.7", true },
		{ "192.168.1.8", false },
		{ "172.16.5.5", true }, /* v4 address against a v4-mapped v6 CIDR */
		{ "172.32.0.1", false },
		/* a v6 address never matches a v4 CIDR: 0a00::1 is not 10.0.0.0/8 */
		{ "a00::1", false },
	};

	assert_int_equal(s->n, 5);
	assert_int_equal(s->v[0].plen, 104);
	assert_int_equal(s->v[2].plen, 128);
	assert_int_equal(s->v[3].plen, 108);
	check_addrs(s, cases, N_CASES(cases));
	tsg_ruleset_free(rs);
}

static void t_cidr_any(void **state)
{
	struct tsg_ruleset *rs = load_match("{laddr: \"::/0\", raddr: 0.0.0.0/0}");
	const struct tsg_match *m = &rs->rules[0].match;
	static const struct addr_case l[] = { { "fe80::1", true }, { "1.2.3.4", true } };
	static const struct addr_case r[] = {
		{ "fe80::1", false }, /* 0.0.0.0/0 is IPv4 only */
		{ "1.2.3.4", true },
	};

	check_addrs(&m->laddr, l, N_CASES(l));
	check_addrs(&m->raddr, r, N_CASES(r));
	tsg_ruleset_free(rs);
}

static void t_cidr_host_bits(void **state)
{
	/* host bits are cleared (with a warning): 10.1.2.3/8 is 10.0.0.0/8 */
	struct tsg_ruleset *rs = load_match("{raddr: 10.1.2.3/8}");
	uint8_t a[16];

	addr("10.200.0.1", a);
	assert_true(tsg_cidrset_match(&rs->rules[0].match.raddr, a));
	assert_int_equal(rs->rules[0].match.raddr.v[0].addr[13], 0);
	tsg_ruleset_free(rs);
}

/* ---- exclusions and unknown values ------------------------------------------ */

static void t_exclusion_only(void **state)
{
	struct tsg_ruleset *rs =
		load_match("{raddr: [\"!127.0.0.0/8\", \"!::1\"], uid: \"!0\", comm: \"!sshd\"}");
	const struct tsg_match *m = &rs->rules[0].match;
	struct tsg_sockinfo s = sock("10.0.0.2", 1, "10.0.0.9", 2);

	assert_true(tsg_match_sock(m, &s));
	addr("127.0.0.1", s.raddr);
	assert_false(tsg_match_sock(m, &s));
	addr("::1", s.raddr);
	assert_false(tsg_match_sock(m, &s));
	addr("::2", s.raddr);
	assert_true(tsg_match_sock(m, &s));

	s.have |= TSG_HAVE(TSG_SF_UID) | TSG_HAVE(TSG_SF_COMM);
	s.uid = 0;
	strcpy(s.comm, "curl");
	assert_false(tsg_match_sock(m, &s));
	s.uid = 1000;
	assert_true(tsg_match_sock(m, &s));
	strcpy(s.comm, "sshd");
	assert_false(tsg_match_sock(m, &s));
	/* unknown uid and comm: exclusion-only sets still match */
	s.have &= ~(TSG_HAVE(TSG_SF_UID) | TSG_HAVE(TSG_SF_COMM));
	assert_true(tsg_match_sock(m, &s));
	tsg_ruleset_free(rs);
}

static void t_unknown_values(void **state)
{
	struct tsg_ruleset *rs =
		load_match("{rport: 443, comm: curl, uid: 1000, cgroup: /a, laddr: 10.0.0.0/8}");
	const struct tsg_match *m = &rs->rules[0].match;
	struct tsg_sockinfo s = sock("10.0.0.2", 50000, "10.0.0.9", 443);

	s.have |= TSG_HAVE(TSG_SF_COMM) | TSG_HAVE(TSG_SF_UID) | TSG_HAVE(TSG_SF_CGROUP);
	strcpy(s.comm, "curl");
	s.uid = 1000;
	s.cgroup = "/a/b";
	assert_true(tsg_match_sock(m, &s));
	/* each unknown field with a positive item fails the match */
	for (int f = 0; f < TSG_SF_N; f++) {
		struct tsg_sockinfo u = s;

		u.have &= ~TSG_HAVE(f);
		if (f == TSG_SF_PID || f == TSG_SF_RADDR || f == TSG_SF_FAMILY ||
		    f == TSG_SF_LPORT || (TSG_HAVE(f) & TSG_HAVE_IDENT))
			assert_true(tsg_match_sock(m, &u)); /* not matched on */
		else
			assert_false(tsg_match_sock(m, &u));
	}
	/* a known-but-NULL cgroup is unknown too */
	s.cgroup = NULL;
	assert_false(tsg_match_sock(m, &s));
	tsg_ruleset_free(rs);

	/* an empty match block matches a socket we know nothing about */
	rs = load_match("{}");
	s.have = 0;
	assert_true(tsg_match_sock(&rs->rules[0].match, &s));
	tsg_ruleset_free(rs);
}

/* ---- family ------------------------------------------------------------------- */

static void t_family(void **state)
{
	struct tsg_ruleset *rs = load_match("{family: ipv4}");
	const struct tsg_match *m = &rs->rules[0].match;
	struct tsg_sockinfo s = sock("::ffff:10.0.0.2", 1, "::ffff:10.0.0.9", 2);

	/* an IPv4 peer of a dual-stack socket counts as ipv4 */
	assert_int_equal(s.family, TSG_FAM_IPV4);
	assert_true(tsg_match_sock(m, &s));
	s = sock("fd00::2", 1, "fd00::9", 2);
	assert_false(tsg_match_sock(m, &s));
	s.have &= ~TSG_HAVE(TSG_SF_FAMILY);
	assert_false(tsg_match_sock(m, &s));
	tsg_ruleset_free(rs);

	rs = load_match("{family: \"!ipv4\"}");
	assert_int_equal(rs->rules[0].match.family_mask, 2);
	tsg_ruleset_free(rs);
	rs = load_match("{family: [ipv4, ipv6]}");
	s = sock("fd00::2", 1, "fd00::9", 2);
	assert_true(tsg_match_sock(&rs->rules[0].match, &s));
	tsg_ruleset_free(rs);
}

/* ---- uid, comm, cgroup ---------------------------------------------------------- */

static void t_uid(void **state)
{
	struct tsg_uiditem v[] = { { 33, false }, { 1000, false }, { 1000, true } };
	struct tsg_uidset s = { v, 2 };

	assert_true(tsg_uidset_match(&s, 33));
	assert_true(tsg_uidset_match(&s, 1000));
	assert_false(tsg_uidset_match(&s, 0));
	s.n = 3; /* exclusion wins over a positive item */
	assert_false(tsg_uidset_match(&s, 1000));
	assert_true(tsg_uidset_match(&s, 33));
}

static void t_comm_exact_and_regex(void **state)
{
	struct tsg_ruleset *rs = load_match(
		"{comm: [nginx, {regex: \"^php-fpm\"}, {regex: \"-test$\", exclude: true}, \"!nginx-old\"]}");
	const struct tsg_strset *s = &rs->rules[0].match.comm;

	assert_true(tsg_commset_match(s, "nginx"));
	assert_false(tsg_commset_match(s, "nginx2")); /* exact, not prefix */
	assert_true(tsg_commset_match(s, "php-fpm7.4"));
	assert_false(tsg_commset_match(s, "xphp-fpm"));
	assert_false(tsg_commset_match(s, "php-fpm-test")); /* regex exclusion */
	assert_false(tsg_commset_match(s, "curl"));
	assert_false(tsg_commset_match(s, ""));
	tsg_ruleset_free(rs);
}

static void t_regex_cache(void **state)
{
	struct tsg_regex *re = NULL;
	uint64_t hits, misses, clears;
	size_t entries, off = 0;
	char msg[128], comm[16];

	assert_int_equal(tsg_regex_new("^w[0-9]+$", &re, &off, msg, sizeof(msg)), 0);
	assert_true(tsg_regex_match(re, "w1"));
	assert_true(tsg_regex_match(re, "w1"));
	assert_false(tsg_regex_match(re, "x1"));
	assert_false(tsg_regex_match(re, "x1"));
	tsg_regex_stats(re, &hits, &misses, &clears, &entries);
	assert_int_equal(hits, 2);
	assert_int_equal(misses, 2);
	assert_int_equal(entries, 2);
	/* bounded: 1024 entries, then cleared */
	for (int i = 0; i < 1100; i++) {
		snprintf(comm, sizeof(comm), "w%d", i + 100);
		assert_true(tsg_regex_match(re, comm));
	}
	tsg_regex_stats(re, &hits, &misses, &clears, &entries);
	assert_int_equal(clears, 1);
	assert_true(entries <= 1024);
	assert_int_equal(entries, 2 + 1100 - 1024);
	/* results after a clear are still right */
	assert_false(tsg_regex_match(re, "x1"));
	assert_true(tsg_regex_match(re, "w1"));
	/* subjects longer than a comm are matched, not cached */
	tsg_regex_stats(re, &hits, &misses, &clears, &entries);
	assert_true(tsg_regex_match(re, "w12345678901234567890"));
	assert_false(tsg_regex_match(re, "w1234567890123456789x"));
	{
		uint64_t h2, m2, c2;
		size_t e2;

		tsg_regex_stats(re, &h2, &m2, &c2, &e2);
		assert_int_equal(e2, entries);
		assert_int_equal(h2, hits);
	}
	tsg_regex_free(re);

	assert_int_equal(tsg_regex_new("a(b", &re, &off, msg, sizeof(msg)), -EINVAL);
	assert_int_equal(off, 3);
	assert_non_null(strstr(msg, "parenthesis"));
	tsg_regex_free(NULL);
}

static void t_cgroup_prefix(void **state)
{
	struct tsg_ruleset *rs =
		load_match("{cgroup: [/system.slice/nginx.service/, \"!/system.slice/nginx.service/old\"]}");
	const struct tsg_strset *s = &rs->rules[0].match.cgroup;
	struct tsg_stritem root_v[] = { { (char *)"/", NULL, false } };
	struct tsg_strset root = { root_v, 1 };

	assert_string_equal(s->v[0].s, "/system.slice/nginx.service"); /* trailing / dropped */
	assert_true(tsg_cgroupset_match(s, "/system.slice/nginx.service"));
	assert_true(tsg_cgroupset_match(s, "/system.slice/nginx.service/worker"));
	assert_false(tsg_cgroupset_match(s, "/system.slice/nginx.service2"));
	assert_false(tsg_cgroupset_match(s, "/system.slice"));
	assert_false(tsg_cgroupset_match(s, "/system.slice/nginx.service/old"));
	assert_false(tsg_cgroupset_match(s, "/system.slice/nginx.service/old/x"));
	assert_true(tsg_cgroupset_match(s, "/system.slice/nginx.service/older"));
	assert_true(tsg_cgroupset_match(&root, "/anything"));
	tsg_ruleset_free(rs);
}

/* ---- lists and the whole block ---------------------------------------------- */

static void t_lists_in_match(void **state)
{
	struct tsg_ruleset *rs = NULL;
	struct tsg_diags d;
	struct tsg_sockinfo s;

	tsg_diags_init(&d);
	assert_int_equal(tsg_test_yaml_load("lists:\n"
					    "  web: [80, 443]\n"
					    "  allweb: [$web, 8080]\n"
					    "  lo: [127.0.0.0/8, \"::1\"]\n"
					    "rules:\n"
					    "  - name: m\n"
					    "    match: {rport: [$allweb, \"!443\"], raddr: \"!$lo\"}\n"
					    "    when: {to: CLOSE}\n",
					    false, &d, &rs, NULL),
			 0);
	assert_int_equal(rs->rules[0].match.rport.n, 4);
	s = sock("10.0.0.2", 1, "10.0.0.9", 80);
	assert_true(tsg_match_sock(&rs->rules[0].match, &s));
	s.rport = 8080;
	assert_true(tsg_match_sock(&rs->rules[0].match, &s));
	s.rport = 443;
	assert_false(tsg_match_sock(&rs->rules[0].match, &s));
	s.rport = 80;
	addr("127.0.0.5", s.raddr);
	assert_false(tsg_match_sock(&rs->rules[0].match, &s));
	tsg_ruleset_free(rs);
	tsg_diags_fini(&d);
}

/* ---- netns, container, pod ---------------------------------------------------- */

#define CID  "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb"
#define CID2 "3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d"

static struct tsg_sockinfo ident_sock(uint32_t netns, const char *netns_name, const char *container,
				      const char *pod)
{
	struct tsg_sockinfo s = sock("10.0.0.2", 50000, "10.0.0.9", 443);

	s.have |= TSG_HAVE_IDENT;
	s.netns = netns;
	s.netns_name = netns_name;
	s.container = container;
	s.pod = pod;
	return s;
}

static bool match_yaml(const char *match, const struct tsg_sockinfo *s)
{
	struct tsg_ruleset *rs = load_match(match);
	bool r = tsg_match_sock(&rs->rules[0].match, s);

	tsg_ruleset_free(rs);
	return r;
}

static void t_netns_inode_and_host(void **state)
{
	struct stat st;
	struct tsg_sockinfo s;

	assert_int_equal(stat("/proc/self/ns/net", &st), 0);
	s = ident_sock((uint32_t)st.st_ino, NULL, NULL, NULL);
	assert_true(match_yaml("{netns: host}", &s));
	assert_false(match_yaml("{netns: \"!host\"}", &s));
	s.netns = 4026532999u;
	assert_false(match_yaml("{netns: host}", &s));
	assert_true(match_yaml("{netns: \"!host\"}", &s));
	assert_true(match_yaml("{netns: 4026532999}", &s));
	assert_true(match_yaml("{netns: [host, 4026532999]}", &s));
	assert_false(match_yaml("{netns: 4026532998}", &s));
	/* an unknown namespace matches only exclusions */
	s.have &= ~TSG_HAVE(TSG_SF_NETNS);
	assert_false(match_yaml("{netns: 4026532999}", &s));
	assert_true(match_yaml("{netns: \"!4026532999\"}", &s));
}

static void t_netns_name(void **state)
{
	char dir[] = "/tmp/tsg-netns-XXXXXX", path[64];
	struct tsg_diags d;
	struct tsg_ruleset *rs = NULL;
	struct tsg_sockinfo s;
	struct stat st;
	int fd;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/blue", dir);
	fd = open(path, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(stat(path, &st), 0);
	tsg_load_set_netns_dir(dir);

	/* a name that exists: its inode, and its name */
	s = ident_sock((uint32_t)st.st_ino, NULL, NULL, NULL);
	assert_true(match_yaml("{netns: blue}", &s));
	s = ident_sock(4026532001u, "blue", NULL, NULL);
	assert_true(match_yaml("{netns: blue}", &s));
	s = ident_sock(4026532001u, "red", NULL, NULL);
	assert_false(match_yaml("{netns: blue}", &s));
	assert_true(match_yaml("{netns: \"!blue\"}", &s));

	/* a name that does not exist: a warning, and it matches by name */
	tsg_diags_init(&d);
	assert_int_equal(tsg_test_yaml_load("rules:\n  - name: m\n    match: {netns: red}\n"
					    "    when: {to: CLOSE}\n",
					    false, &d, &rs, NULL),
			 0);
	assert_int_equal(d.nerrors, 0);
	assert_int_equal(d.nwarnings, 1);
	assert_non_null(strstr(d.msg[0], ":3:20: warning: netns \"red\" does not exist now"));
	assert_non_null(strstr(d.msg[0], "matches it once a namespace of that name exists"));
	assert_true(tsg_match_sock(&rs->rules[0].match, &s));
	s.netns_name = NULL;
	assert_false(tsg_match_sock(&rs->rules[0].match, &s));
	tsg_ruleset_free(rs);
	tsg_diags_fini(&d);

	/* a reload resolves the name again: it exists now */
	snprintf(path, sizeof(path), "%s/red", dir);
	fd = open(path, O_CREAT | O_WRONLY, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(stat(path, &st), 0);
	s.netns = (uint32_t)st.st_ino;
	assert_true(match_yaml("{netns: red}", &s));
	unlink(path);
	snprintf(path, sizeof(path), "%s/blue", dir);
	unlink(path);
	rmdir(dir);
	tsg_load_set_netns_dir(NULL);
}

static void t_container_and_pod(void **state)
{
	struct tsg_sockinfo in = ident_sock(4026532001u, NULL, CID, "1a2b-3c4d");
	struct tsg_sockinfo out = ident_sock(4026532001u, NULL, NULL, NULL);

	assert_true(match_yaml("{container: " CID "}", &in));
	assert_true(match_yaml("{container: ca978112ca1b}", &in));   /* 12: as docker ps */
	assert_true(match_yaml("{container: CA978112CA1BBD}", &in)); /* case is not kept */
	assert_false(match_yaml("{container: 3e23e8160039}", &in));
	assert_true(match_yaml("{container: [3e23e8160039, ca978112ca1b]}", &in));
	assert_false(match_yaml("{container: none}", &in));
	assert_true(match_yaml("{container: none}", &out));
	assert_true(match_yaml("{container: \"!none\"}", &in));
	assert_false(match_yaml("{container: \"!none\"}", &out));
	assert_false(match_yaml("{container: \"!ca978112ca1b\"}", &in));
	assert_true(match_yaml("{container: \"!ca978112ca1b\"}", &out));
	assert_false(match_yaml("{container: ca978112ca1b}", &out));
	assert_true(match_yaml("{pod: 1a2b-3c4d}", &in));
	assert_false(match_yaml("{pod: 1a2b}", &in)); /* a pod is matched whole */
	assert_true(match_yaml("{pod: none}", &out));
	assert_false(match_yaml("{pod: 1a2b-3c4d}", &out));
	assert_true(match_yaml("{container: ca978112ca1b, pod: 1a2b-3c4d}", &in));
	assert_false(match_yaml("{container: ca978112ca1b, pod: \"!1a2b-3c4d\"}", &in));
	/* unknown: only exclusions match */
	in.have &= ~(TSG_HAVE(TSG_SF_CONTAINER) | TSG_HAVE(TSG_SF_POD));
	assert_false(match_yaml("{container: none}", &in));
	assert_false(match_yaml("{pod: 1a2b-3c4d}", &in));
	assert_true(match_yaml("{container: \"!" CID2 "\"}", &in));
	assert_false(match_yaml("{container: \"!none\"}", &in)); /* not known to be in one */
	assert_false(match_yaml("{pod: \"!none\"}", &in));
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(t_ports),
    cmocka_unit_test(t_ports_yaml),
    cmocka_unit_test(t_cidr_v4_v6),
    cmocka_unit_test(t_cidr_any),
    cmocka_unit_test(t_cidr_host_bits),
    cmocka_unit_test(t_exclusion_only),
    cmocka_unit_test(t_unknown_values),
    cmocka_unit_test(t_family),
    cmocka_unit_test(t_uid),
    cmocka_unit_test(t_comm_exact_and_regex),
    cmocka_unit_test(t_regex_cache),
    cmocka_unit_test(t_cgroup_prefix),
    cmocka_unit_test(t_lists_in_match),
    cmocka_unit_test(t_netns_inode_and_host),
    cmocka_unit_test(t_netns_name),
    cmocka_unit_test(t_container_and_pod),
};

TSG_TEST_MAIN(tests)
