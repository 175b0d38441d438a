// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: the rule loader on one YAML file, then (when the file
 * loads) the plan compiler, its evaluator and --explain on the result.
 *
 * The input is written to one temporary *.yaml file (the loader reads
 * paths, not buffers). Contracts checked beyond "no crash, no leak":
 *  - an error return leaves *out untouched and, for -EINVAL, is diagnosed;
 *  - success comes with no error diagnostics;
 *  - the plan is a superset of the matchers for a few fixed sockets.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "match.h"
#include "plan.h"
#include "ruleset.h"

#define MAX_INPUT (64 * 1024)

static char path[4096];
static FILE *devnull;

static void cleanup(void)
{
	if (path[0])
		unlink(path);
	if (devnull)
		fclose(devnull);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *tmp = getenv("TMPDIR");
	int fd;

	snprintf(path, sizeof(path), "%s/tsg-fuzz-rules-XXXXXX.yaml",
		 tmp && *tmp ? tmp : "/tmp");
	fd = mkstemps(path, 5);
	if (fd < 0) {
		perror("mkstemps");
		abort();
	}
	close(fd);
	devnull = fopen("/dev/null", "w");
	if (!devnull)
		abort();
	atexit(cleanup);
	return 0;
}

static void write_input(const uint8_t *data, size_t size)
{
	int fd = open(path, O_WRONLY | O_TRUNC | O_CLOEXEC);
	size_t off = 0;

	if (fd < 0)
		abort();
	while (off < size) {
		ssize_t n = write(fd, data + off, size - off);
		if (n <= 0)
			abort();
		off += (size_t)n;
	}
	close(fd);
}

static void check_plan(const struct tsg_ruleset *rs)
{
	static const struct {
		const char *laddr, *raddr, *comm;
		uint16_t lport, rport;
		uint32_t uid;
	} socks[] = {
		{"10.0.0.2", "10.0.0.9", "curl", 50000, 443, 1000},
		{"127.0.0.1", "127.0.0.1", "nginx", 80, 41000, 33},
		{"fd00::1", "2001:db8::5", "python3", 0, 22, 0},
	};
	struct tsg_plan *p = NULL;

	if (tsg_plan_build(rs, false, &p) < 0)
		return; /* -ENOMEM only */
	for (size_t k = 0; k < sizeof(socks) / sizeof(socks[0]); k++) {
		struct tsg_sockinfo si = {0};
		uint8_t fam;

		if (tsg_addr_parse(socks[k].laddr, si.laddr, &fam) < 0 ||
		    tsg_addr_parse(socks[k].raddr, si.raddr, &si.family) < 0)
			abort();
		si.have = TSG_HAVE_ALL & ~TSG_HAVE(TSG_SF_CGROUP);
		si.lport = socks[k].lport;
		si.rport = socks[k].rport;
		si.uid = socks[k].uid;
		snprintf(si.comm, sizeof(si.comm), "%s", socks[k].comm);
		for (int from = 0; from < TSG_NSTATES; from++)
			for (int to = 1; to < TSG_NSTATES; to++) {
				uint64_t bits = tsg_plan_eval(p, (uint8_t)from, (uint8_t)to, &si);
				for (size_t i = 0; i < rs->nrules; i++) {
					const struct tsg_rule *r = &rs->rules[i];
					bool want;
					if (!r->enabled)
						continue;
					if (r->kind == TSG_KIND_TIME || r->kind == TSG_KIND_COUNT)
						want = from == r->state || to == r->state;
					else
						want = (!r->from || (r->from >> from) & 1) &&
						       (!r->to || (r->to >> to) & 1);
					if (want && tsg_match_sock(&r->match, &si) &&
					    !(bits & (1ull << p->slot_of_rule[i]))) {
						fprintf(stderr, "plan misses rule %zu at %d->%d\n", i,
							from, to);
						abort();
					}
				}
			}
	}
	tsg_plan_explain(p, rs, devnull);
	tsg_plan_free(p);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *paths[1] = {path};
	struct tsg_ruleset *rs = NULL;
	struct tsg_diags d;
	int rc;

	if (size > MAX_INPUT)
		return 0;
	write_input(data, size);
	tsg_diags_init(&d);
	rc = tsg_ruleset_load(paths, 1, false, &d, &rs);
	tsg_diags_print(&d, devnull);
	if (rc < 0) {
		if (rs)
			abort(); /* output parameter set on failure */
		if (rc == -EINVAL && d.nerrors == 0)
			abort(); /* rejected without saying why */
	} else {
		if (!rs || d.nerrors)
			abort();
		check_plan(rs);
		tsg_ruleset_free(rs);
	}
	tsg_diags_fini(&d);
	return 0;
}
