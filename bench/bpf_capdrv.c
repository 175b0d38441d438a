/* SPDX-License-Identifier: MIT */
/*
 * bpf_capdrv: a tiny driver over tsg_capture for benchmarks and manual
 * checks. Loads rules, builds the plan, attaches, counts (or prints) events
 * until SIGINT/SIGTERM or -t SECONDS, then prints the kernel counters.
 *   bpf_capdrv -r RULES [-r RULES] [-t SECONDS] [-p] [-s] [-a] [-v]
 *   -p print every event   -s deliver the startup snapshot   -a record all
 */
#include "capture.h"
#include "log.h"
#include "ruleset.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop;
static uint64_t nev, ntw_in, ntw_out;
static bool print;

static void on_sig(int s)
{
	(void)s;
	stop = 1;
}

static void on_ev(void *ctx, const struct tsg_event *ev)
{
	char la[64], ra[64];

	(void)ctx;
	nev++;
	if (ev->to == TSG_TIME_WAIT)
		ntw_in++;
	if (ev->from == TSG_TIME_WAIT)
		ntw_out++;
	if (!print)
		return;
	printf("%" PRIu64 ".%09" PRIu64 " sk=%" PRIx64 " %s -> %s%s %s:%u %s:%u pid=%u comm=%s uid=%u cg=%s\n",
	       ev->ts_ns / 1000000000, ev->ts_ns % 1000000000, ev->sk, tsg_state_name(ev->from),
	       tsg_state_name(ev->to), ev->snapshot ? " (snapshot)" : "",
	       tsg_addr_format(ev->info.laddr, la, sizeof(la)), ev->info.lport,
	       tsg_addr_format(ev->info.raddr, ra, sizeof(ra)), ev->info.rport,
	       (ev->info.have & TSG_HAVE(TSG_SF_PID)) ? ev->info.pid : 0,
	       (ev->info.have & TSG_HAVE(TSG_SF_COMM)) ? ev->info.comm : "?", ev->info.uid,
	       ev->info.cgroup ? ev->info.cgroup : "-");
	fflush(stdout);
}

int main(int argc, char **argv)
{
	const char *paths[16];
	size_t npaths = 0;
	double secs = 0;
	bool snapshot = false, all = false;
	struct tsg_capture_opts o = { 0 };
	struct tsg_diags d;
	struct tsg_ruleset *rs = NULL;
	struct tsg_plan *plan = NULL;
	struct tsg_capture *c = NULL;
	struct tsg_capture_stats st;
	struct timespec t0, t1;
	int opt, err;

	while ((opt = getopt(argc, argv, "r:t:psav")) != -1) {
		switch (opt) {
		case 'r':
			if (npaths < 16)
				paths[npaths++] = optarg;
			break;
		case 't': secs = atof(optarg); break;
		case 'p': print = true; break;
		case 's': snapshot = true; break;
		case 'a': all = true; break;
		case 'v': o.verbose = true; tsg_log_set_level(LOG_DEBUG); break;
		default:
			fprintf(stderr, "usage: %s -r RULES [-t SECONDS] [-p] [-s] [-a] [-v]\n", argv[0]);
			return 2;
		}
	}
	tsg_diags_init(&d);
	err = tsg_ruleset_load(paths, npaths, false, &d, &rs);
	tsg_diags_print(&d, stderr);
	tsg_diags_fini(&d);
	if (err)
		return 2;
	if (tsg_plan_build(rs, all, &plan))
		return 1;
	err = tsg_capture_new(plan, &o, &c);
	if (err) {
		fprintf(stderr, "capture: %s\n", strerror(-err));
		return err == -EPERM ? 77 : 1;
	}
	signal(SIGINT, on_sig);
	signal(SIGTERM, on_sig);
	if (snapshot)
		tsg_capture_snapshot(c, on_ev, NULL);
	printf("ready\n");
	fflush(stdout);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (!stop) {
		err = tsg_capture_poll(c, 100, on_ev, NULL);
		if (err < 0 && err != -EINTR)
			break;
		clock_gettime(CLOCK_MONOTONIC, &t1);
		if (secs > 0 && (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9 >= secs)
			break;
	}
	tsg_capture_poll(c, 0, on_ev, NULL);
	tsg_capture_get_stats(c, &st);
	printf("events %" PRIu64 " tw_in %" PRIu64 " tw_out %" PRIu64 "\n", nev, ntw_in, ntw_out);
	printf("kernel seen %" PRIu64 " filtered %" PRIu64 " sent %" PRIu64 " lost %" PRIu64
	       " map_full %" PRIu64 " tw_entered %" PRIu64 " tw_exited %" PRIu64 " snapshot %" PRIu64 "\n",
	       st.seen, st.filtered, st.sent, st.lost, st.map_full, st.tw_entered, st.tw_exited,
	       st.snapshot_sockets);
	tsg_capture_free(c);
	tsg_plan_free(plan);
	tsg_ruleset_free(rs);
	return 0;
}
