/* SPDX-License-Identifier: MIT */
/*
 * tsguard engine benchmark (not a test): events/s through tsg_engine_feed with
 * N generated rules on a generated stream of connections.
 *
 *   engine_bench RULES EVENTS [MATCHING_PERCENT]
 *   engine_bench rate EVENTS THRESHOLD...
 *
 * Rule i (kinds in turn: transition, time, count, rate) matches rport 10000+i.
 * Connections go CLOSE->SYN_SENT->ESTABLISHED->FIN_WAIT1->FIN_WAIT2->
 * TIME_WAIT->CLOSE (6 transitions), 4096 open at once; MATCHING_PERCENT of
 * them (default 10) go to a port some rule matches, the others to port 80.
 *
 * `rate`: one rule {from: SYN_SENT, to: CLOSE, rate_above: THRESHOLD,
 * per: 60s, by: comm} and EVENTS failed connects of one process (one busy
 * key), 50 us apart (20 per ms, 1.2M in a full window), for each THRESHOLD
 * in turn in the same run; then the ratio of the slowest to the fastest.
 */
#include "engine.h"
#include "ruleset.h"
#include "tsg_test_yaml.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static uint64_t notes;

static void on_note(void *ctx, const struct tsg_alert *a)
{
	(void)ctx;
	(void)a;
	notes++;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct tsg_ruleset *make_rules(int n)
{
	static const char *const when[4] = {
		"{from: SYN_SENT, to: CLOSE}",
		"{state: SYN_SENT, longer_than: 1s}",
		"{state: ESTABLISHED, count_above: 1000, by: comm}",
		"{to: CLOSE, rate_above: 100000, per: 10s, by: raddr}",
	};
	struct tsg_ruleset *rs = NULL;
	char *yaml = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&yaml, &len);

	if (!f)
		return NULL;
	fprintf(f, "rules:\n");
	for (int i = 0; i < n; i++)
		fprintf(f, "  - name: r%d\n    match: {rport: %d}\n    when: %s\n", i, 10000 + i,
			when[i % 4]);
	if (fclose(f) == 0)
		rs = tsg_test_yaml_rules(yaml);
	free(yaml);
	return rs;
}

/* One rate rule on one busy key: events/s for this threshold. */
static double rate_run(const struct tsg_event *evs, long nevents, const char *threshold)
{
	struct tsg_engine_opts o = {0};
	char yaml[160];
	struct tsg_ruleset *rs;
	struct tsg_engine *e;
	uint64_t before = notes;
	double t0, t1;

	snprintf(yaml, sizeof(yaml),
		 "rules:\n  - name: busy\n    when: {from: SYN_SENT, to: CLOSE, "
		 "rate_above: %s, per: 60s, by: comm}\n",
		 threshold);
	rs = tsg_test_yaml_rules(yaml);
	if (!rs || tsg_engine_new(rs, &o, on_note, NULL, &e) < 0)
		return -1;
	t0 = now_s();
	for (long i = 0; i < nevents; i++)
		tsg_engine_feed(e, &evs[i]);
	tsg_engine_advance(e, evs[nevents - 1].ts_ns + 61 * TSG_NSEC_PER_SEC);
	t1 = now_s();
	printf("rate threshold=%s per=60s events=%ld seconds=%.3f events_per_s=%.0f "
	       "notifications=%llu\n",
	       threshold, nevents, t1 - t0, (double)nevents / (t1 - t0),
	       (unsigned long long)(notes - before));
	tsg_engine_free(e);
	tsg_ruleset_free(rs);
	return (double)nevents / (t1 - t0);
}

static int rate_main(int argc, char **argv)
{
	long nevents = argc > 2 ? atol(argv[2]) : 2000000;
	struct tsg_event *evs = calloc(nevents > 0 ? (size_t)nevents : 1, sizeof(*evs));
	double lo = 0, hi = 0;

	if (!evs || nevents <= 0)
		return 1;
	for (long i = 0; i < nevents; i++) {
		evs[i].ts_ns = (uint64_t)(i + 1) * 50000; /* 50 us apart */
		evs[i].sk = (uint64_t)i + 1;
		evs[i].from = TSG_SYN_SENT;
		evs[i].to = TSG_CLOSE;
		evs[i].info.have = TSG_HAVE(TSG_SF_COMM);
		snprintf(evs[i].info.comm, sizeof(evs[i].info.comm), "busy");
	}
	for (int a = 3; a < argc; a++) {
		double r = rate_run(evs, nevents, argv[a]);

		if (r < 0)
			return 1;
		if (a == 3 || r < lo)
			lo = r;
		if (a == 3 || r > hi)
			hi = r;
	}
	if (argc > 3)
		printf("rate fastest/slowest=%.2f (target ~1.0: cost per event independent of "
		       "the threshold)\n",
		       hi / lo);
	free(evs);
	return 0;
}

static int mixed_main(int argc, char **argv)
{
	static const uint8_t path[] = {TSG_CLOSE,     TSG_SYN_SENT,  TSG_ESTABLISHED, TSG_FIN_WAIT1,
				       TSG_FIN_WAIT2, TSG_TIME_WAIT, TSG_CLOSE};
	int nrules = argc > 1 ? atoi(argv[1]) : 100;
	long nevents = argc > 2 ? atol(argv[2]) : 2000000;
	int pct = argc > 3 ? atoi(argv[3]) : 10;
	struct tsg_engine_opts o = {0};
	struct tsg_ruleset *rs = make_rules(nrules);
	struct tsg_engine *e;
	struct tsg_event *evs;
	enum { OPEN = 4096 };
	struct {
		uint64_t sk;
		int step;
		uint16_t rport;
	} conn[OPEN];
	uint64_t next_sk = 1, ts = 0;
	struct tsg_engine_stats st;
	unsigned seed = 42;
	double t0, t1;

	if (!rs)
		return 1;

	evs = calloc((size_t)nevents, sizeof(*evs));
	if (!evs)
		return 1;
	for (int i = 0; i < OPEN; i++) {
		conn[i].sk = next_sk++;
		conn[i].step = 0;
		conn[i].rport = (uint16_t)((int)(rand_r(&seed) % 100) < pct
					       ? 10000 + rand_r(&seed) % (unsigned)nrules
					       : 80);
	}
	/* generate first, so the figure is the engine alone */
	for (long i = 0; i < nevents; i++) {
		int c = (int)(rand_r(&seed) % OPEN);
		struct tsg_event *ev = &evs[i];

		ts += 1000; /* 1 us apart: 1M events/s of traffic */
		ev->ts_ns = ts;
		ev->sk = conn[c].sk;
		ev->from = path[conn[c].step];
		ev->to = path[conn[c].step + 1];
		ev->info.have = TSG_HAVE_ALL & ~TSG_HAVE(TSG_SF_CGROUP);
		ev->info.family = TSG_FAM_IPV4;
		tsg_addr_parse("127.0.0.1", ev->info.laddr, NULL);
		tsg_addr_parse("10.0.0.9", ev->info.raddr, NULL);
		ev->info.raddr[15] = (uint8_t)(c & 0xff);
		ev->info.lport = (uint16_t)(30000 + c);
		ev->info.rport = conn[c].rport;
		ev->info.pid = 1000 + (uint32_t)(c % 7);
		snprintf(ev->info.comm, sizeof(ev->info.comm), "app%d", c % 7);
		if (++conn[c].step == 6) {
			conn[c].sk = next_sk++;
			conn[c].step = 0;
			conn[c].rport = (uint16_t)((int)(rand_r(&seed) % 100) < pct
						       ? 10000 + rand_r(&seed) % (unsigned)nrules
						       : 80);
		}
	}
	if (tsg_engine_new(rs, &o, on_note, NULL, &e) < 0)
		return 1;
	t0 = now_s();
	for (long i = 0; i < nevents; i++)
		tsg_engine_feed(e, &evs[i]);
	tsg_engine_advance(e, ts);
	t1 = now_s();
	tsg_engine_get_stats(e, &st);
	printf("rules=%d events=%ld matching=%d%% seconds=%.3f events_per_s=%.0f "
	       "matched=%llu notifications=%llu tracked_sockets=%llu\n",
	       nrules, nevents, pct, t1 - t0, (double)nevents / (t1 - t0),
	       (unsigned long long)st.events_matched, (unsigned long long)notes,
	       (unsigned long long)st.sockets);
	tsg_engine_free(e);
	tsg_ruleset_free(rs);
	free(evs);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "rate"))
		return rate_main(argc, argv);
	return mixed_main(argc, argv);
}
