/* SPDX-License-Identifier: MIT */
/* tsguard: event file reader and writer (docs/cli.md "Event file"). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tsg_test_main.h"

#include "container.h"
#include "eventio.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CID "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb"

static int parse(const char *line, struct tsg_event *ev, char *err, size_t errlen)
{
	return tsg_event_parse_line(line, strlen(line), ev, err, errlen);
}

/* The family of the event of line, which must parse. */
static int family_of(const char *line)
{
	struct tsg_event ev;
	char err[256];

	assert_int_equal(parse(line, &ev, err, sizeof(err)), 0);
	return ev.info.family;
}

static void test_cli_example_lines(void **state)
{
	struct tsg_event ev;
	char err[256] = "", a[64];

	assert_int_equal(parse("{\"ts\": 0.000, \"sk\": \"s1\", \"family\": \"ipv4\", \"laddr\": "
			       "\"10.0.0.2\", \"lport\": 50000, \"raddr\": \"10.0.0.9\", \"rport\": "
			       "443, \"from\": \"CLOSE\", \"to\": \"SYN_SENT\", \"pid\": 4242, "
			       "\"comm\": \"curl\", \"uid\": 1000}",
			       &ev, err, sizeof(err)),
			 0);
	assert_int_equal(ev.ts_ns, 0);
	assert_int_equal(ev.from, TSG_CLOSE);
	assert_int_equal(ev.to, TSG_SYN_SENT);
	assert_int_equal(ev.info.family, TSG_FAM_IPV4);
	assert_string_equal(tsg_addr_format(ev.info.raddr, a, sizeof(a)), "10.0.0.9");
	assert_int_equal(ev.info.lport, 50000);
	assert_int_equal(ev.info.rport, 443);
	assert_int_equal(ev.info.pid, 4242);
	assert_int_equal(ev.info.uid, 1000);
	assert_string_equal(ev.info.comm, "curl");
	assert_int_equal(ev.info.have, TSG_HAVE_ALL & ~(TSG_HAVE(TSG_SF_CGROUP) | TSG_HAVE_IDENT));
	assert_string_equal(tsg_sk_to_string(ev.sk, a, sizeof(a)), "s1");

	assert_int_equal(parse("{\"ts\": 0.740, \"sk\": \"s1\", \"from\": \"SYN_SENT\", \"to\": "
			       "\"ESTABLISHED\"}",
			       &ev, err, sizeof(err)),
			 0);
	assert_int_equal(ev.ts_ns, 740000000);
	assert_int_equal(ev.info.have, 0);
	/* states are case-insensitive, '-' for '_' */
	assert_int_equal(parse("{\"ts\": 1, \"sk\": \"s1\", \"to\": \"time-wait\"}", &ev, err,
			       sizeof(err)),
			 0);
	assert_int_equal(ev.to, TSG_TIME_WAIT);
	assert_int_equal(ev.from, TSG_STATE_NONE);
}

static void test_ipv6_and_mapped_peer(void **state)
{
	assert_int_equal(
	    family_of("{\"ts\": 1, \"sk\": \"x\", \"to\": \"LISTEN\", \"laddr\": \"::\", "
		      "\"raddr\": \"fd00::1\"}"),
	    TSG_FAM_IPV6);
	/* an IPv4 peer of a dual-stack socket is ipv4 */
	assert_int_equal(family_of("{\"ts\": 1, \"sk\": \"x\", \"to\": \"ESTABLISHED\", \"laddr\": "
				   "\"::ffff:10.0.0.1\", \"raddr\": \"::ffff:10.0.0.2\"}"),
			 TSG_FAM_IPV4);
}

/* cli.md: "family": "ipv6" with a v4-mapped peer is IPv4, as live */
static void test_ipv6_family_mapped_peer_is_ipv4(void **state)
{
	struct tsg_event ev;
	char err[256], a[64], *out;
	json_t *o;

	assert_int_equal(parse("{\"ts\": 1, \"sk\": \"x\", \"to\": \"ESTABLISHED\", \"family\": "
			       "\"ipv6\", \"laddr\": \"::ffff:10.0.0.1\", \"raddr\": "
			       "\"::ffff:10.2.3.4\"}",
			       &ev, err, sizeof(err)),
			 0);
	assert_int_equal(ev.info.family, TSG_FAM_IPV4);
	assert_string_equal(tsg_addr_format(ev.info.raddr, a, sizeof(a)), "10.2.3.4");
	o = tsg_event_to_json(&ev);
	assert_non_null(o);
	out = json_dumps(o, JSON_COMPACT);
	assert_non_null(strstr(out, "\"family\":\"ipv4\""));
	assert_non_null(strstr(out, "\"raddr\":\"10.2.3.4\""));
	free(out);
	json_decref(o);
	/* the peer decides: a v4-mapped local address with an IPv6 peer stays ipv6 */
	assert_int_equal(
	    family_of("{\"ts\": 1, \"sk\": \"x\", \"to\": \"ESTABLISHED\", \"family\": "
		      "\"ipv6\", \"laddr\": \"::ffff:10.0.0.1\", \"raddr\": \"fd00::2\"}"),
	    TSG_FAM_IPV6);
	/* no peer on the line: nothing to decide by */
	assert_int_equal(family_of("{\"ts\": 1, \"sk\": \"x\", \"to\": \"LISTEN\", \"family\": "
				   "\"ipv6\", \"laddr\": \"::ffff:10.0.0.1\"}"),
			 TSG_FAM_IPV6);
}

/* the same rule for the capture's conversion (bpf/capture.c info_from_bpf) */
static void test_norm_family(void **state)
{
	struct tsg_sockinfo in = {0};

	in.family = TSG_FAM_IPV6;
	in.have = TSG_HAVE(TSG_SF_FAMILY);
	tsg_sockinfo_norm_family(&in);
	assert_int_equal(in.family, TSG_FAM_IPV6); /* peer unknown */
	assert_int_equal(tsg_addr_parse("::ffff:10.2.3.4", in.raddr, NULL), 0);
	in.have |= TSG_HAVE(TSG_SF_RADDR);
	tsg_sockinfo_norm_family(&in);
	assert_int_equal(in.family, TSG_FAM_IPV4);
	assert_int_equal(tsg_addr_parse("::1", in.raddr, NULL), 0);
	in.family = TSG_FAM_IPV6;
	tsg_sockinfo_norm_family(&in);
	assert_int_equal(in.family, TSG_FAM_IPV6);
}

static void expect_error(const char *line, const char *words)
{
	struct tsg_event ev;
	char err[256] = "";

	assert_int_equal(parse(line, &ev, err, sizeof(err)), -EINVAL);
	if (!strstr(err, words))
		fail_msg("error for %s is \"%s\", expected it to mention \"%s\"", line, err, words);
}

/* Namespace and container fields: given, or parsed from the cgroup path. */
static void test_ident_fields(void **state)
{
	struct tsg_event ev;
	char err[256] = "";

	assert_int_equal(
	    parse("{\"ts\": 1, \"sk\": \"a\", \"to\": \"CLOSE\", \"netns\": 4026532001, "
		  "\"netns_name\": \"blue\", \"container\": \"" CID "\", \"pod\": "
		  "\"1a2b-3c4d\"}",
		  &ev, err, sizeof(err)),
	    0);
	assert_int_equal(ev.info.have, TSG_HAVE_IDENT);
	assert_int_equal(ev.info.netns, 4026532001u);
	assert_string_equal(ev.info.netns_name, "blue");
	assert_ptr_equal(ev.info.container, tsg_intern(CID));
	assert_string_equal(ev.info.pod, "1a2b-3c4d");
	/* from the cgroup: a docker scope, no pod */
	assert_int_equal(parse("{\"ts\": 1, \"sk\": \"a\", \"to\": \"CLOSE\", \"cgroup\": "
			       "\"/system.slice/docker-" CID ".scope\"}",
			       &ev, err, sizeof(err)),
			 0);
	assert_int_equal(ev.info.have, TSG_HAVE(TSG_SF_CGROUP) | TSG_HAVE(TSG_SF_CONTAINER) |
					   TSG_HAVE(TSG_SF_POD));
	assert_ptr_equal(ev.info.container, tsg_intern(CID));
	assert_null(ev.info.pod);
	/* null is "none", and overrides what the path gives */
	assert_int_equal(parse("{\"ts\": 1, \"sk\": \"a\", \"to\": \"CLOSE\", \"cgroup\": "
			       "\"/system.slice/docker-" CID ".scope\", \"container\": null}",
			       &ev, err, sizeof(err)),
			 0);
	assert_true(ev.info.have & TSG_HAVE(TSG_SF_CONTAINER));
	assert_null(ev.info.container);
}

static void test_errors(void **state)
{
	expect_error("{\"ts\": 1, \"sk\": \"a\", \"to\": \"CLOSE\", \"netns\": 0}",
		     "inode number above 0");
	expect_error("{\"ts\": 1, \"sk\": \"a\", \"to\": \"CLOSE\", \"netns\": \"x\"}", "netns");
	expect_error("{\"ts\": 1, \"sk\": \"a\", \"to\": \"CLOSE\", \"container\": \"\"}",
		     "must not be empty");
	expect_error("{\"ts\": 1, \"sk\": \"a\", \"to\": \"CLOSE\", \"pod\": 5}",
		     "\"pod\" must be a string");
	expect_error("not json", "invalid JSON");
	expect_error("[1, 2]", "object");
	expect_error("{\"sk\": \"a\", \"to\": \"CLOSE\"}", "missing \"ts\"");
	expect_error("{\"ts\": 1, \"to\": \"CLOSE\"}", "missing \"sk\"");
	expect_error("{\"ts\": 1, \"sk\": \"a\"}", "missing \"to\"");
	expect_error("{\"ts\": 1, \"sk\": \"a\", \"to\": \"SYN_SNT\"}", "unknown state");
	expect_error("{\"ts\": 1, \"sk\": \"a\", \"to\": \"CLOSE\", \"from\": \"X\"}", "unknown state");
	expect_error("{\"ts\": \"1\", \"sk\": \"a\", \"to\": \"CLOSE\"}", "\"ts\" must be a number");
	expect_error("{\"ts\": -1, \"sk\": \"a\", \"to\": \"CLOSE\"}", "out of range");
	expect_error("{\"ts\": 1, \"sk\": \"a\", \"to\": \"CLOSE\", \"rport\": 70000}", "out of range");
	expect_error("{\"ts\": 1, \"sk\": \"a\", \"to\": \"CLOSE\", \"rport\": 1e308}", "out of range");
	expect_error("{\"ts\": 1, \"sk\": \"a\", \"to\": \"CLOSE\", \"lport\": 1.5}", "whole number");
	expect_error("{\"ts\": 1, \"sk\": \"a\", \"to\": \"CLOSE\", \"raddr\": \"10.0.0\"}",
		     "not an IP address");
	expect_error("{\"ts\": 1, \"sk\": \"a\", \"to\": \"CLOSE\", \"family\": \"ipx\"}", "ipv4 or ipv6");
	expect_error("{\"ts\": 1, \"sk\": \"a\", \"to\": \"CLOSE\", \"comm\": 5}", "must be a string");
	expect_error("{\"ts\": 1, \"sk\": \"a\", \"to\": \"CLOSE\", \"colour\": 5}", "unknown field");
	expect_error("{\"ts\": 1, \"sk\": \"\", \"to\": \"CLOSE\"}", "empty");
}

static void test_blank_line(void **state)
{
	struct tsg_event ev;
	char err[64];

	assert_int_equal(parse("  \t\r\n", &ev, err, sizeof(err)), 1);
}

static void test_read_line_bounded(void **state)
{
	char *buf = malloc(TSG_EVENT_LINE_BUF);
	FILE *f = tmpfile();

	assert_non_null(buf);
	assert_non_null(f);
	fputs("{\"ts\": 1}\n", f);
	for (int i = 0; i < TSG_EVENT_LINE_MAX + 100; i++)
		fputc('x', f);
	fputs("\nlast", f);
	rewind(f);
	assert_int_equal(tsg_event_read_line(f, buf, TSG_EVENT_LINE_BUF), 10);
	assert_int_equal(tsg_event_read_line(f, buf, TSG_EVENT_LINE_BUF), -E2BIG);
	/* the rest of the long line was skipped: the next read is the next line */
	assert_int_equal(tsg_event_read_line(f, buf, TSG_EVENT_LINE_BUF), 4);
	assert_string_equal(buf, "last");
	assert_int_equal(tsg_event_read_line(f, buf, TSG_EVENT_LINE_BUF), 0);
	fclose(f);
	free(buf);
}

static void test_write_then_read(void **state)
{
	struct tsg_event in = { 0 }, out;
	char line[1024], err[256];
	FILE *f = tmpfile();

	assert_non_null(f);
	in.ts_ns = 123456789012ull;
	in.sk = 987654321;
	in.from = TSG_FIN_WAIT2;
	in.to = TSG_TIME_WAIT;
	in.info.have = TSG_HAVE_ALL;
	in.info.family = TSG_FAM_IPV6;
	tsg_addr_parse("fd00::2", in.info.laddr, NULL);
	tsg_addr_parse("fd00::9", in.info.raddr, NULL);
	in.info.lport = 40000;
	in.info.rport = 5432;
	in.info.pid = 77;
	in.info.uid = 1001;
	snprintf(in.info.comm, sizeof(in.info.comm), "psql \"x\"");
	assert_int_equal(
	    tsg_sockinfo_set_cgroup(&in.info, "/kubepods/besteffort/pod1a2b-3c4d/" CID), 0);
	in.info.netns = 4026532001u;
	in.info.netns_name = tsg_intern("blue");
	assert_int_equal(tsg_event_write(f, &in), 0);
	rewind(f);
	assert_non_null(fgets(line, sizeof(line), f));
	fclose(f);
	assert_int_equal(parse(line, &out, err, sizeof(err)), 0);
	assert_int_equal(out.ts_ns / 1000, in.ts_ns / 1000); /* microseconds are kept */
	assert_int_equal(out.from, in.from);
	assert_int_equal(out.to, in.to);
	assert_int_equal(out.info.have, in.info.have);
	assert_memory_equal(out.info.laddr, in.info.laddr, 16);
	assert_memory_equal(out.info.raddr, in.info.raddr, 16);
	assert_int_equal(out.info.lport, 40000);
	assert_string_equal(out.info.comm, in.info.comm);
	assert_ptr_equal(out.info.cgroup, in.info.cgroup);
	assert_int_equal(out.info.netns, 4026532001u);
	assert_ptr_equal(out.info.netns_name, in.info.netns_name);
	assert_ptr_equal(out.info.container, tsg_intern(CID));
	assert_ptr_equal(out.info.pod, tsg_intern("1a2b-3c4d"));
	{
		char a[32], b[32];
		assert_string_equal(tsg_sk_to_string(out.sk, a, sizeof(a)),
				    tsg_sk_to_string(in.sk, b, sizeof(b)));
	}
}

/* Ids not made from a string (the classic-tracepoint capture sets the top
 * bit of its private ids) print as numbers and are never dereferenced. */
static void test_sk_ids(void **state)
{
	char buf[32];
	uint64_t a = tsg_sk_from_string("conn-a");

	assert_string_equal(tsg_sk_to_string(a, buf, sizeof(buf)), "conn-a");
	assert_int_equal(tsg_sk_from_string("conn-a"), a);
	assert_string_equal(tsg_sk_to_string((1ull << 63) | 5, buf, sizeof(buf)),
			    "9223372036854775813");
	assert_string_equal(tsg_sk_to_string(42, buf, sizeof(buf)), "42");
}

/* The reader that replay and rule tests share: bad lines are counted and
 * skipped, a backwards ts is a bad line, events keep coming after them. */
static void test_reader(void **state)
{
	struct tsg_event_reader rd;
	struct tsg_event ev;
	FILE *f = tmpfile();

	assert_non_null(f);
	fputs("{\"ts\": 1, \"sk\": \"a\", \"to\": \"LISTEN\"}\n"
	      "not json\n"
	      "\n"
	      "{\"ts\": 0.5, \"sk\": \"b\", \"to\": \"LISTEN\"}\n"
	      "{\"ts\": 2, \"sk\": \"c\", \"to\": \"LISTEN\"}\n",
	      f);
	rewind(f);
	assert_int_equal(tsg_event_reader_init(&rd, f, "t.jsonl"), 0);
	assert_int_equal(tsg_event_reader_next(&rd, &ev), 1);
	assert_int_equal(ev.ts_ns, 1000000000);
	assert_int_equal(tsg_event_reader_next(&rd, &ev), 1);
	assert_int_equal(ev.ts_ns, 2000000000);
	assert_int_equal(rd.lineno, 5);
	assert_int_equal(rd.bad, 2);
	assert_int_equal(rd.last, 2000000000);
	assert_int_equal(tsg_event_reader_next(&rd, &ev), 0);
	tsg_event_reader_fini(&rd);
	fclose(f);
}

static const struct CMUnitTest tests[] = {
    cmocka_unit_test(test_cli_example_lines),
    cmocka_unit_test(test_ipv6_and_mapped_peer),
    cmocka_unit_test(test_ipv6_family_mapped_peer_is_ipv4),
    cmocka_unit_test(test_norm_family),
    cmocka_unit_test(test_errors),
    cmocka_unit_test(test_blank_line),
    cmocka_unit_test(test_read_line_bounded),
    cmocka_unit_test(test_write_then_read),
    cmocka_unit_test(test_sk_ids),
    cmocka_unit_test(test_reader),
    cmocka_unit_test(test_ident_fields),
};

TSG_TEST_MAIN(tests)
